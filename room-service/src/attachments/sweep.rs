//! The sweep: attachments nobody posted within `UPLOAD_TTL_SECS` are
//! deleted, and with them each blob (file, thumbnail) no other attachment
//! uses.
//!
//! Every room-service runs it (each round is safe alongside others: an
//! attachment is removed by one atomic step that only one of them wins,
//! and a blob's uses are counted down atomically). A round takes at most
//! [`SWEEP_BATCH`] attachments at a time until none is left past the TTL.
//!
//! Then the candidates: blobs a refused Attach left in the object store
//! (nothing references them, but the same bytes may be an attachment's).
//! One older than the TTL goes when no attachment uses it; either way it
//! stops being a candidate. The TTL is the grace an upload gets between
//! its bytes landing and its Attach: a blob refused just now may be about
//! to be attached again (the same bytes, another upload).
//!
//! With a store, the records given here are the write-through ones
//! (`write_through`), whose counts of a blob's uses come from PostgreSQL:
//! a Redis that lost its use sets cannot make the sweep delete a posted
//! file.
//!
//! The blob bytes go through [`Blobs`], which the object store
//! (`chat_runtime::blobs::BlobStore`) implements; a failed delete is logged
//! and leaves the bytes (a leak, never a loss: no record names them).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chat_runtime::blobs::{BlobError, BlobStore};
use chat_runtime::clock::now_ms;
use tokio_util::sync::CancellationToken;

use super::records::Records;
use crate::broker::{BrokerResult, blobs_of};

/// Attachments removed per step of a round.
pub const SWEEP_BATCH: usize = 100;

/// Where the bytes are deleted.
pub trait Blobs: Send + Sync + 'static {
    /// Deletes blob `blob` (a SHA-256 in hex); a missing blob is no error.
    fn delete(&self, blob: &str) -> impl Future<Output = Result<(), BlobError>> + Send;
}

impl Blobs for BlobStore {
    async fn delete(&self, blob: &str) -> Result<(), BlobError> {
        BlobStore::delete(self, blob).await
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Ids of the attachments removed.
    pub attachments: Vec<String>,
    /// Blobs deleted (no attachment used them any more).
    pub blobs: Vec<String>,
}

/// The sweep over one broker's records.
#[derive(Debug)]
pub struct Sweep<R, S> {
    records: Arc<R>,
    /// `None` when the store could not be opened: records still go, bytes stay.
    blobs: Option<S>,
    ttl: Duration,
}

impl<R: Records, S: Blobs> Sweep<R, S> {
    pub fn new(records: Arc<R>, blobs: Option<S>, ttl: Duration) -> Self {
        Self { records, blobs, ttl }
    }

    /// Removes every attachment uploaded before `now_ms` − the TTL that no
    /// message posted, and the blobs only they used; then the candidate
    /// blobs left before then that nothing uses.
    pub async fn round(&self, now_ms: i64) -> BrokerResult<Swept> {
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let before = now_ms.saturating_sub(ttl_ms);
        let mut swept = Swept::default();
        loop {
            let ids = self.records.unposted_before(before, SWEEP_BATCH).await?;
            if ids.is_empty() {
                self.candidates(before, &mut swept).await?;
                return Ok(swept);
            }
            for id in ids {
                let Some(attachment) = self.records.remove_unposted(&id).await? else { continue };
                for blob in blobs_of(&attachment) {
                    if self.records.drop_blob_use(blob, &attachment.id).await? == 0 {
                        self.delete(blob, &mut swept).await;
                    }
                }
                swept.attachments.push(attachment.id);
            }
        }
    }

    /// Deletes the candidate blobs left before `before` that no attachment
    /// uses, and forgets every candidate it looked at.
    async fn candidates(&self, before: i64, swept: &mut Swept) -> BrokerResult<()> {
        loop {
            let blobs = self.records.blob_candidates_before(before, SWEEP_BATCH).await?;
            if blobs.is_empty() {
                return Ok(());
            }
            for blob in blobs {
                if self.records.blob_uses(&blob).await? == 0 {
                    self.delete(&blob, swept).await;
                }
                self.records.forget_blob_candidate(&blob, before).await?;
            }
        }
    }

    async fn delete(&self, blob: &str, swept: &mut Swept) {
        match &self.blobs {
            Some(blobs) => match blobs.delete(blob).await {
                Ok(()) => swept.blobs.push(blob.to_owned()),
                Err(error) => tracing::warn!(blob, %error, "could not delete an unused blob"),
            },
            None => tracing::warn!(blob, "an unused blob stays: no file storage opened"),
        }
    }

    /// Runs a round every `every` until `stopping`.
    pub(crate) async fn run(self, every: Duration, stopping: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.round(now_ms()).await {
                Ok(swept) if !swept.attachments.is_empty() => tracing::info!(
                    attachments = swept.attachments.len(),
                    blobs = swept.blobs.len(),
                    "swept attachments nobody posted"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "could not sweep attachments"),
            }
        }
    }
}
