//! Retention (`HISTORY_RETENTION_DAYS`): messages older than that leave the
//! store, a small batch at a time, so sends and the archiver never wait
//! for it.
//!
//! How it runs: at start and then every [`EVERY`], a round computes the
//! cutoff (now minus the retention) and calls [`Store::forget_before`] for
//! [`BATCH`] rows at a time, pausing [`PAUSE`] between batches, until a
//! batch comes back short (nothing older is left). Each room's newest
//! message is kept whatever its age (the store's rule: it carries the room's
//! last seq and epoch). Every room-service with a store runs it: deletes are
//! idempotent, so two at once only share the work; one alone is enough.
//! Each round logs its count at info; `chat_retention_removed_total` counts
//! them all.

use std::sync::Arc;
use std::time::Duration;

use chat_runtime::clock::now_ms;
use tokio_util::sync::CancellationToken;

use crate::metrics::RoomServiceMetrics;
use crate::store::Store;

/// How often a round starts: retention is counted in days, an hour late is
/// nothing.
const EVERY: Duration = Duration::from_secs(3600);
/// Rows per delete: a few ms of locks and WAL, well under the store's bound.
const BATCH: u32 = 1000;
/// Between two batches: the archiver's inserts and people's pages go first.
const PAUSE: Duration = Duration::from_millis(100);
/// After a failed round (PostgreSQL down), the next try comes this soon.
const RETRY: Duration = Duration::from_secs(60);

/// The retention task: a round now and every [`EVERY`], until `stopping`.
pub(crate) async fn run(
    store: Store,
    keep_for: Duration,
    metrics: Arc<RoomServiceMetrics>,
    stopping: CancellationToken,
) {
    let keep_ms = i64::try_from(keep_for.as_millis()).unwrap_or(i64::MAX);
    loop {
        let cutoff = now_ms().saturating_sub(keep_ms);
        let next = match stopping.run_until_cancelled(round(&store, cutoff, &metrics)).await {
            None => return,
            Some(Ok(removed)) => {
                tracing::info!(
                    removed,
                    days = keep_for.as_secs() / 86_400,
                    "retention: removed messages older than the retention"
                );
                EVERY
            }
            Some(Err((removed, error))) => {
                tracing::warn!(removed, %error, "retention: the store failed; trying again in a minute");
                RETRY
            }
        };
        if stopping.run_until_cancelled(tokio::time::sleep(next)).await.is_none() {
            return;
        }
    }
}

/// Forgets everything accepted before `cutoff_ms` (but each room's newest),
/// a batch at a time; returns how many went, or how many went before the
/// store failed and why.
async fn round(
    store: &Store,
    cutoff_ms: i64,
    metrics: &RoomServiceMetrics,
) -> Result<u64, (u64, crate::store::StoreError)> {
    let mut removed = 0;
    loop {
        let batch = store.forget_before(cutoff_ms, BATCH).await.map_err(|e| (removed, e))?;
        removed += batch;
        metrics.retention_removed.increment(batch);
        if batch < u64::from(BATCH) {
            return Ok(removed);
        }
        tokio::time::sleep(PAUSE).await;
    }
}
