//! The `history` and `search` frames (`docs/protocol.md`): a page of a
//! joined room's stored messages, paged back by a `before_seq` cursor.
//!
//! A frame's cursor, limit and query are checked here before any call, each
//! failure with its own code (`bad_cursor`, `bad_limit`, `bad_query`); the
//! session then asks the room's room-service (`History`, `Search`), and its
//! answer becomes one `history` or `search_results` frame — the messages in
//! the shape of live `message` frames, search highlights turned into UTF-16
//! offsets ([`crate::highlights`]) — or a refusal naming the room.

use axum::extract::ws::Utf8Bytes;
use chat_proto::ErrorCode;
use chat_proto::v1::{HistoryResponse, SearchResponse};
use serde::Serialize;
use serde_json::Value;
use tonic::{Code, Status};

use crate::files::urls::Signer;
use crate::frame::{self, EventView, Refusal, refusal_of};
use crate::highlights::utf16_ranges;

/// A frame's `before_seq`: absent, `null` or 0 for the newest page, else a
/// page's `next_before_seq`. Anything but a non-negative integer is refused.
pub(crate) fn cursor(before_seq: Option<&Value>) -> Result<u64, Refusal> {
    match before_seq {
        None | Some(Value::Null) => Ok(0),
        Some(value) => value.as_u64().ok_or_else(|| {
            Refusal::new(
                ErrorCode::BadCursor,
                format!(
                    "before_seq {} is not a cursor: give a page's next_before_seq (a non-negative integer), or 0 for the newest",
                    shorten(value)
                ),
            )
        }),
    }
}

/// A frame's `limit`: absent or `null` for `default`, else 1 to `max`.
pub(crate) fn limit(limit: Option<&Value>, default: u32, max: u32) -> Result<u32, Refusal> {
    let value = match limit {
        None | Some(Value::Null) => return Ok(default),
        Some(value) => value,
    };
    value.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| (1..=max).contains(n)).ok_or_else(|| {
        Refusal::new(
            ErrorCode::BadLimit,
            format!("limit {} is out of range: ask for 1 to {max} (or leave it out for {default})", shorten(value)),
        )
    })
}

/// A JSON value as a refusal quotes it: short, so a refusal never echoes a
/// large frame.
fn shorten(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// The refusal for a failed `History` or `Search`: the room-service
/// refuses a malformed request with INVALID_ARGUMENT, and the gateway has
/// checked everything but the cursor against the room's last seq; Search
/// without a store is FAILED_PRECONDITION.
pub(crate) fn refusal_of_read(status: &Status, room: &str) -> Refusal {
    // A refusal that names its code (`forbidden` for a direct conversation
    // the user is not in) is that, not a bad cursor.
    if let Some(refusal) = crate::frame::coded(status) {
        return refusal.in_room(room);
    }
    match status.code() {
        Code::InvalidArgument => Refusal::new(ErrorCode::BadCursor, status.message()).in_room(room),
        Code::FailedPrecondition => Refusal::new(
            ErrorCode::SearchUnavailable,
            format!("search is not available in this chat: {}", status.message()),
        )
        .in_room(room),
        _ => refusal_of(status, room),
    }
}

/// What the gateway answers a `history` or `search` frame with.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PageFrame<'a> {
    History {
        room: &'a str,
        epoch: &'a str,
        /// As asked (0 for the newest page).
        before_seq: u64,
        /// Oldest first.
        messages: Vec<EventView<'a>>,
        next_before_seq: u64,
        reached_first: bool,
    },
    SearchResults {
        room: &'a str,
        query: &'a str,
        before_seq: u64,
        /// Newest first.
        hits: Vec<HitView<'a>>,
        /// 0: no more hits.
        next_before_seq: u64,
    },
}

#[derive(Debug, Serialize)]
struct HitView<'a> {
    message: EventView<'a>,
    /// `[start, end)` in UTF-16 code units of `message.text`.
    highlights: Vec<[u32; 2]>,
}

/// The `history` frame for a `History` page.
pub(crate) fn history(room: &str, before_seq: u64, page: &HistoryResponse, signer: &Signer) -> Utf8Bytes {
    frame::encode(&PageFrame::History {
        room,
        epoch: &page.epoch,
        before_seq,
        // Messages come with their changes applied: the change events
        // between them are for readers who showed the messages before.
        messages: page
            .events
            .iter()
            .filter(|e| {
                use chat_proto::v1::room_event::Kind;
                matches!(e.kind, Some(Kind::Message(_) | Kind::Moderation(_)))
            })
            .filter_map(|e| EventView::of(e, signer))
            .collect(),
        next_before_seq: page.next_before_seq,
        reached_first: page.reached_first,
    })
}

/// The `search_results` frame for a `Search` page.
pub(crate) fn search_results(
    room: &str,
    query: &str,
    before_seq: u64,
    page: &SearchResponse,
    signer: &Signer,
) -> Utf8Bytes {
    let hits = page
        .hits
        .iter()
        .filter_map(|hit| {
            let event = hit.event.as_ref()?;
            let text = match &event.kind {
                Some(chat_proto::v1::room_event::Kind::Message(message)) => message.text.as_str(),
                _ => return None,
            };
            Some(HitView { message: EventView::of(event, signer)?, highlights: utf16_ranges(text, &hit.highlights) })
        })
        .collect();
    frame::encode(&PageFrame::SearchResults { room, query, before_seq, hits, next_before_seq: page.next_before_seq })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::room_event::Kind;
    use chat_proto::v1::{ChatMessage, RoomEvent, SearchHit, TextRange};
    use serde_json::json;

    #[test]
    fn cursors_are_non_negative_integers() {
        for (given, want) in
            [(None, Ok(0)), (Some(json!(null)), Ok(0)), (Some(json!(0)), Ok(0)), (Some(json!(42)), Ok(42))]
        {
            assert_eq!(cursor(given.as_ref()).map_err(|r| r.code), want, "{given:?}");
        }
        for bad in [json!("42"), json!(-1), json!(1.5), json!([1]), json!({"seq": 1}), json!(true)] {
            assert_eq!(cursor(Some(&bad)).map_err(|r| r.code), Err(ErrorCode::BadCursor), "{bad}");
        }
        let long = json!("x".repeat(10_000));
        assert!(cursor(Some(&long)).unwrap_err().message.len() < 300, "a refusal does not echo a huge value");
    }

    #[test]
    fn limits_are_1_to_the_max_or_the_default() {
        assert_eq!(limit(None, 50, 100).ok(), Some(50));
        assert_eq!(limit(Some(&json!(null)), 20, 50).ok(), Some(20));
        assert_eq!(limit(Some(&json!(1)), 50, 100).ok(), Some(1));
        assert_eq!(limit(Some(&json!(100)), 50, 100).ok(), Some(100));
        for bad in [json!(0), json!(101), json!(-5), json!("10"), json!(2.5), json!(u64::MAX)] {
            assert_eq!(limit(Some(&bad), 50, 100).map_err(|r| r.code), Err(ErrorCode::BadLimit), "{bad}");
        }
    }

    #[test]
    fn a_room_service_refusal_becomes_the_read_code() {
        let cases = [
            (Status::invalid_argument("before_seq is 99, past the room's last message (5)"), ErrorCode::BadCursor),
            (Status::failed_precondition("search needs DATABASE_URL"), ErrorCode::SearchUnavailable),
            (Status::internal("PostgreSQL: gone"), ErrorCode::Internal),
        ];
        for (status, code) in cases {
            let refusal = refusal_of_read(&status, "general");
            assert_eq!((refusal.code, refusal.room.as_deref()), (code, Some("general")), "{status:?}");
        }
    }

    #[test]
    fn search_results_carry_messages_and_utf16_highlights() {
        let text = "🎉 привет мир";
        let start = text.find("мир").unwrap() as u32;
        let event = RoomEvent {
            room: "general".into(),
            seq: 7,
            id: "e:7".into(),
            epoch: "e".into(),
            ts_ms: 1,
            traceparent: String::new(),
            kind: Some(Kind::Message(ChatMessage { username: "ada".into(), text: text.into(), ..Default::default() })),
        };
        let page = SearchResponse {
            hits: vec![SearchHit {
                event: Some(event),
                highlights: vec![TextRange { start, end: start + "мир".len() as u32 }],
            }],
            next_before_seq: 0,
        };
        let frame: Value =
            serde_json::from_str(&search_results("general", "мир", 0, &page, &Signer::new(b"test"))).unwrap();
        assert_eq!(frame["type"], "search_results");
        assert_eq!(frame["hits"][0]["message"]["type"], "message");
        assert_eq!(frame["hits"][0]["message"]["seq"], 7);
        assert_eq!(frame["hits"][0]["highlights"], json!([[10, 13]]));
    }
}
