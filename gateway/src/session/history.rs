//! `history` and `search`: a joined room's stored messages, a page per
//! frame. The frame's cursor, limit and query are checked first
//! ([`crate::pages`]), then the connection's read bucket is asked (a frame
//! refused for what it says takes no token), then one `History` or `Search`
//! call goes to the room's room-service like any other call of the
//! session; its answer comes back already encoded as the one frame to
//! write. Membership is the gateway's to check: the Search RPC checks none.

use std::sync::Arc;

use chat_proto::limits::{MAX_HISTORY_PAGE, MAX_SEARCH_PAGE};
use chat_proto::query::check_query;
use chat_proto::v1::{HistoryRequest, SearchRequest};
use serde_json::Value;

use super::Session;
use super::calls::{Answer, Call, traced};
use crate::frame::Refusal;
use crate::limits::{HISTORY_PAGE, SEARCH_PAGE};
use crate::pages::{self, refusal_of_read};

impl Session {
    /// The call for a `history` frame.
    pub(super) fn history(
        &mut self,
        room: &str,
        before_seq: Option<Value>,
        limit: Option<Value>,
    ) -> Result<Call, Refusal> {
        let (room, _) = self.joined(room)?;
        let before_seq = pages::cursor(before_seq.as_ref()).map_err(|r| r.in_room(&room))?;
        let limit = pages::limit(limit.as_ref(), HISTORY_PAGE, MAX_HISTORY_PAGE).map_err(|r| r.in_room(&room))?;
        self.caller.read(&room)?;
        let request =
            HistoryRequest { room: room.to_string(), limit, before_seq, user_id: self.person.user_id.to_string() };
        let shared = Arc::clone(&self.shared);
        Ok(traced(tracing::debug_span!("call", rpc = "history", %room, before_seq), async move {
            let reply = shared.hub.services().call(&room, request, |mut c, r| async move { c.history(r).await }).await;
            Answer::Read(
                reply
                    .map(|page| pages::history(&room, before_seq, &page, shared.hub.signer()))
                    .map_err(|status| refusal_of_read(&status, &room)),
            )
        }))
    }

    /// The call for a `search` frame.
    pub(super) fn search(
        &mut self,
        room: &str,
        query: String,
        before_seq: Option<Value>,
        limit: Option<Value>,
    ) -> Result<Call, Refusal> {
        let (room, _) = self.joined(room)?;
        check_query(&query).map_err(|e| Refusal::from(e).in_room(&room))?;
        let before_seq = pages::cursor(before_seq.as_ref()).map_err(|r| r.in_room(&room))?;
        let limit = pages::limit(limit.as_ref(), SEARCH_PAGE, MAX_SEARCH_PAGE).map_err(|r| r.in_room(&room))?;
        self.caller.read(&room)?;
        let request = SearchRequest {
            room: room.to_string(),
            query: query.clone(),
            before_seq,
            limit,
            user_id: self.person.user_id.to_string(),
        };
        let shared = Arc::clone(&self.shared);
        Ok(traced(tracing::debug_span!("call", rpc = "search", %room, before_seq), async move {
            let reply = shared.hub.services().call(&room, request, |mut c, r| async move { c.search(r).await }).await;
            Answer::Read(
                reply
                    .map(|page| pages::search_results(&room, &query, before_seq, &page, shared.hub.signer()))
                    .map_err(|status| refusal_of_read(&status, &room)),
            )
        }))
    }
}
