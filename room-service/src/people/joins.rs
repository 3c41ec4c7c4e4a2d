//! What joins change for people, once per presence batch: every joiner's
//! name is their profile, and the room becomes one of their rooms if it
//! was not, its marker at the room's last seq then (joining does not make
//! old history unread). Profiles are written only when new to this
//! process, and the rooms in one `add_rooms` call (one Redis pipeline), so
//! a join storm costs one more Redis round trip per batch of up to 500.
//! A room added anew is announced on the user's inbox ("joined"), off the
//! join's path, in one job per batch whose entry comes from the batch's own
//! snapshot (position and last message): a join storm reads nothing more
//! from Redis for it, and takes one inbox permit per batch, not per joiner.

use std::sync::Arc;

use chat_proto::RoomName;
use chat_proto::people::{is_direct, is_inbox};
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{Member, Person, UserRoom};
use chat_runtime::clock::now_ms;
use futures_util::future::join_all;

use super::inbox::{Inbox, Reason};
use super::{Directory, RoomAdd, UserRoomState};
use crate::broker::{Broker, Snapshot};

impl<B: Broker + Directory> Inbox<B> {
    /// Records the joiners of one presence batch of `room` (restores and
    /// members without a user id left out by the caller) as having the
    /// room, at the batch's `snapshot` position. Failures are logged: the
    /// join itself stands.
    pub(crate) async fn joined(self: &Arc<Self>, room: &RoomName, joiners: &[&Member], snapshot: &Snapshot) {
        if joiners.is_empty() || is_inbox(room) {
            return;
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
        // Side by side: one round trip of the join's wait, not two.
        let (profiles, added) = tokio::join!(self.people().put_profiles(&people), self.people().add_rooms(&adds));
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
        // A user who is one browser session (no token: their user id is the
        // member id) has no other connection to tell: a session holds one
        // connection per room, and the joining one knows. Only users who
        // span sessions (tokens) get "joined" on their other devices.
        let spans_sessions = |user_id: &str| joiners.iter().any(|m| m.user_id == user_id && m.member_id != m.user_id);
        let users: Vec<String> = adds
            .into_iter()
            .zip(added)
            .filter(|(add, added)| *added && spans_sessions(&add.user_id))
            .map(|(add, _)| add.user_id)
            .collect();
        if users.is_empty() {
            return;
        }
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
        let inbox = Arc::clone(self);
        self.spawn(async move {
            let mut entry = entry;
            if is_direct(&entry.room) {
                entry.members = inbox.people().direct(&entry.room).await.ok().flatten().unwrap_or_default();
            }
            let tells = users.iter().map(|user| inbox.publish(user, entry.clone(), Reason::Joined));
            join_all(tells).await;
        });
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
