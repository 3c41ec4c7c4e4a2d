//! The rule for a search query, in one place: the gateway refuses a bad
//! `search` frame with it before any call, and the room-service's store
//! refuses a bad `Search` call with the same words.

use crate::ErrorCode;
use crate::names::Invalid;

/// Bytes of a search query at most (what people type in a search box).
pub const MAX_QUERY_BYTES: usize = 256;

/// Checks a search query: 1 to [`MAX_QUERY_BYTES`] bytes with at least one
/// letter or digit — PostgreSQL's parser finds no word in anything else,
/// and the search would match nothing.
pub fn check_query(query: &str) -> Result<(), Invalid> {
    let message = if query.is_empty() || query.len() > MAX_QUERY_BYTES {
        format!("the search query is {} bytes: it must be 1 to {MAX_QUERY_BYTES} bytes", query.len())
    } else if !query.chars().any(char::is_alphanumeric) {
        "the search query has no letters or digits to search for".to_owned()
    } else {
        return Ok(());
    };
    Err(Invalid { code: ErrorCode::BadQuery, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_1_to_256_bytes_with_a_letter_or_digit() {
        for (q, ok) in [
            ("", false),
            ("a", true),
            ("7", true),
            (&"é".repeat(128), true),  // 256 bytes
            (&"é".repeat(129), false), // 258 bytes
            (&"a".repeat(257), false),
            ("'; --", false),
            ("?!… —", false),
            ("καλημέρα", true),
            ("привет мир", true),
        ] {
            assert_eq!(check_query(q).is_ok(), ok, "query {q:?}");
        }
        let refused = check_query("").unwrap_err();
        assert_eq!(refused.code, ErrorCode::BadQuery);
        assert_eq!(refused.message, "the search query is 0 bytes: it must be 1 to 256 bytes");
    }
}
