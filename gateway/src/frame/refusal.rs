//! Why the gateway said no: a [`Refusal`] is what an `error` frame carries
//! (`server.rs` encodes it), made here from the browser's own mistakes and
//! from a room-service's failed call.
//!
//! A room-service's gRPC status becomes a code from the protocol's table:
//! a code the room-service named itself ([`coded`]) is kept, a busy one
//! becomes `unavailable` with a `retry_after_ms`, and one that cannot be
//! reached becomes `unavailable` without.

use chat_proto::ErrorCode;
use tonic::{Code, Status};

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
    /// For `muted`: when the mute ends (ms since the Unix epoch).
    pub until_ms: Option<i64>,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), room: None, retry_after_ms: None, until_ms: None }
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

/// The refusal a room-service named itself: INVALID_ARGUMENT, NOT_FOUND,
/// PERMISSION_DENIED and FAILED_PRECONDITION carrying
/// [`chat_proto::ERROR_CODE_HEADER`] are the code it names; PERMISSION_DENIED
/// without one is `forbidden`. A `muted` refusal says until when. (E.g.
/// `not_yours`, `edit_window`, `not_moderator`.)
pub(crate) fn coded(status: &Status) -> Option<Refusal> {
    let named = || {
        let name = status.metadata().get(chat_proto::ERROR_CODE_HEADER)?.to_str().ok()?;
        ErrorCode::ALL.into_iter().find(|code| code.as_str() == name)
    };
    let code = match status.code() {
        Code::PermissionDenied => named().unwrap_or(ErrorCode::Forbidden),
        Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition => named()?,
        _ => return None,
    };
    let mut refusal = Refusal::new(code, status.message().to_owned());
    if code == ErrorCode::Muted {
        let until = status.metadata().get(chat_proto::MUTED_UNTIL_HEADER).and_then(|v| v.to_str().ok()?.parse().ok());
        refusal.until_ms = until;
        refusal.retry_after_ms =
            until.map(|until: i64| u64::try_from(until - chat_runtime::clock::now_ms()).unwrap_or(0));
    }
    Some(refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_that_names_its_code_is_that_code() {
        let mut status = Status::invalid_argument("a conversation with yourself only");
        status.metadata_mut().insert(chat_proto::ERROR_CODE_HEADER, "bad_direct".parse().expect("ascii"));
        assert_eq!(refusal_of(&status, "x").code, ErrorCode::BadDirect);
        assert_eq!(refusal_of(&Status::permission_denied("not yours"), "x").code, ErrorCode::Forbidden);
        assert_eq!(refusal_of(&Status::invalid_argument("bad"), "x").code, ErrorCode::BadRequest, "no header");
    }
}
