//! Where rooms live: their sequence numbers, bounded history, presence and
//! the bus that carries their events to every room-service.
//!
//! [`Broker`] is the seam. [`RedisBroker`] is the real, multi-instance one:
//! one atomic Lua step per stored event (sequence, history, publish) and one
//! pub/sub channel per room, on one Redis or spread over a Redis Cluster's
//! shards (`cluster`). [`MemoryBroker`] does the same inside one
//! process, for the embedded single-instance mode. Both hand events to local
//! listeners through a [`Fanout`], which keeps one tap per room whatever the
//! number of gateway streams reading it.
//!
//! Where a room's numbering (epoch, last seq) starts: by default a broker
//! starts a room it has none for at a fresh epoch. Told `seeded_by_caller`
//! (a room-service with a store), it starts none itself: a write to such a
//! room fails with [`BrokerError::Unseeded`], changing nothing, and the
//! caller [`Broker::seed`]s it from where its store says the numbering
//! stands. The brokers know nothing of the store.

mod attachments;
mod change_envelope;
mod cluster;
mod connection;
mod envelope;
mod fanout;
mod keys;
mod memory;
mod memory_attachments;
mod memory_changes;
mod memory_moderation;
mod memory_people;
mod message_reply;
mod message_state;
mod moderation;
mod people;
mod record;
mod redis;
mod redis_changes;

use std::future::Future;

use chat_proto::v1::{Member, RoomEvent, RoomSummary};
use chat_proto::{MemberId, RoomName};

pub(crate) use attachments::blobs_of;
pub use fanout::{Fanout, Subscription};
pub use memory::MemoryBroker;
pub use message_state::{ChangeOp, MessageState};
pub(crate) use moderation::{Moderation, Standing};
pub use redis::{RECONNECT_MAX_DELAY, RedisBroker};

/// Why a broker call failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A message from someone who is not (or no longer) in the room.
    #[error("member {0:?} is not in the room; join it first")]
    NotMember(String),
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// The room has no numbering here (Redis lost it, or it is new) and this
    /// broker was told not to start one itself ([`RedisBroker::seeded_by_caller`]):
    /// nothing was changed; [`Broker::seed`] the room, then call again.
    #[error("room {0:?} has no epoch here (new, or lost by Redis) and must be seeded from the store first")]
    Unseeded(String),
    /// Something stored in Redis could not be read back.
    #[error("stored room data is unreadable: {0}")]
    Corrupt(String),
    /// A muted user's send (or edit, or reaction): refused until then (ms).
    #[error("a moderator muted you in this room until {until_ms} (ms since the Unix epoch)")]
    Muted { until_ms: i64 },
    /// The store (PostgreSQL) behind a write-through record failed; the
    /// change may be in Redis already, and a retry completes it.
    #[error("store: {0}")]
    Store(String),
}

pub type BrokerResult<T> = Result<T, BrokerError>;

/// A message to store: its sender's id for it (may be empty) and the event,
/// sender name and sequence left for the broker to fill in.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub client_id: String,
    pub event: RoomEvent,
}

/// A message as the broker stored it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub event: RoomEvent,
    /// Stored before under the same client id: not stored or published again.
    pub repeat: bool,
}

/// A change to make to a stored message.
#[derive(Debug, Clone)]
pub struct ChangeOrder {
    pub target_seq: u64,
    /// The epoch the target belongs to: a change names no message of an
    /// earlier history.
    pub target_epoch: String,
    pub op: ChangeOp,
    pub ts_ms: i64,
    /// The target's state as the caller read it (from the store, when the
    /// broker's history no longer holds it): where the change starts from
    /// if the broker keeps none for the message.
    pub base: MessageState,
}

/// What a broker did with a [`ChangeOrder`].
#[derive(Debug, Clone)]
pub enum ChangeOutcome {
    /// Stored and published: the change event.
    Stored(Box<RoomEvent>),
    /// A reaction added twice or removed when absent: nothing stored.
    Unchanged,
    /// The message is deleted, or not of the room's current history.
    Gone,
    /// A new emoji past the most a message takes.
    TooManyReactions,
}

/// One presence change, applied with others of its room in one atomic step.
#[derive(Debug, Clone)]
pub enum PresenceChange {
    /// A member enters (or re-enters) the room through `member.connection`,
    /// present until `expires_at_ms`. Taking a member over from another
    /// connection changes nothing anyone sees but tells the old connection
    /// to close. With `restore`, a member the room had lost is put back
    /// silently.
    Join { member: Member, expires_at_ms: i64, restore: bool },
    /// A member leaves, for `reason`.
    Leave(Leave),
}

/// A leave, and what it is conditional on.
#[derive(Debug, Clone, Default)]
pub struct Leave {
    pub member_id: String,
    pub reason: String,
    /// Only if this connection still holds the member.
    pub connection: Option<String>,
    /// Only if its presence ran out by then (a heartbeat in between keeps
    /// it). A member that was detached leaves with the reason it was
    /// detached for.
    pub only_if_expired_at: Option<i64>,
    /// Detach instead: the member stays, held by no connection, until this
    /// time, for its session to resume; then it leaves with `reason`.
    pub detach_until: Option<i64>,
}

/// How much of the room a presence batch reads back after applying itself.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotSize {
    pub history: usize,
    pub members: usize,
}

/// The room as it stood right after a presence batch: what a joiner is shown.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Recent stored events, oldest first, ending at `position.last_seq`.
    pub history: Vec<RoomEvent>,
    pub position: Position,
    /// The first members in name order.
    pub members: Vec<Member>,
    pub member_count: u32,
    /// Cursor for [`Broker::members_page`] when `members` is not everyone.
    pub members_next: String,
    /// The room's owner (a user id; empty: none), and which of the batch's
    /// joiners the room has made moderators: what each joiner's role is.
    pub owner: String,
    pub moderators: Vec<String>,
}

/// What a presence batch did.
#[derive(Debug, Clone, Default)]
pub struct PresenceOutcome {
    /// Per change, in order: whether it changed anything (a leave of someone
    /// absent, or still present, does not).
    pub applied: Vec<bool>,
    /// Per change, in order: a join refused because its user is banned
    /// from the room (nothing changed for it).
    pub banned: Vec<bool>,
    pub snapshot: Snapshot,
}

/// One page of a room's members in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembersPage {
    pub members: Vec<Member>,
    pub member_count: u32,
    /// Where the next page starts; empty on the last page.
    pub next: String,
}

/// How much of a room is kept, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Stored events kept per room.
    pub history_len: usize,
    /// How long a room with no stored event is kept; then it is forgotten.
    pub room_ttl: std::time::Duration,
}

/// Where a room's sequence stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// Names the room's current history; empty before the first event.
    pub epoch: String,
    /// The last sequence number given out; 0 before the first event.
    pub last_seq: u64,
}

/// Storage and bus for rooms. Methods take validated room names.
pub trait Broker: Moderation + Send + Sync + 'static {
    /// What [`Self::append_messages`] is called in a trace: the step a
    /// send's span shows for storing and publishing.
    const APPEND_STEP: &'static str;

    /// Stores messages of one sender in one atomic step: checks that
    /// `sender` is in the room (`None`: system messages), fills in the
    /// sender's name, and in the order given gives each the room's next
    /// sequence number, appends it to the history and publishes it. A
    /// message whose non-empty `client_id` this member sent before comes back
    /// as first stored (marked a repeat) instead of being stored again.
    fn append_messages(
        &self,
        room: &RoomName,
        sender: Option<&MemberId>,
        messages: Vec<Outgoing>,
    ) -> impl Future<Output = BrokerResult<Vec<Stored>>> + Send;

    /// Applies presence changes in one atomic step, publishes one
    /// `PresenceDiff` event with what they changed (none if nothing did) and
    /// reads the room back as it stands after them.
    fn apply_presence(
        &self,
        room: &RoomName,
        changes: &[PresenceChange],
        size: SnapshotSize,
    ) -> impl Future<Output = BrokerResult<PresenceOutcome>> + Send;

    /// Changes one stored message in one atomic step: checks that `actor`
    /// is in the room (taking its name and user), that the message is of
    /// the room's current history and not deleted, applies the change to
    /// the message's state, and stores and publishes the change as an
    /// event with the room's next sequence number. Who may make the change
    /// (the sender, a moderator) is the caller's to check first.
    fn change_message(
        &self,
        room: &RoomName,
        actor: &MemberId,
        order: ChangeOrder,
    ) -> impl Future<Output = BrokerResult<ChangeOutcome>> + Send;

    /// The message stored under `seq`, as it stands now (its changes laid
    /// over it), if the history still holds it; `None` for a seq the history
    /// no longer holds, or one that is not a message.
    fn message(&self, room: &RoomName, seq: u64) -> impl Future<Output = BrokerResult<Option<RoomEvent>>> + Send;

    /// Per `(seq, emoji)`: whether `user_id` has that reaction on that message.
    fn reacted(
        &self,
        room: &RoomName,
        user_id: &str,
        reactions: &[(u64, String)],
    ) -> impl Future<Output = BrokerResult<Vec<bool>>> + Send;

    /// Publishes an event that is not stored and has no sequence number.
    fn publish_ephemeral(&self, room: &RoomName, event: RoomEvent) -> impl Future<Output = BrokerResult<()>> + Send;

    /// Starts receiving the room's events. The first subscription in this
    /// process subscribes on the bus; later ones share it.
    fn subscribe(&self, room: &RoomName) -> impl Future<Output = BrokerResult<Subscription>> + Send;

    /// The last `limit` stored events, oldest first, and the room's position.
    fn recent(
        &self,
        room: &RoomName,
        limit: usize,
    ) -> impl Future<Output = BrokerResult<(Vec<RoomEvent>, Position)>> + Send;

    /// Up to `limit` stored events with a sequence number above `after_seq`,
    /// oldest first.
    fn after(
        &self,
        room: &RoomName,
        after_seq: u64,
        limit: usize,
    ) -> impl Future<Output = BrokerResult<Vec<RoomEvent>>> + Send;

    /// Where the room's sequence stands; an empty epoch for a room this
    /// broker has no numbering for.
    fn position(&self, room: &RoomName) -> impl Future<Output = BrokerResult<Position>> + Send;

    /// Starts the room's numbering at `epoch` with `last_seq` given out, if
    /// it has none (new, or lost by Redis); atomically, so of two
    /// room-services seeding a room at once one wins and the other's call
    /// changes nothing. Returns whether this call seeded it. A sequence
    /// still standing higher (only the epoch was lost) is kept.
    fn seed(&self, room: &RoomName, epoch: &str, last_seq: u64) -> impl Future<Output = BrokerResult<bool>> + Send;

    /// One member, if present (expired or not).
    fn member(
        &self,
        room: &RoomName,
        member_id: &MemberId,
    ) -> impl Future<Output = BrokerResult<Option<Member>>> + Send;

    /// Up to `limit` members in name order after the cursor `after` (empty:
    /// from the start), with the room's member count.
    fn members_page(
        &self,
        room: &RoomName,
        after: &str,
        limit: usize,
    ) -> impl Future<Output = BrokerResult<MembersPage>> + Send;

    /// Up to `limit` ids of members whose presence ran out by `now_ms`.
    fn expired(
        &self,
        room: &RoomName,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = BrokerResult<Vec<String>>> + Send;

    /// Extends the presence of `member_ids` to `expires_at_ms`; returns the
    /// ids it does not know.
    fn heartbeat(
        &self,
        room: &RoomName,
        member_ids: &[String],
        expires_at_ms: i64,
    ) -> impl Future<Output = BrokerResult<Vec<String>>> + Send;

    /// Up to `limit` rooms with their member counts.
    fn rooms(&self, limit: usize) -> impl Future<Output = BrokerResult<Vec<RoomSummary>>> + Send;

    /// Ends bus subscriptions nobody in this process reads any more.
    fn drop_idle_subscriptions(&self) -> impl Future<Output = ()> + Send;

    /// Rooms this process currently has a bus subscription for.
    fn subscribed_rooms(&self) -> Vec<RoomName>;

    /// Succeeds while the broker can serve.
    fn ping(&self) -> impl Future<Output = BrokerResult<()>> + Send;
}

/// The event id clients dedupe by: "<epoch>:<seq>".
pub(crate) fn event_id(epoch: &str, seq: u64) -> String {
    format!("{epoch}:{seq}")
}

/// A fresh epoch: 12 random characters, new whenever a room's history starts.
pub(crate) fn new_epoch() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 12)
}
