//! Logs: `tracing` to stderr, filtered by `RUST_LOG` (default `info`;
//! `debug` shows each message's trail through the system), as text for a
//! person or, with `LOG_FORMAT=json`, one JSON object per line for a log
//! pipeline (`json.rs`). With traces on, the same subscriber carries the
//! OpenTelemetry layer (`crate::traces`), and JSON lines name the trace and
//! span they were logged in.

mod json;

use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};

use tracing::Dispatch;
use tracing::dispatcher::WeakDispatch;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::prelude::*;

use crate::traces::Traces;

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event, its spans before it.
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message, fields,
    /// span and spans, and `trace_id`/`span_id` when traces are on.
    Json,
}

/// Starts logging (and, with `traces`, span export) for the process.
/// Coloured only on a terminal, not in files or `docker compose logs`.
pub fn init(format: LogFormat, traces: Option<&Traces>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let dispatch = dispatch(format, filter, traces, std::io::stderr, std::io::stderr().is_terminal());
    if tracing::dispatcher::set_global_default(dispatch).is_err() {
        eprintln!("logging was already started; keeping the first setup");
    }
}

/// The subscriber [`init`] installs, writing to `writer`: tests install it
/// for one thread or one in-process server (`tracing::dispatcher::set_default`).
pub fn dispatch<W>(format: LogFormat, filter: EnvFilter, traces: Option<&Traces>, writer: W, ansi: bool) -> Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // The trace ids of JSON lines are read through the dispatch the lines
    // are logged on, which exists only once the subscriber is built: a layer
    // keeps it (not inside an `Option`, which would not pass it on).
    let cell = Arc::new(OnceLock::<WeakDispatch>::new());
    let (mut text, mut json) = (None, None);
    match format {
        LogFormat::Text => text = Some(tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi)),
        LogFormat::Json => {
            let lines = json::JsonLines::new(traces.is_some().then(|| Arc::clone(&cell)));
            json = Some(
                tracing_subscriber::fmt::layer().fmt_fields(JsonFields::new()).event_format(lines).with_writer(writer),
            );
        }
    }
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(traces.map(Traces::layer))
        .with(text)
        .with(json)
        .with(json::DispatchCell(cell));
    Dispatch::new(subscriber)
}
