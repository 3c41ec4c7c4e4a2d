//! The browser protocol (`docs/protocol.md`): JSON text frames in and out.
//!
//! Frames in are parsed into a [`ClientFrame`] (`client.rs`); what the
//! session answers, and the room events its feed hands it, are encoded from
//! views into text frames (`server.rs`); a frame that cannot be served gets
//! an `error` frame from a [`Refusal`] (`refusal.rs`), made from the
//! browser's mistake or a room-service's failed call. A user's rooms
//! (`rooms`, `inbox`, `dm`) are encoded in `inbox.rs`.

mod client;
mod refusal;
mod server;

pub(crate) use client::{ClientFrame, check_direct, parse};
pub(crate) use refusal::{Refusal, coded, refusal_of, unavailable};
pub(crate) use server::{EventView, LeaveView, Limits, MemberView, ServerFrame, encode, refusal};
