//! Where a room's moderation lives: its owner, moderators, mutes and bans
//! (one hash per room, `chat:{r}:mod`), and its audit log (a list per
//! room, `chat:{r}:audit`, the newest [`AUDIT_LEN`] entries).
//!
//! The hash is read where it is enforced, inside the steps that already
//! run for a join and a send: `presence.lua` refuses a banned user's join
//! (and makes the first joiner the owner), `message.lua` a muted user's
//! send. So enforcement costs no extra round trip and holds on every
//! room-service at once. [`Moderation::change_standing`] writes it and
//! finds, in the same step, the members a kick or ban removes.
//!
//! Fields of the hash: `owner` → user id; `role:<user>` → "moderator";
//! `ban:<user>` → "1"; `mute:<user>` → until (ms). It gets the room's TTL
//! again with every presence change, send and action: a room forgotten
//! for lack of use forgets its moderation with it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::LazyLock;

use chat_proto::RoomName;
use chat_proto::v1::RoomEvent;
use prost::Message;
use redis::Script;

use super::keys::Keys;
use super::redis::RedisBroker;
use super::{BrokerError, BrokerResult};

/// Audit entries kept per room in Redis (PostgreSQL keeps them all).
pub(crate) const AUDIT_LEN: usize = 1000;

/// A change to one user's standing in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Mute {
        until_ms: i64,
    },
    Unmute,
    Kick,
    Ban,
    Unban,
    /// Made a moderator (true) or a member again (false).
    Moderator(bool),
}

/// What a room's moderation says about some users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles {
    /// The room's owner; empty when it has none.
    pub owner: String,
    /// Of the users asked about: those the room has made moderators.
    pub moderators: Vec<String>,
    pub banned: Vec<String>,
    /// Mutes still running, or run out but not yet lifted (compare with now).
    pub muted: HashMap<String, i64>,
}

impl Roles {
    pub fn is_moderator(&self, user_id: &str) -> bool {
        !user_id.is_empty() && (self.owner == user_id || self.moderators.iter().any(|m| m == user_id))
    }
}

/// The moderation state of rooms, beside their events and presence.
pub trait Moderation: Send + Sync + 'static {
    /// The room's owner and what it says about `user_ids`.
    fn roles(&self, room: &RoomName, user_ids: &[&str]) -> impl Future<Output = BrokerResult<Roles>> + Send;

    /// Changes `user_id`'s standing; for a kick or ban, returns the ids of
    /// their members in the room (to be removed by the caller).
    fn change_standing(
        &self,
        room: &RoomName,
        user_id: &str,
        change: &Standing,
    ) -> impl Future<Output = BrokerResult<Vec<String>>> + Send;

    /// Keeps a stored moderation event in the room's audit log.
    fn record_audit(&self, room: &RoomName, event: &RoomEvent) -> impl Future<Output = BrokerResult<()>> + Send;

    /// The audit log, newest first: up to `limit` entries with a seq below
    /// `before_seq` (0: from the newest).
    fn audit(
        &self,
        room: &RoomName,
        before_seq: u64,
        limit: usize,
    ) -> impl Future<Output = BrokerResult<Vec<RoomEvent>>> + Send;
}

static STANDING: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("moderation.lua")));

fn field(kind: &str, user: &str) -> String {
    format!("{kind}:{user}")
}

impl Moderation for RedisBroker {
    async fn roles(&self, room: &RoomName, user_ids: &[&str]) -> BrokerResult<Roles> {
        let mut fields = vec!["owner".to_owned()];
        for user in user_ids {
            fields.extend([field("role", user), field("ban", user), field("mute", user)]);
        }
        let values: Vec<Option<String>> =
            redis::cmd("HMGET").arg(Keys::of(room).moderation).arg(&fields).query_async(&mut self.conn()).await?;
        let mut roles = Roles { owner: values.first().cloned().flatten().unwrap_or_default(), ..Roles::default() };
        for (user, chunk) in user_ids.iter().zip(values[1..].chunks(3)) {
            if chunk[0].is_some() {
                roles.moderators.push((*user).to_owned());
            }
            if chunk[1].is_some() {
                roles.banned.push((*user).to_owned());
            }
            if let Some(until) = chunk[2].as_deref().and_then(|u| u.parse().ok()) {
                roles.muted.insert((*user).to_owned(), until);
            }
        }
        Ok(roles)
    }

    async fn change_standing(&self, room: &RoomName, user_id: &str, change: &Standing) -> BrokerResult<Vec<String>> {
        let (op, value) = match change {
            Standing::Mute { until_ms } => ("mute", until_ms.to_string()),
            Standing::Unmute => ("unmute", String::new()),
            Standing::Kick => ("kick", String::new()),
            Standing::Ban => ("ban", String::new()),
            Standing::Unban => ("unban", String::new()),
            Standing::Moderator(true) => ("role", "moderator".to_owned()),
            Standing::Moderator(false) => ("role", "member".to_owned()),
        };
        let keys = Keys::of(room);
        let mut call = STANDING.prepare_invoke();
        call.key(&keys.moderation).key(&keys.members).arg(op).arg(user_id).arg(value).arg(self.room_ttl_secs());
        Ok(call.invoke_async(&mut self.conn()).await?)
    }

    async fn record_audit(&self, room: &RoomName, event: &RoomEvent) -> BrokerResult<()> {
        let keys = Keys::of(room);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("LPUSH")
            .arg(&keys.audit)
            .arg(event.encode_to_vec())
            .ignore()
            .cmd("LTRIM")
            .arg(&keys.audit)
            .arg(0)
            .arg(AUDIT_LEN - 1)
            .ignore()
            .cmd("EXPIRE")
            .arg(&keys.audit)
            .arg(self.room_ttl_secs())
            .ignore();
        let () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn audit(&self, room: &RoomName, before_seq: u64, limit: usize) -> BrokerResult<Vec<RoomEvent>> {
        let entries: Vec<Vec<u8>> =
            redis::cmd("LRANGE").arg(Keys::of(room).audit).arg(0).arg(-1).query_async(&mut self.conn()).await?;
        let mut events = Vec::new();
        for entry in entries {
            let event = RoomEvent::decode(entry.as_slice())
                .map_err(|e| BrokerError::Corrupt(format!("an audit entry of room {room}: {e}")))?;
            if before_seq == 0 || event.seq < before_seq {
                events.push(event);
            }
            if events.len() == limit {
                break;
            }
        }
        Ok(events)
    }
}
