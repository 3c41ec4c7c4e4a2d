//! The closed sets of words both ends of the chat share: the `code` of an
//! `error` frame ([`ErrorCode`]) and why a member left a room
//! ([`LeaveReason`]). Each is named here once; `docs/protocol.md` tables
//! them, and a test checks that the table and these lists agree.

use std::fmt;

/// The `code` of an `error` frame: what was wrong, for a program to act on
/// (the frame's `message` says it for a person).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    BinaryFrame,
    BadRoom,
    BadUsername,
    BadMemberId,
    Forbidden,
    RateLimited,
    EmptyText,
    TextTooLong,
    BadClientId,
    NotJoined,
    AlreadyJoined,
    TooManyRooms,
    Unavailable,
    BadRequest,
    Internal,
    BadCursor,
    BadLimit,
    BadQuery,
    SearchUnavailable,
    BadDirect,
    BadRead,
    BadAttachment,
    BadMessage,
    NotYours,
    EditWindow,
    BadEmoji,
    TooManyReactions,
    NotModerator,
    BadModeration,
    NotInRoom,
    Muted,
    Banned,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 34] = [
        Self::BadJson,
        Self::UnknownType,
        Self::BinaryFrame,
        Self::BadRoom,
        Self::BadUsername,
        Self::BadMemberId,
        Self::Forbidden,
        Self::RateLimited,
        Self::EmptyText,
        Self::TextTooLong,
        Self::BadClientId,
        Self::NotJoined,
        Self::AlreadyJoined,
        Self::TooManyRooms,
        Self::Unavailable,
        Self::BadRequest,
        Self::Internal,
        Self::BadCursor,
        Self::BadLimit,
        Self::BadQuery,
        Self::SearchUnavailable,
        Self::BadDirect,
        Self::BadRead,
        Self::BadAttachment,
        Self::BadMessage,
        Self::NotYours,
        Self::EditWindow,
        Self::BadEmoji,
        Self::TooManyReactions,
        Self::NotModerator,
        Self::BadModeration,
        Self::NotInRoom,
        Self::Muted,
        Self::Banned,
    ];

    /// The code as it goes on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "bad_json",
            Self::UnknownType => "unknown_type",
            Self::BinaryFrame => "binary_frame",
            Self::BadRoom => "bad_room",
            Self::BadUsername => "bad_username",
            Self::BadMemberId => "bad_member_id",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::EmptyText => "empty_text",
            Self::TextTooLong => "text_too_long",
            Self::BadClientId => "bad_client_id",
            Self::NotJoined => "not_joined",
            Self::AlreadyJoined => "already_joined",
            Self::TooManyRooms => "too_many_rooms",
            Self::Unavailable => "unavailable",
            Self::BadRequest => "bad_request",
            Self::Internal => "internal",
            Self::BadCursor => "bad_cursor",
            Self::BadLimit => "bad_limit",
            Self::BadQuery => "bad_query",
            Self::SearchUnavailable => "search_unavailable",
            Self::BadDirect => "bad_direct",
            Self::BadRead => "bad_read",
            Self::BadAttachment => "bad_attachment",
            Self::BadMessage => "bad_message",
            Self::NotYours => "not_yours",
            Self::EditWindow => "edit_window",
            Self::BadEmoji => "bad_emoji",
            Self::TooManyReactions => "too_many_reactions",
            Self::NotModerator => "not_moderator",
            Self::BadModeration => "bad_moderation",
            Self::NotInRoom => "not_in_room",
            Self::Muted => "muted",
            Self::Banned => "banned",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a member left a room, as `LeaveRequest.reason` and a `presence`
/// frame's `leaves[].reason` carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaveReason {
    /// The member asked to (`leave`).
    Left,
    /// The browser closed its connection, or vanished and did not come back
    /// within the resume grace.
    Disconnected,
    /// The browser went silent: nothing heard for twice the ping period.
    Timeout,
    /// Its gateway stopped renewing it (crashed or cut off): its presence ran out.
    Expired,
    /// A moderator removed it (`Moderate` kick); it may join again.
    Kicked,
    /// A moderator banned its user (`Moderate` ban): its joins are refused.
    Banned,
}

impl LeaveReason {
    pub const ALL: [LeaveReason; 6] =
        [Self::Left, Self::Disconnected, Self::Timeout, Self::Expired, Self::Kicked, Self::Banned];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Disconnected => "disconnected",
            Self::Timeout => "timeout",
            Self::Expired => "expired",
            Self::Kicked => "kicked",
            Self::Banned => "banned",
        }
    }

    /// The reason a gateway may give in a `LeaveRequest` (`expired`,
    /// `kicked` and `banned` are the room-service's own); the empty string
    /// means `left`.
    pub fn from_request(reason: &str) -> Option<Self> {
        match reason {
            "" | "left" => Some(Self::Left),
            "disconnected" => Some(Self::Disconnected),
            "timeout" => Some(Self::Timeout),
            _ => None,
        }
    }
}

impl fmt::Display for LeaveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes of the first table in `docs/protocol.md` under `heading`
    /// (rows starting with `` | `code` ``; a row may name two, `` `a` / `b` ``).
    fn documented(heading: &str) -> Vec<String> {
        let doc = include_str!("../../docs/protocol.md");
        let section = doc.split(heading).nth(1).unwrap_or_else(|| panic!("docs/protocol.md has no {heading:?}"));
        let table = section.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|'));
        table
            .filter_map(|row| row.split('|').nth(1))
            .flat_map(|cell| cell.split('/').map(str::trim).filter(|c| c.starts_with('`')).collect::<Vec<_>>())
            .map(|c| c.trim_matches('`').to_owned())
            .collect()
    }

    #[test]
    fn the_protocol_doc_tables_exactly_the_error_codes() {
        let mut doc = documented("## Error codes");
        let mut ours: Vec<String> = ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect();
        doc.sort();
        ours.sort();
        assert_eq!(doc, ours, "docs/protocol.md's error table and ErrorCode::ALL must list the same codes");
    }

    #[test]
    fn request_reasons_parse_and_print_alike() {
        for reason in [LeaveReason::Left, LeaveReason::Disconnected, LeaveReason::Timeout] {
            assert_eq!(LeaveReason::from_request(reason.as_str()), Some(reason));
        }
        assert_eq!(LeaveReason::from_request(""), Some(LeaveReason::Left));
        assert_eq!(LeaveReason::from_request("expired"), None, "only a room-service expires members");
        assert_eq!(LeaveReason::from_request("banned"), None, "only a moderator bans");
        assert_eq!(LeaveReason::from_request("bored"), None);
    }
}
