//! Changes to messages in the in-process broker: each changed message's
//! [`MessageState`] and who reacted with what, per room, laid over the
//! history on every read the way Redis does (`message_state`).

use std::collections::{BTreeMap, HashSet};

use chat_proto::v1::message_change::Change;
use chat_proto::v1::{Deleted, Edited, MessageChange, Reacted, RoomEvent};

use super::message_state::{self, Applied, ChangeOp, MessageState};
use super::{ChangeOrder, event_id};

/// Changed messages' states kept per room: the history's length's worth
/// of the newest (a state dropped here is still in the store, with one).
const STATES_PER_HISTORY: usize = 2;

/// One room's changed messages.
#[derive(Debug, Default)]
pub(super) struct Changes {
    states: BTreeMap<u64, MessageState>,
    /// `(seq, emoji, user id)` of every reaction on a changed message.
    reactors: HashSet<(u64, String, String)>,
}

/// Who makes a change, as the member record gives it.
pub(super) struct Actor<'a> {
    pub member_id: &'a str,
    pub name: &'a str,
    pub user_id: &'a str,
}

impl Changes {
    /// Applies `order` to its message; the change event (with seq, epoch and
    /// id left for the caller to number), or what stopped it.
    pub(super) fn apply(
        &mut self,
        order: &ChangeOrder,
        actor: &Actor<'_>,
        history_len: usize,
    ) -> Result<(RoomEvent, MessageChange), Applied> {
        let seq = order.target_seq;
        let mut state = self.states.get(&seq).cloned().unwrap_or_else(|| order.base.clone());
        let had_reacted = match &order.op {
            ChangeOp::React { emoji, .. } => self.reactors.contains(&(seq, emoji.clone(), actor.user_id.to_owned())),
            _ => false,
        };
        let applied = state.change(&order.op, order.ts_ms, actor.name, had_reacted);
        let change = match (&order.op, &applied) {
            (ChangeOp::Edit { text }, Applied::Edited) => Change::Edited(Edited { text: text.clone() }),
            (ChangeOp::Delete { by_moderator, reason }, Applied::Deleted) => {
                self.reactors.retain(|(s, _, _)| *s != seq);
                Change::Deleted(Deleted { by_moderator: *by_moderator, reason: reason.clone() })
            }
            (ChangeOp::React { emoji, add }, Applied::Reacted { count }) => {
                let mark = (seq, emoji.clone(), actor.user_id.to_owned());
                if *add {
                    self.reactors.insert(mark);
                } else {
                    self.reactors.remove(&mark);
                }
                Change::Reacted(Reacted { emoji: emoji.clone(), added: *add, count: *count })
            }
            _ => return Err(applied),
        };
        self.states.insert(seq, state);
        while self.states.len() > STATES_PER_HISTORY * history_len.max(1) {
            let Some((oldest, _)) = self.states.pop_first() else { break };
            self.reactors.retain(|(s, _, _)| *s != oldest);
        }
        let change = MessageChange {
            target_seq: seq,
            target_id: event_id(&order.target_epoch, seq),
            member_id: actor.member_id.to_owned(),
            username: actor.name.to_owned(),
            user_id: actor.user_id.to_owned(),
            change: Some(change),
        };
        Ok((RoomEvent { ts_ms: order.ts_ms, ..RoomEvent::default() }, change))
    }

    /// Lays the states over events read back from the history.
    pub(super) fn render(&self, events: &mut [RoomEvent]) {
        if !self.states.is_empty() {
            message_state::render(events, |seq| self.states.get(&seq));
        }
    }

    pub(super) fn reacted(&self, user_id: &str, reactions: &[(u64, String)]) -> Vec<bool> {
        reactions
            .iter()
            .map(|(seq, emoji)| self.reactors.contains(&(*seq, emoji.clone(), user_id.to_owned())))
            .collect()
    }
}
