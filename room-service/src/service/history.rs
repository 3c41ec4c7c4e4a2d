//! History and Search: pages of a room's messages by cursor, newest
//! first, from Redis while it still holds the whole page and from the
//! store (PostgreSQL) below that; and the resume of a member that missed
//! events, from the room's Redis history.

use chat_proto::RoomName;
use chat_proto::v1::{HistoryRequest, HistoryResponse, RoomEvent, SearchHit, SearchRequest, SearchResponse, TextRange};
use tonic::Status;

use super::{DEFAULT_HISTORY, MAX_RESUMED, Rooms, invalid};
use crate::broker::{Broker, Position};
use crate::store::StoreError;
use crate::store::bounds::MAX_PAGE;

/// Search hits per page when the request asks for 0 (at most the store's
/// `MAX_SEARCH_PAGE`).
const DEFAULT_SEARCH_PAGE: u32 = 20;

impl<B: Broker> Rooms<B> {
    /// One History page: `before_seq` checked against the room's position.
    pub(super) async fn history_page(&self, request: HistoryRequest) -> Result<HistoryResponse, Status> {
        let HistoryRequest { room, limit, before_seq } = request;
        let room = RoomName::try_from(room).map_err(invalid)?;
        let limit = match limit {
            0 => DEFAULT_HISTORY as u32,
            n if n <= MAX_PAGE => n,
            n => {
                return Err(Status::invalid_argument(format!(
                    "limit is {n}: a History page holds 1 to {MAX_PAGE} messages (0 for {DEFAULT_HISTORY})"
                )));
            }
        };
        let position = self.broker.position(&room).await.map_err(|e| self.failed(e))?;
        let before = cursor(before_seq, &position)?;
        let (events, reached_first) = self.page_before(&room, before, limit).await?;
        let next_before_seq = if reached_first { 0 } else { events.first().map_or(0, |e| e.seq) };
        Ok(HistoryResponse {
            reached_first: reached_first || next_before_seq == 0,
            events,
            epoch: position.epoch,
            last_seq: position.last_seq,
            next_before_seq,
        })
    }

    /// One Search page from the store's full-text index, newest first.
    pub(super) async fn search_page(&self, request: SearchRequest) -> Result<SearchResponse, Status> {
        let SearchRequest { room, query, before_seq, limit } = request;
        let room = RoomName::try_from(room).map_err(invalid)?;
        let Some(store) = &self.store else {
            return Err(Status::failed_precondition(
                "search needs DATABASE_URL: this room-service keeps no store of messages to search",
            ));
        };
        let limit = if limit == 0 { DEFAULT_SEARCH_PAGE } else { limit };
        // The same cursor rule as History's, so a client pages both alike.
        let position = self.broker.position(&room).await.map_err(|e| self.failed(e))?;
        cursor(before_seq, &position)?;
        let before = (before_seq != 0).then_some(before_seq);
        let page = store.search(room.as_str(), &query, before, limit).await.map_err(store_status)?;
        let hits = page
            .hits
            .into_iter()
            .map(|hit| SearchHit {
                highlights: hit
                    .highlights
                    .iter()
                    .map(|r| TextRange {
                        start: u32::try_from(r.start).unwrap_or(u32::MAX),
                        end: u32::try_from(r.end).unwrap_or(u32::MAX),
                    })
                    .collect(),
                event: Some(hit.message.into_event()),
            })
            .collect();
        Ok(SearchResponse { hits, next_before_seq: page.next_before.unwrap_or(0) })
    }

    /// The page of messages below `before` (exclusive), at most `limit`,
    /// oldest first: from Redis when it holds the whole page, else from the
    /// store. Returns the page and whether nothing older exists.
    async fn page_before(&self, room: &RoomName, before: u64, limit: u32) -> Result<(Vec<RoomEvent>, bool), Status> {
        let start = before.saturating_sub(1).saturating_sub(u64::from(limit));
        let want = before.saturating_sub(1) - start;
        if want == 0 {
            return Ok((Vec::new(), true));
        }
        let mut events = self.broker.after(room, start, want as usize).await.map_err(|e| self.failed(e))?;
        events.retain(|e| e.seq < before);
        let whole = events.len() as u64 == want && events.first().is_none_or(|e| e.seq == start + 1);
        if whole {
            return Ok((events, start == 0));
        }
        match &self.store {
            Some(store) => {
                let page = store.before(room.as_str(), Some(before), limit).await.map_err(store_status)?;
                let reached_first = page.reached_first();
                Ok((page.messages.into_iter().map(|m| m.into_event()).collect(), reached_first))
            }
            // No store: history goes back as far as Redis holds it.
            None => Ok((events, true)),
        }
    }

    /// Every stored event after `after_seq` up to `position`, if `epoch` is
    /// the room's and its history still holds them all; else `None`.
    pub(super) async fn missed(
        &self,
        room: &RoomName,
        position: &Position,
        epoch: &str,
        after_seq: u64,
    ) -> Result<Option<Vec<RoomEvent>>, Status> {
        let last = position.last_seq;
        if epoch != position.epoch || after_seq > last || last - after_seq > MAX_RESUMED {
            return Ok(None);
        }
        let want = usize::try_from(last - after_seq).unwrap_or(usize::MAX);
        let mut events = self.broker.after(room, after_seq, want).await.map_err(|e| self.failed(e))?;
        events.retain(|e| e.seq <= last);
        let whole = events.len() == want && events.first().is_none_or(|e| e.seq == after_seq + 1);
        Ok(whole.then_some(events))
    }
}

/// A `before_seq` cursor checked against the room's position: 0 is the
/// newest (the last seq + 1); past that is no page's cursor.
fn cursor(before_seq: u64, position: &Position) -> Result<u64, Status> {
    let newest = position.last_seq + 1;
    match before_seq {
        0 => Ok(newest),
        n if n <= newest => Ok(n),
        n => Err(Status::invalid_argument(format!(
            "before_seq is {n}, past the room's last message ({}): give a page's next_before_seq, or 0 for the newest",
            position.last_seq
        ))),
    }
}

/// A store call's failure as a status: out-of-bounds input is the caller's
/// to fix; PostgreSQL failing is INTERNAL (not UNAVAILABLE: every
/// room-service shares the one database, moving elsewhere would not help).
fn store_status(error: StoreError) -> Status {
    if error.is_bad_input() {
        Status::invalid_argument(error.to_string())
    } else {
        tracing::warn!(%error, "store call failed");
        Status::internal(error.to_string())
    }
}
