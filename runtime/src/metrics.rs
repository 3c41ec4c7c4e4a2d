//! A Prometheus registry per instance, not one per process: several
//! gateways or room-services in one process (as in the tests) count apart.
//! Handles are registered once and updated lock-free on hot paths; every
//! metric is registered with its HELP text.

use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tokio_util::sync::CancellationToken;

/// Buckets for latencies (every metric whose name ends in `seconds`).
pub const LATENCY_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Buckets for work that takes seconds, not milliseconds (the histograms a
/// registry names in [`Registry::with_slow`]).
pub const SLOW_BUCKETS: [f64; 11] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// One instance's registry; every series carries `label` (e.g. which gateway).
pub struct Registry {
    recorder: PrometheusRecorder,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

impl Registry {
    /// A registry whose series all carry `name="value"`. Not `instance` or
    /// `job`: Prometheus sets those itself when it scrapes.
    pub fn new(name: &str, value: &str) -> Self {
        Self::with_slow(name, value, &[])
    }

    /// [`Registry::new`], with the histograms named in `slow` on
    /// [`SLOW_BUCKETS`] (a full name matches before a suffix).
    pub fn with_slow(name: &str, value: &str, slow: &[&str]) -> Self {
        let mut builder = PrometheusBuilder::new()
            .add_global_label(name, value)
            .set_buckets_for_metric(Matcher::Suffix("seconds".into()), &LATENCY_BUCKETS)
            .expect("the bucket list is not empty");
        for histogram in slow {
            builder = builder
                .set_buckets_for_metric(Matcher::Full((*histogram).to_owned()), &SLOW_BUCKETS)
                .expect("the bucket list is not empty");
        }
        Self { recorder: builder.build_recorder() }
    }

    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &'static str)], help: &'static str) -> Counter {
        self.recorder.describe_counter(KeyName::from_const_str(name), Some(Unit::Count), SharedString::const_str(help));
        self.recorder.register_counter(&key(name, labels), &metadata())
    }

    pub fn gauge(&self, name: &'static str, help: &'static str) -> Gauge {
        self.recorder.describe_gauge(KeyName::from_const_str(name), None, SharedString::const_str(help));
        self.recorder.register_gauge(&Key::from_name(name), &metadata())
    }

    pub fn histogram(&self, name: &'static str, help: &'static str) -> Histogram {
        self.recorder.describe_histogram(KeyName::from_const_str(name), None, SharedString::const_str(help));
        self.recorder.register_histogram(&Key::from_name(name), &metadata())
    }

    pub fn handle(&self) -> PrometheusHandle {
        self.recorder.handle()
    }
}

fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
    Key::from_parts(name, labels.iter().map(|(k, v)| Label::new(*k, *v)).collect::<Vec<_>>())
}

fn metadata() -> metrics::Metadata<'static> {
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, None)
}

/// Folds recorded histogram samples in every few seconds (they are kept
/// raw until then) until `stopping`.
pub async fn upkeep(handle: PrometheusHandle, stopping: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    while stopping.run_until_cancelled(tick.tick()).await.is_some() {
        handle.run_upkeep();
    }
}

/// The `/metrics` answer: Prometheus text.
pub fn render(handle: &PrometheusHandle) -> impl IntoResponse + use<> {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_the_instance_label_and_help() {
        let registry = Registry::new("gateway", "gw-1");
        registry.counter("chat_test_total", &[("kind", "a")], "Things counted, by kind").increment(2);
        let text = registry.handle().render();
        assert!(text.contains("# HELP chat_test_total Things counted, by kind"), "{text}");
        assert!(text.contains(r#"chat_test_total{gateway="gw-1",kind="a"} 2"#), "{text}");
    }
}
