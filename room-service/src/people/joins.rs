//! What joins change for people, once per presence batch: every joiner's
//! name is their profile, and the room becomes one of their rooms if it
//! was not, its marker at the room's last seq then (joining does not make
//! old history unread). Profiles are written only when new to this
//! process, and the rooms in one `add_rooms` call (one Redis pipeline), so
//! a join storm costs one more Redis round trip per batch of up to 500.
//! A room added anew is announced on the user's inbox ("joined"), off the
//! join's path.

use std::sync::Arc;

use chat_proto::RoomName;
use chat_proto::people::is_inbox;
use chat_proto::v1::{Member, Person};
use chat_runtime::clock::now_ms;

use super::inbox::{Inbox, Reason};
use super::{Directory, RoomAdd, UserRoomState};
use crate::broker::Broker;

impl<B: Broker + Directory> Inbox<B> {
    /// Records the joiners of one presence batch of `room` (restores and
    /// members without a user id left out by the caller) as having the
    /// room, at `last_seq`. Failures are logged: the join itself stands.
    pub(crate) async fn joined(self: &Arc<Self>, room: &RoomName, joiners: &[&Member], last_seq: u64) {
        if joiners.is_empty() || is_inbox(room) {
            return;
        }
        let mut people: Vec<Person> = Vec::with_capacity(joiners.len());
        for member in joiners {
            if !people.iter().any(|p| p.user_id == member.user_id) {
                people.push(Person { user_id: member.user_id.clone(), name: member.username.clone() });
            }
        }
        if let Err(status) = self.people().put_profiles(&people).await {
            tracing::warn!(%room, error = status.message(), "joiners' profiles not recorded");
        }
        let joined_at_ms = now_ms();
        let adds: Vec<RoomAdd> = people
            .iter()
            .map(|p| RoomAdd { user_id: p.user_id.clone(), room: room.to_string(), read_seq: last_seq, joined_at_ms })
            .collect();
        let added = match self.people().add_rooms(&adds).await {
            Ok(added) => added,
            Err(status) => {
                tracing::warn!(%room, error = status.message(), "room not added to joiners' rooms");
                return;
            }
        };
        for (add, _) in adds.into_iter().zip(added).filter(|(_, added)| *added) {
            let inbox = Arc::clone(self);
            self.spawn(async move {
                let state =
                    UserRoomState { room: add.room, read_seq: add.read_seq, joined_at_ms, mentions: Vec::new() };
                inbox.tell(&add.user_id, state, Reason::Joined).await;
            });
        }
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
