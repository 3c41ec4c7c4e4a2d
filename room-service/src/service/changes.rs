//! Edit, Delete and React: changes to a stored message, each stored as an
//! event of its own in the room's order, and the reply a Send may name.
//!
//! Who may change what is decided here, where the message is stored, so no
//! gateway can be talked round: the message is read back (from Redis, or
//! from the store once Redis no longer holds it), its sender's user must be
//! the caller's for an edit or a delete (or the caller moderates the room,
//! for a delete), an edit must come within EDIT_WINDOW_SECS, and a muted
//! user may not edit or react (taking a message back stays open). Then the
//! broker makes the change in one atomic step that checks again what can
//! have changed meanwhile (the caller still a member, the message not
//! deleted) and counts reactions one per user per emoji.

use std::time::Duration;

use chat_proto::changes::{MAX_REASON_CHARS, check_emoji, parse_message_id, quote};
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{ChangeResponse, ChatMessage, DeleteRequest, EditRequest, ReactRequest, ReplyTo, RoomEvent};
use chat_proto::{ErrorCode, MemberId, RoomName, names};
use chat_runtime::clock::now_ms;
use tonic::{Code, Status};

use super::history::store_status;
use super::{Rooms, invalid, refusal};
use crate::broker::{Broker, ChangeOp, ChangeOrder, ChangeOutcome, MessageState, Stored};
use crate::people::Directory;
use crate::store::StoredMessage;

/// The message a change names, and who asks.
struct Target {
    room: RoomName,
    actor: MemberId,
    user_id: String,
    seq: u64,
    /// The epoch of the id the caller gave, if it gave one.
    epoch: Option<String>,
}

impl Target {
    fn parse(room: String, member_id: String, user_id: String, seq: u64, id: &str) -> Result<Self, Status> {
        let room = RoomName::try_from(room).map_err(invalid)?;
        let actor = MemberId::try_from(member_id).map_err(invalid)?;
        let (epoch, seq) = match id {
            "" => (None, seq),
            id => {
                let (epoch, of_id) = parse_message_id(id).map_err(invalid)?;
                if seq != 0 && seq != of_id {
                    return Err(bad_message(format!("seq {seq} and id {id:?} name different messages")));
                }
                (Some(epoch.to_owned()), of_id)
            }
        };
        if seq == 0 {
            return Err(bad_message("name the message: its id (\"<epoch>:<seq>\") or seq".to_owned()));
        }
        Ok(Self { room, actor, user_id, seq, epoch })
    }

    /// Whether `message` was sent by the caller's user.
    fn is_author(&self, message: &ChatMessage) -> bool {
        match message.user_id.as_str() {
            "" => !message.member_id.is_empty() && message.member_id == self.actor.as_str(),
            author => author == self.user_id || (self.user_id.is_empty() && author == self.actor.as_str()),
        }
    }
}

fn bad_message(message: String) -> Status {
    refusal(Code::InvalidArgument, ErrorCode::BadMessage, message)
}

impl<B: Broker + Directory> Rooms<B> {
    pub(super) async fn edit_message(&self, request: EditRequest) -> Result<ChangeResponse, Status> {
        let EditRequest { room, member_id, user_id, seq, id, text } = request;
        let target = Target::parse(room, member_id, user_id, seq, &id)?;
        let (event, message) = self.target_message(&target).await?;
        if message.attachments.is_empty() || !text.trim().is_empty() {
            names::check_text(&text).map_err(invalid)?;
        }
        if !target.is_author(&message) {
            return Err(refusal(Code::PermissionDenied, ErrorCode::NotYours, "you can edit only your own messages"));
        }
        if let Some(window) = self.edit_window {
            let age = Duration::from_millis(u64::try_from(now_ms() - event.ts_ms).unwrap_or(0));
            if age > window {
                return Err(refusal(
                    Code::FailedPrecondition,
                    ErrorCode::EditWindow,
                    format!(
                        "message {} is {}s old: messages can be edited for {}s after they are sent",
                        event.id,
                        age.as_secs(),
                        window.as_secs()
                    ),
                ));
            }
        }
        self.check_not_muted(&target.room, &target.user_id).await?;
        self.change(&target, &event, &message, ChangeOp::Edit { text }).await
    }

    pub(super) async fn delete_message(&self, request: DeleteRequest) -> Result<ChangeResponse, Status> {
        let DeleteRequest { room, member_id, user_id, seq, id, actor_moderates_everywhere, reason } = request;
        let target = Target::parse(room, member_id, user_id, seq, &id)?;
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(Status::invalid_argument(format!("reason is over {MAX_REASON_CHARS} characters")));
        }
        let (event, message) = self.target_message(&target).await?;
        let by_moderator = !target.is_author(&message);
        if by_moderator
            && !actor_moderates_everywhere
            && (target.user_id.is_empty() || !self.may_moderate(&target.room, &target.user_id).await?)
        {
            return Err(refusal(
                Code::PermissionDenied,
                ErrorCode::NotYours,
                "you can delete only your own messages (a moderator may delete anyone's)",
            ));
        }
        let op = ChangeOp::Delete { by_moderator, reason: if by_moderator { reason } else { String::new() } };
        let changed = self.change(&target, &event, &message, op).await?;
        if let Some(event) = changed.event.as_ref().filter(|_| by_moderator) {
            self.broker.record_audit(&target.room, event).await.map_err(|e| self.failed(e))?;
        }
        Ok(changed)
    }

    pub(super) async fn react_to_message(&self, request: ReactRequest) -> Result<ChangeResponse, Status> {
        let ReactRequest { room, member_id, user_id, seq, id, emoji, add } = request;
        let target = Target::parse(room, member_id, user_id, seq, &id)?;
        check_emoji(&emoji).map_err(invalid)?;
        let (event, message) = self.target_message(&target).await?;
        self.check_not_muted(&target.room, &target.user_id).await?;
        self.change(&target, &event, &message, ChangeOp::React { emoji, add }).await
    }

    /// The message a change names, as it stands now: from Redis while it
    /// holds it, else from the store. Refused (`bad_message`) when there is
    /// none, it is of another history, or it is deleted.
    async fn target_message(&self, target: &Target) -> Result<(RoomEvent, ChatMessage), Status> {
        let (room, seq) = (&target.room, target.seq);
        let found = self.stored_message(room, seq).await?;
        let Some(mut event) = found else {
            return Err(bad_message(format!("room {room} has no message {seq}")));
        };
        if target.epoch.as_ref().is_some_and(|epoch| *epoch != event.epoch) {
            return Err(bad_message(format!("message {seq} of room {room} is of a history that is gone")));
        }
        let Some(Kind::Message(message)) = event.kind.take() else {
            return Err(bad_message(format!("event {seq} of room {room} is not a message")));
        };
        if message.deleted_ms != 0 {
            return Err(bad_message(format!("message {} was deleted", event.id)));
        }
        Ok((event, message))
    }

    /// A stored message by seq, changes applied: Redis first, then the store.
    async fn stored_message(&self, room: &RoomName, seq: u64) -> Result<Option<RoomEvent>, Status> {
        let found = self.broker.message(room, seq).await.map_err(|e| self.failed(e))?;
        if found.is_some() {
            return Ok(found);
        }
        self.stored_message_in_store(room, seq).await
    }

    /// Makes the change through the broker (seeding a room Redis lost
    /// first); with STORE_SYNC, answers once the store committed it.
    async fn change(
        &self,
        target: &Target,
        event: &RoomEvent,
        message: &ChatMessage,
        op: ChangeOp,
    ) -> Result<ChangeResponse, Status> {
        let order = ChangeOrder {
            target_seq: target.seq,
            target_epoch: event.epoch.clone(),
            op,
            ts_ms: now_ms(),
            base: MessageState::of(message),
        };
        let place = self.reserve_commit()?;
        let room = &target.room;
        let outcome = match &self.seeder {
            Some(seeder) => {
                seeder.retry(room, || self.broker.change_message(room, &target.actor, order.clone())).await?
            }
            None => self.broker.change_message(room, &target.actor, order).await,
        }
        .map_err(|e| self.failed(e))?;
        match outcome {
            ChangeOutcome::Stored(event) => {
                let stored = [Stored { event: *event, repeat: false }];
                Self::commit(place, &stored).await?;
                self.metrics.published("change");
                let [Stored { event, .. }] = stored;
                tracing::debug!(seq = event.seq, target = target.seq, "change stored");
                Ok(ChangeResponse { event: Some(event), unchanged: false })
            }
            ChangeOutcome::Unchanged => Ok(ChangeResponse { event: None, unchanged: true }),
            ChangeOutcome::Gone => Err(bad_message(format!("message {} was deleted", target.seq))),
            ChangeOutcome::TooManyReactions => Err(refusal(
                Code::InvalidArgument,
                ErrorCode::TooManyReactions,
                format!(
                    "message {} has {} different reactions already: add to one of those",
                    target.seq,
                    chat_proto::changes::MAX_REACTIONS
                ),
            )),
        }
    }

    /// What a Send's `reply_to_seq` answers: a message of the room, not
    /// deleted, quoted.
    pub(super) async fn reply_to(&self, room: &RoomName, seq: u64) -> Result<Option<ReplyTo>, Status> {
        if seq == 0 {
            return Ok(None);
        }
        let Some(event) = self.stored_message(room, seq).await? else {
            return Err(bad_message(format!("reply_to: room {room} has no message {seq}")));
        };
        let Some(Kind::Message(message)) = &event.kind else {
            return Err(bad_message(format!("reply_to: event {seq} of room {room} is not a message")));
        };
        if message.deleted_ms != 0 {
            return Err(bad_message(format!("reply_to: message {} was deleted", event.id)));
        }
        Ok(Some(ReplyTo {
            seq,
            id: event.id.clone(),
            username: message.username.clone(),
            member_id: message.member_id.clone(),
            quote: quote(&message.text),
            deleted: false,
        }))
    }

    /// Sets `mine` on the reactions of `events` that `user_id` put there,
    /// as Redis knows them; `and_store` asks the store too about the ones
    /// Redis does not know (scrollback, older than what Redis keeps of
    /// who reacted).
    pub(super) async fn mark_mine(
        &self,
        room: &RoomName,
        user_id: &str,
        events: &mut [RoomEvent],
        and_store: bool,
    ) -> Result<(), Status> {
        if user_id.is_empty() {
            return Ok(());
        }
        let mut asked = Vec::new();
        for event in events.iter() {
            if let Some(Kind::Message(m)) = &event.kind {
                asked.extend(m.reactions.iter().map(|r| (event.seq, r.emoji.clone())));
            }
        }
        if asked.is_empty() {
            return Ok(());
        }
        let mut mine = self.broker.reacted(room, user_id, &asked).await.map_err(|e| self.failed(e))?;
        if let Some(store) = self.store.as_ref().filter(|_| and_store) {
            let mut unknown: Vec<u64> =
                asked.iter().zip(&mine).filter(|(_, m)| !**m).map(|((seq, _), _)| *seq).collect();
            unknown.dedup();
            if !unknown.is_empty() {
                let theirs = store.reacted(room.as_str(), user_id, &unknown).await.map_err(store_status)?;
                for (asked, mine) in asked.iter().zip(mine.iter_mut()) {
                    *mine = *mine || theirs.contains(asked);
                }
            }
        }
        let mut mine = mine.into_iter();
        for event in events.iter_mut() {
            if let Some(Kind::Message(m)) = &mut event.kind {
                for reaction in &mut m.reactions {
                    reaction.mine = mine.next().unwrap_or(false);
                }
            }
        }
        Ok(())
    }

    async fn stored_message_in_store(&self, room: &RoomName, seq: u64) -> Result<Option<RoomEvent>, Status> {
        let Some(store) = &self.store else { return Ok(None) };
        let found = store.message(room.as_str(), seq).await.map_err(store_status)?;
        Ok(found.map(StoredMessage::into_event))
    }
}
