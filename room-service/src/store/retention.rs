//! Retention: forgetting messages older than a cutoff, one small batch per
//! call, so each delete holds its locks for a moment and the archiver's
//! inserts go on between batches. The caller repeats until a batch comes
//! back short, pausing as it likes.
//!
//! Each room's newest message (its highest seq) is kept whatever its age.
//! The room's numbering does not need it (the `rooms` table keeps that),
//! but the archiver's catch-up does: it copies from Redis everything above
//! the room's high-water mark, the newest row's seq. A room left with no
//! row would be copied again from the start of what Redis holds, bringing
//! back the very messages just removed (for the next round to remove
//! again). Kept, it also shows a quiet room's last message in scrollback.

use super::bounds;
use super::{Store, StoreError};

/// The oldest rows first, found on the `ts_ms` index, each but its room's
/// newest (a newer row of the room exists: one probe of the primary key);
/// `ctid` picks exactly those rows (PostgreSQL's `DELETE` has no `LIMIT`).
/// A forgotten message's reactions go with it.
const FORGET: &str = "
    WITH forgotten AS (
        DELETE FROM messages WHERE ctid IN (
            SELECT old.ctid FROM messages old
            WHERE old.ts_ms < $1
              AND EXISTS (SELECT 1 FROM messages newer WHERE newer.room = old.room AND newer.seq > old.seq)
            ORDER BY old.ts_ms LIMIT $2)
        RETURNING room, seq
    ), counts AS (
        DELETE FROM reaction_counts r USING forgotten f WHERE r.room = f.room AND r.seq = f.seq
    ), users AS (
        DELETE FROM message_reactions r USING forgotten f WHERE r.room = f.room AND r.seq = f.seq
    )
    SELECT count(*) FROM forgotten";

impl Store {
    /// Deletes up to `batch` (1 to [`bounds::MAX_FORGET_BATCH`]) messages,
    /// of any room, accepted before `cutoff_ts_ms` (ms since the Unix
    /// epoch), never a room's newest, and returns how many it deleted:
    /// fewer than `batch` means none older is left but rooms' newest.
    pub async fn forget_before(&self, cutoff_ts_ms: i64, batch: u32) -> Result<u64, StoreError> {
        let batch = bounds::forget_batch(batch)?;
        let done: i64 =
            sqlx::query_scalar(FORGET).bind(cutoff_ts_ms).bind(i64::from(batch)).fetch_one(&self.pool).await?;
        Ok(done.unsigned_abs())
    }
}
