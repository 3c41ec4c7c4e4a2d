//! Waiting for the archiver: tests that read history or search from the
//! store first wait until PostgreSQL holds a room up to a given seq.

use std::time::Duration;

use room_service::store::Store;

use super::PATIENCE;

/// Waits until the store's high-water mark for `room` is `last` (the
/// archiver copies in batches, so a big room may take a few patiences).
pub async fn archived_up_to(store: &Store, room: &str, last: u64) {
    let patience = PATIENCE * 3;
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let high = store.high_water(room).await.ok().flatten();
        if high == Some(last) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store reached {high:?} of {room}, not {last}, within {patience:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
