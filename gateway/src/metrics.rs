//! What the gateway counts, served as Prometheus text at `/metrics`.
//!
//! Each gateway keeps its own registry (no process-wide recorder), so
//! several gateways in one process — as in the tests — count apart. Handles
//! are registered once and updated lock-free on the message path.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, Label, Recorder, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Buckets for publish-to-deliver latency, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

pub struct GatewayMetrics {
    recorder: PrometheusRecorder,
    /// Browser WebSocket connections open now.
    pub connections: Gauge,
    /// Rooms with at least one local browser.
    pub rooms: Gauge,
    /// Room events written to browsers.
    pub frames_out: Counter,
    /// Browsers disconnected because their queue was full (close 4008).
    pub slow_consumers: Counter,
    /// Typing frames dropped by the throttle.
    pub typing_dropped: Counter,
    /// Failed room-service calls and broken room streams.
    pub upstream_errors: Counter,
    /// From the room-service accepting an event to this gateway queueing it
    /// for its browsers.
    pub publish_to_deliver: Histogram,
}

impl std::fmt::Debug for GatewayMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayMetrics")
    }
}

impl GatewayMetrics {
    pub fn new(gateway: &str) -> Self {
        let recorder = PrometheusBuilder::new()
            .add_global_label("gateway", gateway)
            .set_buckets_for_metric(Matcher::Suffix("seconds".into()), &LATENCY_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let describe = |name: &'static str, unit: Unit, help: &'static str| {
            recorder.describe_counter(name.into(), Some(unit), help.into());
        };
        describe("chat_gateway_frames_in_total", Unit::Count, "Frames received from browsers, by type");
        describe("chat_gateway_errors_total", Unit::Count, "Error frames sent to browsers, by code");
        describe(
            "chat_gateway_resumes_total",
            Unit::Count,
            "Joins that resumed from after_seq/epoch, by whether the history covered what was missed",
        );
        describe("chat_gateway_sessions_ended_total", Unit::Count, "Browser connections ended, by how");
        Self {
            connections: gauge(&recorder, "chat_gateway_connections"),
            rooms: gauge(&recorder, "chat_gateway_rooms"),
            frames_out: counter(&recorder, "chat_gateway_frames_out_total", &[]),
            slow_consumers: counter(&recorder, "chat_gateway_frames_dropped_total", &[("reason", "slow_consumer")]),
            typing_dropped: counter(&recorder, "chat_gateway_frames_dropped_total", &[("reason", "typing_throttled")]),
            upstream_errors: counter(&recorder, "chat_gateway_upstream_errors_total", &[]),
            publish_to_deliver: recorder
                .register_histogram(&Key::from_name("chat_gateway_publish_to_deliver_seconds"), &metadata()),
            recorder,
        }
    }

    /// A frame of `kind` came in from a browser.
    pub fn frame_in(&self, kind: &'static str) {
        counter(&self.recorder, "chat_gateway_frames_in_total", &[("type", kind)]).increment(1);
    }

    /// A resuming join was answered; `recovered`: with everything missed.
    pub fn resumed(&self, recovered: bool) {
        let recovered = if recovered { "true" } else { "false" };
        counter(&self.recorder, "chat_gateway_resumes_total", &[("recovered", recovered)]).increment(1);
    }

    /// A browser connection ended, `how` (closed, gone, slow_consumer, ...).
    pub fn session_ended(&self, how: &'static str) {
        counter(&self.recorder, "chat_gateway_sessions_ended_total", &[("how", how)]).increment(1);
    }

    /// An error frame with `code` went out.
    pub fn error_sent(&self, code: &'static str) {
        counter(&self.recorder, "chat_gateway_errors_total", &[("code", code)]).increment(1);
    }

    pub fn observe_latency(&self, event_ts_ms: i64, now_ms: i64) {
        let ms = (now_ms - event_ts_ms).max(0) as u64;
        self.publish_to_deliver.record(Duration::from_millis(ms).as_secs_f64());
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

fn gauge(recorder: &PrometheusRecorder, name: &'static str) -> Gauge {
    recorder.register_gauge(&Key::from_name(name), &metadata())
}
