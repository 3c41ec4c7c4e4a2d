//! The HTTP server loop: accept, serve HTTP/1.1 with upgrades, and stop
//! gracefully.
//!
//! `axum::serve` does the same but gives no way to bound how long a new
//! connection may take to send its request: a TCP connection that never
//! sends one (a port scanner, a slowloris, a browser that died mid-connect)
//! would hold a task and a socket for ever. Here hyper's header timer closes
//! a connection whose request headers have not arrived within
//! [`REQUEST_WAIT`] of the connect. Once upgraded, a WebSocket belongs to
//! its session (`session.rs`), which has its own liveness checks.
//!
//! Each connection's requests carry its TCP peer as axum's
//! `ConnectInfo<SocketAddr>` (what `into_make_service_with_connect_info`
//! would add): the upgrade counts connections per client address by it.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::add_extension::AddExtension;

use crate::limits::REQUEST_WAIT;

/// Serves `router` on `listener` until `shutdown` completes; then stops
/// accepting, lets requests in progress finish, and returns. Upgraded
/// WebSockets are not waited for: they are the sessions' to end.
pub(crate) async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let (connections, stopping) = (TaskTracker::new(), CancellationToken::new());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                accept_failed(&error).await;
                continue;
            }
        };
        // Chat frames are small: without TCP_NODELAY, Nagle's algorithm and
        // delayed ACKs hold them back for tens of milliseconds.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(REQUEST_WAIT);
        let service = TowerToHyperService::new(AddExtension::new(router.clone(), ConnectInfo(peer)));
        let connection = http.serve_connection(TokioIo::new(stream), service).with_upgrades();
        let stopping = stopping.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => Some(ended),
                () = stopping.cancelled() => None,
            };
            let ended = match ended {
                Some(ended) => ended,
                None => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%peer, %error, "HTTP connection ended");
            }
        });
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    connections.wait().await;
}

/// An accept that failed: a connection reset before it was accepted is
/// nothing; running out of file descriptors is, and accepting again at once
/// would spin, so wait a moment.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(%error, "accept failed; trying again in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
