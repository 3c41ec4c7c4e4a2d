//! What the gateway says to browsers: serialisable views of room events,
//! members and the gateway's own frames, and [`encode`] that turns them into
//! the bytes of one text frame.
//!
//! A room event is encoded once per event by the room's feed (`feed/`), and
//! the same bytes go to every local browser; a session encodes its own
//! answers (`welcome`, `joined`, `error`, ...) for its one browser.

use axum::extract::ws::Utf8Bytes;
use chat_proto::ErrorCode;
use chat_proto::v1::message_change::Change;
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{Member, ModerationNotice, Person, RoomEvent};
use serde::Serialize;

use super::Refusal;

/// A member as browsers see it.
#[derive(Debug, Serialize)]
pub(crate) struct MemberView<'a> {
    member_id: &'a str,
    /// The person behind the member, what `open_dm` takes: only when it is
    /// not the member id itself (a user with a token). Without tokens a user
    /// is one browser session and the member id is the user id, so it is left
    /// out: every member object of every `joined`, `presence` and `members`
    /// frame would otherwise carry the same id twice (measured: 0.6 KiB more
    /// gateway memory per idle connection, through larger write buffers).
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    username: &'a str,
    gateway: &'a str,
    joined_at: i64,
}

impl<'a> From<&'a Member> for MemberView<'a> {
    fn from(m: &'a Member) -> Self {
        Self {
            member_id: &m.member_id,
            user_id: Some(m.user_id.as_str()).filter(|u| !u.is_empty() && *u != m.member_id),
            username: &m.username,
            gateway: &m.gateway,
            joined_at: m.joined_at_ms,
        }
    }
}

/// A member who left, as browsers see it.
#[derive(Debug, Serialize)]
pub(crate) struct LeaveView<'a> {
    #[serde(flatten)]
    pub member: MemberView<'a>,
    pub reason: &'a str,
}

/// A room event as browsers see it.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum EventView<'a> {
    Message {
        room: &'a str,
        seq: u64,
        id: &'a str,
        username: &'a str,
        member_id: &'a str,
        text: &'a str,
        client_id: &'a str,
        ts: i64,
        /// Files posted with it, with signed URLs (`files::attachment_json`).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<serde_json::Value>,
        /// The sender's user, when it is not `member_id` (with tokens).
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<ReplyView<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        edited: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        deleted: Option<i64>,
        #[serde(skip_serializing_if = "str::is_empty")]
        deleted_by: &'a str,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        reactions: Vec<ReactionView<'a>>,
    },
    /// An edit, delete or reaction of an earlier message.
    Change {
        room: &'a str,
        seq: u64,
        id: &'a str,
        ts: i64,
        target_id: &'a str,
        target_seq: u64,
        member_id: &'a str,
        username: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<&'a str>,
        #[serde(flatten)]
        action: ChangeView<'a>,
    },
    Typing {
        room: &'a str,
        member_id: &'a str,
        username: &'a str,
    },
    /// A moderator's action, as the room's notice of it.
    Moderation {
        room: &'a str,
        seq: u64,
        id: &'a str,
        ts: i64,
        action: &'a str,
        actor: PersonView<'a>,
        target: PersonView<'a>,
        reason: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<i64>,
        #[serde(skip_serializing_if = "str::is_empty")]
        role: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        removed: Option<u32>,
    },
}

/// A user as a `moderation` frame names them.
#[derive(Debug, Serialize)]
pub(crate) struct PersonView<'a> {
    user_id: &'a str,
    name: &'a str,
}

impl<'a> From<Option<&'a Person>> for PersonView<'a> {
    fn from(person: Option<&'a Person>) -> Self {
        Self { user_id: person.map_or("", |p| &p.user_id), name: person.map_or("", |p| &p.name) }
    }
}

fn moderation_view<'a>(room: &'a str, seq: u64, id: &'a str, ts: i64, n: &'a ModerationNotice) -> EventView<'a> {
    EventView::Moderation {
        room,
        seq,
        id,
        ts,
        action: &n.action,
        actor: n.actor.as_ref().into(),
        target: n.target.as_ref().into(),
        reason: &n.reason,
        until: Some(n.until_ms).filter(|&u| u > 0),
        role: &n.role,
        removed: Some(n.removed).filter(|_| n.action == "kick" || n.action == "ban"),
    }
}

/// What a reply answers, as `message.reply_to` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct ReplyView<'a> {
    id: &'a str,
    seq: u64,
    username: &'a str,
    member_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    quote: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
}

/// One emoji on a message and its count; `mine` only when true.
#[derive(Debug, Serialize)]
pub(crate) struct ReactionView<'a> {
    emoji: &'a str,
    count: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    mine: bool,
}

/// A `change` frame's `action` and the fields that go with it.
#[derive(Debug, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub(crate) enum ChangeView<'a> {
    Edit {
        text: &'a str,
    },
    Delete {
        by_moderator: bool,
        #[serde(skip_serializing_if = "str::is_empty")]
        reason: &'a str,
    },
    React {
        emoji: &'a str,
        added: bool,
        count: u32,
    },
}

/// A user id worth showing: one that is not the member id beside it.
fn other_user<'a>(user_id: &'a str, member_id: &str) -> Option<&'a str> {
    (!user_id.is_empty() && user_id != member_id).then_some(user_id)
}

impl<'a> EventView<'a> {
    /// `None` for an event with no kind (from a newer room-service) and for
    /// presence, which the room's feed gathers into `presence` frames.
    pub(crate) fn of(e: &'a RoomEvent, signer: &crate::files::urls::Signer) -> Option<Self> {
        let (room, seq, id, ts) = (e.room.as_str(), e.seq, e.id.as_str(), e.ts_ms);
        Some(match e.kind.as_ref()? {
            Kind::Message(m) => EventView::Message {
                room,
                seq,
                id,
                username: &m.username,
                member_id: &m.member_id,
                text: &m.text,
                client_id: &m.client_id,
                ts,
                attachments: {
                    let now = crate::files::now_secs();
                    m.attachments.iter().map(|a| crate::files::attachment_json(signer, a, now)).collect()
                },
                user_id: other_user(&m.user_id, &m.member_id),
                reply_to: m.reply_to.as_ref().map(|r| ReplyView {
                    id: &r.id,
                    seq: r.seq,
                    username: &r.username,
                    member_id: &r.member_id,
                    quote: &r.quote,
                    deleted: r.deleted,
                }),
                edited: (m.edited_ms != 0).then_some(m.edited_ms),
                deleted: (m.deleted_ms != 0).then_some(m.deleted_ms),
                deleted_by: &m.deleted_by,
                reactions: m
                    .reactions
                    .iter()
                    .map(|r| ReactionView { emoji: &r.emoji, count: r.count, mine: r.mine })
                    .collect(),
            },
            Kind::Change(c) => EventView::Change {
                room,
                seq,
                id,
                ts,
                target_id: &c.target_id,
                target_seq: c.target_seq,
                member_id: &c.member_id,
                username: &c.username,
                user_id: other_user(&c.user_id, &c.member_id),
                action: match c.change.as_ref()? {
                    Change::Edited(e) => ChangeView::Edit { text: &e.text },
                    Change::Deleted(d) => ChangeView::Delete { by_moderator: d.by_moderator, reason: &d.reason },
                    Change::Reacted(r) => ChangeView::React { emoji: &r.emoji, added: r.added, count: r.count },
                },
            },
            Kind::Typing(t) => EventView::Typing { room, member_id: &t.member_id, username: &t.username },
            Kind::Moderation(n) => moderation_view(room, seq, id, ts, n),
            Kind::Presence(_) | Kind::Inbox(_) => return None,
        })
    }
}

/// What the gateway says to one browser (room events aside).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ServerFrame<'a> {
    Welcome {
        gateway: &'a str,
        limits: Limits,
        /// The session's token: reconnect with `/ws?session=<it>` to stay
        /// the same member.
        session: &'a str,
        /// Whether this connection resumed an earlier session.
        resumed: bool,
        ping_ms: u64,
        resume_grace_ms: u64,
        /// Who this connection is: the token's `sub`, or (without tokens)
        /// the session's member id.
        user_id: &'a str,
        /// The token's `name`; `None` without tokens.
        name: Option<&'a str>,
    },
    Joined {
        room: &'a str,
        member_id: &'a str,
        epoch: &'a str,
        last_seq: u64,
        /// The join resumed, and `history` is everything after its `after_seq`.
        recovered: bool,
        history: Vec<EventView<'a>>,
        /// The first members in name order, at most 100.
        members: Vec<MemberView<'a>>,
        member_count: u32,
        /// Cursor for a `members` request when `members` is not everyone.
        members_next: Option<&'a str>,
        /// The joiner's role in the room: "owner", "moderator" or "member".
        role: &'a str,
    },
    /// A page of members, answering a `members` request.
    Members {
        room: &'a str,
        members: Vec<MemberView<'a>>,
        member_count: u32,
        next: Option<&'a str>,
    },
    /// Who joined and left a room since the last one (at most one per room
    /// every [`crate::limits::PRESENCE_EVERY`]). `joins` and `leaves` list
    /// at most [`crate::limits::LISTED_MAX`] members each; `joined` and
    /// `left` count them all, so a list shorter than its count is partial.
    Presence {
        room: &'a str,
        member_count: u32,
        joined: u32,
        left: u32,
        joins: Vec<MemberView<'a>>,
        leaves: Vec<LeaveView<'a>>,
    },
    /// Answering `leave`; or, with `reason` ("kicked", "banned"), telling
    /// a browser a moderator removed it.
    Left {
        room: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
        /// For `muted`: when the mute ends (ms since the Unix epoch).
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<i64>,
    },
    Reconnect {
        reason: &'a str,
        after_ms: u64,
    },
}

#[derive(Debug, Serialize)]
pub(crate) struct Limits {
    pub max_text_bytes: usize,
    pub max_username_chars: usize,
    pub max_rooms: usize,
    pub max_upload_bytes: u64,
    pub max_attachments: usize,
}

/// Serialises a frame; these types always serialise.
pub(crate) fn encode<T: Serialize>(frame: &T) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(frame).unwrap_or_else(|e| {
        format!(r#"{{"type":"error","code":"{}","message":"could not encode a frame: {e}"}}"#, ErrorCode::Internal)
    }))
}

pub(crate) fn refusal(refusal: &Refusal) -> Utf8Bytes {
    encode(&ServerFrame::Error {
        code: refusal.code.as_str(),
        message: &refusal.message,
        room: refusal.room.as_deref(),
        retry_after_ms: refusal.retry_after_ms,
        until: refusal.until_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::ChatMessage;

    #[test]
    fn message_event_matches_the_protocol_doc() {
        let event = RoomEvent {
            room: "general".into(),
            seq: 43,
            id: "k3j9x2:43".into(),
            epoch: "k3j9x2".into(),
            ts_ms: 1_763_769_602_000,
            traceparent: String::new(),
            kind: Some(Kind::Message(ChatMessage {
                username: "ada".into(),
                member_id: "gw-3000/7".into(),
                text: "hello".into(),
                client_id: "c-17".into(),
                ..ChatMessage::default()
            })),
        };
        let json = encode(&EventView::of(&event, &crate::files::urls::Signer::new(b"test")).expect("has a kind"));
        assert_eq!(
            json.as_str(),
            r#"{"type":"message","room":"general","seq":43,"id":"k3j9x2:43","username":"ada","member_id":"gw-3000/7","text":"hello","client_id":"c-17","ts":1763769602000}"#
        );
    }
}
