//! What has happened to a stored message since: its edits, its deletion,
//! its reactions — kept beside the message, never in it.
//!
//! A room's history is append-only (a Redis stream, the in-process log), so
//! a message is never rewritten where it lies. Each change is stored as an
//! event of its own in the room's order (a `MessageChange`), and the
//! message's current [`MessageState`] is kept under its seq: in Redis one
//! JSON string per changed message (written by `change.lua`, read here), in
//! the in-process broker a map. Whoever reads history back ([`render`])
//! lays the states over what the log holds, so a page, a join's snapshot
//! and a resume all show the current text, the deleted placeholder and the
//! counts — and an edit read back after its message was deleted shows no
//! text.
//!
//! [`MessageState::change`] is the rule for one change; `change.lua` is the
//! same rule in Lua, for Redis, and the broker contract tests hold both to it.

use chat_proto::changes::MAX_REACTIONS;
use chat_proto::v1::message_change::Change;
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{ChatMessage, Reaction, RoomEvent};
use serde::{Deserialize, Serialize};

/// A message's state after its changes. Field names are short: Lua writes
/// them too, one JSON string per changed message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageState {
    /// When its text was last edited (ms); 0: never.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) e: i64,
    /// Its text since the last edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) t: Option<String>,
    /// When it was deleted (ms); 0: it was not.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) d: i64,
    /// The moderator who deleted it, when not its sender.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) by: String,
    /// Reactions in the order first added: `[emoji, count]`. Lua's JSON
    /// writes an empty list as `{}`.
    #[serde(default, deserialize_with = "reactions", skip_serializing_if = "Vec::is_empty")]
    pub(crate) r: Vec<(String, u32)>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn reactions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(String, u32)>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrEmpty {
        List(Vec<(String, u32)>),
        Empty(serde::de::IgnoredAny),
    }
    Ok(match ListOrEmpty::deserialize(d)? {
        ListOrEmpty::List(list) => list,
        ListOrEmpty::Empty(_) => Vec::new(),
    })
}

/// A change as the room-service asks a broker for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOp {
    Edit { text: String },
    Delete { by_moderator: bool, reason: String },
    React { emoji: String, add: bool },
}

/// What one change did, or why it did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    Edited,
    Deleted,
    /// The emoji's count after the change.
    Reacted {
        count: u32,
    },
    /// The message is deleted: nothing more can change it.
    Gone,
    /// A reaction added twice or removed when absent.
    Unchanged,
    /// A new emoji past [`MAX_REACTIONS`].
    TooManyReactions,
}

impl MessageState {
    /// The state a message carries as stored (read from the store, where
    /// its changes are already applied), for a broker that has none for it.
    pub(crate) fn of(message: &ChatMessage) -> Self {
        Self {
            e: message.edited_ms,
            t: (message.edited_ms != 0).then(|| message.text.clone()),
            d: message.deleted_ms,
            by: message.deleted_by.clone(),
            r: message.reactions.iter().map(|r| (r.emoji.clone(), r.count)).collect(),
        }
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Applies one change at `ts_ms`. `had_reacted` says whether the user
    /// already has this emoji on the message (for reactions).
    pub(crate) fn change(&mut self, op: &ChangeOp, ts_ms: i64, actor: &str, had_reacted: bool) -> Applied {
        if self.d != 0 {
            return Applied::Gone;
        }
        match op {
            ChangeOp::Edit { text } => {
                self.t = Some(text.clone());
                self.e = ts_ms;
                Applied::Edited
            }
            ChangeOp::Delete { by_moderator, .. } => {
                *self = Self {
                    d: ts_ms,
                    by: if *by_moderator { actor.to_owned() } else { String::new() },
                    ..Self::default()
                };
                Applied::Deleted
            }
            ChangeOp::React { emoji, add } => {
                let at = self.r.iter().position(|(e, _)| e == emoji);
                match (add, had_reacted, at) {
                    (true, true, _) | (false, false, _) => Applied::Unchanged,
                    (true, false, None) if self.r.len() >= MAX_REACTIONS => Applied::TooManyReactions,
                    (true, false, None) => {
                        self.r.push((emoji.clone(), 1));
                        Applied::Reacted { count: 1 }
                    }
                    (true, false, Some(i)) => {
                        self.r[i].1 += 1;
                        Applied::Reacted { count: self.r[i].1 }
                    }
                    (false, true, None) => Applied::Reacted { count: 0 },
                    (false, true, Some(i)) => {
                        self.r[i].1 = self.r[i].1.saturating_sub(1);
                        let count = self.r[i].1;
                        if count == 0 {
                            self.r.remove(i);
                        }
                        Applied::Reacted { count }
                    }
                }
            }
        }
    }

    /// Lays this state over the message as stored.
    fn apply_to(&self, message: &mut ChatMessage) {
        if self.d != 0 {
            message.text.clear();
            message.attachments.clear();
            message.reactions.clear();
            if let Some(reply) = &mut message.reply_to {
                reply.quote.clear();
            }
            message.deleted_ms = self.d;
            message.deleted_by.clone_from(&self.by);
            return;
        }
        if let Some(text) = &self.t {
            message.text.clone_from(text);
            message.edited_ms = self.e;
        }
        message.reactions =
            self.r.iter().map(|(emoji, count)| Reaction { emoji: emoji.clone(), count: *count, mine: false }).collect();
    }

    fn deleted(&self) -> bool {
        self.d != 0
    }
}

/// The seqs whose states reading `events` back needs: each message's own
/// and the one it replies to, each change's target.
pub(crate) fn seqs_to_render(events: &[RoomEvent]) -> Vec<u64> {
    let mut seqs = Vec::new();
    for event in events {
        match &event.kind {
            Some(Kind::Message(m)) => {
                seqs.push(event.seq);
                seqs.extend(m.reply_to.as_ref().map(|r| r.seq));
            }
            Some(Kind::Change(c)) => seqs.push(c.target_seq),
            _ => {}
        }
    }
    seqs.sort_unstable();
    seqs.dedup();
    seqs
}

/// Lays the states `state_of` knows over events read back from a log.
pub(crate) fn render<'a>(events: &mut [RoomEvent], state_of: impl Fn(u64) -> Option<&'a MessageState>) {
    for event in events {
        match &mut event.kind {
            Some(Kind::Message(m)) => {
                if let Some(state) = state_of(event.seq) {
                    state.apply_to(m);
                }
                if let Some(reply) = &mut m.reply_to
                    && state_of(reply.seq).is_some_and(MessageState::deleted)
                {
                    reply.quote.clear();
                    reply.deleted = true;
                }
            }
            Some(Kind::Change(c)) => {
                if let Some(Change::Edited(edited)) = &mut c.change
                    && state_of(c.target_seq).is_some_and(MessageState::deleted)
                {
                    edited.text.clear();
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn react(emoji: &str, add: bool) -> ChangeOp {
        ChangeOp::React { emoji: emoji.into(), add }
    }

    #[test]
    fn reactions_count_once_per_user_and_drop_at_zero() {
        let mut state = MessageState::default();
        assert_eq!(state.change(&react("👍", true), 1, "ada", false), Applied::Reacted { count: 1 });
        assert_eq!(state.change(&react("👍", true), 2, "bob", false), Applied::Reacted { count: 2 });
        assert_eq!(state.change(&react("👍", true), 3, "bob", true), Applied::Unchanged);
        assert_eq!(state.change(&react("🎉", false), 4, "bob", false), Applied::Unchanged);
        assert_eq!(state.change(&react("👍", false), 5, "bob", true), Applied::Reacted { count: 1 });
        assert_eq!(state.change(&react("👍", false), 6, "ada", true), Applied::Reacted { count: 0 });
        assert!(state.r.is_empty());
    }

    #[test]
    fn a_message_takes_at_most_twenty_distinct_emoji() {
        let mut state = MessageState::default();
        let emoji: Vec<String> = (0..=MAX_REACTIONS).map(|i| format!("e{i}")).collect();
        for e in &emoji[..MAX_REACTIONS] {
            assert_eq!(state.change(&react(e, true), 1, "ada", false), Applied::Reacted { count: 1 });
        }
        assert_eq!(state.change(&react(&emoji[MAX_REACTIONS], true), 2, "ada", false), Applied::TooManyReactions);
        assert_eq!(state.change(&react(&emoji[0], true), 3, "bob", false), Applied::Reacted { count: 2 });
    }

    #[test]
    fn a_deleted_message_takes_no_more_changes_and_renders_empty() {
        let mut state = MessageState::default();
        state.change(&ChangeOp::Edit { text: "typo fixed".into() }, 10, "ada", false);
        state.change(&react("👍", true), 11, "bob", false);
        let delete = ChangeOp::Delete { by_moderator: true, reason: "spam".into() };
        assert_eq!(state.change(&delete, 12, "mod", false), Applied::Deleted);
        assert_eq!(state.change(&ChangeOp::Edit { text: "again".into() }, 13, "ada", false), Applied::Gone);
        let mut message = ChatMessage { text: "typo".into(), ..Default::default() };
        state.apply_to(&mut message);
        assert_eq!((message.text.as_str(), message.deleted_ms, message.deleted_by.as_str()), ("", 12, "mod"));
        assert!(message.reactions.is_empty());
    }

    #[test]
    fn lua_json_reads_back_including_its_empty_object() {
        let state: MessageState = serde_json::from_str(r#"{"e":1763769602000,"t":"hi \/ there","r":{}}"#).unwrap();
        assert_eq!(state.t.as_deref(), Some("hi / there"));
        assert!(state.r.is_empty());
        let state: MessageState = serde_json::from_str(r#"{"r":[["👍",2],["🎉",1]]}"#).unwrap();
        assert_eq!(state.r, vec![("👍".into(), 2), ("🎉".into(), 1)]);
        assert_eq!(serde_json::from_str::<MessageState>(&state.to_json()).unwrap(), state);
    }
}
