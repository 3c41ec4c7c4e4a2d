//! Logs: `tracing` to stderr, filtered by `RUST_LOG` (default `info`;
//! `debug` shows each message's trail through the system).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Starts logging for the process. Coloured only on a terminal, not in
/// files or `docker compose logs`.
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
