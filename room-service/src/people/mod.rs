//! People: direct conversations, each user's rooms, read markers, mentions
//! and the inbox updates that tell a user's every connection about them.
//!
//! - [`directory`]: the [`Directory`] seam each broker implements (Redis
//!   keys per user, hash-tagged `{u:<user_id>}`, and `dm:{<room>}`; see
//!   the brokers' `people` modules), memory in the embedded mode.
//! - [`write_through`]: [`People`], the directory as the service uses it,
//!   written through to PostgreSQL and loaded back from it.
//! - [`inbox`]: a user's room entry and the ephemeral `inbox` events that
//!   carry it, with the bounded queue of work after a send.
//! - [`after_send`]: that work: a direct message's markers and updates,
//!   and mentions ([`mentions`] finds who a text mentions).
//! - [`joins`]: what a presence batch's joins add to users' rooms.
//!
//! The gRPC handlers (OpenDirect, UserRooms, MarkRead, and the checks on
//! direct conversations) are in `service::people`.

mod after_send;
pub mod directory;
pub(crate) mod inbox;
pub(crate) mod joins;
pub(crate) mod mentions;
pub(crate) mod write_through;

pub use directory::{Directory, RoomAdd, UserRoomState};
pub(crate) use inbox::{Inbox, Reason};
pub(crate) use write_through::People;
