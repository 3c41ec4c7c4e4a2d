//! Where a room lives in Redis.
//!
//! Per room `r` (the `{r}` hash tag keeps a room's keys on one cluster slot):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `chat:{r}:seq` | string | the last sequence number given out |
//! | `chat:{r}:epoch` | string | the id of the room's current history |
//! | `chat:{r}:log` | stream | stored events, entry id `<seq>-1`, capped with `MAXLEN ~` |
//! | `chat:{r}:members` | hash | member id → `Member` (protobuf) |
//! | `chat:{r}:presence` | sorted set | member id → presence expiry (ms) |
//! | `chat:{r}:sent:<member>:<client_id>` | string | a sent message, for dedupe, with a TTL |
//! | `chat:{r}:events` | pub/sub channel | every event of the room |
//! | `chat:rooms` | set | every room name in use (expired rooms are dropped by `ListRooms`) |
//!
//! Every per-room key but the dedupe copies gets the room TTL again with each
//! stored event, so a room nobody writes to is forgotten.

/// The set of every room name in use.
pub const ROOMS_KEY: &str = "chat:rooms";

/// The names of one room's keys.
pub struct Keys {
    pub seq: String,
    pub epoch: String,
    pub log: String,
    pub members: String,
    pub presence: String,
    pub channel: String,
}

impl Keys {
    pub fn of(room: &str) -> Self {
        let key = |suffix: &str| format!("chat:{{{room}}}:{suffix}");
        Self {
            seq: key("seq"),
            epoch: key("epoch"),
            log: key("log"),
            members: key("members"),
            presence: key("presence"),
            channel: key("events"),
        }
    }
}

/// The room a channel name belongs to: `chat:{general}:events` → `general`.
pub fn room_of_channel(channel: &[u8]) -> Option<&str> {
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
