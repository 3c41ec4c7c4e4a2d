//! Retention: forgetting messages older than a cutoff, one small batch per
//! call, so each delete holds its locks for a moment and the archiver's
//! inserts go on between batches. The caller repeats until a batch comes
//! back short, pausing as it likes.

use super::bounds;
use super::{Store, StoreError};

/// The oldest rows first, found on the `ts_ms` index; `ctid` picks exactly
/// those rows (PostgreSQL's `DELETE` has no `LIMIT`).
const FORGET: &str = "
    DELETE FROM messages WHERE ctid IN (
        SELECT ctid FROM messages WHERE ts_ms < $1 ORDER BY ts_ms LIMIT $2)";

impl Store {
    /// Deletes up to `batch` (1 to [`bounds::MAX_FORGET_BATCH`]) messages,
    /// of any room, accepted before `cutoff_ts_ms` (ms since the Unix
    /// epoch), and returns how many it deleted: fewer than `batch` means
    /// none older is left.
    pub async fn forget_before(&self, cutoff_ts_ms: i64, batch: u32) -> Result<u64, StoreError> {
        let batch = bounds::forget_batch(batch)?;
        let done = sqlx::query(FORGET).bind(cutoff_ts_ms).bind(i64::from(batch)).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
