//! Search in one room's record: PostgreSQL's full-text index, newest hits
//! first, paged by the same seq cursor as scrollback.
//!
//! What a person types is parsed by `websearch_to_tsquery('simple', …)`:
//! words must all appear (in any case: `simple` lowercases, and does not
//! stem, so any language works), `"two words"` must appear together, `or`
//! gives alternatives and `-word` excludes. The query is always a bound
//! parameter; the rest is punctuation to the parser.
//!
//! Highlights: `ts_headline` marks the words that matched in each hit's
//! text with two private-use characters (U+E000 before, U+E001 after), and
//! [`highlights`] turns those marks into byte ranges of the text, so no
//! marker ever reaches a client. A text that itself holds one of those two
//! characters gets no highlights (it is still found).

use std::ops::Range;

use sqlx::Row;

use super::bounds;
use super::row::{COLUMNS, from_row};
use super::{Store, StoreError, StoredMessage};

const START: char = '\u{E000}';
const STOP: char = '\u{E001}';
/// Mark every match in the whole text (not fragments of it).
const HEADLINE: &str = "StartSel=\u{E000}, StopSel=\u{E001}, HighlightAll=true";

/// A message that matched, with where.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub message: StoredMessage,
    /// The words that matched, as byte ranges of `message.text`, in order.
    pub highlights: Vec<Range<usize>>,
}

impl Hit {
    /// The highlighted words, as they are written in the text.
    pub fn highlighted_words(&self) -> Vec<&str> {
        self.highlights.iter().filter_map(|r| self.message.text.get(r.clone())).collect()
    }
}

/// A page of hits, **newest first**.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub hits: Vec<Hit>,
    /// The cursor for the next page (`before_seq`): the seq of this page's
    /// oldest hit. `None` when there are no more hits.
    pub next_before: Option<u64>,
}

impl Store {
    /// Up to `limit` (1 to [`bounds::MAX_SEARCH_PAGE`]) of `room`'s
    /// messages that match `query` (1 to [`bounds::MAX_QUERY_BYTES`] bytes)
    /// with a seq below `before_seq` (`None`: from the newest), newest first.
    pub async fn search(
        &self,
        room: &str,
        query: &str,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<SearchPage, StoreError> {
        let query = bounds::query(query)?;
        let limit = bounds::search_page(limit)?;
        // The room's rows on the primary key, or the word's on the GIN index,
        // whichever the planner finds fewer of; one row more than the page
        // says whether there is a next one.
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS}, ts_headline('simple', body, q, $5) AS marked
             FROM messages, websearch_to_tsquery('simple', $2) AS q
             WHERE room = $1 AND words @@ q AND seq < $3 AND action IS NULL AND deleted_ms = 0
             ORDER BY seq DESC LIMIT $4"
        ))
        .bind(room)
        .bind(query)
        .bind(bounds::cursor(before_seq))
        .bind(i64::from(limit) + 1)
        .bind(HEADLINE)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit as usize;
        let hits = rows
            .iter()
            .take(limit as usize)
            .map(|row| {
                let message = from_row(row)?;
                let marked: String = row.try_get("marked")?;
                let highlights = highlights(&message.text, &marked);
                Ok(Hit { message, highlights })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let next_before = if more { hits.last().map(|h| h.message.seq) } else { None };
        Ok(SearchPage { hits, next_before })
    }
}

/// The byte ranges of `text` that `marked` (the text with [`START`] and
/// [`STOP`] around matched words) marks. None at all when the text holds a
/// marker itself, or `marked` is not the text with marks added.
fn highlights(text: &str, marked: &str) -> Vec<Range<usize>> {
    if text.contains([START, STOP]) {
        return Vec::new();
    }
    let (mut ranges, mut at, mut start, mut rest) = (Vec::new(), 0, None, text);
    for c in marked.chars() {
        match c {
            START => start = Some(at),
            STOP => ranges.extend(start.take().map(|s| s..at)),
            c => {
                let Some(after) = rest.strip_prefix(c) else { return Vec::new() };
                rest = after;
                at += c.len_utf8();
            }
        }
    }
    if rest.is_empty() { ranges } else { Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_become_byte_ranges_of_the_text() {
        let text = "Καλημέρα κόσμε, café!";
        let marked = "\u{E000}Καλημέρα\u{E001} κόσμε, \u{E000}café\u{E001}!";
        let ranges = highlights(text, marked);
        let words: Vec<&str> = ranges.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(words, ["Καλημέρα", "café"]);
    }

    #[test]
    fn no_highlights_when_they_cannot_be_told_apart() {
        // The text holds a marker character itself.
        assert!(highlights("a\u{E000}b", "\u{E000}a\u{E001}\u{E000}b").is_empty());
        // The marked text is not the text.
        assert!(highlights("hello", "\u{E000}help\u{E001}").is_empty());
        assert!(highlights("hello", "\u{E000}hell\u{E001}").is_empty());
    }

    #[test]
    fn unmarked_text_has_no_highlights() {
        assert!(highlights("hello", "hello").is_empty());
    }
}
