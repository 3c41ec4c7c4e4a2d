//! Where a room lives in Redis.
//!
//! Per room `r` (the `{r}` hash tag keeps a room's keys on one cluster slot):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `chat:{r}:seq` | string | the last sequence number given out |
//! | `chat:{r}:epoch` | string | the id of the room's current history (set by its first event; with a store, seeded from the store's record by `seed.lua`) |
//! | `chat:{r}:log` | stream | stored events, entry id `<seq>-1`, capped with `MAXLEN ~` |
//! | `chat:{r}:members` | hash | member id → JSON record (see `record.rs`) |
//! | `chat:{r}:roster` | sorted set, all scores 0 | `<name>\0<member id>`: members in name order, for paging |
//! | `chat:{r}:presence` | sorted set | member id → presence expiry (ms) |
//! | `chat:{r}:sent:<member>:<client_id>` | string | a sent message, for dedupe, with a TTL |
//! | `chat:{r}:msg:<seq>` | string | a changed message's state: its edit, deletion and reaction counts (JSON, `message_state.rs`) |
//! | `chat:{r}:reactors:<seq>` | set | `<emoji>\0<user id>`: who reacted with what, one per user per emoji |
//! | `chat:{r}:mod` | hash | the room's owner, moderators, mutes and bans (`moderation.rs`) |
//! | `chat:{r}:audit` | list | the room's moderation events, newest first, the last 1000 |
//! | `chat:{r}:events` | pub/sub channel | every event of the room: messages, presence batches, typing |
//! | `chat:rooms` | set | every room name in use (expired rooms are dropped by `ListRooms`) |
//!
//! Every per-room key but the dedupe copies gets the room TTL again with each
//! message and each presence change, so a room nobody uses is forgotten. A
//! message's state and reactors get it again with each change to that
//! message: the state of one nobody changed for the room TTL is forgotten
//! (with a store, the store keeps it, and the next change starts from it).
//!
//! People's keys (a user's rooms, markers, mentions, profile; a direct
//! conversation's record) are laid out in `people.rs`; they have no TTL.

/// The set of every room name in use.
pub(crate) const ROOMS_KEY: &str = "chat:rooms";

/// The names of one room's keys.
pub(crate) struct Keys {
    /// `chat:{r}`, which every key of the room starts with.
    prefix: String,
    pub(crate) seq: String,
    pub(crate) epoch: String,
    pub(crate) log: String,
    pub(crate) members: String,
    pub(crate) roster: String,
    pub(crate) presence: String,
    pub(crate) channel: String,
    pub(crate) moderation: String,
    pub(crate) audit: String,
}

impl Keys {
    pub(crate) fn of(room: &str) -> Self {
        let prefix = format!("chat:{{{room}}}");
        let key = |suffix: &str| format!("{prefix}:{suffix}");
        Self {
            seq: key("seq"),
            epoch: key("epoch"),
            log: key("log"),
            members: key("members"),
            roster: key("roster"),
            presence: key("presence"),
            channel: key("events"),
            moderation: key("mod"),
            audit: key("audit"),
            prefix,
        }
    }

    /// A changed message's state (JSON, see `message_state`).
    pub(crate) fn state(&self, seq: u64) -> String {
        format!("{}:msg:{seq}", self.prefix)
    }

    /// Who put which emoji on a message: a set of `<emoji>\0<user id>`.
    pub(crate) fn reactors(&self, seq: u64) -> String {
        format!("{}:reactors:{seq}", self.prefix)
    }

    /// Where a member's sent message is kept for dedupe of its `client_id`.
    pub(crate) fn sent(&self, member_id: &str, client_id: &str) -> String {
        format!("{}:sent:{member_id}:{client_id}", self.prefix)
    }
}

/// The room a channel name belongs to: `chat:{general}:events` → `general`.
pub(crate) fn room_of_channel(channel: &[u8]) -> Option<&str> {
    let name = std::str::from_utf8(channel).ok()?;
    name.strip_prefix("chat:{")?.strip_suffix("}:events")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_map_back_to_rooms() {
        assert_eq!(room_of_channel(Keys::of("dev.ops").channel.as_bytes()), Some("dev.ops"));
        assert_eq!(room_of_channel(b"chat:{general}:log"), None);
        assert_eq!(room_of_channel(b"\xff"), None);
    }
}
