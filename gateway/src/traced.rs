//! The gateway's part of a trace (on only with traces configured:
//! `chat_runtime::traces`; every function here is called only when
//! `RoomServices::traced` says so, checked once per frame or event).
//!
//! A browser frame that makes a room-service call runs in its own root span
//! ([`frame_span`]: `send`, `join`, ... with the room and frame type); the
//! call carries the span's `traceparent` in its gRPC metadata ([`inject`])
//! so the room-service's span is its child. A stored event that comes back
//! carrying the send's `traceparent` is handed to this gateway's listeners
//! inside one [`deliver_span`], a child of the send, with the number of
//! local recipients: one span per event per gateway, never per browser.

use chat_runtime::traces::{TRACEPARENT, continue_from, traceparent};
use tonic::metadata::{MetadataMap, MetadataValue};

use crate::frame::ClientFrame;

/// The span a browser frame's call runs in (a trace of its own).
pub(crate) fn frame_span(kind: &'static str, room: &str, conn: u64) -> tracing::Span {
    tracing::info_span!(
        parent: None,
        "frame",
        otel.name = kind,
        otel.kind = "server",
        frame = kind,
        room,
        conn,
        messages = tracing::field::Empty,
    )
}

/// The room a frame is about, for its span ("" for none).
pub(crate) fn room_of(frame: &ClientFrame) -> &str {
    match frame {
        ClientFrame::Join { room, .. }
        | ClientFrame::Leave { room }
        | ClientFrame::Send { room, .. }
        | ClientFrame::Edit { room, .. }
        | ClientFrame::Delete { room, .. }
        | ClientFrame::React { room, .. }
        | ClientFrame::Typing { room }
        | ClientFrame::Members { room, .. }
        | ClientFrame::History { room, .. }
        | ClientFrame::Search { room, .. }
        | ClientFrame::Read { room, .. }
        | ClientFrame::Moderate { room, .. } => room,
        ClientFrame::OpenDm { .. } | ClientFrame::Rooms => "",
    }
}

/// The current span's context into a call's metadata, when it is sampled.
pub(crate) fn inject(metadata: &mut MetadataMap) {
    if let Some(context) = traceparent(&tracing::Span::current())
        && let Ok(value) = MetadataValue::try_from(context)
    {
        metadata.insert(TRACEPARENT, value);
    }
}

/// The span an event's delivery to local listeners runs in: a child of the
/// send whose context the event carries. `recipients` is recorded after.
pub(crate) fn deliver_span(room: &str, seq: u64, gateway: &str, send: &str) -> tracing::Span {
    let span = tracing::info_span!(
        parent: None,
        "deliver",
        otel.kind = "consumer",
        room,
        seq,
        gateway,
        recipients = tracing::field::Empty,
    );
    continue_from(&span, send);
    span
}
