//! What the gateway counts, served as Prometheus text at `/metrics`.
//!
//! Each gateway keeps its own registry (`chat_runtime::metrics`), labelled
//! `gateway="<id>"`. Handles are registered once and updated lock-free on
//! the message path; counters with a label per frame type or error code
//! are looked up when counted (a map lookup, on paths that are not hot).

use chat_proto::ErrorCode;
use std::time::Duration;

use chat_runtime::metrics::Registry;
use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::PrometheusHandle;

const FRAMES_IN: &str = "chat_gateway_frames_in_total";
const FRAMES_IN_HELP: &str = "Frames received from browsers, by type";
const ERRORS: &str = "chat_gateway_errors_total";
const ERRORS_HELP: &str = "Error frames sent to browsers, by code";
const RESUMES: &str = "chat_gateway_resumes_total";
const RESUMES_HELP: &str = "Joins that resumed from after_seq/epoch, by whether the history held everything missed";
const ENDED: &str = "chat_gateway_sessions_ended_total";
const ENDED_HELP: &str =
    "Browser connections ended, by how (closed, gone, slow_consumer, drained, session_moved, timeout, protocol_error)";
const DROPPED: &str = "chat_gateway_frames_dropped_total";
const DROPPED_HELP: &str = "Frames not delivered, by reason";
const UPLOADS: &str = "chat_gateway_uploads_total";
const UPLOADS_HELP: &str =
    "Uploads answered, by outcome (stored, or the refusal's code: too_big, bad_image, busy, ...)";
const IMAGE_WORK: &str = "chat_gateway_image_work_seconds";
const REFUSED: &str = "chat_gateway_upgrades_refused_total";
const REFUSED_HELP: &str =
    "WebSocket upgrades refused for a connection limit, by limit (max_connections: 503, per_ip: 429)";

pub(crate) struct GatewayMetrics {
    registry: Registry,
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
    /// Bytes of the files uploads stored (images as served, stripped).
    pub upload_bytes: Counter,
    /// An image's time on its worker: stripping, decoding, thumbnailing.
    pub image_work: Histogram,
}

impl std::fmt::Debug for GatewayMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayMetrics")
    }
}

impl GatewayMetrics {
    pub(crate) fn new(gateway: &str) -> Self {
        // An image takes from milliseconds to seconds on its worker.
        let registry = Registry::with_slow("gateway", gateway, &[IMAGE_WORK]);
        Self {
            connections: registry.gauge("chat_gateway_connections", "Browser WebSocket connections open now"),
            rooms: registry.gauge("chat_gateway_rooms", "Rooms with at least one browser on this gateway"),
            frames_out: registry.counter("chat_gateway_frames_out_total", &[], "Frames written to browsers"),
            slow_consumers: registry.counter(DROPPED, &[("reason", "slow_consumer")], DROPPED_HELP),
            typing_dropped: registry.counter(DROPPED, &[("reason", "typing_throttled")], DROPPED_HELP),
            upstream_errors: registry.counter(
                "chat_gateway_upstream_errors_total",
                &[],
                "Failed room-service calls and broken room streams",
            ),
            publish_to_deliver: registry.histogram(
                "chat_gateway_publish_to_deliver_seconds",
                "From a room-service accepting an event to this gateway queueing it for its browsers",
            ),
            upload_bytes: registry.counter(
                "chat_gateway_upload_bytes_total",
                &[],
                "Bytes of the files uploads stored (images as served, without their metadata)",
            ),
            image_work: registry
                .histogram(IMAGE_WORK, "An uploaded image's time on its worker: stripping, decoding and thumbnailing"),
            registry,
        }
    }

    /// Counts one open connection in `chat_gateway_connections` until the
    /// returned guard is dropped — however its task ends, a panic included.
    pub(crate) fn connection_open(&self) -> OpenConnection {
        self.connections.increment(1);
        OpenConnection(self.connections.clone())
    }

    /// A frame of `kind` came in from a browser.
    pub(crate) fn frame_in(&self, kind: &'static str) {
        self.registry.counter(FRAMES_IN, &[("type", kind)], FRAMES_IN_HELP).increment(1);
    }

    /// An error frame with `code` went out.
    pub(crate) fn error_sent(&self, code: ErrorCode) {
        self.registry.counter(ERRORS, &[("code", code.as_str())], ERRORS_HELP).increment(1);
    }

    /// A resuming join was answered; `recovered`: with everything missed.
    pub(crate) fn resumed(&self, recovered: bool) {
        let recovered = if recovered { "true" } else { "false" };
        self.registry.counter(RESUMES, &[("recovered", recovered)], RESUMES_HELP).increment(1);
    }

    /// An upgrade was refused at the connection limit `limit`.
    pub(crate) fn upgrade_refused(&self, limit: &'static str) {
        self.registry.counter(REFUSED, &[("limit", limit)], REFUSED_HELP).increment(1);
    }

    /// An upload was answered: `outcome` is `stored` or the refusal's code.
    pub(crate) fn upload_answered(&self, outcome: &'static str) {
        self.registry.counter(UPLOADS, &[("outcome", outcome)], UPLOADS_HELP).increment(1);
    }

    /// A browser connection ended, `how`.
    pub(crate) fn session_ended(&self, how: &'static str) {
        self.registry.counter(ENDED, &[("how", how)], ENDED_HELP).increment(1);
    }

    pub(crate) fn observe_latency(&self, event_ts_ms: i64, now_ms: i64) {
        let ms = (now_ms - event_ts_ms).max(0) as u64;
        self.publish_to_deliver.record(Duration::from_millis(ms).as_secs_f64());
    }

    pub(crate) fn handle(&self) -> PrometheusHandle {
        self.registry.handle()
    }
}

/// One connection counted in the connections gauge while it lives.
#[must_use = "the connection is counted only while this lives"]
pub(crate) struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.decrement(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_connections(metrics: &GatewayMetrics) -> String {
        let text = metrics.handle().render();
        text.lines().find(|l| l.starts_with("chat_gateway_connections{")).unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn a_connection_whose_task_panics_is_no_longer_counted() {
        let metrics = std::sync::Arc::new(GatewayMetrics::new("gw-test"));
        let held = metrics.connection_open();
        let task = tokio::spawn({
            let metrics = std::sync::Arc::clone(&metrics);
            async move {
                let _open = metrics.connection_open();
                panic!("a session bug");
            }
        });
        assert!(task.await.is_err(), "the task panicked");
        assert!(open_connections(&metrics).ends_with(" 1"), "{}", open_connections(&metrics));
        drop(held);
        assert!(open_connections(&metrics).ends_with(" 0"), "{}", open_connections(&metrics));
    }
}
