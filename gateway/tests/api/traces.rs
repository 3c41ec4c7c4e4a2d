//! Traces and JSON logs, checked against a real OTLP/gRPC receiver
//! (`chat_testkit::OtlpCollector`): one room-service on a real Redis and two
//! gateways export to it, and one `send` must read as one trace from the
//! sender's gateway, through the room-service and its Redis step, to the
//! delivery on every gateway. Only the shape is checked (which span is whose
//! child, which service sent it), never timings.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chat_runtime::logging::LogFormat;
use chat_runtime::traces::{TraceConfig, Traces};
use chat_testkit::OtlpCollector;
use chat_testkit::otlp_collector::CollectedSpan;
use serde_json::Value;

use crate::support::{PATIENCE, Topology, messages};

/// Export every 100 ms, so the test waits a little, not the 5 s default.
fn traced_to(collector: &OtlpCollector) -> impl Fn(&mut TraceConfig) {
    let endpoint = collector.endpoint();
    move |traces: &mut TraceConfig| {
        traces.endpoint = Some(endpoint.clone());
        traces.export_delay_ms = 100;
    }
}

/// Polls the collector until `done` holds for what it received (or fails
/// after [`PATIENCE`], showing what came).
async fn collected(
    collector: &OtlpCollector,
    what: &str,
    done: impl Fn(&[CollectedSpan]) -> bool,
) -> Vec<CollectedSpan> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let spans = collector.spans();
        if done(&spans) {
            return spans;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} never came; received: {spans:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_send_is_one_trace_from_the_senders_gateway_to_the_delivery_on_every_gateway() {
    let collector = OtlpCollector::start();
    let traced = traced_to(&collector);
    let topology = Topology::start_configured(1, 2, |rs| traced(&mut rs.traces), |gw| traced(&mut gw.traces)).await;
    let mut ada = topology.client(0).await;
    let mut bob = topology.client(1).await;
    ada.join("general", "ada").await;
    bob.join("general", "bob").await;

    ada.say("general", "one trace, please").await;
    assert_eq!(messages(&mut bob, "general", 1).await[0]["text"], "one trace, please");
    messages(&mut ada, "general", 1).await;

    // The send's frame span on gateway 0, then everything in its trace.
    let is_send = |s: &CollectedSpan| s.name == "send" && s.service == "chat-gateway";
    let spans = collected(&collector, "the send's span and a delivery on both gateways", |spans| {
        spans.iter().find(|s| is_send(s)).is_some_and(|send| {
            spans.iter().filter(|s| s.trace_id == send.trace_id && s.name == "deliver").count() == 2
        })
    })
    .await;
    let send = spans.iter().find(|s| is_send(s)).expect("the send's span");
    let trace: Vec<&CollectedSpan> = spans.iter().filter(|s| s.trace_id == send.trace_id).collect();
    let one = |name: &str| {
        let found: Vec<&&CollectedSpan> = trace.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "one {name:?} span in the send's trace: {trace:#?}");
        *found[0]
    };

    assert_eq!(send.parent_span_id, "", "a frame starts its own trace: {send:#?}");
    assert_eq!(send.attributes.get("room").map(String::as_str), Some("general"), "{send:#?}");
    assert_eq!(send.attributes.get("frame").map(String::as_str), Some("send"), "{send:#?}");

    let handler = one("chat.v1.RoomService/SendBatch");
    assert_eq!(handler.service, "chat-room-service");
    assert_eq!(handler.parent_span_id, send.span_id, "the room-service's span is the frame's child (traceparent)");

    let redis = one("redis message.lua (store + publish)");
    assert_eq!(redis.service, "chat-room-service");
    assert_eq!(redis.parent_span_id, handler.span_id, "the Redis step is inside the call");

    let deliveries: Vec<&&CollectedSpan> = trace.iter().filter(|s| s.name == "deliver").collect();
    let gateways: BTreeSet<&str> =
        deliveries.iter().filter_map(|d| d.attributes.get("gateway").map(String::as_str)).collect();
    assert_eq!(gateways.len(), 2, "one delivery span per gateway, each naming its gateway: {deliveries:#?}");
    for delivery in &deliveries {
        assert_eq!(delivery.service, "chat-gateway");
        assert_eq!(delivery.parent_span_id, handler.span_id, "a delivery continues the send (the event's traceparent)");
        assert_eq!(delivery.attributes.get("recipients").map(String::as_str), Some("1"), "{delivery:#?}");
    }
    let services: BTreeSet<&str> = trace.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(services, BTreeSet::from(["chat-gateway", "chat-room-service"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_zero_ratio_nothing_is_exported_and_events_carry_no_context() {
    let collector = OtlpCollector::start();
    let traced = traced_to(&collector);
    let unsampled = |traces: &mut TraceConfig| {
        traced(traces);
        traces.sampler_arg = 0.0;
    };
    let topology =
        Topology::start_configured(1, 1, |rs| unsampled(&mut rs.traces), |gw| unsampled(&mut gw.traces)).await;
    let mut grpc = topology.grpc(0).await;
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    ada.say("general", "not sampled").await;
    messages(&mut ada, "general", 1).await;

    // What Redis stored carries no trace context.
    let history = grpc
        .history(chat_proto::v1::HistoryRequest { room: "general".into(), ..Default::default() })
        .await
        .expect("history")
        .into_inner();
    assert!(!history.events.is_empty(), "the message is stored");
    assert!(history.events.iter().all(|e| e.traceparent.is_empty()), "{:?}", history.events);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(collector.total(), 0, "nothing sampled, nothing exported: {:#?}", collector.spans());
}

/// Log lines as written, shared with the subscriber's writer.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// Every line, each parsed as JSON (failing on one that is not).
    fn parsed(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let text = String::from_utf8(bytes).expect("UTF-8 logs");
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object: {line:?}: {e}")))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_the_trace_they_were_logged_in() {
    let collector = OtlpCollector::start();
    let mut config = gateway::Config::with_room_services(Vec::new()).traces;
    traced_to(&collector)(&mut config);
    let traces = Traces::start(&config, "chat-json-test").expect("starts").expect("traces are on");
    let lines = Lines::default();
    let writer = lines.clone();
    let filter = tracing_subscriber::EnvFilter::new("info");
    let dispatch =
        chat_runtime::logging::dispatch(LogFormat::Json, filter, Some(&traces), move || writer.clone(), false);
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(rooms = 3, "outside any span");
        let frame = tracing::info_span!("frame", room = "general", frame = "send");
        let _in_frame = frame.enter();
        tracing::warn!(seq = 7u64, repeat = false, error = "a \"quoted\" reason", "inside the frame");
    });
    let (outside, inside) = match lines.parsed().as_slice() {
        [outside, inside] => (outside.clone(), inside.clone()),
        other => panic!("two lines expected: {other:#?}"),
    };

    for line in [&outside, &inside] {
        let timestamp = line["timestamp"].as_str().unwrap_or_default();
        assert!(timestamp.len() >= 20 && timestamp.contains('T'), "an RFC 3339 timestamp: {line}");
        assert!(line["target"].as_str().is_some_and(|t| t.ends_with("traces")), "the module logged from: {line}");
    }
    assert_eq!(outside["level"], "INFO");
    assert_eq!(outside["message"], "outside any span");
    assert_eq!(outside["fields"]["rooms"], 3, "numbers stay numbers: {outside}");
    assert!(outside.get("trace_id").is_none() && outside.get("span").is_none(), "no span, no ids: {outside}");

    assert_eq!(inside["level"], "WARN");
    assert_eq!(inside["message"], "inside the frame");
    assert_eq!(inside["fields"]["seq"], 7);
    assert_eq!(inside["fields"]["repeat"], false);
    assert_eq!(inside["fields"]["error"], "a \"quoted\" reason");
    assert_eq!(inside["span"]["name"], "frame");
    assert_eq!(inside["span"]["room"], "general");
    assert_eq!(inside["spans"].as_array().map(Vec::len), Some(1), "{inside}");
    let trace_id = inside["trace_id"].as_str().unwrap_or_default().to_owned();
    let span_id = inside["span_id"].as_str().unwrap_or_default().to_owned();
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(hex(&trace_id, 32) && hex(&span_id, 16), "OTel ids: {inside}");

    // The ids are those of the span the collector receives.
    let spans = collected(&collector, "the frame span", |spans| spans.iter().any(|s| s.name == "frame")).await;
    let frame = spans.iter().find(|s| s.name == "frame").expect("came");
    assert_eq!((frame.trace_id.as_str(), frame.span_id.as_str()), (trace_id.as_str(), span_id.as_str()));
    assert_eq!(frame.service, "chat-json-test");
    tokio::task::spawn_blocking(move || traces.shutdown()).await.expect("flushed");
}

#[test]
fn a_sampling_ratio_outside_0_to_1_is_refused_with_what_to_give() {
    let flags = ["gateway", "--otel-sampler-arg", "5"];
    let error = chat_runtime::config::from_flags::<gateway::Config, _, _>(flags).expect_err("refused");
    assert!(error.to_string().contains("from 0 to 1"), "{error}");
}
