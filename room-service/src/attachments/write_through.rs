//! [`AttachmentRecords`]: the broker's [`Records`] as the service and the
//! sweep use them, with the store (`DATABASE_URL`) behind them. Both get
//! the same value, made once in `lib.rs`.
//!
//! Every change goes to the broker (Redis, or memory) first, then through
//! to PostgreSQL; a call whose store write fails fails (the broker already
//! holds the change, and every change is idempotent, so the caller's retry
//! completes it: a failed Attach is answered "try again" and records
//! nothing anyone was told of). Reads fall back to the store when the
//! broker knows nothing: `attachment`, and a `claim` that finds no record.
//! What the store holds is then put back into the broker (the record, and
//! its claim when it is posted), so a flushed Redis fills again as files
//! are asked for.
//!
//! With a store, PostgreSQL decides what Redis can forget:
//! - A claim counts once the store agrees: Redis' claim is the fast check,
//!   then the store's (one transaction on the row); when the store says
//!   no (the sweep removed it meanwhile, or another message posted it),
//!   the Redis claim is undone and the store's answer given.
//! - The sweep lists unposted attachments from both (the union: the store
//!   has what Redis lost; Redis alone has what a failed store write left,
//!   which nobody was told of and is only cleaned here) and removes each
//!   from the store first, in one statement that a claim either precedes
//!   (the row is posted: it stays) or follows (the claim finds nothing and
//!   is refused), then from Redis.
//! - A blob's uses are counted in the store. Redis' use sets are kept up
//!   to date, but after a flush they are empty while posted attachments
//!   still use their blobs.
//! - Candidate blobs (left by a refused Attach) live in the store alone:
//!   nothing reads them on a fast path, and one lost with Redis would be
//!   bytes kept for ever.

use std::sync::Arc;

use chat_proto::v1::Attachment;

use super::records::{Claim, Poster, Records};
use crate::broker::{BrokerError, BrokerResult};
use crate::store::{Store, StoreError};

/// Attachments' records: the broker's, written through to the store.
pub struct AttachmentRecords<R> {
    records: Arc<R>,
    store: Option<Store>,
}

impl<R> std::fmt::Debug for AttachmentRecords<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentRecords").field("store", &self.store.is_some()).finish_non_exhaustive()
    }
}

/// PostgreSQL failing: the call fails (INTERNAL), to be retried.
fn store_failed(error: StoreError) -> BrokerError {
    tracing::warn!(%error, "store call for attachments failed");
    BrokerError::Store(error.to_string())
}

impl<R> AttachmentRecords<R> {
    /// `records` alone without a store; with one, written through to it.
    pub fn new(records: Arc<R>, store: Option<Store>) -> Self {
        Self { records, store }
    }
}

impl<R: Records> AttachmentRecords<R> {
    /// Puts a record the store holds back into the broker, with its claim.
    async fn restore(&self, attachment: &Attachment, posted: Option<&Poster>) -> BrokerResult<()> {
        self.records.put_attachment(attachment).await?;
        if let Some(poster) = posted {
            let claim = self.records.claim(&attachment.id, &attachment.room, &attachment.user_id, poster).await?;
            if !matches!(claim, Claim::Claimed(_)) {
                // Another claim got into Redis between the put and this one;
                // the store's claim decides which message posted it.
                tracing::debug!(id = attachment.id, ?claim, "a restored claim met another");
            }
        }
        tracing::info!(id = attachment.id, "attachment loaded back from the store");
        Ok(())
    }
}

impl<R: Records> Records for AttachmentRecords<R> {
    async fn put_attachment(&self, attachment: &Attachment) -> BrokerResult<()> {
        self.records.put_attachment(attachment).await?;
        if let Some(store) = &self.store {
            store.put_attachment(attachment, None).await.map_err(store_failed)?;
        }
        Ok(())
    }

    async fn attachment(&self, id: &str) -> BrokerResult<Option<Attachment>> {
        if let Some(attachment) = self.records.attachment(id).await? {
            return Ok(Some(attachment));
        }
        let Some(store) = &self.store else { return Ok(None) };
        let Some((attachment, posted)) = store.attachment(id).await.map_err(store_failed)? else { return Ok(None) };
        self.restore(&attachment, posted.as_ref()).await?;
        Ok(Some(attachment))
    }

    async fn claim(&self, id: &str, room: &str, user_id: &str, poster: &Poster) -> BrokerResult<Claim> {
        let mut claim = self.records.claim(id, room, user_id, poster).await?;
        let Some(store) = &self.store else { return Ok(claim) };
        if claim == Claim::Unknown {
            let Some((attachment, posted)) = store.attachment(id).await.map_err(store_failed)? else {
                return Ok(Claim::Unknown);
            };
            self.restore(&attachment, posted.as_ref()).await?;
            claim = self.records.claim(id, room, user_id, poster).await?;
        }
        if !matches!(claim, Claim::Claimed(_)) {
            return Ok(claim);
        }
        let stored = store.claim_attachment(id, room, user_id, poster).await.map_err(store_failed)?;
        if !matches!(stored, Claim::Claimed(_)) {
            self.records.release(id, poster).await?;
        }
        Ok(stored)
    }

    async fn release(&self, id: &str, poster: &Poster) -> BrokerResult<()> {
        self.records.release(id, poster).await?;
        if let Some(store) = &self.store {
            store.release_attachment(id, poster).await.map_err(store_failed)?;
        }
        Ok(())
    }

    /// With a store, up to `limit` from each (see the module doc).
    async fn unposted_before(&self, before_ms: i64, limit: usize) -> BrokerResult<Vec<String>> {
        let mut ids = self.records.unposted_before(before_ms, limit).await?;
        if let Some(store) = &self.store {
            for id in store.unposted_before(before_ms, limit).await.map_err(store_failed)? {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    async fn remove_unposted(&self, id: &str) -> BrokerResult<Option<Attachment>> {
        let Some(store) = &self.store else { return self.records.remove_unposted(id).await };
        // The store first: its delete is the one a claim races with.
        let stored = store.remove_unposted(id).await.map_err(store_failed)?;
        let cached = self.records.remove_unposted(id).await?;
        Ok(stored.or(cached))
    }

    async fn drop_blob_use(&self, blob: &str, id: &str) -> BrokerResult<u64> {
        let left = self.records.drop_blob_use(blob, id).await?;
        match &self.store {
            Some(store) => store.blob_uses(blob).await.map_err(store_failed),
            None => Ok(left),
        }
    }

    async fn blob_uses(&self, blob: &str) -> BrokerResult<u64> {
        match &self.store {
            Some(store) => store.blob_uses(blob).await.map_err(store_failed),
            None => self.records.blob_uses(blob).await,
        }
    }

    async fn put_blob_candidate(&self, blob: &str, at_ms: i64) -> BrokerResult<()> {
        match &self.store {
            Some(store) => store.put_blob_candidate(blob, at_ms).await.map_err(store_failed),
            None => self.records.put_blob_candidate(blob, at_ms).await,
        }
    }

    async fn blob_candidates_before(&self, before_ms: i64, limit: usize) -> BrokerResult<Vec<String>> {
        match &self.store {
            Some(store) => store.blob_candidates_before(before_ms, limit).await.map_err(store_failed),
            None => self.records.blob_candidates_before(before_ms, limit).await,
        }
    }

    async fn forget_blob_candidate(&self, blob: &str, before_ms: i64) -> BrokerResult<()> {
        match &self.store {
            Some(store) => store.forget_blob_candidate(blob, before_ms).await.map_err(store_failed),
            None => self.records.forget_blob_candidate(blob, before_ms).await,
        }
    }
}
