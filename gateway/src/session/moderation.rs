//! The `moderate` frame: a moderator's action on a user of a joined room,
//! passed to the room-service's `Moderate` with the acting user taken from
//! this session (never from the frame). Whether they may is the
//! room-service's to say (`not_moderator`); the bounds of the frame's
//! fields are checked here first, so a malformed one costs no call. No
//! answer on success: the `moderation` notice comes on the room's feed.

use std::sync::Arc;

use chat_proto::ErrorCode;
use chat_proto::v1::{ModerateRequest, Person};

use super::Session;
use super::calls::{Answer, Call, Room, traced};
use crate::frame::{Refusal, refusal_of};

/// The longest reason, in characters (as the room-service's).
const MAX_REASON_CHARS: usize = 200;
/// The longest mute, in seconds: 30 days.
const MAX_MUTE_SECS: u64 = 30 * 24 * 3600;

impl Session {
    pub(super) fn moderate(
        &mut self,
        room: &str,
        action: String,
        user_id: String,
        duration: Option<u64>,
        reason: String,
        role: String,
    ) -> Result<Call, Refusal> {
        let (room, state) = self.joined(room)?;
        let name = match state {
            Room::Joined { username, .. } | Room::Joining { username, .. } => username.to_string(),
        };
        let bad = |message: String| Refusal::new(ErrorCode::BadModeration, message).in_room(&room);
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(bad(format!(
                "the reason is {} characters: at most {MAX_REASON_CHARS}",
                reason.chars().count()
            )));
        }
        let duration_secs = match (action.as_str(), duration) {
            ("mute", Some(secs @ 1..=MAX_MUTE_SECS)) => u32::try_from(secs).unwrap_or(u32::MAX),
            ("mute", _) => return Err(bad(format!("a mute needs a duration of 1 to {MAX_MUTE_SECS} seconds"))),
            _ => 0,
        };
        self.caller.send(&room)?;
        let request = ModerateRequest {
            room: room.to_string(),
            actor: Some(Person { user_id: self.person.user_id.to_string(), name }),
            action,
            target_user_id: user_id,
            duration_secs,
            reason,
            role,
            actor_moderates_everywhere: self.caller.identity.as_ref().is_some_and(|i| i.moderates_everywhere),
        };
        let shared = Arc::clone(&self.shared);
        Ok(traced(tracing::debug_span!("call", rpc = "moderate", %room), async move {
            let reply = shared.hub.services().call(&room, request, |mut c, r| async move { c.moderate(r).await }).await;
            Answer::Done(reply.map(drop).map_err(|status| refusal_of(&status, &room)))
        }))
    }
}
