//! Changes to messages on Redis: `change.lua` makes one, and every read of
//! the history lays the messages' states over what the stream holds
//! ([`RedisBroker::render`]): one `MGET` of the states the events read
//! need, in the room's slot.

use std::collections::HashMap;
use std::sync::LazyLock;

use chat_proto::changes::MAX_REACTIONS;
use chat_proto::v1::RoomEvent;
use chat_proto::v1::room_event::Kind;
use chat_proto::{MemberId, RoomName};
use redis::{Script, Value};

use super::keys::Keys;
use super::message_state::{self, ChangeOp, MessageState};
use super::redis::RedisBroker;
use super::{BrokerError, BrokerResult, ChangeOrder, ChangeOutcome, envelope};

static CHANGE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("change.lua")));

impl RedisBroker {
    /// Runs `change.lua` for one change.
    pub(super) async fn change_step(
        &self,
        room: &RoomName,
        actor: &MemberId,
        order: ChangeOrder,
    ) -> BrokerResult<ChangeOutcome> {
        let keys = Keys::of(room);
        let (op, argument, by_moderator, reason) = match &order.op {
            ChangeOp::Edit { text } => ("edit", text.as_str(), false, ""),
            ChangeOp::Delete { by_moderator, reason } => ("delete", "", *by_moderator, reason.as_str()),
            ChangeOp::React { emoji, add: true } => ("react", emoji.as_str(), false, ""),
            ChangeOp::React { emoji, add: false } => ("unreact", emoji.as_str(), false, ""),
        };
        let mut call = CHANGE.prepare_invoke();
        call.key(&keys.seq)
            .key(&keys.log)
            .key(&keys.epoch)
            .key(&keys.members)
            .key(keys.state(order.target_seq))
            .key(keys.reactors(order.target_seq))
            .arg(&keys.channel)
            .arg(self.retention().history_len)
            .arg(self.retention().room_ttl.as_secs())
            .arg(self.publish_command())
            .arg(actor.as_str())
            .arg(op)
            .arg(order.target_seq)
            .arg(&order.target_epoch)
            .arg(order.ts_ms)
            .arg(argument)
            .arg(order.base.to_json())
            .arg(MAX_REACTIONS)
            .arg(if by_moderator { "1" } else { "" })
            .arg(reason);
        let reply: Vec<Value> = call.invoke_async(&mut self.conn()).await?;
        let tag = |value: &Value| match value {
            Value::BulkString(tag) => String::from_utf8_lossy(tag).into_owned(),
            Value::SimpleString(tag) => tag.clone(),
            _ => String::new(),
        };
        match (reply.first().map(tag).as_deref(), reply.get(1)) {
            (Some("stored"), Some(Value::BulkString(payload))) => {
                Ok(ChangeOutcome::Stored(Box::new(envelope::decode(room, payload)?)))
            }
            (Some("not_member"), _) => Err(BrokerError::NotMember(actor.to_string())),
            (Some("unseeded"), _) => Err(BrokerError::Unseeded(room.to_string())),
            (Some("gone"), _) => Ok(ChangeOutcome::Gone),
            (Some("unchanged"), _) => Ok(ChangeOutcome::Unchanged),
            (Some("too_many"), _) => Ok(ChangeOutcome::TooManyReactions),
            _ => Err(BrokerError::Corrupt(format!("change.lua answered {reply:?}"))),
        }
    }

    /// Lays the messages' current states over events read from the stream.
    pub(super) async fn render(&self, room: &str, events: &mut [RoomEvent]) -> BrokerResult<()> {
        let seqs = message_state::seqs_to_render(events);
        if seqs.is_empty() {
            return Ok(());
        }
        let keys = Keys::of(room);
        let mut mget = redis::cmd("MGET");
        for seq in &seqs {
            mget.arg(keys.state(*seq));
        }
        let found: Vec<Option<String>> = mget.query_async(&mut self.conn()).await?;
        let mut states = HashMap::new();
        for (seq, json) in seqs.into_iter().zip(found) {
            if let Some(json) = json {
                let state: MessageState = serde_json::from_str(&json)
                    .map_err(|e| BrokerError::Corrupt(format!("state of message {seq}: {e}")))?;
                states.insert(seq, state);
            }
        }
        if !states.is_empty() {
            message_state::render(events, |seq| states.get(&seq));
        }
        Ok(())
    }

    /// The message under `seq`, rendered, while the stream holds it.
    pub(super) async fn message_at(&self, room: &RoomName, seq: u64) -> BrokerResult<Option<RoomEvent>> {
        let keys = Keys::of(room);
        let id = format!("{seq}-1");
        let mut events = self.read_range(room, redis::cmd("XRANGE").arg(&keys.log).arg(&id).arg(&id)).await?;
        events.retain(|e| matches!(e.kind, Some(Kind::Message(_))));
        Ok(events.pop())
    }

    /// Per `(seq, emoji)`: whether `user_id` has it; one pipelined round trip.
    pub(super) async fn reacted_by(
        &self,
        room: &RoomName,
        user_id: &str,
        reactions: &[(u64, String)],
    ) -> BrokerResult<Vec<bool>> {
        if reactions.is_empty() {
            return Ok(Vec::new());
        }
        let keys = Keys::of(room);
        let mut pipe = redis::pipe();
        for (seq, emoji) in reactions {
            pipe.cmd("SISMEMBER").arg(keys.reactors(*seq)).arg(format!("{emoji}\0{user_id}"));
        }
        let found: Vec<bool> = pipe.query_async(&mut self.conn()).await?;
        Ok(found)
    }
}
