//! Shutdown under one deadline.
//!
//! When the shutdown signal comes, the gateway stops accepting, tells every
//! browser to reconnect elsewhere (`session`), and waits for two things: the
//! HTTP server to finish the requests in progress, then the browser
//! sessions and the leave notices they send. Both waits share one deadline,
//! `DRAIN_SECS` after the signal, so a shutdown never takes longer than
//! that, however the time splits between them; whatever is left then is cut
//! off (members whose leave was not sent expire with their presence).

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a drain finished, and what the deadline cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drained {
    Everything,
    /// Requests were still in progress at the deadline.
    CutRequests,
    /// Sessions or leave notices were still running at the deadline.
    CutSessions,
}

/// Runs `server` until `draining` is cancelled, then gives it and `sessions`
/// until `drain_for` after that moment, together.
pub(crate) async fn drain(
    server: impl Future<Output = ()>,
    draining: &CancellationToken,
    sessions: &TaskTracker,
    drain_for: Duration,
) -> Drained {
    let mut server = std::pin::pin!(server);
    let ended = tokio::select! {
        () = &mut server => true,
        () = draining.cancelled() => false,
    };
    let deadline = Instant::now() + drain_for;
    if !ended && timeout_at(deadline, server).await.is_err() {
        sessions.close();
        return Drained::CutRequests;
    }
    sessions.close();
    match timeout_at(deadline, sessions.wait()).await {
        Ok(()) => Drained::Everything,
        Err(_) => Drained::CutSessions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRAIN: Duration = Duration::from_secs(10);

    /// Drains a server that takes `server_takes` after the signal and
    /// sessions that take `sessions_take`: what it says, and how long the
    /// drain ran (on tokio's paused clock, so exactly).
    async fn run(server_takes: Duration, sessions_take: Duration) -> (Drained, Duration) {
        let (draining, sessions) = (CancellationToken::new(), TaskTracker::new());
        sessions.spawn(tokio::time::sleep(sessions_take));
        let signal = draining.clone();
        let server = async move {
            signal.cancelled().await;
            tokio::time::sleep(server_takes).await;
        };
        draining.cancel();
        let started = Instant::now();
        let drained = drain(server, &draining, &sessions, DRAIN).await;
        (drained, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_never_takes_longer_than_its_deadline() {
        // The server finishes within the deadline; the sessions (running
        // since the signal too) would take longer: cut at the same deadline,
        // not a second full drain after the server.
        assert_eq!(run(DRAIN * 3 / 4, DRAIN * 3 / 2).await, (Drained::CutSessions, DRAIN));
        assert_eq!(run(DRAIN * 2, Duration::ZERO).await, (Drained::CutRequests, DRAIN));
        assert_eq!(run(Duration::ZERO, DRAIN * 2).await, (Drained::CutSessions, DRAIN));
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_drain_returns_when_everything_is_done() {
        let quick = Duration::from_secs(1);
        assert_eq!(run(quick, quick).await, (Drained::Everything, quick));
    }
}
