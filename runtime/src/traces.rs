//! Traces: `tracing` spans exported as OpenTelemetry spans over OTLP/gRPC,
//! on only when an endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`).
//!
//! How a span travels: [`Traces::start`] builds a tracer provider whose
//! batch processor queues finished spans (at most [`MAX_QUEUED_SPANS`]; past
//! that new ones are dropped, never buffered without bound) and exports them
//! every `OTEL_BSP_SCHEDULE_DELAY` from its own thread. The OTLP client's
//! connection lives on a small runtime of its own ([`Export`]), so exporting
//! neither competes with nor depends on the service's runtime, and the final
//! flush works from anywhere (`Traces::shutdown`). [`Traces::layer`] is what
//! `logging` adds to the subscriber: every enabled span becomes an OTel span.
//!
//! Across processes the context goes as a W3C `traceparent` string:
//! [`traceparent`] writes the current span's (only when it is sampled, so
//! an unsampled request costs the next hop nothing) and [`continue_from`]
//! makes a new span its child. The gateway puts it in gRPC metadata, the
//! room-service into the events it stores, so deliveries on every gateway
//! join the send's trace.
//!
//! Off, none of this runs: no layer is installed and the services check
//! their flag ([`TraceConfig::enabled`]) once before any span or context
//! work on their hot paths.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Spans waiting to be exported; past this, new spans are dropped (the
/// SDK counts them) rather than held while a collector is slow or gone.
pub const MAX_QUEUED_SPANS: usize = 2048;
/// The W3C header (and gRPC metadata key) that carries a span's context.
pub const TRACEPARENT: &str = "traceparent";

/// Which spans are recorded: the standard `OTEL_TRACES_SAMPLER` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SamplerKind {
    #[value(name = "always_on")]
    AlwaysOn,
    #[value(name = "always_off")]
    AlwaysOff,
    #[value(name = "traceidratio")]
    TraceIdRatio,
    #[value(name = "parentbased_always_on")]
    ParentBasedAlwaysOn,
    #[value(name = "parentbased_always_off")]
    ParentBasedAlwaysOff,
    #[value(name = "parentbased_traceidratio")]
    ParentBasedTraceIdRatio,
}

/// The trace settings both binaries take (flattened into their configs).
#[derive(Debug, Clone, clap::Args)]
pub struct TraceConfig {
    /// Where to send spans over OTLP/gRPC, e.g. http://127.0.0.1:4317.
    /// Unset: no traces at all (nothing is recorded or propagated).
    #[arg(long = "otel-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub endpoint: Option<String>,
    /// The `service.name` spans carry (default: chat-gateway or chat-room-service).
    #[arg(long = "otel-service-name", env = "OTEL_SERVICE_NAME")]
    pub service_name: Option<String>,
    /// Which traces are kept; the parent-based ones follow the caller's decision.
    #[arg(long = "otel-sampler", env = "OTEL_TRACES_SAMPLER", value_enum, default_value = "parentbased_traceidratio")]
    pub sampler: SamplerKind,
    /// The ratio of the ratio samplers, 0 to 1 (1 keeps every trace).
    #[arg(long = "otel-sampler-arg", env = "OTEL_TRACES_SAMPLER_ARG", default_value_t = 1.0, value_parser = ratio)]
    pub sampler_arg: f64,
    /// How often queued spans are exported, in milliseconds.
    #[arg(long = "otel-export-delay-ms", env = "OTEL_BSP_SCHEDULE_DELAY", default_value_t = 5000)]
    pub export_delay_ms: u64,
}

fn ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{text:?} is not a sampling ratio: give a number from 0 to 1, e.g. 0.01 for 1%")),
    }
}

impl TraceConfig {
    /// Whether traces are on: the one flag the services check.
    pub fn enabled(&self) -> bool {
        self.endpoint.is_some()
    }

    fn sampler(&self) -> Sampler {
        let ratio = Sampler::TraceIdRatioBased(self.sampler_arg);
        match self.sampler {
            SamplerKind::AlwaysOn => Sampler::AlwaysOn,
            SamplerKind::AlwaysOff => Sampler::AlwaysOff,
            SamplerKind::TraceIdRatio => ratio,
            SamplerKind::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            SamplerKind::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            SamplerKind::ParentBasedTraceIdRatio => Sampler::ParentBased(Box::new(ratio)),
        }
    }
}

/// A running trace pipeline: the provider and the export runtime it uses.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    export: Export,
}

impl Traces {
    /// The pipeline `config` asks for, or `None` when traces are off.
    /// `default_name` is the `service.name` unless `OTEL_SERVICE_NAME` says.
    /// Reads no environment itself (the config has every setting).
    pub fn start(config: &TraceConfig, default_name: &str) -> anyhow::Result<Option<Self>> {
        let Some(endpoint) = &config.endpoint else { return Ok(None) };
        let export = Export::start()?;
        // The client's connection task is spawned on the export runtime.
        let exporter = export
            .enter(|| opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build())
            .with_context(|| {
                format!("OTEL_EXPORTER_OTLP_ENDPOINT {endpoint:?}: cannot build the OTLP/gRPC exporter")
            })?;
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(MAX_QUEUED_SPANS)
            .with_scheduled_delay(Duration::from_millis(config.export_delay_ms))
            .build();
        let name = config.service_name.clone().unwrap_or_else(|| default_name.to_owned());
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter).with_batch_config(batch).build())
            .with_sampler(config.sampler())
            .with_resource(Resource::builder_empty().with_service_name(name).build())
            .build();
        let tracer = provider.tracer("chat");
        Ok(Some(Self { provider, tracer, export }))
    }

    /// The `tracing` layer that turns spans into this pipeline's OTel spans.
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer.clone()).with_location(false).with_threads(false)
    }

    /// Exports what is queued and stops (blocking, up to a few seconds): the
    /// last spans of a graceful exit are not lost.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            eprintln!("traces: the last spans may not have been exported: {error}");
        }
        drop(self.export);
    }
}

/// The OTLP client's own runtime, on its own thread: one thread, only
/// while traces are on.
#[derive(Debug)]
struct Export {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Export {
    fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()
            .context("cannot start the OTLP exporter's runtime")?;
        Ok(Self { runtime: Some(runtime) })
    }

    /// Runs `build` with this runtime as the current one (allowed inside
    /// another runtime, unlike `block_on`).
    fn enter<T>(&self, build: impl FnOnce() -> T) -> T {
        match &self.runtime {
            Some(runtime) => {
                let _entered = runtime.enter();
                build()
            }
            None => build(),
        }
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        // Not a blocking drop: its only tasks are the OTLP connection's,
        // which may be waiting on a collector that is gone.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The span's context as a W3C `traceparent`, when the span is sampled
/// (an unsampled one is not worth a hop's work); `None` without a layer.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if !span_context.is_valid() || !span_context.is_sampled() {
        return None;
    }
    let mut carrier = HashMap::with_capacity(1);
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the span `traceparent` names (a remote parent).
/// A malformed one is ignored: the span starts a trace of its own.
pub fn continue_from(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The current span's trace and span ids (hex), if it has OTel data.
pub(crate) fn ids_of(context: &opentelemetry::Context) -> Option<(String, String)> {
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| (span_context.trace_id().to_string(), span_context.span_id().to_string()))
}
