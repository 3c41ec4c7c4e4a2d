//! `edit`, `delete` and `react`: a change to a message, checked for shape
//! here and for right (whose message, which window, which emoji) by the
//! room-service that stores it. The change comes back to every member,
//! this browser included, as a `change` event on the room's feed; the call
//! itself answers only when it was refused.

use std::sync::Arc;

use chat_proto::changes::{check_emoji, parse_message_id};
use chat_proto::names;
use chat_proto::v1::{DeleteRequest, EditRequest, ReactRequest};

use super::Session;
use super::calls::{Answer, Call, traced};
use crate::frame::{Refusal, refusal_of};

impl Session {
    pub(super) fn edit(&mut self, room: &str, id: &str, text: String) -> Result<Call, Refusal> {
        let (room, _) = self.joined(room)?;
        let (_, seq) = parse_message_id(id).map_err(|e| Refusal::from(e).in_room(&room))?;
        if text.len() > names::MAX_TEXT_BYTES {
            names::check_text(&text).map_err(|e| Refusal::from(e).in_room(&room))?;
        }
        self.caller.send(&room)?;
        let request = EditRequest {
            room: room.to_string(),
            member_id: self.member_id.to_string(),
            user_id: self.person.user_id.to_string(),
            seq,
            id: id.to_owned(),
            text,
        };
        let shared = Arc::clone(&self.shared);
        Ok(traced(tracing::debug_span!("call", rpc = "edit", %room, seq), async move {
            let reply = shared.hub.services().call(&room, request, |mut c, r| async move { c.edit(r).await }).await;
            Answer::Done(reply.map(drop).map_err(|status| refusal_of(&status, &room)))
        }))
    }

    pub(super) fn delete(&mut self, room: &str, id: &str, reason: String) -> Result<Call, Refusal> {
        let (room, _) = self.joined(room)?;
        let (_, seq) = parse_message_id(id).map_err(|e| Refusal::from(e).in_room(&room))?;
        self.caller.send(&room)?;
        let request = DeleteRequest {
            room: room.to_string(),
            member_id: self.member_id.to_string(),
            user_id: self.person.user_id.to_string(),
            seq,
            id: id.to_owned(),
            actor_moderates_everywhere: self.caller.identity.as_ref().is_some_and(|i| i.moderates_everywhere),
            reason,
        };
        let shared = Arc::clone(&self.shared);
        Ok(traced(tracing::debug_span!("call", rpc = "delete", %room, seq), async move {
            let reply = shared.hub.services().call(&room, request, |mut c, r| async move { c.delete(r).await }).await;
            Answer::Done(reply.map(drop).map_err(|status| refusal_of(&status, &room)))
        }))
    }

    pub(super) fn react(&mut self, room: &str, id: &str, emoji: String, add: bool) -> Result<Call, Refusal> {
        let (room, _) = self.joined(room)?;
        let (_, seq) = parse_message_id(id).map_err(|e| Refusal::from(e).in_room(&room))?;
        check_emoji(&emoji).map_err(|e| Refusal::from(e).in_room(&room))?;
        self.caller.send(&room)?;
        let request = ReactRequest {
            room: room.to_string(),
            member_id: self.member_id.to_string(),
            user_id: self.person.user_id.to_string(),
            seq,
            id: id.to_owned(),
            emoji,
            add,
        };
        let shared = Arc::clone(&self.shared);
        Ok(traced(tracing::debug_span!("call", rpc = "react", %room, seq), async move {
            let reply = shared.hub.services().call(&room, request, |mut c, r| async move { c.react(r).await }).await;
            Answer::Done(reply.map(drop).map_err(|status| refusal_of(&status, &room)))
        }))
    }
}
