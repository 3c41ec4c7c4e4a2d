//! A user's rooms as the browser sees them: the `rooms` snapshot, the
//! `inbox` updates between snapshots, and the `dm` answer to `open_dm`.
//!
//! Every connection follows its user's inbox room
//! (`chat_proto::people::inbox_room`), one of 64 shared by all users: the
//! hub keeps one feed per inbox room on this gateway like a room's, but the
//! feed hands each `InboxUpdate` only to the listeners of the user it names
//! (`feed/mod.rs`). An update carries the room's whole entry, so a browser that
//! gets it twice, or after a newer snapshot, merges it by keeping the larger
//! `last_seq` and `read_seq`. Updates are not stored: when the inbox stream
//! had to be opened again, the feed tells each of its listeners to resync,
//! and their sessions send a fresh `rooms` snapshot from `UserRooms`.
//!
//! The entry (docs/protocol.md, "Your rooms"): `{"room","kind","members",
//! "last_seq","read_seq","unread","mentions","last","activity","epoch"}`.

use axum::extract::ws::Utf8Bytes;
use chat_proto::people::is_direct;
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{Direct, InboxUpdate, Person, RoomEvent, UserRoom};
use serde::Serialize;

use crate::frame::encode;

/// Characters of the last message a `rooms` or `inbox` entry shows.
pub(crate) const PREVIEW_CHARS: usize = 200;

/// What the gateway says about a user's rooms.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PeopleFrame<'a> {
    /// Every room of the user, newest activity first.
    Rooms { rooms: Vec<Entry<'a>> },
    /// One room changed (`reason`: direct, message, mention, read, joined, left).
    Inbox { reason: &'a str, room: Entry<'a> },
    /// The direct conversation an `open_dm` opened or found.
    Dm { room: &'a str, members: Vec<PersonView<'a>>, created: bool },
}

/// One of the user's rooms.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    room: &'a str,
    /// "room" or "direct", from the name.
    kind: &'static str,
    members: Vec<PersonView<'a>>,
    last_seq: u64,
    read_seq: u64,
    unread: u64,
    mentions: u32,
    last: Option<Last<'a>>,
    /// When the room last had a message (or the user joined it, if later), ms.
    activity: i64,
    epoch: &'a str,
}

#[derive(Debug, Serialize)]
struct PersonView<'a> {
    user_id: &'a str,
    name: &'a str,
}

/// The room's last message, shortened for a preview.
#[derive(Debug, Serialize)]
struct Last<'a> {
    seq: u64,
    id: &'a str,
    username: &'a str,
    member_id: &'a str,
    text: &'a str,
    ts: i64,
}

impl<'a> From<&'a Person> for PersonView<'a> {
    fn from(p: &'a Person) -> Self {
        Self { user_id: &p.user_id, name: &p.name }
    }
}

impl<'a> Entry<'a> {
    fn of(room: &'a UserRoom) -> Self {
        Self {
            room: &room.room,
            kind: if is_direct(&room.room) { "direct" } else { "room" },
            members: room.members.iter().map(PersonView::from).collect(),
            last_seq: room.last_seq,
            read_seq: room.read_seq,
            unread: room.unread,
            mentions: room.mentions,
            last: room.last.as_deref().and_then(Last::of),
            activity: room.activity_ms,
            epoch: &room.epoch,
        }
    }
}

impl<'a> Last<'a> {
    fn of(event: &'a RoomEvent) -> Option<Self> {
        let Some(Kind::Message(message)) = &event.kind else {
            return None;
        };
        Some(Self {
            seq: event.seq,
            id: &event.id,
            username: &message.username,
            member_id: &message.member_id,
            text: preview(&message.text),
            ts: event.ts_ms,
        })
    }
}

/// The first [`PREVIEW_CHARS`] characters of `text`.
fn preview(text: &str) -> &str {
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The `rooms` frame.
pub(crate) fn rooms(rooms: &[UserRoom]) -> Utf8Bytes {
    encode(&PeopleFrame::Rooms { rooms: rooms.iter().map(Entry::of).collect() })
}

/// The `inbox` frame of an update; `None` when it has no room.
pub(crate) fn update(update: &InboxUpdate) -> Option<Utf8Bytes> {
    let room = update.room.as_ref()?;
    Some(encode(&PeopleFrame::Inbox { reason: &update.reason, room: Entry::of(room) }))
}

/// The `dm` frame.
pub(crate) fn direct(direct: &Direct) -> Utf8Bytes {
    encode(&PeopleFrame::Dm {
        room: &direct.room,
        members: direct.members.iter().map(PersonView::from).collect(),
        created: direct.created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::ChatMessage;

    #[test]
    fn an_entry_matches_the_protocol_doc() {
        let room = chat_proto::people::direct_room(&["ada", "bob"]);
        let entry = UserRoom {
            room: room.clone(),
            kind: "direct".into(),
            members: vec![
                Person { user_id: "ada".into(), name: "Ada".into() },
                Person { user_id: "bob".into(), name: "Bob".into() },
            ],
            last_seq: 3,
            read_seq: 1,
            unread: 2,
            mentions: 1,
            last: Some(Box::new(RoomEvent {
                room: room.clone(),
                seq: 3,
                epoch: "k3j9x2".into(),
                ts_ms: 1_763_769_602_000,
                id: "k3j9x2:3".into(),
                traceparent: String::new(),
                kind: Some(Kind::Message(ChatMessage {
                    username: "Ada".into(),
                    member_id: "m1".into(),
                    text: "é".repeat(300),
                    client_id: "c1".into(),
                    ..ChatMessage::default()
                })),
            })),
            activity_ms: 1_763_769_602_000,
            epoch: "k3j9x2".into(),
        };
        let frame =
            update(&InboxUpdate { user_id: "bob".into(), room: Some(Box::new(entry)), reason: "message".into() })
                .expect("has a room");
        let json: serde_json::Value = serde_json::from_str(frame.as_str()).expect("JSON");
        let preview = "é".repeat(PREVIEW_CHARS);
        assert_eq!(
            json,
            serde_json::json!({"type": "inbox", "reason": "message", "room": {
                "room": room, "kind": "direct",
                "members": [{"user_id": "ada", "name": "Ada"}, {"user_id": "bob", "name": "Bob"}],
                "last_seq": 3, "read_seq": 1, "unread": 2, "mentions": 1,
                "last": {"seq": 3, "id": "k3j9x2:3", "username": "Ada", "member_id": "m1", "text": preview, "ts": 1_763_769_602_000_i64},
                "activity": 1_763_769_602_000_i64, "epoch": "k3j9x2"
            }})
        );
    }

    #[test]
    fn a_room_without_messages_has_no_last_and_is_a_room() {
        let frame = rooms(&[UserRoom { room: "general".into(), ..UserRoom::default() }]);
        let json: serde_json::Value = serde_json::from_str(frame.as_str()).expect("JSON");
        assert_eq!(json["rooms"][0]["kind"], "room");
        assert_eq!(json["rooms"][0]["last"], serde_json::Value::Null);
    }
}
