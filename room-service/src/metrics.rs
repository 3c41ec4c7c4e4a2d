//! What the room-service counts, served as Prometheus text at `/metrics`
//! on the gRPC port (plain HTTP/1.1 next to gRPC) and, when `METRICS_PORT`
//! is set, on a small HTTP port of its own.
//!
//! Each room-service keeps its own registry (no process-wide recorder), so
//! several in one process — as in the tests — count apart.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use chat_runtime::metrics::Registry;
use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub(crate) use chat_runtime::metrics::upkeep;

use crate::archive::Archive;

const SHED: &str = "chat_room_service_calls_shed_total";
const SHED_HELP: &str = "Calls refused because this room-service was busy, by reason";
const PUBLISHED: &str = "chat_room_service_events_published_total";
const PUBLISHED_HELP: &str = "Events published to rooms, by kind (message, joined, left, typing)";
const INBOX: &str = "chat_room_service_inbox_updates_total";
const INBOX_HELP: &str = "Inbox updates to users' connections, by outcome: published, dropped (over the bound of pending inbox work), failed";

pub struct RoomServiceMetrics {
    registry: Registry,
    /// Gateway Subscribe streams open now.
    pub(crate) streams: Gauge,
    /// Rooms this process holds a bus subscription for.
    pub(crate) rooms: Gauge,
    /// Events received from the bus (once per event per room-service).
    pub(crate) events_received: Counter,
    /// Events a stream had to refill from history (gaps, lag, resumes).
    pub(crate) events_refilled: Counter,
    /// Broker calls that failed (Redis unreachable, unreadable data).
    pub(crate) broker_errors: Counter,
    /// From accepting an event to receiving it back from the bus.
    pub(crate) publish_to_receive: Histogram,
    /// Presence changes applied per broker step.
    pub(crate) presence_batch: Histogram,
    /// Messages received (or known stored in Redis) not yet in PostgreSQL.
    pub(crate) archive_lag_messages: Gauge,
    /// Age of the oldest message not yet in PostgreSQL.
    pub(crate) archive_lag_seconds: Gauge,
    /// Messages the archiver wrote into PostgreSQL (new rows only).
    pub(crate) archived: Counter,
    /// Archiver writes or catch-ups that failed (each retried).
    pub(crate) archive_failures: Counter,
    /// Messages the archiver's full channel could not take (their rooms are
    /// caught up from Redis instead).
    pub(crate) archive_dropped: Counter,
    /// Messages per STORE_SYNC commit (one statement each).
    pub(crate) sync_group: Histogram,
    /// STORE_SYNC commits that failed (their sends were not acknowledged).
    pub(crate) sync_failures: Counter,
    /// Messages retention removed from the store (HISTORY_RETENTION_DAYS).
    pub(crate) retention_removed: Counter,
}

impl std::fmt::Debug for RoomServiceMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomServiceMetrics")
    }
}

impl RoomServiceMetrics {
    /// Series labelled `room_service="<instance id>"` (not `instance`, which
    /// Prometheus sets itself on scrape).
    pub fn new(instance: &str) -> Self {
        let registry = Registry::new("room_service", instance);
        Self {
            streams: registry.gauge("chat_room_service_streams", "Gateway Subscribe streams open now"),
            rooms: registry
                .gauge("chat_room_service_rooms_subscribed", "Rooms this room-service holds a bus subscription for"),
            events_received: registry.counter(
                "chat_room_service_events_received_total",
                &[],
                "Events received from the bus, once per event per room-service",
            ),
            events_refilled: registry.counter(
                "chat_room_service_events_refilled_total",
                &[],
                "Events a stream refilled from history (gaps, lag, resumes)",
            ),
            broker_errors: registry.counter(
                "chat_room_service_broker_errors_total",
                &[],
                "Broker calls that failed (Redis unreachable, unreadable data)",
            ),
            publish_to_receive: registry.histogram(
                "chat_room_service_publish_to_receive_seconds",
                "From accepting an event to receiving it back from the bus",
            ),
            presence_batch: registry
                .histogram("chat_room_service_presence_batch_changes", "Presence changes applied per broker step"),
            archive_lag_messages: registry
                .gauge("chat_archive_lag_messages", "Messages received by this room-service not yet in PostgreSQL"),
            archive_lag_seconds: registry
                .gauge("chat_archive_lag_seconds", "Age of the oldest message this room-service has not yet archived"),
            archived: registry.counter(
                "chat_archive_messages_total",
                &[],
                "Messages archived into PostgreSQL (new rows; copies already there are not counted)",
            ),
            archive_failures: registry.counter(
                "chat_archive_failures_total",
                &[],
                "Archive writes or catch-ups from Redis that failed (each is retried)",
            ),
            archive_dropped: registry.counter(
                "chat_archive_dropped_total",
                &[],
                "Messages the archiver's full queue could not take; their rooms are caught up from Redis",
            ),
            sync_group: registry.histogram(
                "chat_store_sync_group_messages",
                "Messages per STORE_SYNC commit: the sends that waited together, written in one statement",
            ),
            sync_failures: registry.counter(
                "chat_store_sync_failures_total",
                &[],
                "STORE_SYNC commits that failed; their sends were answered with an error, not acknowledged",
            ),
            retention_removed: registry.counter(
                "chat_retention_removed_total",
                &[],
                "Messages removed from the store for being older than HISTORY_RETENTION_DAYS",
            ),
            registry,
        }
    }

    /// A call refused because this room-service is busy, and why.
    pub(crate) fn shed(&self, reason: &'static str) {
        self.registry.counter(SHED, &[("reason", reason)], SHED_HELP).increment(1);
    }

    /// An event of `kind` (message, joined, left, typing) was published.
    pub(crate) fn published(&self, kind: &'static str) {
        self.registry.counter(PUBLISHED, &[("kind", kind)], PUBLISHED_HELP).increment(1);
    }

    /// An inbox update was `published`, `dropped` (too much inbox work
    /// pending) or `failed` (the broker refused it).
    pub(crate) fn inbox_update(&self, outcome: &'static str) {
        self.registry.counter(INBOX, &[("outcome", outcome)], INBOX_HELP).increment(1);
    }

    pub(crate) fn observe_latency(&self, event_ts_ms: i64, now_ms: i64) {
        let ms = (now_ms - event_ts_ms).max(0) as u64;
        self.publish_to_receive.record(Duration::from_millis(ms).as_secs_f64());
    }

    pub(crate) fn handle(&self) -> PrometheusHandle {
        self.registry.handle()
    }
}

/// `/metrics` (Prometheus text) and `/healthz`, served on the gRPC port and
/// on the separate `METRICS_PORT` when one is set.
/// `/healthz` says `ok`, and on a second line when the store is behind (a
/// note, not a failure: chat goes on on Redis meanwhile).
pub(crate) fn routes(handle: PrometheusHandle, archive: Option<Arc<Archive>>) -> Router {
    let healthz = move || {
        let behind = archive.as_ref().and_then(|a| a.health_line()).unwrap_or_default();
        async move { format!("ok\n{behind}") }
    };
    Router::new().route("/metrics", get(render)).route("/healthz", get(healthz)).with_state(handle)
}

/// Serves [`routes`] on a listener of their own until `stopping` is cancelled.
pub(crate) async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    archive: Option<Arc<Archive>>,
    stopping: CancellationToken,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics at /metrics");
    }
    let result =
        axum::serve(listener, routes(handle, archive)).with_graceful_shutdown(stopping.cancelled_owned()).await;
    if let Err(error) = result {
        tracing::warn!(%error, "metrics server failed");
    }
}

async fn render(State(handle): State<PrometheusHandle>) -> impl IntoResponse {
    chat_runtime::metrics::render(&handle)
}
