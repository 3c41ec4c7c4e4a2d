//! Rooms' moderation in this process: the [`Moderation`] of the
//! [`MemoryBroker`], for the embedded mode. It keeps what the Redis hash
//! keeps (`moderation.rs`); `memory.rs` asks it, under its own lock, the
//! questions `presence.lua` and `message.lua` ask the hash (is this joiner
//! banned, is this sender muted), so enforcement is one step there too.
//! Nothing survives a restart.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chat_proto::RoomName;
use chat_proto::v1::RoomEvent;

use super::BrokerResult;
use super::memory::MemoryBroker;
use super::moderation::{AUDIT_LEN, Moderation, Roles, Standing};

/// Every room's moderation.
#[derive(Debug, Default)]
pub(super) struct Moderations(Mutex<HashMap<RoomName, RoomModeration>>);

#[derive(Debug, Default)]
struct RoomModeration {
    owner: String,
    moderators: HashSet<String>,
    banned: HashSet<String>,
    muted: HashMap<String, i64>,
    /// Newest first, at most [`AUDIT_LEN`].
    audit: VecDeque<RoomEvent>,
}

impl Moderations {
    fn lock(&self) -> MutexGuard<'_, HashMap<RoomName, RoomModeration>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// For a join: false when `user_id` is banned from `room`; else makes
    /// them its owner if it has none (not for a silent restore).
    pub(super) fn admit(&self, room: &RoomName, user_id: &str, restore: bool) -> bool {
        if user_id.is_empty() {
            return true;
        }
        let mut rooms = self.lock();
        let state = rooms.entry(room.clone()).or_default();
        if state.banned.contains(user_id) {
            return false;
        }
        if state.owner.is_empty() && !restore {
            state.owner = user_id.to_owned();
        }
        true
    }

    /// When `user_id`'s mute in `room` ends, if it is still running at `now_ms`.
    pub(super) fn muted_until(&self, room: &RoomName, user_id: &str, now_ms: i64) -> Option<i64> {
        let rooms = self.lock();
        let until = *rooms.get(room)?.muted.get(user_id)?;
        (until > now_ms).then_some(until)
    }

    /// The owner, and which of `user_ids` are moderators.
    pub(super) fn roles_of<'a>(
        &self,
        room: &RoomName,
        user_ids: impl Iterator<Item = &'a str>,
    ) -> (String, Vec<String>) {
        let rooms = self.lock();
        let Some(state) = rooms.get(room) else { return (String::new(), Vec::new()) };
        let moderators = user_ids.filter(|u| state.moderators.contains(*u)).map(str::to_owned).collect();
        (state.owner.clone(), moderators)
    }
}

impl Moderation for MemoryBroker {
    async fn roles(&self, room: &RoomName, user_ids: &[&str]) -> BrokerResult<Roles> {
        let rooms = self.moderation.lock();
        let Some(state) = rooms.get(room) else { return Ok(Roles::default()) };
        let pick =
            |set: &HashSet<String>| user_ids.iter().filter(|u| set.contains(**u)).map(|u| (*u).to_owned()).collect();
        Ok(Roles {
            owner: state.owner.clone(),
            moderators: pick(&state.moderators),
            banned: pick(&state.banned),
            muted: user_ids.iter().filter_map(|u| state.muted.get(*u).map(|t| ((*u).to_owned(), *t))).collect(),
        })
    }

    async fn change_standing(&self, room: &RoomName, user_id: &str, change: &Standing) -> BrokerResult<Vec<String>> {
        {
            let mut rooms = self.moderation.lock();
            let state = rooms.entry(room.clone()).or_default();
            match change {
                Standing::Mute { until_ms } => {
                    state.muted.insert(user_id.to_owned(), *until_ms);
                }
                Standing::Unmute => {
                    state.muted.remove(user_id);
                }
                Standing::Ban => {
                    state.banned.insert(user_id.to_owned());
                }
                Standing::Unban => {
                    state.banned.remove(user_id);
                }
                Standing::Moderator(true) => {
                    state.moderators.insert(user_id.to_owned());
                }
                Standing::Moderator(false) => {
                    state.moderators.remove(user_id);
                }
                Standing::Kick => {}
            }
        }
        match change {
            Standing::Kick | Standing::Ban => Ok(self.member_ids_of(room, user_id)),
            _ => Ok(Vec::new()),
        }
    }

    async fn record_audit(&self, room: &RoomName, event: &RoomEvent) -> BrokerResult<()> {
        let mut rooms = self.moderation.lock();
        let audit = &mut rooms.entry(room.clone()).or_default().audit;
        audit.push_front(event.clone());
        audit.truncate(AUDIT_LEN);
        Ok(())
    }

    async fn audit(&self, room: &RoomName, before_seq: u64, limit: usize) -> BrokerResult<Vec<RoomEvent>> {
        let rooms = self.moderation.lock();
        let Some(state) = rooms.get(room) else { return Ok(Vec::new()) };
        Ok(state.audit.iter().filter(|e| before_seq == 0 || e.seq < before_seq).take(limit).cloned().collect())
    }
}
