//! `LOG_FORMAT=json`: each event as one JSON object on one line.
//!
//! `{"timestamp","level","target","message","fields":{..},"span":{..},
//! "spans":[..],"trace_id","span_id"}` — `span` is the innermost span (its
//! name and fields), `spans` the whole scope from the root, and the ids are
//! the OpenTelemetry ones of the span the event is in (only with traces on,
//! and only inside a span). Span fields are kept as JSON by the fmt layer
//! (`JsonFields`); the event's own fields are collected here.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::layer::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The formatter; with a cell, it adds trace and span ids.
pub(super) struct JsonLines {
    dispatch: Option<Arc<OnceLock<WeakDispatch>>>,
}

impl JsonLines {
    pub(super) fn new(dispatch: Option<Arc<OnceLock<WeakDispatch>>>) -> Self {
        Self { dispatch }
    }

    /// The OTel ids of span `id`, read through the subscriber's dispatch.
    fn ids(&self, id: &tracing::span::Id) -> Option<(String, String)> {
        let dispatch: Dispatch = self.dispatch.as_ref()?.get()?.upgrade()?;
        let context = tracing_opentelemetry::get_otel_context(id, &dispatch)?;
        crate::traces::ids_of(&context)
    }
}

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or(Value::String(String::new()));

        let mut line = Map::new();
        line.insert("timestamp".into(), timestamp.into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        line.insert("message".into(), message);
        line.insert("fields".into(), Value::Object(fields.0));
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope.from_root().map(|span| span_object(&span)).collect();
            if let Some(innermost) = spans.last() {
                line.insert("span".into(), innermost.clone());
            }
            line.insert("spans".into(), Value::Array(spans));
        }
        // After every extension lock above is released: reading the OTel
        // context takes the span's extensions again.
        if let Some((trace_id, span_id)) = ctx.parent_span().and_then(|span| self.ids(&span.id())) {
            line.insert("trace_id".into(), trace_id.into());
            line.insert("span_id".into(), span_id.into());
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// A span as `{"name": .., its fields..}`.
fn span_object<S>(span: &tracing_subscriber::registry::SpanRef<'_, S>) -> Value
where
    S: for<'a> LookupSpan<'a>,
{
    let mut object = Map::new();
    object.insert("name".into(), span.name().into());
    let extensions = span.extensions();
    if let Some(fields) = extensions.get::<FormattedFields<JsonFields>>()
        && let Ok(Value::Object(recorded)) = serde_json::from_str::<Value>(fields)
    {
        object.extend(recorded);
    }
    Value::Object(object)
}

/// An event's fields as JSON values (numbers and booleans as themselves).
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}

/// A layer that only remembers the dispatch it was registered with, for
/// [`JsonLines`] to read the OTel context through.
pub(super) struct DispatchCell(pub(super) Arc<OnceLock<WeakDispatch>>);

impl<S: Subscriber> Layer<S> for DispatchCell {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0.set(subscriber.downgrade());
    }
}
