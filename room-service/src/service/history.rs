//! History and Search: pages of a room's messages by cursor, newest
//! first, from Redis while it still holds the whole page and from the
//! store (PostgreSQL) below what it holds.

use chat_proto::RoomName;
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{HistoryRequest, HistoryResponse, RoomEvent, SearchHit, SearchRequest, SearchResponse, TextRange};
use tonic::Status;

use super::resume::contiguous_tail;
use super::{DEFAULT_HISTORY, Rooms, invalid};
use crate::broker::{Broker, Position};
use crate::people::Directory;
use crate::store::StoreError;
use crate::store::bounds::MAX_PAGE;

/// Events a History page reads past (change events between messages)
/// before it answers with fewer messages than asked: ten reads at most.
const MAX_SCANNED: usize = 10 * MAX_PAGE as usize;

/// What a page of history shows: messages and moderators' notices (the
/// changes between them are for readers who showed the messages before).
pub(super) fn in_pages(event: &RoomEvent) -> bool {
    matches!(event.kind, Some(Kind::Message(_) | Kind::Moderation(_)))
}

/// Search hits per page when the request asks for 0 (at most the store's
/// `MAX_SEARCH_PAGE`).
const DEFAULT_SEARCH_PAGE: u32 = 20;

impl<B: Broker + Directory> Rooms<B> {
    /// One History page: `before_seq` checked against the room's position.
    pub(super) async fn history_page(&self, request: HistoryRequest) -> Result<HistoryResponse, Status> {
        let HistoryRequest { room, limit, before_seq, user_id } = request;
        let room = RoomName::try_from(room).map_err(invalid)?;
        self.check_direct(&room, &user_id).await?;
        let limit = match limit {
            0 => DEFAULT_HISTORY as u32,
            n if n <= MAX_PAGE => n,
            n => {
                return Err(Status::invalid_argument(format!(
                    "limit is {n}: a History page holds 1 to {MAX_PAGE} messages (0 for {DEFAULT_HISTORY})"
                )));
            }
        };
        let position = self.position(&room).await?;
        let before = cursor(before_seq, &position)?;
        let (mut events, next_before_seq) = self.messages_before(&room, before, limit as usize).await?;
        self.mark_mine(&room, &user_id, &mut events, true).await?;
        Ok(HistoryResponse {
            reached_first: next_before_seq == 0,
            events,
            epoch: position.epoch,
            last_seq: position.last_seq,
            next_before_seq,
        })
    }

    /// One Search page from the store's full-text index, newest first.
    pub(super) async fn search_page(&self, request: SearchRequest) -> Result<SearchResponse, Status> {
        let SearchRequest { room, query, before_seq, limit, user_id } = request;
        let room = RoomName::try_from(room).map_err(invalid)?;
        self.check_direct(&room, &user_id).await?;
        let Some(store) = &self.store else {
            return Err(Status::failed_precondition(
                "search needs DATABASE_URL: this room-service keeps no store of messages to search",
            ));
        };
        let limit = if limit == 0 { DEFAULT_SEARCH_PAGE } else { limit };
        // The same cursor rule as History's, so a client pages both alike;
        // a room Redis lost is seeded from the store first, or every cursor
        // into its stored messages would look past its end.
        let position = self.position(&room).await?;
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

    /// Up to `limit` messages below `before` (exclusive), oldest first,
    /// their changes applied and the change events between them left out
    /// (a page is of messages: a reader that showed a message before gets
    /// its changes live or on resume). Reads on past change events, up to
    /// [`MAX_SCANNED`] events; returns the messages and the cursor of the
    /// page before them, 0 when nothing older exists.
    pub(super) async fn messages_before(
        &self,
        room: &RoomName,
        before: u64,
        limit: usize,
    ) -> Result<(Vec<RoomEvent>, u64), Status> {
        let (mut found, mut cursor, mut scanned) = (Vec::new(), before, 0);
        loop {
            let (events, reached_first) = self.page_before(room, cursor, MAX_PAGE).await?;
            scanned += events.len();
            let oldest = events.first().map(|e| e.seq);
            let mut page: Vec<RoomEvent> = events.into_iter().filter(in_pages).collect();
            page.append(&mut found);
            found = page;
            if found.len() > limit {
                found.drain(..found.len() - limit);
                return Ok((found.clone(), found.first().map_or(0, |e| e.seq)));
            }
            match oldest {
                Some(oldest) if !reached_first && found.len() < limit && scanned < MAX_SCANNED => cursor = oldest,
                Some(oldest) if !reached_first => return Ok((found, oldest)),
                _ => return Ok((found, 0)),
            }
        }
    }

    /// The page of events below `before` (exclusive), at most `limit`,
    /// oldest first: from Redis when it holds the whole page, else what
    /// Redis holds of its newest end and the rest from the store. Returns
    /// the page and whether nothing older exists.
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
        let Some(store) = &self.store else {
            // No store: history goes back as far as Redis holds it.
            return Ok((events, true));
        };
        // What Redis holds up to the cursor (after a loss, only what was
        // sent since), and the rest of the page from the store below it.
        let newer = contiguous_tail(events, before - 1);
        let below = newer.first().map_or(before, |e| e.seq);
        let rest = limit - u32::try_from(newer.len()).unwrap_or(limit);
        let page = store.before(room.as_str(), Some(below), rest).await.map_err(store_status)?;
        let reached_first = page.reached_first();
        let mut events: Vec<RoomEvent> = page.messages.into_iter().map(|m| m.into_event()).collect();
        events.extend(newer);
        Ok((events, reached_first))
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
pub(super) fn store_status(error: StoreError) -> Status {
    if error.is_bad_input() {
        Status::invalid_argument(error.to_string())
    } else {
        tracing::warn!(%error, "store call failed");
        Status::internal(error.to_string())
    }
}
