//! A message as the store keeps it: one row of `messages`, everything a
//! `message` frame carries. The archiver makes one from each stored
//! `RoomEvent`; scrollback turns rows back into `RoomEvent`s, the same as
//! those Redis replays.

use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{Attachment, AttachmentList, ChatMessage, RoomEvent};
use prost::Message;
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::broker::event_id;

/// The columns [`StoredMessage::from_row`] reads, in a `SELECT`.
pub(crate) const COLUMNS: &str = "room, seq, epoch, ts_ms, member_id, username, body, client_id, attachments";

#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub room: String,
    /// The room's sequence number, from 1.
    pub seq: u64,
    /// The room's history id when it was stored.
    pub epoch: String,
    /// When the room-service accepted it, ms since the Unix epoch.
    pub ts_ms: i64,
    /// The sender's member id; empty for system messages.
    pub member_id: String,
    pub username: String,
    pub text: String,
    /// The sender's own id for the message.
    pub client_id: String,
    /// The files posted with it, in order (kept as an `AttachmentList`).
    pub attachments: Vec<Attachment>,
}

impl StoredMessage {
    /// The message a stored event carries; `None` for events that are not
    /// messages (presence and typing are never stored) and for seq 0.
    pub fn of(event: &RoomEvent) -> Option<Self> {
        let Some(Kind::Message(m)) = &event.kind else { return None };
        if event.seq == 0 {
            return None;
        }
        Some(Self {
            room: event.room.clone(),
            seq: event.seq,
            epoch: event.epoch.clone(),
            ts_ms: event.ts_ms,
            member_id: m.member_id.clone(),
            username: m.username.clone(),
            text: m.text.clone(),
            client_id: m.client_id.clone(),
            attachments: m.attachments.clone(),
        })
    }

    /// The `attachments` column: NULL for none.
    pub(crate) fn attachments_column(&self) -> Option<Vec<u8>> {
        (!self.attachments.is_empty()).then(|| AttachmentList { attachments: self.attachments.clone() }.encode_to_vec())
    }

    /// The event as a room-service streams it, with its `<epoch>:<seq>` id.
    pub fn into_event(self) -> RoomEvent {
        RoomEvent {
            id: event_id(&self.epoch, self.seq),
            room: self.room,
            seq: self.seq,
            epoch: self.epoch,
            ts_ms: self.ts_ms,
            kind: Some(Kind::Message(ChatMessage {
                username: self.username,
                member_id: self.member_id,
                text: self.text,
                client_id: self.client_id,
                attachments: self.attachments,
                ..ChatMessage::default()
            })),
            // The store keeps the message, not the trace of its sending.
            traceparent: String::new(),
        }
    }

    /// Reads the [`COLUMNS`] of a row.
    pub(crate) fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let seq: i64 = row.try_get("seq")?;
        Ok(Self {
            room: row.try_get("room")?,
            // The table's CHECK keeps seq above 0.
            seq: u64::try_from(seq).map_err(|e| sqlx::Error::ColumnDecode { index: "seq".into(), source: e.into() })?,
            epoch: row.try_get("epoch")?,
            ts_ms: row.try_get("ts_ms")?,
            member_id: row.try_get("member_id")?,
            username: row.try_get("username")?,
            text: row.try_get("body")?,
            client_id: row.try_get("client_id")?,
            attachments: match row.try_get::<Option<Vec<u8>>, _>("attachments")? {
                None => Vec::new(),
                Some(bytes) => {
                    AttachmentList::decode(bytes.as_slice())
                        .map_err(|e| sqlx::Error::ColumnDecode { index: "attachments".into(), source: e.into() })?
                        .attachments
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> StoredMessage {
        StoredMessage {
            room: "general".into(),
            seq: 42,
            epoch: "ep0ch".into(),
            ts_ms: 1_700_000_000_000,
            member_id: "m1".into(),
            username: "alice".into(),
            text: "hello".into(),
            client_id: "c1".into(),
            attachments: vec![Attachment { id: "at-1".into(), name: "a.png".into(), ..Default::default() }],
        }
    }

    #[test]
    fn a_message_goes_to_an_event_and_back_unchanged() {
        let event = message().into_event();
        assert_eq!(event.id, "ep0ch:42");
        assert_eq!(StoredMessage::of(&event), Some(message()));
    }

    #[test]
    fn only_numbered_messages_are_stored() {
        let mut unnumbered = message().into_event();
        unnumbered.seq = 0;
        assert_eq!(StoredMessage::of(&unnumbered), None);
        let typing = RoomEvent { kind: None, ..message().into_event() };
        assert_eq!(StoredMessage::of(&typing), None);
    }
}
