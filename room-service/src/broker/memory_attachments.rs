//! Attachments' records in this process: the [`Records`] of the
//! [`MemoryBroker`], for the embedded mode. The same state as the Redis
//! one (`attachments.rs`) under one lock, so each call is atomic as a Lua
//! script is there; nothing survives a restart.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chat_proto::v1::Attachment;

use super::BrokerResult;
use super::attachments::blobs_of;
use super::memory::MemoryBroker;
use crate::attachments::records::Poster;
use crate::attachments::{Claim, Records};

#[derive(Debug, Default)]
pub(super) struct Attachments(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    /// Id → the record and, once claimed, its poster.
    records: HashMap<String, (Attachment, Option<Poster>)>,
    /// (upload ms, id) of the unposted ones.
    unposted: BTreeSet<(i64, String)>,
    /// Blob → ids of the attachments that use it.
    uses: HashMap<String, HashSet<String>>,
    /// Blob → when a refused Attach left it (ms).
    candidates: HashMap<String, i64>,
}

impl Attachments {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Records for MemoryBroker {
    async fn put_attachment(&self, attachment: &Attachment) -> BrokerResult<()> {
        let mut state = self.attachments.lock();
        for blob in blobs_of(attachment) {
            state.uses.entry(blob.to_owned()).or_default().insert(attachment.id.clone());
        }
        state.unposted.insert((attachment.uploaded_ms, attachment.id.clone()));
        state.records.insert(attachment.id.clone(), (attachment.clone(), None));
        Ok(())
    }

    async fn attachment(&self, id: &str) -> BrokerResult<Option<Attachment>> {
        Ok(self.attachments.lock().records.get(id).map(|(a, _)| a.clone()))
    }

    async fn claim(&self, id: &str, room: &str, user_id: &str, poster: &Poster) -> BrokerResult<Claim> {
        let mut state = self.attachments.lock();
        let Some((attachment, posted)) = state.records.get_mut(id) else { return Ok(Claim::Unknown) };
        if attachment.room != room {
            return Ok(Claim::OtherRoom(attachment.room.clone()));
        }
        if attachment.user_id != user_id {
            return Ok(Claim::OtherUser);
        }
        match posted {
            Some(by) if by != poster => return Ok(Claim::Posted),
            Some(_) => {}
            None => *posted = Some(poster.clone()),
        }
        let attachment = attachment.clone();
        state.unposted.remove(&(attachment.uploaded_ms, attachment.id.clone()));
        Ok(Claim::Claimed(attachment))
    }

    async fn release(&self, id: &str, poster: &Poster) -> BrokerResult<()> {
        let mut state = self.attachments.lock();
        let Some((attachment, posted)) = state.records.get_mut(id) else { return Ok(()) };
        if posted.as_ref() == Some(poster) {
            *posted = None;
            let entry = (attachment.uploaded_ms, attachment.id.clone());
            state.unposted.insert(entry);
        }
        Ok(())
    }

    async fn unposted_before(&self, before_ms: i64, limit: usize) -> BrokerResult<Vec<String>> {
        let state = self.attachments.lock();
        Ok(state.unposted.iter().take_while(|(at, _)| *at < before_ms).take(limit).map(|(_, id)| id.clone()).collect())
    }

    async fn remove_unposted(&self, id: &str) -> BrokerResult<Option<Attachment>> {
        let mut state = self.attachments.lock();
        let Some((attachment, posted)) = state.records.get(id) else { return Ok(None) };
        let entry = (attachment.uploaded_ms, attachment.id.clone());
        if posted.is_some() {
            state.unposted.remove(&entry);
            return Ok(None);
        }
        state.unposted.remove(&entry);
        Ok(state.records.remove(id).map(|(a, _)| a))
    }

    async fn drop_blob_use(&self, blob: &str, id: &str) -> BrokerResult<u64> {
        let mut state = self.attachments.lock();
        let Some(ids) = state.uses.get_mut(blob) else { return Ok(0) };
        ids.remove(id);
        let left = ids.len() as u64;
        if left == 0 {
            state.uses.remove(blob);
        }
        Ok(left)
    }

    async fn blob_uses(&self, blob: &str) -> BrokerResult<u64> {
        Ok(self.attachments.lock().uses.get(blob).map_or(0, |ids| ids.len() as u64))
    }

    async fn put_blob_candidate(&self, blob: &str, at_ms: i64) -> BrokerResult<()> {
        let mut state = self.attachments.lock();
        let since = state.candidates.entry(blob.to_owned()).or_insert(at_ms);
        *since = (*since).max(at_ms);
        Ok(())
    }

    async fn blob_candidates_before(&self, before_ms: i64, limit: usize) -> BrokerResult<Vec<String>> {
        let state = self.attachments.lock();
        let mut old: Vec<(i64, &String)> =
            state.candidates.iter().filter(|(_, at)| **at < before_ms).map(|(blob, at)| (*at, blob)).collect();
        old.sort_unstable();
        Ok(old.into_iter().take(limit).map(|(_, blob)| blob.clone()).collect())
    }

    async fn forget_blob_candidate(&self, blob: &str, before_ms: i64) -> BrokerResult<()> {
        let mut state = self.attachments.lock();
        if state.candidates.get(blob).is_some_and(|at| *at < before_ms) {
            state.candidates.remove(blob);
        }
        Ok(())
    }
}
