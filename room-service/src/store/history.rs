//! Reading a room's record back: its high-water mark, pages of older
//! messages by keyset, and ranges of newer ones (what a resume missed). Both are ranges of the `(room, seq)` primary key, as
//! fast on a room's first page as ten thousand pages down (never `OFFSET`,
//! which reads and throws away every row it skips).

use super::bounds;
use super::message::COLUMNS;
use super::{Store, StoreError, StoredMessage};

/// A page of a room's messages, **oldest first** (the order they are shown
/// in, and that `History` answers in).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub messages: Vec<StoredMessage>,
    /// The cursor for the next older page (`before_seq`): the seq of this
    /// page's oldest message. `None` once the room's first stored message is
    /// on this page (or the page is empty): there is nothing older.
    pub next_before: Option<u64>,
}

impl Page {
    /// Whether the room's first stored message has been reached: no older
    /// page exists. (After retention, "first" is the oldest one kept.)
    pub fn reached_first(&self) -> bool {
        self.next_before.is_none()
    }
}

impl Store {
    /// The highest seq stored for `room`; `None` when none is. The archiver
    /// copies from Redis everything above it.
    pub async fn high_water(&self, room: &str) -> Result<Option<u64>, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM messages WHERE room = $1 ORDER BY seq DESC LIMIT 1")
            .bind(room)
            .fetch_optional(&self.pool)
            .await?;
        Ok(seq.map(|s| s.unsigned_abs()))
    }

    /// Up to `limit` (1 to [`bounds::MAX_PAGE`]) of `room`'s messages with a
    /// seq below `before_seq` (`None`: the newest), oldest first. Messages
    /// appended meanwhile do not move the cursor: pages are by seq, not by
    /// position.
    pub async fn before(&self, room: &str, before_seq: Option<u64>, limit: u32) -> Result<Page, StoreError> {
        let limit = bounds::page(limit)?;
        // One row more than the page: whether it exists says whether an
        // older page does, without a second query.
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages WHERE room = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        ))
        .bind(room)
        .bind(bounds::cursor(before_seq))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit as usize;
        let mut messages =
            rows.iter().take(limit as usize).map(StoredMessage::from_row).collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        let next_before = if more { messages.first().map(|m| m.seq) } else { None };
        Ok(Page { messages, next_before })
    }

    /// Up to `limit` (1 to [`bounds::MAX_RANGE`]) of `room`'s messages with
    /// a seq above `after_seq`, oldest first: what a member resuming from
    /// `after_seq` missed, where Redis no longer holds it.
    pub async fn after(&self, room: &str, after_seq: u64, limit: u32) -> Result<Vec<StoredMessage>, StoreError> {
        let limit = bounds::range(limit)?;
        let after = bounds::seq(after_seq)?;
        let rows =
            sqlx::query(&format!("SELECT {COLUMNS} FROM messages WHERE room = $1 AND seq > $2 ORDER BY seq LIMIT $3"))
                .bind(room)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(StoredMessage::from_row).collect::<Result<_, _>>()?)
    }
}
