//! What a stored message changes for people, worked out off the reply
//! path (in [`Inbox::spawn`]'s bounded tasks).
//!
//! - In a direct conversation: the sender has read their own message (their
//!   marker moves to its seq), and every member is sent the conversation's
//!   entry with reason "message".
//! - A message whose text holds `@`: the users it mentions among the room's
//!   first members by name ([`mentions`](super::mentions)) get the seq
//!   recorded and the room's entry with reason "mention".
//!
//! A message in a public room without `@` is checked with two string tests
//! and costs nothing more.

use std::sync::Arc;

use chat_proto::people::is_direct;
use chat_proto::v1::room_event::Kind;
use chat_proto::{MemberId, RoomName};

use super::Directory;
use super::inbox::{Inbox, Reason};
use super::mentions::{MEMBERS_READ, mentioned};
use crate::broker::{Broker, Stored};

/// One new message's text and seq, for the work after it.
struct Sent {
    seq: u64,
    text: String,
}

impl<B: Broker + Directory> Inbox<B> {
    /// Starts the people work for messages `sender` just stored in `room`,
    /// if any of them needs some.
    pub(crate) fn after_send(self: &Arc<Self>, room: &RoomName, sender: Option<&MemberId>, stored: &[Stored]) {
        let direct = is_direct(room);
        let sent: Vec<Sent> = stored
            .iter()
            .filter(|s| !s.repeat)
            .filter_map(|s| match &s.event.kind {
                Some(Kind::Message(m)) if direct || m.text.contains('@') => Some(Sent {
                    seq: s.event.seq,
                    text: if m.text.contains('@') { m.text.clone() } else { String::new() },
                }),
                _ => None,
            })
            .collect();
        if sent.is_empty() {
            return;
        }
        let inbox = Arc::clone(self);
        let (room, sender) = (room.clone(), sender.cloned());
        self.spawn(async move { inbox.deliver(room, sender, sent).await });
    }

    async fn deliver(&self, room: RoomName, sender: Option<MemberId>, sent: Vec<Sent>) {
        let sender_user = match &sender {
            Some(id) => match self.broker().member(&room, id).await {
                Ok(member) => member.map(|m| m.user_id).unwrap_or_default(),
                Err(error) => {
                    tracing::warn!(%room, %error, "sender not found for inbox updates");
                    String::new()
                }
            },
            None => String::new(),
        };
        if is_direct(&room) {
            let last = sent.iter().map(|s| s.seq).max().unwrap_or(0);
            self.direct_message(&room, &sender_user, last).await;
        }
        let with_at: Vec<&Sent> = sent.iter().filter(|s| !s.text.is_empty()).collect();
        if !with_at.is_empty() {
            self.mentions(&room, &sender_user, &with_at).await;
        }
    }

    async fn direct_message(&self, room: &RoomName, sender_user: &str, seq: u64) {
        let people = self.people();
        if !sender_user.is_empty()
            && let Err(status) = people.mark_read(sender_user, room, seq).await
        {
            tracing::warn!(%room, error = status.message(), "sender's marker not moved");
        }
        let members = match people.direct(room).await {
            Ok(members) => members.unwrap_or_default(),
            Err(status) => {
                tracing::warn!(%room, error = status.message(), "direct conversation unreadable");
                return;
            }
        };
        for person in members {
            match people.user_room(&person.user_id, room).await {
                Ok(Some(state)) => self.tell(&person.user_id, state, Reason::Message).await,
                Ok(None) => {}
                Err(status) => tracing::warn!(%room, error = status.message(), "member's room unreadable"),
            }
        }
    }

    async fn mentions(&self, room: &RoomName, sender_user: &str, sent: &[&Sent]) {
        let members = match self.broker().members_page(room, "", MEMBERS_READ).await {
            Ok(page) => page.members,
            Err(error) => {
                tracing::warn!(%room, %error, "members unreadable for mentions");
                return;
            }
        };
        let people = self.people();
        for message in sent {
            for user_id in mentioned(&message.text, &members, sender_user) {
                if let Err(status) = people.add_mention(&user_id, room, message.seq).await {
                    tracing::warn!(%room, error = status.message(), "mention not recorded");
                    continue;
                }
                match people.user_room(&user_id, room).await {
                    Ok(Some(state)) => self.tell(&user_id, state, Reason::Mention).await,
                    Ok(None) => {}
                    Err(status) => tracing::warn!(%room, error = status.message(), "mentioned user's room unreadable"),
                }
            }
        }
    }
}
