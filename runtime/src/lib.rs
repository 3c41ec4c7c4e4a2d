//! # chat-runtime
//!
//! The pieces the gateway and the room-service both run on, kept in one
//! place so the two binaries behave alike: [`main`] runs a binary's async
//! body and turns a startup error into one line; [`logging`] sets up
//! `tracing` (text or JSON lines); [`traces`] exports spans over OTLP when
//! configured; [`shutdown`] completes on Ctrl+C or SIGTERM; [`clock`] gives
//! event timestamps; [`config`] builds configs that ignore the shell's
//! variables, for tests and tools; [`metrics`] builds a per-instance Prometheus registry
//! and serves it.

pub mod blobs;
pub mod clock;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod shutdown;
pub mod traces;

use std::future::Future;
use std::process::ExitCode;

pub use shutdown::signal as shutdown_signal;

/// Runs a binary's body on a multi-threaded runtime. A failure is printed
/// as one line naming what to fix (`<binary>: <error: cause: cause>`), not
/// a `Debug` dump, and the process exits with status 1.
pub fn main(binary: &str, body: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{binary}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(body) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{binary}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
