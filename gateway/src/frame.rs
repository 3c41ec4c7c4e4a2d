//! The browser protocol (`docs/protocol.md`): JSON text frames in and out.
//!
//! Incoming frames are parsed in two steps so each failure gets its own
//! code: not JSON (`bad_json`), no known `type` (`unknown_type`), then the
//! fields. Outgoing room events are turned into JSON once per event by the
//! room's feed, and the same bytes go to every local browser.

use axum::extract::ws::Utf8Bytes;
use chat_proto::ErrorCode;
use chat_proto::people::{MAX_DIRECT_MEMBERS, check_user_id};
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{Member, RoomEvent};
use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

/// What a browser asks for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientFrame {
    Join {
        room: String,
        username: String,
        /// Resume: the last `seq` seen in the room, and its epoch (both or neither).
        #[serde(default)]
        after_seq: Option<u64>,
        #[serde(default)]
        epoch: Option<String>,
    },
    Leave {
        room: String,
    },
    Send {
        room: String,
        text: String,
        #[serde(default)]
        client_id: String,
    },
    Typing {
        room: String,
    },
    /// The next page of a room's members, after the `next` cursor of the
    /// previous page (`joined.members_next` or `members.next`).
    Members {
        room: String,
        #[serde(default)]
        after: String,
    },
    /// A page of the room's stored messages before `before_seq`. The cursor
    /// and limit are taken as any JSON and checked by [`crate::pages`], so
    /// a bad one gets its own code (`bad_cursor`, `bad_limit`).
    History {
        room: String,
        #[serde(default)]
        before_seq: Option<serde_json::Value>,
        #[serde(default)]
        limit: Option<serde_json::Value>,
    },
    /// A page of the room's messages that match `query`, newest first.
    Search {
        room: String,
        query: String,
        #[serde(default)]
        before_seq: Option<serde_json::Value>,
        #[serde(default)]
        limit: Option<serde_json::Value>,
    },
    /// Open (or find) the direct conversation with these users (their
    /// `user_id`s), checked by [`check_direct`]; answered with `dm`.
    OpenDm {
        users: Vec<String>,
    },
    /// Move this user's read marker in `room` up to `seq`.
    Read {
        room: String,
        seq: u64,
    },
    /// This user's rooms and direct conversations, answered with `rooms`.
    Rooms,
}

const CLIENT_TYPES: [&str; 10] =
    ["join", "leave", "send", "typing", "members", "history", "search", "open_dm", "read", "rooms"];

impl ClientFrame {
    /// The frame's `type`, for metrics.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Join { .. } => "join",
            ClientFrame::Leave { .. } => "leave",
            ClientFrame::Send { .. } => "send",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Members { .. } => "members",
            ClientFrame::History { .. } => "history",
            ClientFrame::Search { .. } => "search",
            ClientFrame::OpenDm { .. } => "open_dm",
            ClientFrame::Read { .. } => "read",
            ClientFrame::Rooms => "rooms",
        }
    }
}

/// An `error` frame's content: a code from the protocol's table, words for
/// a person, and the room the refused frame named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub room: Option<String>,
    /// For `unavailable` (a busy room-service) and `rate_limited`: when
    /// trying again makes sense.
    pub retry_after_ms: Option<u64>,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), room: None, retry_after_ms: None }
    }

    /// Says when to try again.
    pub(crate) fn retry_after(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }

    pub(crate) fn in_room(mut self, room: &str) -> Self {
        self.room = Some(room.to_owned());
        self
    }
}

impl From<chat_proto::names::Invalid> for Refusal {
    fn from(invalid: chat_proto::names::Invalid) -> Self {
        Refusal::new(invalid.code, invalid.message)
    }
}

/// Parses one text frame from a browser.
pub(crate) fn parse(text: &str) -> Result<ClientFrame, Refusal> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Refusal::new(ErrorCode::BadJson, format!("frame is not valid JSON: {e}")))?;
    let room = value.get("room").and_then(|r| r.as_str()).map(str::to_owned);
    let with_room = |refusal: Refusal| match &room {
        Some(room) => refusal.in_room(room),
        None => refusal,
    };
    match value.get("type").and_then(|t| t.as_str()) {
        Some(kind) if CLIENT_TYPES.contains(&kind) => {}
        Some(kind) => {
            return Err(with_room(Refusal::new(
                ErrorCode::UnknownType,
                format!("unknown frame type {:?}: use one of {}", shorten(kind), CLIENT_TYPES.join(", ")),
            )));
        }
        None => {
            return Err(with_room(Refusal::new(
                ErrorCode::UnknownType,
                format!("frame has no \"type\" string: use one of {}", CLIENT_TYPES.join(", ")),
            )));
        }
    }
    serde_json::from_value(value)
        .map_err(|e| with_room(Refusal::new(ErrorCode::BadJson, format!("frame fields are wrong: {e}"))))
}

/// The other users of an `open_dm` from `me`: repeats and `me` dropped,
/// 1 to [`MAX_DIRECT_MEMBERS`] − 1 of them, each a well-formed user id.
/// Whether each one exists is the room-service's to say.
pub(crate) fn check_direct(users: &[String], me: &str) -> Result<Vec<String>, Refusal> {
    let mut others: Vec<String> = Vec::new();
    for user in users {
        if user != me && !others.contains(user) {
            others.push(user.clone());
        }
        if others.len() >= MAX_DIRECT_MEMBERS {
            break; // already one too many: no need to look at the rest
        }
    }
    if others.is_empty() {
        return Err(Refusal::new(
            ErrorCode::BadDirect,
            "a conversation with yourself only: name at least one other user in \"users\" (their user_id)",
        ));
    }
    if others.len() >= MAX_DIRECT_MEMBERS {
        return Err(Refusal::new(
            ErrorCode::BadDirect,
            format!(
                "a direct conversation has at most {MAX_DIRECT_MEMBERS} users: you and {} others",
                MAX_DIRECT_MEMBERS - 1
            ),
        ));
    }
    for user in &others {
        check_user_id(user).map_err(Refusal::from)?;
    }
    Ok(others)
}

fn shorten(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A member as browsers see it.
#[derive(Debug, Serialize)]
pub(crate) struct MemberView<'a> {
    member_id: &'a str,
    /// The person behind the member: what `open_dm` takes.
    user_id: &'a str,
    username: &'a str,
    gateway: &'a str,
    joined_at: i64,
}

impl<'a> From<&'a Member> for MemberView<'a> {
    fn from(m: &'a Member) -> Self {
        Self {
            member_id: &m.member_id,
            user_id: &m.user_id,
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
    },
    Typing {
        room: &'a str,
        member_id: &'a str,
        username: &'a str,
    },
}

impl<'a> EventView<'a> {
    /// `None` for an event with no kind (from a newer room-service) and for
    /// presence, which the room's feed gathers into `presence` frames.
    pub(crate) fn of(e: &'a RoomEvent) -> Option<Self> {
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
            },
            Kind::Typing(t) => EventView::Typing { room, member_id: &t.member_id, username: &t.username },
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
    Left {
        room: &'a str,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
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
    })
}

/// The refusal for a room-service that could not be reached.
pub(crate) fn unavailable(room: &str) -> Refusal {
    Refusal::new(ErrorCode::Unavailable, "no room-service could be reached; try again in a moment").in_room(room)
}

/// The refusal a browser gets for a failed room-service call.
pub(crate) fn refusal_of(status: &Status, room: &str) -> Refusal {
    if let Some(refusal) = coded(status) {
        return refusal.in_room(room);
    }
    match status.code() {
        Code::FailedPrecondition => Refusal::new(ErrorCode::NotJoined, status.message().to_owned()).in_room(room),
        Code::InvalidArgument => Refusal::new(ErrorCode::BadRequest, status.message().to_owned()).in_room(room),
        _ if crate::upstream::is_busy(status) => {
            let wait = crate::upstream::retry_after(status);
            tracing::debug!(room, message = status.message(), "room-service busy");
            Refusal {
                retry_after_ms: Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
                ..Refusal::new(ErrorCode::Unavailable, "the room-service is busy; try again in a moment").in_room(room)
            }
        }
        code if crate::upstream::is_unreachable(status) => {
            tracing::warn!(room, ?code, message = status.message(), "room-service call failed");
            unavailable(room)
        }
        _ => Refusal::new(ErrorCode::Internal, format!("the room-service failed: {}", status.message())).in_room(room),
    }
}

/// The refusal a room-service named itself: PERMISSION_DENIED is
/// `forbidden`; INVALID_ARGUMENT and NOT_FOUND carrying
/// [`chat_proto::ERROR_CODE_HEADER`] are the code it names.
pub(crate) fn coded(status: &Status) -> Option<Refusal> {
    let named = || {
        let name = status.metadata().get(chat_proto::ERROR_CODE_HEADER)?.to_str().ok()?;
        ErrorCode::ALL.into_iter().find(|code| code.as_str() == name)
    };
    let code = match status.code() {
        Code::PermissionDenied => ErrorCode::Forbidden,
        Code::InvalidArgument | Code::NotFound => named()?,
        _ => return None,
    };
    Some(Refusal::new(code, status.message().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::ChatMessage;

    #[test]
    fn each_bad_frame_gets_its_own_code() {
        let cases = [
            ("not json", ErrorCode::BadJson),
            ("[1,2]", ErrorCode::UnknownType),
            (r#"{"room":"x"}"#, ErrorCode::UnknownType),
            (r#"{"type":"dance"}"#, ErrorCode::UnknownType),
            (r#"{"type":7}"#, ErrorCode::UnknownType),
            (r#"{"type":"join","room":"x"}"#, ErrorCode::BadJson),
            (r#"{"type":"send","room":"x","text":5}"#, ErrorCode::BadJson),
        ];
        for (input, code) in cases {
            assert_eq!(parse(input).map_err(|r| r.code), Err(code), "input {input}");
        }
    }

    #[test]
    fn people_frames_parse_and_open_dm_is_bounded() {
        assert_eq!(parse(r#"{"type":"rooms"}"#), Ok(ClientFrame::Rooms));
        assert_eq!(
            parse(r#"{"type":"read","room":"dev","seq":7}"#),
            Ok(ClientFrame::Read { room: "dev".into(), seq: 7 })
        );
        assert_eq!(parse(r#"{"type":"read","room":"dev","seq":-1}"#).map_err(|r| r.code), Err(ErrorCode::BadJson));
        let users = |n: usize| (0..n).map(|i| format!("u{i}")).collect::<Vec<_>>();
        assert_eq!(check_direct(&users(7), "me"), Ok(users(7)), "7 others: 8 in all");
        assert_eq!(check_direct(&["bob".into(), "me".into(), "bob".into()], "me"), Ok(vec!["bob".to_owned()]));
        let cases: [(Vec<String>, &str); 4] = [
            (Vec::new(), "nobody"),
            (vec!["me".into(), "me".into()], "yourself only"),
            (users(8), "9 in all"),
            (vec![String::new()], "an empty id"),
        ];
        for (users, why) in cases {
            assert_eq!(check_direct(&users, "me").map_err(|r| r.code), Err(ErrorCode::BadDirect), "{why}");
        }
    }

    #[test]
    fn a_refusal_that_names_its_code_is_that_code() {
        let mut status = Status::invalid_argument("a conversation with yourself only");
        status.metadata_mut().insert(chat_proto::ERROR_CODE_HEADER, "bad_direct".parse().expect("ascii"));
        assert_eq!(refusal_of(&status, "x").code, ErrorCode::BadDirect);
        assert_eq!(refusal_of(&Status::permission_denied("not yours"), "x").code, ErrorCode::Forbidden);
        assert_eq!(refusal_of(&Status::invalid_argument("bad"), "x").code, ErrorCode::BadRequest, "no header");
    }

    #[test]
    fn refusals_name_the_room_when_the_frame_did() {
        let refusal = parse(r#"{"type":"send","room":"dev"}"#).unwrap_err();
        assert_eq!(refusal.room.as_deref(), Some("dev"));
    }

    #[test]
    fn good_frames_parse() {
        assert_eq!(
            parse(r#"{"type":"send","room":"general","text":"hi"}"#),
            Ok(ClientFrame::Send { room: "general".into(), text: "hi".into(), client_id: String::new() })
        );
    }

    #[test]
    fn message_event_matches_the_protocol_doc() {
        let event = RoomEvent {
            room: "general".into(),
            seq: 43,
            id: "k3j9x2:43".into(),
            epoch: "k3j9x2".into(),
            ts_ms: 1_763_769_602_000,
            kind: Some(Kind::Message(ChatMessage {
                username: "ada".into(),
                member_id: "gw-3000/7".into(),
                text: "hello".into(),
                client_id: "c-17".into(),
            })),
        };
        let json = encode(&EventView::of(&event).expect("has a kind"));
        assert_eq!(
            json.as_str(),
            r#"{"type":"message","room":"general","seq":43,"id":"k3j9x2:43","username":"ada","member_id":"gw-3000/7","text":"hello","client_id":"c-17","ts":1763769602000}"#
        );
    }
}
