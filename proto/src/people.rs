//! Names every side derives alike for people: the room of a direct
//! conversation and the inbox room a user's updates travel on.
//!
//! A direct conversation is a room named from its sorted user ids, so the
//! same set of people always lands in the same room, whoever opens it and
//! on whatever gateway. Inboxes are sharded: every user's updates go out on
//! one of [`INBOX_SHARDS`] inbox rooms, picked by a hash of the user id, so
//! a gateway with ten thousand users follows at most that many feeds, not
//! one per user; it hands each update only to the user it names.

use sha2::{Digest, Sha256};

use crate::ErrorCode;
use crate::names::Invalid;

/// Users in one direct conversation, the opener included.
pub const MAX_DIRECT_MEMBERS: usize = 8;
/// User ids are at most this many characters (a JWT `sub`, or a member id).
pub const MAX_USER_ID_CHARS: usize = 128;
/// How many inbox rooms users' updates are spread over.
pub const INBOX_SHARDS: u32 = 64;
/// Rooms named with this prefix are direct conversations.
pub const DIRECT_PREFIX: &str = "dm-";
/// Rooms named with this prefix are inboxes: nobody joins them.
pub const INBOX_PREFIX: &str = "inbox.";

/// The room of the direct conversation between `users` (any order,
/// repeats ignored): `dm-` and 40 hex digits of a hash of the sorted ids.
pub fn direct_room<S: AsRef<str>>(users: &[S]) -> String {
    let mut ids: Vec<&str> = users.iter().map(AsRef::as_ref).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut hash = Sha256::new();
    hash.update(b"chat direct\0");
    for id in ids {
        // Length-prefixed, so no id can pose as two.
        hash.update((id.len() as u64).to_be_bytes());
        hash.update(id.as_bytes());
    }
    let hex: String = hash.finalize()[..20].iter().map(|b| format!("{b:02x}")).collect();
    format!("{DIRECT_PREFIX}{hex}")
}

/// Whether `room` is named as a direct conversation.
pub fn is_direct(room: &str) -> bool {
    room.strip_prefix(DIRECT_PREFIX).is_some_and(|rest| rest.len() == 40 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `room` is an inbox room.
pub fn is_inbox(room: &str) -> bool {
    room.starts_with(INBOX_PREFIX)
}

/// Whether people may not pick `room` as a room of their own: inboxes, and
/// names shaped like a direct conversation's (those are opened, not joined
/// by name into existence).
pub fn is_reserved(room: &str) -> bool {
    is_inbox(room) || room.starts_with(DIRECT_PREFIX)
}

/// The inbox room `user_id`'s updates go out on: `inbox.0` to `inbox.63`.
pub fn inbox_room(user_id: &str) -> String {
    let hash = Sha256::digest(user_id.as_bytes());
    let shard = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]) % INBOX_SHARDS;
    format!("{INBOX_PREFIX}{shard}")
}

/// Checks a user id: 1–128 characters, no control characters.
pub fn check_user_id(user_id: &str) -> Result<(), Invalid> {
    if user_id.is_empty() || user_id.chars().count() > MAX_USER_ID_CHARS || user_id.chars().any(char::is_control) {
        return Err(Invalid {
            code: ErrorCode::BadDirect,
            message: format!(
                "user id {:?} is not a user id: use the `user_id` of a member or of a welcome frame (1 to {MAX_USER_ID_CHARS} printable characters)",
                user_id.chars().take(80).collect::<String>()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direct_room_is_the_same_from_either_side() {
        let one = direct_room(&["bob", "ada"]);
        assert_eq!(one, direct_room(&["ada", "bob"]));
        assert_eq!(one, direct_room(&["ada", "bob", "ada"]), "repeats are ignored");
        assert_ne!(one, direct_room(&["ada", "bob", "cy"]));
        assert!(is_direct(&one) && is_reserved(&one));
        assert!(crate::names::check_room(&one).is_ok(), "{one} must be a valid room name");
        assert!(!is_direct("dm-general"));
    }

    #[test]
    fn an_id_with_a_separator_cannot_pose_as_two() {
        assert_ne!(direct_room(&["a\0b", "c"]), direct_room(&["a", "b\0c"]));
    }

    #[test]
    fn inboxes_spread_over_the_shards_and_are_valid_rooms() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..2000 {
            let room = inbox_room(&format!("user{i}"));
            assert!(crate::names::check_room(&room).is_ok());
            assert!(is_inbox(&room) && is_reserved(&room));
            seen.insert(room);
        }
        assert_eq!(seen.len(), INBOX_SHARDS as usize);
        assert_eq!(inbox_room("ada"), inbox_room("ada"));
    }

    #[test]
    fn bad_user_ids_are_refused() {
        assert!(check_user_id("ada").is_ok());
        assert!(check_user_id("").is_err());
        assert!(check_user_id("a\nb").is_err());
        assert!(check_user_id(&"x".repeat(129)).is_err());
    }
}
