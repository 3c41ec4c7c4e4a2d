//! People: direct conversations, each user's rooms, read markers, mentions
//! and the inbox updates that tell a user's every connection about them.

pub mod directory;

pub use directory::{Directory, RoomAdd, UserRoomState};
