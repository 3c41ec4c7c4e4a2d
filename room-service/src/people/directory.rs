//! What a room-service keeps about people, beside rooms: who exists (a
//! profile: their name), the direct conversations, each user's rooms with
//! their read marker, and the messages that mention them.
//!
//! [`Directory`] is the seam, implemented by each broker next to its rooms
//! (Redis, Redis Cluster, memory). Unread counts are never stored: they are
//! a room's last sequence number minus the user's marker, so a message costs
//! nothing per reader. With a store (`DATABASE_URL`), the service writes
//! every change through to PostgreSQL as well and loads a user (or a direct
//! conversation) back from there when the broker has lost it.

use std::future::Future;

use chat_proto::v1::Person;

use crate::broker::BrokerResult;

/// One of a user's rooms as the directory keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRoomState {
    pub room: String,
    /// The user has read every message up to this seq.
    pub read_seq: u64,
    /// When the room became theirs, ms since the Unix epoch.
    pub joined_at_ms: i64,
    /// Seqs above `read_seq` of messages that mention the user, ascending.
    pub mentions: Vec<u64>,
}

/// A room to add to a user's rooms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomAdd {
    pub user_id: String,
    pub room: String,
    /// Where the marker starts: the room's last seq when it became theirs.
    pub read_seq: u64,
    pub joined_at_ms: i64,
}

/// People's state. Methods take checked user ids and room names.
pub trait Directory: Send + Sync + 'static {
    /// Records (or renames) a user: from then on they exist.
    fn put_profile(&self, user_id: &str, name: &str) -> impl Future<Output = BrokerResult<()>> + Send;

    /// Each user's name, `None` for a user nobody has.
    fn profiles(&self, user_ids: &[String]) -> impl Future<Output = BrokerResult<Vec<Option<String>>>> + Send;

    /// Records a direct conversation with its members, unless it exists;
    /// true when this call created it.
    fn put_direct(&self, room: &str, members: &[Person]) -> impl Future<Output = BrokerResult<bool>> + Send;

    /// A direct conversation's members, `None` if there is none by that name.
    fn direct(&self, room: &str) -> impl Future<Output = BrokerResult<Option<Vec<Person>>>> + Send;

    /// Adds rooms to users' rooms where absent (a present one keeps its
    /// marker); per add, true when it was added now.
    fn add_rooms(&self, adds: &[RoomAdd]) -> impl Future<Output = BrokerResult<Vec<bool>>> + Send;

    /// Takes a room off a user's rooms (and its mentions); true if it was there.
    fn remove_room(&self, user_id: &str, room: &str) -> impl Future<Output = BrokerResult<bool>> + Send;

    /// A user's rooms; `None` when this directory knows nothing of the user
    /// (new, or lost with Redis: the caller may load them from the store).
    fn user_rooms(&self, user_id: &str) -> impl Future<Output = BrokerResult<Option<Vec<UserRoomState>>>> + Send;

    /// One of a user's rooms, `None` if it is not theirs.
    fn user_room(&self, user_id: &str, room: &str) -> impl Future<Output = BrokerResult<Option<UserRoomState>>> + Send;

    /// Moves the user's marker in `room` up to `seq` (never down) and drops
    /// the mentions it passes, in one atomic step. `None` if the room is not
    /// theirs; else the room as it stands after.
    fn mark_read(
        &self,
        user_id: &str,
        room: &str,
        seq: u64,
    ) -> impl Future<Output = BrokerResult<Option<UserRoomState>>> + Send;

    /// Records that message `seq` of `room` mentions the user (if the room
    /// is theirs and the seq is above their marker).
    fn add_mention(&self, user_id: &str, room: &str, seq: u64) -> impl Future<Output = BrokerResult<()>> + Send;
}
