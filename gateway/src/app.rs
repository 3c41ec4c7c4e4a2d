//! The HTTP surface: the page, the WebSocket upgrade and health endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::Semaphore;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::auth::{TokenKeys, query_param, token_param};
use crate::caller::Caller;
use crate::client_addr::TrustedProxies;
use crate::limits::{READ_BUFFER_BYTES, SOCKET_FRAME_BYTES, WRITE_BUFFER_BYTES};
use crate::origin::OriginPolicy;
use crate::per_ip::ConnectionsPerIp;
use crate::rate::Rates;
use crate::session::{self, Shared};
use crate::session_token::SessionToken;

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub shared: Arc<Shared>,
    pub connections: Arc<Semaphore>,
    /// `MAX_CONNECTIONS_PER_IP`, counted by the client's address.
    pub per_ip: Arc<ConnectionsPerIp>,
    pub next_conn: Arc<AtomicU64>,
    pub gate: Arc<Gate>,
    /// Uploads and downloads (`files/`).
    pub files: Arc<crate::files::Files>,
}

/// What an upgrade must get past before it becomes a session.
#[derive(Debug)]
pub(crate) struct Gate {
    pub origins: OriginPolicy,
    /// `None`: no tokens, the chat is open.
    pub tokens: Option<TokenKeys>,
    pub rates: Rates,
    /// Whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`).
    pub proxies: TrustedProxies,
}

impl Gate {
    /// Who may connect: 403 for a foreign page, 401 for a missing or bad
    /// token; otherwise the caller the session will ask before each frame.
    #[allow(clippy::result_large_err)]
    fn admit(&self, headers: &HeaderMap, uri: &Uri) -> Result<Caller, Response> {
        self.origins.check(headers).map_err(|why| (StatusCode::FORBIDDEN, format!("{why}\n")).into_response())?;
        let identity = match &self.tokens {
            None => None,
            Some(keys) => Some(
                keys.verify(token_param(uri.query()).as_deref())
                    .map_err(|why| (StatusCode::UNAUTHORIZED, format!("{why}\n")).into_response())?,
            ),
        };
        let limits = self.rates.for_connection(identity.as_ref().map(|identity| identity.user.as_str()));
        Ok(Caller { identity, limits })
    }
}

pub(crate) fn router(state: AppState, static_dir: &std::path::Path) -> Router {
    Router::new()
        .route("/ws", get(upgrade))
        .route(
            "/upload",
            axum::routing::post(crate::files::upload::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/files/{id}", get(crate::files::serve::file))
        .route("/files/{id}/thumb", get(crate::files::serve::thumb))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .fallback_service(ServeDir::new(static_dir))
        .with_state(state)
        // Each HTTP request (an upgrade included) in a span of its own, with
        // its method and path, and a line when it is answered — at debug, so
        // a busy gateway logs nothing extra at the default level.
        .layer(TraceLayer::new_for_http())
}

/// `ConnectInfo` is the TCP peer, put on every request by the serve loop.
async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    let caller = match state.gate.admit(&headers, &uri) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    // A browser coming back as the member it was (`docs/protocol.md`,
    // "Sessions and resuming").
    let resume = match query_param(uri.query(), "session").map(|token| SessionToken::parse(&token)) {
        None => None,
        Some(Ok(token)) => Some(token),
        Some(Err(why)) => return (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response(),
    };
    if state.shared.draining.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "gateway is shutting down; connect to another one\n").into_response();
    }
    let Ok(permit) = Arc::clone(&state.connections).try_acquire_owned() else {
        state.shared.metrics.upgrade_refused("max_connections");
        return (StatusCode::SERVICE_UNAVAILABLE, "gateway is at its connection limit; try another one\n")
            .into_response();
    };
    // After the gateway-wide permit, so the table never holds more
    // addresses than MAX_CONNECTIONS. 429, not 503: the gateway is not
    // full, this client has too many open and has to close some.
    let client = state.gate.proxies.client(peer.ip(), &headers);
    let from_client = match state.per_ip.open(client) {
        Ok(counted) => counted,
        Err(at_cap) => {
            tracing::debug!(%client, %peer, "upgrade refused: MAX_CONNECTIONS_PER_IP");
            state.shared.metrics.upgrade_refused("per_ip");
            return (StatusCode::TOO_MANY_REQUESTS, format!("{at_cap}\n")).into_response();
        }
    };
    let conn = state.next_conn.fetch_add(1, Ordering::Relaxed);
    // Frames over the protocol's cap are refused by the session with 1009;
    // twice that is where the socket itself stops reading. The buffers are
    // sized for a chat connection, which mostly idles and gets small frames:
    // tungstenite's defaults (128 KiB each) would cost that per connection.
    let ws = ws
        .max_message_size(SOCKET_FRAME_BYTES)
        .max_frame_size(SOCKET_FRAME_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES);
    ws.on_upgrade(move |socket| {
        // Tracked, because the HTTP server's graceful shutdown does not wait
        // for upgraded connections: the drain waits for these instead.
        let tasks = state.shared.tasks.clone();
        tasks.track_future(async move {
            tracing::debug!(conn, %client, "browser connected");
            // All released when this ends, however it ends.
            let (_counted, _permit, _from_client) = (state.shared.metrics.connection_open(), permit, from_client);
            session::run(socket, Arc::clone(&state.shared), conn, caller, resume).await;
            tracing::debug!(conn, "browser disconnected");
        })
    })
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    chat_runtime::metrics::render(&state.shared.metrics.handle())
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.shared.draining.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    if state.shared.hub.services().any_serving().await {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no room-service is reachable\n").into_response()
    }
}
