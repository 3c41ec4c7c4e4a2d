//! What the room-service counts, served as Prometheus text at `/metrics`
//! on the gRPC port (plain HTTP/1.1 next to gRPC) and, when `METRICS_PORT`
//! is set, on a small HTTP port of its own.
//!
//! Each room-service keeps its own registry (no process-wide recorder), so
//! several in one process — as in the tests — count apart.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics::{Counter, Gauge, Histogram, Key, Label, Recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Buckets for publish-to-receive latency, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

pub struct RoomServiceMetrics {
    recorder: PrometheusRecorder,
    /// Gateway Subscribe streams open now.
    pub streams: Gauge,
    /// Rooms this process holds a bus subscription for.
    pub rooms: Gauge,
    /// Events received from the bus (once per event per room-service).
    pub events_received: Counter,
    /// Events a stream had to refill from history (gaps, lag, resumes).
    pub events_refilled: Counter,
    /// Broker calls that failed (Redis unreachable, unreadable data).
    pub broker_errors: Counter,
    /// From accepting an event to receiving it back from the bus.
    pub publish_to_receive: Histogram,
    /// Presence changes applied per broker step.
    pub presence_batch: Histogram,
}

impl std::fmt::Debug for RoomServiceMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomServiceMetrics")
    }
}

impl RoomServiceMetrics {
    pub fn new(instance: &str) -> Self {
        let recorder = PrometheusBuilder::new()
            .add_global_label("instance", instance)
            .set_buckets_for_metric(Matcher::Suffix("seconds".into()), &LATENCY_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        Self {
            streams: recorder.register_gauge(&Key::from_name("chat_room_service_streams"), &metadata()),
            rooms: recorder.register_gauge(&Key::from_name("chat_room_service_rooms_subscribed"), &metadata()),
            events_received: counter(&recorder, "chat_room_service_events_received_total", &[]),
            events_refilled: counter(&recorder, "chat_room_service_events_refilled_total", &[]),
            broker_errors: counter(&recorder, "chat_room_service_broker_errors_total", &[]),
            publish_to_receive: recorder
                .register_histogram(&Key::from_name("chat_room_service_publish_to_receive_seconds"), &metadata()),
            presence_batch: recorder
                .register_histogram(&Key::from_name("chat_room_service_presence_batch_changes"), &metadata()),
            recorder,
        }
    }

    /// A call refused because this room-service is busy, and why.
    pub fn shed(&self, reason: &'static str) {
        counter(&self.recorder, "chat_room_service_calls_shed_total", &[("reason", reason)]).increment(1);
    }

    /// An event of `kind` (message, joined, left, typing) was published.
    pub fn published(&self, kind: &'static str) {
        counter(&self.recorder, "chat_room_service_events_published_total", &[("kind", kind)]).increment(1);
    }

    pub fn observe_latency(&self, event_ts_ms: i64, now_ms: i64) {
        let ms = (now_ms - event_ts_ms).max(0) as u64;
        self.publish_to_receive.record(Duration::from_millis(ms).as_secs_f64());
    }

    pub fn handle(&self) -> PrometheusHandle {
        self.recorder.handle()
    }
}

fn metadata() -> metrics::Metadata<'static> {
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, None)
}

fn counter(recorder: &PrometheusRecorder, name: &'static str, labels: &[(&'static str, &'static str)]) -> Counter {
    let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(*k, *v)).collect();
    recorder.register_counter(&Key::from_parts(name, labels), &metadata())
}

/// `/metrics` (Prometheus text) and `/healthz`, served on the gRPC port and
/// on the separate `METRICS_PORT` when one is set.
pub fn routes(handle: PrometheusHandle) -> Router {
    Router::new().route("/metrics", get(render)).route("/healthz", get(|| async { "ok\n" })).with_state(handle)
}

/// Folds recorded histogram samples in every few seconds until `stopping`.
pub async fn upkeep(handle: PrometheusHandle, stopping: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    while stopping.run_until_cancelled(tick.tick()).await.is_some() {
        handle.run_upkeep();
    }
}

/// Serves [`routes`] on a listener of their own until `stopping` is cancelled.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle, stopping: CancellationToken) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics at /metrics");
    }
    let result = axum::serve(listener, routes(handle)).with_graceful_shutdown(stopping.cancelled_owned()).await;
    if let Err(error) = result {
        tracing::warn!(%error, "metrics server failed");
    }
}

async fn render(State(handle): State<PrometheusHandle>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], handle.render())
}
