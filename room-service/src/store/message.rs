//! A stored event as the store keeps it: one row of `messages`, either a
//! message (everything a `message` frame carries, in its current state:
//! edited text, deleted, reactions, the quote of what it answers) or a
//! change of one (an edit, delete or reaction, with its own seq). The
//! archiver makes one from each stored `RoomEvent`; scrollback and resume
//! turn rows back into `RoomEvent`s, the same as those Redis replays. How
//! the fields map to columns is [`row`](super::row).

use chat_proto::v1::message_change::Change;
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{Attachment, ChatMessage, MessageChange, ModerationNotice, Reaction, ReplyTo, RoomEvent};

use crate::broker::event_id;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredMessage {
    pub room: String,
    /// The room's sequence number, from 1.
    pub seq: u64,
    /// The room's history id when it was stored.
    pub epoch: String,
    /// When the room-service accepted it, ms since the Unix epoch.
    pub ts_ms: i64,
    /// The sender's member id; empty for system messages. For a change:
    /// the member who made it.
    pub member_id: String,
    pub username: String,
    /// The text as it now stands (empty once deleted, and for a change).
    pub text: String,
    /// The sender's own id for the message.
    pub client_id: String,
    /// The files posted with it, in order (kept as an `AttachmentList`).
    pub attachments: Vec<Attachment>,
    /// The sender's user id (for a change: the changer's).
    pub user_id: String,
    /// The message it answers.
    pub reply_to: Option<ReplyTo>,
    /// When its text was last edited, 0: never.
    pub edited_ms: i64,
    /// When it was deleted, 0: it was not.
    pub deleted_ms: i64,
    /// The moderator who deleted it, when not its sender.
    pub deleted_by: String,
    /// Its reactions, in the order each emoji was first added. `mine` is
    /// always false: the store answers that per user
    /// ([`Store::reacted`](super::Store::reacted)).
    pub reactions: Vec<Reaction>,
    /// Set when this is not a message but a change of one (an edit's text
    /// is in it, read back empty once its target is deleted).
    pub change: Option<MessageChange>,
    /// Set when this is a moderator's action (kept at its seq like a
    /// change, applied to nothing).
    pub moderation: Option<ModerationNotice>,
}

impl StoredMessage {
    /// The message or change a stored event carries; `None` for events the
    /// store does not keep (presence, typing and inbox events are never
    /// stored) and for seq 0.
    pub fn of(event: &RoomEvent) -> Option<Self> {
        if event.seq == 0 {
            return None;
        }
        let stored = Self {
            room: event.room.clone(),
            seq: event.seq,
            epoch: event.epoch.clone(),
            ts_ms: event.ts_ms,
            ..Self::default()
        };
        match &event.kind {
            Some(Kind::Message(m)) => Some(Self {
                member_id: m.member_id.clone(),
                username: m.username.clone(),
                text: m.text.clone(),
                client_id: m.client_id.clone(),
                attachments: m.attachments.clone(),
                user_id: m.user_id.clone(),
                reply_to: m.reply_to.clone(),
                edited_ms: m.edited_ms,
                deleted_ms: m.deleted_ms,
                deleted_by: m.deleted_by.clone(),
                reactions: m.reactions.iter().map(|r| Reaction { mine: false, ..r.clone() }).collect(),
                ..stored
            }),
            Some(Kind::Change(c)) => Some(Self {
                member_id: c.member_id.clone(),
                username: c.username.clone(),
                user_id: c.user_id.clone(),
                change: Some(c.clone()),
                ..stored
            }),
            Some(Kind::Moderation(n)) => Some(Self {
                username: n.actor.as_ref().map(|a| a.name.clone()).unwrap_or_default(),
                user_id: n.actor.as_ref().map(|a| a.user_id.clone()).unwrap_or_default(),
                moderation: Some(n.clone()),
                ..stored
            }),
            _ => None,
        }
    }

    /// Whether this is a change of a message (or a moderator's action)
    /// rather than a message.
    pub fn is_change(&self) -> bool {
        self.change.is_some() || self.moderation.is_some()
    }

    /// The change's action, as the `change` frame names it and the
    /// `action` column holds it; `None` for a message (or a change without
    /// one, which the store keeps but applies to nothing).
    pub(crate) fn action(&self) -> Option<&'static str> {
        if self.moderation.is_some() {
            return Some("moderation");
        }
        self.change.as_ref().map(|c| match c.change {
            Some(Change::Edited(_)) => "edit",
            Some(Change::Deleted(_)) => "delete",
            Some(Change::Reacted(_)) | None => "react",
        })
    }

    /// Whether this row, as the store holds it, is `given` (the same event
    /// stored before), whatever happened to it since: who sent it, when,
    /// with which client id, what it said (unless edited or deleted since)
    /// or which change of which message it is (an edit's text aside: a
    /// delete blanks it).
    pub(crate) fn holds(&self, given: &Self) -> bool {
        fn origin(m: &StoredMessage) -> impl PartialEq + '_ {
            let reply = m.reply_to.as_ref().map(|r| r.seq);
            (&m.room, m.seq, &m.epoch, m.ts_ms, &m.member_id, &m.username, &m.client_id, &m.user_id, reply)
        }
        let content = if self.is_change() || given.is_change() {
            self.change_column() == given.change_column()
        } else {
            let changed = self.edited_ms != 0 || self.deleted_ms != 0;
            changed || (self.text == given.text && self.attachments == given.attachments)
        };
        origin(self) == origin(given) && content
    }

    /// The event as a room-service streams it, with its `<epoch>:<seq>` id.
    pub fn into_event(self) -> RoomEvent {
        let kind = match (self.change, self.moderation) {
            (Some(change), _) => Kind::Change(change),
            (None, Some(notice)) => Kind::Moderation(notice),
            (None, None) => Kind::Message(ChatMessage {
                username: self.username,
                member_id: self.member_id,
                text: self.text,
                client_id: self.client_id,
                attachments: self.attachments,
                user_id: self.user_id,
                reply_to: self.reply_to,
                edited_ms: self.edited_ms,
                deleted_ms: self.deleted_ms,
                reactions: self.reactions,
                deleted_by: self.deleted_by,
            }),
        };
        RoomEvent {
            id: event_id(&self.epoch, self.seq),
            room: self.room,
            seq: self.seq,
            epoch: self.epoch,
            ts_ms: self.ts_ms,
            kind: Some(kind),
            // The store keeps the message, not the trace of its sending.
            traceparent: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chat_proto::v1::{Deleted, Edited, Reacted};

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
            user_id: "u1".into(),
            reply_to: Some(ReplyTo { seq: 41, id: "ep0ch:41".into(), quote: "hi".into(), ..Default::default() }),
            edited_ms: 1_700_000_000_500,
            reactions: vec![Reaction { emoji: "👍".into(), count: 2, mine: false }],
            ..StoredMessage::default()
        }
    }

    fn change(seq: u64, change: Change) -> StoredMessage {
        StoredMessage {
            room: "general".into(),
            seq,
            epoch: "ep0ch".into(),
            ts_ms: 1_700_000_001_000,
            member_id: "m2".into(),
            username: "bob".into(),
            user_id: "u2".into(),
            change: Some(MessageChange {
                target_seq: 42,
                target_id: "ep0ch:42".into(),
                member_id: "m2".into(),
                username: "bob".into(),
                user_id: "u2".into(),
                change: Some(change),
            }),
            ..StoredMessage::default()
        }
    }

    #[test]
    fn a_message_goes_to_an_event_and_back_unchanged() {
        let event = message().into_event();
        assert_eq!(event.id, "ep0ch:42");
        assert_eq!(StoredMessage::of(&event), Some(message()));
    }

    #[test]
    fn a_change_goes_to_an_event_and_back_unchanged() {
        for c in [
            Change::Edited(Edited { text: "hello, world".into() }),
            Change::Deleted(Deleted { by_moderator: true, reason: "spam".into() }),
            Change::Reacted(Reacted { emoji: "🎉".into(), added: true, count: 1 }),
        ] {
            let stored = change(43, c);
            let event = stored.clone().into_event();
            assert!(matches!(event.kind, Some(Kind::Change(_))), "{stored:?}");
            assert_eq!(StoredMessage::of(&event), Some(stored));
        }
    }

    #[test]
    fn mine_is_never_stored() {
        let mut event = message().into_event();
        let Some(Kind::Message(m)) = &mut event.kind else { unreachable!("a message") };
        m.reactions[0].mine = true;
        assert_eq!(StoredMessage::of(&event).map(|s| s.reactions), Some(message().reactions));
    }

    #[test]
    fn only_numbered_messages_and_changes_are_stored() {
        let mut unnumbered = message().into_event();
        unnumbered.seq = 0;
        assert_eq!(StoredMessage::of(&unnumbered), None);
        let typing = RoomEvent { kind: None, ..message().into_event() };
        assert_eq!(StoredMessage::of(&typing), None);
    }

    #[test]
    fn a_stored_event_is_told_by_its_origin_not_its_later_state() {
        let sent = StoredMessage { edited_ms: 0, ..message() };
        let edited = StoredMessage { text: "changed".into(), edited_ms: 9, reactions: Vec::new(), ..message() };
        assert!(edited.holds(&sent), "edited and reacted to since");
        let deleted = StoredMessage { text: String::new(), attachments: Vec::new(), deleted_ms: 9, ..sent.clone() };
        assert!(deleted.holds(&sent), "deleted since");
        let other = StoredMessage { text: "another".into(), ..sent.clone() };
        assert!(!other.holds(&sent), "another text, never edited");
        assert!(!StoredMessage { client_id: "c2".into(), ..message() }.holds(&sent));
        let edit = change(43, Change::Edited(Edited { text: "a".into() }));
        let blanked = change(43, Change::Edited(Edited::default()));
        assert!(blanked.holds(&edit), "an edit blanked by a delete since");
        assert!(!edit.holds(&change(43, Change::Deleted(Deleted::default()))));
        assert!(!edit.holds(&sent) && !sent.holds(&edit));
    }
}
