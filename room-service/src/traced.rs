//! The room-service's part of a send's trace (on only with traces
//! configured: `chat_runtime::traces`).
//!
//! A gateway call that is part of a sampled trace carries `traceparent` in
//! its gRPC metadata. [`server_span`] (tonic's `trace_fn`) opens the call's
//! span as its child, named after the RPC (`chat.v1.RoomService/SendBatch`);
//! a call without one gets no span at all, so heartbeats, streams and
//! unsampled calls cost nothing here. Inside it, `Rooms::append` opens a
//! span for the broker's store-and-publish step and, with STORE_SYNC, one
//! for the PostgreSQL commit, and stamps the call's context on the events
//! it stores ([`stamp`]) so every gateway's delivery joins the trace.

use chat_proto::v1::RoomEvent;
use chat_runtime::traces::{TRACEPARENT, continue_from, traceparent};
use tonic::codegen::http;

/// The span a gRPC call runs in: a child of the caller's, or none.
pub(crate) fn server_span(request: &http::Request<()>) -> tracing::Span {
    let Some(parent) = request.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok()) else {
        return tracing::Span::none();
    };
    let rpc = request.uri().path().trim_start_matches('/');
    let span = tracing::info_span!(
        parent: None,
        "rpc",
        otel.name = rpc,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.method = rpc,
    );
    continue_from(&span, parent);
    span
}

/// Puts the current span's context on each event about to be stored, when
/// the call is sampled; untouched otherwise.
pub(crate) fn stamp<'a>(events: impl Iterator<Item = &'a mut RoomEvent>) {
    if let Some(context) = traceparent(&tracing::Span::current()) {
        for event in events {
            event.traceparent.clone_from(&context);
        }
    }
}
