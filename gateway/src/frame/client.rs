//! What a browser asks for: one JSON text frame in, a [`ClientFrame`] out.
//!
//! A frame is parsed in two steps so each failure gets its own code: not
//! JSON (`bad_json`), no known `type` (`unknown_type`), then the fields
//! (`bad_json`, naming the room when the frame did). What the fields mean
//! is the session's to check; only `open_dm`'s list of users is checked
//! here ([`check_direct`]), since its bound is the protocol's.

use chat_proto::ErrorCode;
use chat_proto::people::{MAX_DIRECT_MEMBERS, check_user_id};
use serde::Deserialize;

use super::Refusal;

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
        /// May be empty when `attachments` is not.
        #[serde(default)]
        text: String,
        #[serde(default)]
        client_id: String,
        /// Attachment ids from `POST /upload` (at most 10).
        #[serde(default)]
        attachments: Vec<String>,
        /// The id of the message this one answers.
        #[serde(default)]
        reply_to: Option<String>,
    },
    /// New text for one of this user's messages, named by its `id`.
    Edit {
        room: String,
        id: String,
        text: String,
    },
    /// Take back a message (one's own, or as a moderator anyone's).
    Delete {
        room: String,
        id: String,
        /// A moderator's reason, shown with the deletion.
        #[serde(default)]
        reason: String,
    },
    /// Add (or with `add: false` remove) one's reaction on a message.
    React {
        room: String,
        id: String,
        emoji: String,
        #[serde(default = "yes")]
        add: bool,
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
    /// A moderator's action on a user of the room (`session::moderation`).
    Moderate {
        room: String,
        action: String,
        user_id: String,
        /// For `mute`: seconds.
        #[serde(default)]
        duration: Option<u64>,
        #[serde(default)]
        reason: String,
        /// For `role`: "moderator" or "member".
        #[serde(default)]
        role: String,
    },
}

const CLIENT_TYPES: [&str; 14] = [
    "join", "leave", "send", "edit", "delete", "react", "typing", "members", "history", "search", "open_dm", "read",
    "rooms", "moderate",
];

fn yes() -> bool {
    true
}

impl ClientFrame {
    /// The frame's `type`, for metrics.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Join { .. } => "join",
            ClientFrame::Leave { .. } => "leave",
            ClientFrame::Send { .. } => "send",
            ClientFrame::Edit { .. } => "edit",
            ClientFrame::Delete { .. } => "delete",
            ClientFrame::React { .. } => "react",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Members { .. } => "members",
            ClientFrame::History { .. } => "history",
            ClientFrame::Search { .. } => "search",
            ClientFrame::OpenDm { .. } => "open_dm",
            ClientFrame::Read { .. } => "read",
            ClientFrame::Rooms => "rooms",
            ClientFrame::Moderate { .. } => "moderate",
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn refusals_name_the_room_when_the_frame_did() {
        let refusal = parse(r#"{"type":"send","room":"dev","text":5}"#).unwrap_err();
        assert_eq!(refusal.room.as_deref(), Some("dev"));
    }

    #[test]
    fn good_frames_parse() {
        assert_eq!(
            parse(r#"{"type":"send","room":"general","text":"hi"}"#),
            Ok(ClientFrame::Send {
                room: "general".into(),
                text: "hi".into(),
                client_id: String::new(),
                attachments: Vec::new(),
                reply_to: None,
            })
        );
        assert_eq!(
            parse(r#"{"type":"react","room":"general","id":"k3j9x2:43","emoji":"👍"}"#),
            Ok(ClientFrame::React { room: "general".into(), id: "k3j9x2:43".into(), emoji: "👍".into(), add: true })
        );
    }
}
