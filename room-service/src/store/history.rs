//! Reading a room's record back: its high-water mark, pages of older
//! events by keyset, and ranges of newer ones (what a resume missed). Both
//! are ranges of the `(room, seq)` primary key, as fast on a room's first
//! page as ten thousand pages down (never `OFFSET`, which reads and throws
//! away every row it skips). Pages and ranges hold every stored event:
//! messages in their current state and the changes of them, each at its
//! own seq, so they have no gaps. One message by seq, and which reactions
//! are a user's, serve the room-service's checks and `mine`.

use super::bounds;
use super::row::{COLUMNS, from_row};
use super::{Store, StoreError, StoredMessage};

/// A page of a room's stored events (messages and changes), **oldest first** (the order they are shown
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
        let mut messages = rows.iter().take(limit as usize).map(from_row).collect::<Result<Vec<_>, _>>()?;
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
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// The message at `seq` of `room` as it now stands; `None` when no
    /// message is stored there (nothing, or a change).
    pub async fn message(&self, room: &str, seq: u64) -> Result<Option<StoredMessage>, StoreError> {
        let row =
            sqlx::query(&format!("SELECT {COLUMNS} FROM messages WHERE room = $1 AND seq = $2 AND action IS NULL"))
                .bind(room)
                .bind(bounds::seq(seq)?)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Which reactions on `room`'s messages `seqs` (at most
    /// [`bounds::MAX_REACTED`]) are `user_id`'s: `(seq, emoji)` pairs, by
    /// seq then emoji (in code point order). What a page marks `mine`.
    pub async fn reacted(&self, room: &str, user_id: &str, seqs: &[u64]) -> Result<Vec<(u64, String)>, StoreError> {
        bounds::reacted(seqs.len())?;
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let seqs: Vec<i64> = seqs.iter().map(|&s| bounds::seq(s)).collect::<Result<_, _>>()?;
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, emoji FROM message_reactions
             WHERE room = $1 AND seq = ANY($2) AND user_id = $3 AND added
             ORDER BY seq, emoji COLLATE \"C\"",
        )
        .bind(room)
        .bind(seqs)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(seq, emoji)| (seq.unsigned_abs(), emoji)).collect())
    }
}
