//! The bounds of every store call, checked before any SQL runs, so an
//! out-of-range request costs nothing and says what was wrong.

use super::StoreError;

/// Messages in one scrollback page (Mattermost: 60 by default, 200 at
/// most): the wire's bound, which a gateway checks too.
pub use chat_proto::limits::MAX_HISTORY_PAGE as MAX_PAGE;
/// Messages one ascending range ([`after`](super::Store::after)) returns:
/// a resume's missed messages are read in ranges of this many (a resume
/// gets at most 10,000), each one index range scan of a few ms.
pub const MAX_RANGE: u32 = 1000;
/// Hits in one search page: search reads more than a page does
/// (`ts_headline` parses every hit again).
pub use chat_proto::limits::MAX_SEARCH_PAGE;
/// Bytes of a search query (what people type in a search box).
pub use chat_proto::query::MAX_QUERY_BYTES;
/// Messages one [`reacted`](super::Store::reacted) looks at: more than a
/// join's history (500), one probe of the primary key each.
pub const MAX_REACTED: usize = 1000;
/// Messages in one [`append`](super::Store::append): one statement of at
/// most ~4 MB of text (4 KiB each), a few ms to insert.
pub const MAX_APPEND: usize = 1000;
/// Rows one retention batch deletes: short enough that the locks and WAL of
/// one batch never hold up the archiver's inserts for long.
pub const MAX_FORGET_BATCH: u32 = 10_000;
/// Users one [`profiles`](super::Store::profiles) looks up: one `= ANY`
/// probe of the primary key per user, one statement.
pub const MAX_PROFILES: usize = 1000;
/// Rooms one [`add_rooms`](super::Store::add_rooms) adds: a presence
/// batch's joins, one multi-row insert.
pub const MAX_ROOM_ADDS: usize = 1000;
/// Members of a direct conversation: the opener and 1 to 7 others.
pub use chat_proto::people::MAX_DIRECT_MEMBERS;
/// Rooms [`user_rooms`](super::Store::user_rooms) returns for one user, the
/// most recently joined first: far more than a sidebar shows (UserRooms
/// answers at most 500), and still one bounded read when a user is loaded
/// back into Redis. Rooms past it stay in the store.
pub const MAX_USER_ROOMS: u32 = 10_000;
/// Mentions returned per room, the newest: a badge says "99+" long before
/// it. Older ones above the marker stay in the store until read past.
pub const MAX_ROOM_MENTIONS: u32 = 1000;

pub(crate) fn page(limit: u32) -> Result<u32, StoreError> {
    if (1..=MAX_PAGE).contains(&limit) { Ok(limit) } else { Err(StoreError::PageLimit(limit)) }
}

pub(crate) fn range(limit: u32) -> Result<u32, StoreError> {
    if (1..=MAX_RANGE).contains(&limit) { Ok(limit) } else { Err(StoreError::RangeLimit(limit)) }
}

pub(crate) fn search_page(limit: u32) -> Result<u32, StoreError> {
    if (1..=MAX_SEARCH_PAGE).contains(&limit) { Ok(limit) } else { Err(StoreError::SearchLimit(limit)) }
}

/// A query of 1 to [`MAX_QUERY_BYTES`] bytes with at least one letter or
/// digit ([`chat_proto::query::check_query`], the rule gateways check
/// too): PostgreSQL's parser finds no word in anything else, and would
/// match nothing.
pub(crate) fn query(query: &str) -> Result<&str, StoreError> {
    chat_proto::query::check_query(query).map_err(StoreError::Query)?;
    Ok(query)
}

pub(crate) fn forget_batch(batch: u32) -> Result<u32, StoreError> {
    if (1..=MAX_FORGET_BATCH).contains(&batch) { Ok(batch) } else { Err(StoreError::ForgetBatch(batch)) }
}

pub(crate) fn reacted(n: usize) -> Result<(), StoreError> {
    if n <= MAX_REACTED { Ok(()) } else { Err(StoreError::ReactedTooMany(n)) }
}

pub(crate) fn profiles(n: usize) -> Result<(), StoreError> {
    if n <= MAX_PROFILES { Ok(()) } else { Err(StoreError::ProfilesTooMany(n)) }
}

pub(crate) fn room_adds(n: usize) -> Result<(), StoreError> {
    if n <= MAX_ROOM_ADDS { Ok(()) } else { Err(StoreError::RoomAddsTooMany(n)) }
}

pub(crate) fn direct_members(n: usize) -> Result<(), StoreError> {
    if (2..=MAX_DIRECT_MEMBERS).contains(&n) { Ok(()) } else { Err(StoreError::DirectMembers(n)) }
}

/// A sequence number as PostgreSQL's bigint.
pub(crate) fn seq(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::SeqOutOfRange(seq))
}

/// A `before_seq` cursor as a bigint bound: none means above every message.
pub(crate) fn cursor(before_seq: Option<u64>) -> i64 {
    before_seq.map_or(i64::MAX, |seq| i64::try_from(seq).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_at_both_ends() {
        assert!(page(0).is_err() && page(1).is_ok() && page(MAX_PAGE).is_ok() && page(MAX_PAGE + 1).is_err());
        assert!(range(0).is_err() && range(MAX_RANGE).is_ok() && range(MAX_RANGE + 1).is_err());
        assert!(search_page(0).is_err() && search_page(MAX_SEARCH_PAGE).is_ok());
        assert!(search_page(MAX_SEARCH_PAGE + 1).is_err());
        assert!(forget_batch(0).is_err() && forget_batch(MAX_FORGET_BATCH + 1).is_err());
        assert!(seq(u64::MAX).is_err() && seq(i64::MAX as u64).is_ok());
        assert!(profiles(0).is_ok() && profiles(MAX_PROFILES).is_ok() && profiles(MAX_PROFILES + 1).is_err());
        assert!(reacted(0).is_ok() && reacted(MAX_REACTED).is_ok() && reacted(MAX_REACTED + 1).is_err());
        assert!(room_adds(MAX_ROOM_ADDS).is_ok() && room_adds(MAX_ROOM_ADDS + 1).is_err());
        assert!(direct_members(1).is_err() && direct_members(2).is_ok());
        assert!(direct_members(MAX_DIRECT_MEMBERS).is_ok() && direct_members(MAX_DIRECT_MEMBERS + 1).is_err());
    }

    #[test]
    fn queries_are_1_to_256_bytes_with_a_word() {
        for (q, ok) in [
            ("", false),
            ("a", true),
            (&"é".repeat(128), true),  // 256 bytes
            (&"é".repeat(129), false), // 258 bytes
            ("'; --", false),
            ("καλημέρα", true),
        ] {
            assert_eq!(query(q).is_ok(), ok, "query {q:?}");
        }
        assert_eq!(query("").unwrap_err().to_string(), "the search query is 0 bytes: it must be 1 to 256 bytes");
    }

    #[test]
    fn no_cursor_is_above_every_message() {
        assert_eq!(cursor(None), i64::MAX);
        assert_eq!(cursor(Some(7)), 7);
        assert_eq!(cursor(Some(u64::MAX)), i64::MAX);
    }
}
