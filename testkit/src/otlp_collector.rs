//! A small OTLP/gRPC trace receiver, built from the published OTLP protos
//! (`opentelemetry-proto`), for tests that check what the services export.
//!
//! [`OtlpCollector::start`] serves `opentelemetry.proto.collector.trace.v1.
//! TraceService/Export` on 127.0.0.1, port 0, on a thread and runtime of
//! its own (like a separate process: it keeps answering whatever the
//! test's runtime does). Each exported span is kept flat, with the
//! `service.name` of the resource it came under, at most [`MAX_KEPT`];
//! past that spans are only counted, so a long run (the bench) cannot grow
//! it without bound.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use tokio::sync::oneshot;

/// Spans kept for [`OtlpCollector::spans`]; more are counted, not kept.
pub const MAX_KEPT: usize = 10_000;

/// One exported span, as a test looks at it.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectedSpan {
    /// The `service.name` of the resource it was exported under.
    pub service: String,
    pub name: String,
    /// Lower-case hex, as in a `traceparent`.
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// Its attributes, every value shown as text.
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Received {
    spans: Vec<CollectedSpan>,
    total: u64,
}

#[derive(Debug, Clone, Default)]
struct Receiver(Arc<Mutex<Received>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans.resource.map(|r| attributes(&r.attributes)).unwrap_or_default();
            let service = resource.get("service.name").cloned().unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                received.total += 1;
                if received.spans.len() < MAX_KEPT {
                    received.spans.push(CollectedSpan {
                        service: service.clone(),
                        name: span.name,
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        attributes: attributes(&span.attributes),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// A running receiver; stops when dropped.
#[derive(Debug)]
pub struct OtlpCollector {
    addr: SocketAddr,
    received: Receiver,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OtlpCollector {
    /// Listens on 127.0.0.1, port 0.
    ///
    /// # Panics
    /// When no port or thread can be had: the test cannot run.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port for the OTLP collector");
        let addr = listener.local_addr().expect("bound");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let received = Receiver::default();
        let service = TraceServiceServer::new(received.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("otlp-collector".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the OTLP collector");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let incoming = tonic::transport::server::TcpIncoming::from(listener);
                    let _ = tonic::transport::Server::builder()
                        .add_service(service)
                        .serve_with_incoming_shutdown(incoming, async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })
            .expect("a thread for the OTLP collector");
        Self { addr, received, stop: Some(stop), thread: Some(thread) }
    }

    /// What to give `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The spans received so far (the first [`MAX_KEPT`]).
    pub fn spans(&self) -> Vec<CollectedSpan> {
        self.received.0.lock().unwrap_or_else(PoisonError::into_inner).spans.clone()
    }

    /// How many spans were received, kept or not.
    pub fn total(&self) -> u64 {
        self.received.0.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

impl Drop for OtlpCollector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter().map(|kv| (kv.key.clone(), kv.value.as_ref().map(text).unwrap_or_default())).collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
