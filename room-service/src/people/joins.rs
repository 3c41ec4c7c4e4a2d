//! What joins change for people, once per presence batch: every joiner's
//! name is their profile, and the room becomes one of their rooms if it
//! was not, its marker at the room's last seq then (joining does not make
//! old history unread). Profiles are written only when new to this
//! process, and the rooms in one `add_rooms` call (one Redis pipeline).
//!
//! All of it runs off the join's path: the batch's joiners are answered
//! first, and the record is a task of its own, at most one per room under
//! way while the next batch is applied (the batcher waits for the previous
//! record before it starts another, which bounds them). A join storm thus
//! waits for no more Redis than before people existed. What must see the
//! record waits for it instead: a `read` of a room that is not (yet) the
//! reader's, on the room-service that applied the join (reads are routed
//! by room like joins), waits for the room's record under way and looks
//! again ([`Recording`]). A `rooms` snapshot taken in between may miss the
//! room; the page lists a room it joined itself, and a user's other
//! devices learn it from the "joined" update the record publishes.
//!
//! A room added anew is announced on the user's inbox ("joined") from the
//! batch's own snapshot (position and last message): a join storm reads
//! nothing more from Redis for it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use chat_proto::RoomName;
use chat_proto::people::{is_direct, is_inbox};
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{Member, Person, UserRoom};
use chat_runtime::clock::now_ms;
use futures_util::future::join_all;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::inbox::{Inbox, Reason};
use super::{Directory, RoomAdd, UserRoomState};
use crate::broker::{Broker, Snapshot};

/// The rooms of this process whose joiners' record is under way: one
/// entry per room, the newest record's, which ends after any older one of
/// the room (records of a room run one after another).
#[derive(Default)]
pub(crate) struct Recording {
    rooms: Mutex<HashMap<String, (u64, watch::Receiver<()>)>>,
    started: std::sync::atomic::AtomicU64,
}

/// A record's place in [`Recording`], taken off when the record ends.
struct Underway {
    room: String,
    id: u64,
    /// Dropped when the record ends: what wakes its waiters.
    _done: watch::Sender<()>,
}

impl Recording {
    fn start(&self, room: &str) -> Underway {
        let id = self.started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (done, waiter) = watch::channel(());
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner).insert(room.to_owned(), (id, waiter));
        Underway { room: room.to_owned(), id, _done: done }
    }

    fn end(&self, underway: Underway) {
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        if rooms.get(&underway.room).is_some_and(|(id, _)| *id == underway.id) {
            rooms.remove(&underway.room);
        }
    }

    /// Resolves when the record of `room` under way now (if any) has ended;
    /// `None` if none is.
    pub(crate) fn wait(&self, room: &str) -> Option<impl Future<Output = ()> + use<>> {
        let mut waiter = self.rooms.lock().unwrap_or_else(PoisonError::into_inner).get(room)?.1.clone();
        // `changed` fails once the sender is gone: the record's end.
        Some(async move { while waiter.changed().await.is_ok() {} })
    }

    /// Resolves when every record under way now has ended; `None` if none
    /// is. For what a join of any room may have made known (a profile).
    pub(crate) fn wait_all(&self) -> Option<impl Future<Output = ()> + use<>> {
        let waiters: Vec<watch::Receiver<()>> =
            self.rooms.lock().unwrap_or_else(PoisonError::into_inner).values().map(|(_, w)| w.clone()).collect();
        if waiters.is_empty() {
            return None;
        }
        Some(async move {
            for mut waiter in waiters {
                while waiter.changed().await.is_ok() {}
            }
        })
    }
}

/// One batch's joiners, ready to be recorded.
pub(crate) struct JoinRecord<B> {
    inbox: Arc<Inbox<B>>,
    room: RoomName,
    people: Vec<Person>,
    adds: Vec<RoomAdd>,
    spanning: Vec<bool>,
    entry: UserRoom,
    underway: Underway,
}

impl<B: Broker + Directory + 'static> JoinRecord<B> {
    /// Runs the record in a task of its own.
    pub(crate) fn start(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let Self { inbox, room, people, adds, spanning, entry, underway } = self;
            inbox.record(&room, &people, adds, &spanning, entry).await;
            inbox.recording().end(underway);
        })
    }
}

impl<B: Broker + Directory + 'static> Inbox<B> {
    /// Prepares the record of the joiners of one presence batch of `room`
    /// (restores and members without a user id left out by the caller) as
    /// having the room, at the batch's `snapshot` position, and registers
    /// it as under way; the caller starts it ([`JoinRecord::start`]) once
    /// the room's previous record has ended. Failures are logged: the join
    /// itself stands.
    pub(crate) fn joined(
        self: &Arc<Self>,
        room: &RoomName,
        joiners: &[&Member],
        snapshot: &Snapshot,
    ) -> Option<JoinRecord<B>> {
        if joiners.is_empty() || is_inbox(room) {
            return None;
        }
        let mut people: Vec<Person> = Vec::with_capacity(joiners.len());
        for member in joiners {
            if !people.iter().any(|p| p.user_id == member.user_id) {
                people.push(Person { user_id: member.user_id.clone(), name: member.username.clone() });
            }
        }
        let joined_at_ms = now_ms();
        let last_seq = snapshot.position.last_seq;
        let adds: Vec<RoomAdd> = people
            .iter()
            .map(|p| RoomAdd { user_id: p.user_id.clone(), room: room.to_string(), read_seq: last_seq, joined_at_ms })
            .collect();
        // A user who is one browser session (no token: their user id is the
        // member id) has no other connection to tell: a session holds one
        // connection per room, and the joining one knows. Only users who
        // span sessions (tokens) get "joined" on their other devices.
        let spanning: Vec<bool> = adds
            .iter()
            .map(|add| joiners.iter().any(|m| m.user_id == add.user_id && m.member_id != m.user_id))
            .collect();
        // The batch's snapshot ends at `last_seq`: its last event is the
        // room's last message, if it returned any history.
        let last = snapshot.history.iter().rev().find(|e| matches!(e.kind, Some(Kind::Message(_)))).cloned();
        let entry = UserRoom {
            room: room.to_string(),
            kind: if is_direct(room) { "direct" } else { "room" }.to_owned(),
            members: Vec::new(),
            last_seq,
            read_seq: last_seq,
            unread: 0,
            mentions: 0,
            activity_ms: last.as_ref().map_or(0, |e| e.ts_ms).max(joined_at_ms),
            last: last.map(Box::new),
            epoch: snapshot.position.epoch.clone(),
        };
        // Registered before the batch is answered, so a `read` that follows
        // a join always finds the record it must wait for.
        let underway = self.recording().start(room.as_str());
        Some(JoinRecord { inbox: Arc::clone(self), room: room.clone(), people, adds, spanning, entry, underway })
    }

    /// Writes the profiles and rooms of one batch's joiners and tells the
    /// users who span sessions that the room is theirs now.
    async fn record(&self, room: &RoomName, people: &[Person], adds: Vec<RoomAdd>, spanning: &[bool], entry: UserRoom) {
        // Side by side: one round trip, not two.
        let (profiles, added) = tokio::join!(self.people().put_profiles(people), self.people().add_rooms(&adds));
        if let Err(status) = profiles {
            tracing::warn!(%room, error = status.message(), "joiners' profiles not recorded");
        }
        let added = match added {
            Ok(added) => added,
            Err(status) => {
                tracing::warn!(%room, error = status.message(), "room not added to joiners' rooms");
                return;
            }
        };
        let users: Vec<String> = adds
            .into_iter()
            .zip(added)
            .zip(spanning)
            .filter(|((_, added), spans)| *added && **spans)
            .map(|((add, _), _)| add.user_id)
            .collect();
        if users.is_empty() {
            return;
        }
        let mut entry = entry;
        if is_direct(&entry.room) {
            entry.members = self.people().direct(&entry.room).await.ok().flatten().unwrap_or_default();
        }
        let tells = users.iter().map(|user| self.publish(user, entry.clone(), Reason::Joined));
        join_all(tells).await;
    }

    /// Takes a public room off a user's rooms after they left it, and
    /// tells their connections ("left") off the leave's path. Failures are
    /// logged: the leave itself stands.
    pub(crate) async fn left(self: &Arc<Self>, room: &RoomName, user_id: String) {
        match self.people().remove_room(&user_id, room).await {
            Ok(true) => {
                let inbox = Arc::clone(self);
                // Nothing left unread in a room that is no longer theirs.
                let state = UserRoomState { room: room.to_string(), read_seq: u64::MAX, ..UserRoomState::default() };
                self.spawn(async move { inbox.tell(&user_id, state, Reason::Left).await });
            }
            Ok(false) => {}
            Err(status) => tracing::warn!(%room, error = status.message(), "room not removed from user's rooms"),
        }
    }
}
