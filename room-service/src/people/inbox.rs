//! Inbox updates: a user's room entry (as UserRooms shows it) published to
//! every connection of that user.
//!
//! An update is an *ephemeral* event (no seq, not stored, not archived) of
//! kind `inbox` on the user's inbox room (`inbox_room(user_id)`, one of 64
//! shards), through the broker's `publish_ephemeral`; gateways hand it to
//! the user's connections only. It carries the whole entry, so a client
//! that sees it twice, or after a newer snapshot, keeps the larger
//! `last_seq` and `read_seq` and loses nothing.
//!
//! Work after a send (a direct message: up to 8 users; mentions: up to 10)
//! runs off the reply path, in tasks bounded by [`PENDING`]: past it the
//! work is dropped, logged and counted
//! (`chat_room_service_inbox_updates_total{outcome="dropped"}`). Nothing is
//! lost for good: markers and mentions live in the directory, and the next
//! `rooms` snapshot a gateway asks for (every reconnect) shows them.

use std::future::Future;
use std::sync::Arc;

use chat_proto::RoomName;
use chat_proto::people::{inbox_room, is_direct};
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{InboxUpdate, RoomEvent, UserRoom};
use chat_runtime::clock::now_ms;
use tokio::sync::Semaphore;
use tonic::Status;

use super::joins::Recording;
use super::{Directory, People, UserRoomState};
use crate::broker::Broker;
use crate::metrics::RoomServiceMetrics;
use crate::seeding::{Seeder, Unknown};

/// Inbox jobs (one per stored message that needs one) running or waiting
/// at once; more are dropped (see the module doc).
pub(crate) const PENDING: usize = 1024;

/// Why an update was sent: the `reason` of an `InboxUpdate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Direct,
    Message,
    Mention,
    Read,
    Joined,
    Left,
}

impl Reason {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Message => "message",
            Self::Mention => "mention",
            Self::Read => "read",
            Self::Joined => "joined",
            Self::Left => "left",
        }
    }
}

/// Builds entries and publishes inbox updates.
pub(crate) struct Inbox<B> {
    broker: Arc<B>,
    people: Arc<People<B>>,
    seeder: Option<Arc<Seeder<B>>>,
    metrics: Arc<RoomServiceMetrics>,
    pending: Arc<Semaphore>,
    /// Rooms whose joiners are being recorded (see `joins`).
    recording: Recording,
}

impl<B> std::fmt::Debug for Inbox<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").finish_non_exhaustive()
    }
}

impl<B: Broker + Directory> Inbox<B> {
    pub(crate) fn new(
        broker: Arc<B>,
        people: Arc<People<B>>,
        seeder: Option<Arc<Seeder<B>>>,
        metrics: Arc<RoomServiceMetrics>,
    ) -> Self {
        Self {
            broker,
            people,
            seeder,
            metrics,
            pending: Arc::new(Semaphore::new(PENDING)),
            recording: Recording::default(),
        }
    }

    pub(crate) fn people(&self) -> &People<B> {
        &self.people
    }

    pub(crate) fn broker(&self) -> &B {
        &self.broker
    }

    pub(crate) fn recording(&self) -> &Recording {
        &self.recording
    }

    /// The entry of one of `user`'s rooms as that user sees it: position
    /// and last message from the broker (a room Redis lost is seeded from
    /// the store first), members for a direct conversation.
    pub(crate) async fn entry(&self, state: UserRoomState) -> Result<UserRoom, Status> {
        let room = RoomName::try_from(state.room.as_str()).map_err(|e| Status::internal(e.message))?;
        let (mut recent, mut position) = self.broker.recent(&room, 1).await.map_err(Status::from)?;
        if position.epoch.is_empty()
            && let Some(seeder) = &self.seeder
            && seeder.seed(&room, Unknown::LeaveUnseeded).await?
        {
            (recent, position) = self.broker.recent(&room, 1).await.map_err(Status::from)?;
        }
        let members = match is_direct(&state.room) {
            true => self.people.direct(&state.room).await?.unwrap_or_default(),
            false => Vec::new(),
        };
        let last = recent.pop().filter(|e| matches!(e.kind, Some(Kind::Message(_))));
        let activity_ms = last.as_ref().map_or(0, |e| e.ts_ms).max(state.joined_at_ms);
        let read_seq = state.read_seq.min(position.last_seq);
        Ok(UserRoom {
            kind: if is_direct(&state.room) { "direct" } else { "room" }.to_owned(),
            members,
            last_seq: position.last_seq,
            read_seq,
            unread: position.last_seq - read_seq,
            mentions: u32::try_from(state.mentions.iter().filter(|&&s| s > read_seq).count()).unwrap_or(u32::MAX),
            last: last.map(Box::new),
            activity_ms,
            epoch: position.epoch,
            room: state.room,
        })
    }

    /// Publishes `entry` to every connection of `user_id`. A failure is
    /// logged and counted, not returned: the directory holds the change and
    /// the next snapshot shows it.
    pub(crate) async fn publish(&self, user_id: &str, entry: UserRoom, reason: Reason) {
        let inbox = inbox_room(user_id);
        let Ok(room) = RoomName::try_from(inbox.as_str()) else { return };
        let update = InboxUpdate {
            user_id: user_id.to_owned(),
            room: Some(Box::new(entry)),
            reason: reason.as_str().to_owned(),
        };
        let event = RoomEvent {
            room: inbox,
            ts_ms: now_ms(),
            kind: Some(Kind::Inbox(Box::new(update))),
            ..RoomEvent::default()
        };
        match self.broker.publish_ephemeral(&room, event).await {
            Ok(()) => self.metrics.inbox_update("published"),
            Err(error) => {
                self.metrics.inbox_update("failed");
                tracing::warn!(user_id, %error, "inbox update not published");
            }
        }
    }

    /// Builds the entry of `state` and publishes it.
    pub(crate) async fn tell(&self, user_id: &str, state: UserRoomState, reason: Reason) {
        match self.entry(state).await {
            Ok(entry) => self.publish(user_id, entry, reason).await,
            Err(status) => {
                self.metrics.inbox_update("failed");
                tracing::warn!(user_id, error = status.message(), "inbox entry could not be built");
            }
        }
    }

    /// Runs `work` off the caller's path if fewer than [`PENDING`] jobs are
    /// under way; else drops it (logged and counted).
    pub(crate) fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        match Arc::clone(&self.pending).try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    work.await;
                    drop(permit);
                });
            }
            Err(_) => {
                self.metrics.inbox_update("dropped");
                tracing::warn!(
                    pending = PENDING,
                    "inbox work dropped: too much pending; the next rooms snapshot shows it"
                );
            }
        }
    }
}
