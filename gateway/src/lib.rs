//! # gateway
//!
//! A stateless WebSocket front door: browsers connect to any gateway, and
//! every gateway reaches every room through the room-services.
//!
//! ## Layout
//! - [`config`]: flags and environment.
//! - [`app`]: HTTP routes — the page, `/ws`, health.
//! - [`session`]: one browser connection: frames in, calls out, events back;
//!   [`session_token`] makes a reconnecting browser the same member,
//!   [`liveness`] pings it and notices when it went silent.
//! - [`serve`]: the HTTP server loop, with a deadline for the first request;
//!   [`drain`] ends it all within `DRAIN_SECS` of the shutdown signal.
//! - [`frame`]: the JSON browser protocol (`docs/protocol.md`); [`pages`]
//!   its `history` and `search` frames (a joined room's stored messages by
//!   cursor), with [`highlights`] turning search matches into the UTF-16
//!   offsets a page slices text by.
//! - [`hub`] and [`feed`]: per room, one upstream stream shared by all local
//!   browsers in it, each event encoded once.
//! - [`presence`]: a room's joins and leaves gathered into at most one
//!   `presence` frame per window.
//! - [`inbox`]: a user's rooms (`rooms`, `inbox` and `dm` frames): every
//!   connection follows its user's inbox room, a feed shared per shard.
//! - [`upstream`]: which room-service serves a room, and moving on when it fails;
//!   [`bearer`] adds `GRPC_TOKEN` to each call.
//! - [`traced`]: with traces on, a span per browser frame whose context goes
//!   with its calls, and a span per event delivered here, continuing the send.
//! - [`rendezvous`]: the hash that ranks room-services for a room.
//! - Security (docs/security.md): [`origin`] (which pages may connect),
//!   [`auth`] (tokens), [`client_addr`] (the client's address behind
//!   trusted proxies), [`per_ip`] (connections per address), [`rate`]
//!   (send, join and read limits, per user with tokens), [`caller`] (who a
//!   connection is and what it may do, asked before each frame), and
//!   [`closing`] (close codes for broken frames).
//!
//! ## How a message flows
//! A browser sends `{"type":"send"}`. Its session validates it and calls
//! `Send` on the room's room-service, which stores and publishes it. The
//! room-service streams it to every gateway with browsers in the room; each
//! gateway's feed for the room encodes it to JSON once and queues the same
//! bytes for each local browser, whose session writes them out.

// Internals are `pub(crate)`: the public surface is what lib.rs re-exports,
// so the dead-code lint sees everything else.
#![warn(unreachable_pub)]

mod app;
mod auth;
mod bearer;
mod caller;
mod client_addr;
mod closing;
mod config;
mod drain;
mod feed;
mod files;
mod frame;
mod highlights;
mod hub;
mod inbox;
pub mod limits;
mod liveness;
mod metrics;
mod origin;
mod pages;
mod per_ip;
mod presence;
mod rate;
mod rendezvous;
mod serve;
mod session;
mod session_token;
mod traced;
mod upstream;

#[cfg(test)]
mod frame_props;

// The surface other crates use: run a gateway (its config, its listener),
// and what tests need to talk to room-services the way a gateway does.
pub use crate::bearer::Bearer;
pub use crate::client_addr::TrustedProxies;
pub use crate::config::Config;
pub use crate::upstream::RoomServices;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::TokenKeys;
use crate::drain::Drained;
use crate::hub::Hub;
use crate::limits::ACCEPT_BACKLOG;
use crate::metrics::GatewayMetrics;
use crate::origin::OriginPolicy;
use crate::per_ip::ConnectionsPerIp;
use crate::rate::Rates;
use crate::session::Shared;

/// Binds `addr` (`host:port`) with room for [`ACCEPT_BACKLOG`] connections
/// waiting to be accepted (tokio's own `bind` allows 1024).
pub async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "the address resolves to nothing");
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(ACCEPT_BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// Serves the gateway on `listener` until `shutdown` completes; then drains:
/// stops accepting, tells every browser to reconnect elsewhere, sends their
/// leave notices, and returns within `drain_secs`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let gateway = config.gateway_id.clone().unwrap_or_else(|| format!("gw-{}", addr.port()));
    let services = Arc::new(
        RoomServices::new(&config.room_services)?
            .with_token(config.grpc_token.as_deref())?
            .traced(config.traces.enabled()),
    );
    let metrics = Arc::new(GatewayMetrics::new(&gateway));
    let store = chat_runtime::blobs::BlobStore::open(&config.blobs)?;
    let secret = match &config.files_secret {
        Some(secret) => secret.as_bytes().to_vec(),
        None => {
            tracing::warn!(
                "FILES_SECRET is not set: file links are signed with a random key and work on this gateway only; give every gateway the same FILES_SECRET"
            );
            rand::random::<[u8; 32]>().to_vec()
        }
    };
    let signer = files::urls::Signer::new(&secret);
    let shared = Arc::new(Shared {
        hub: Hub::new(services, &gateway, config.heartbeat_every(), Arc::clone(&metrics), signer.clone()),
        metrics,
        gateway: Arc::from(gateway.as_str()),
        run_id: {
            use rand::distr::{Alphanumeric, SampleString};
            Alphanumeric.sample_string(&mut rand::rng(), 4)
        },
        draining: CancellationToken::new(),
        tasks: TaskTracker::new(),
        ping_every: config.ping_every(),
        resume_grace: config.resume_grace(),
        max_upload_bytes: config.max_upload_bytes,
    });
    let files = Arc::new(
        files::Files::new(
            store.clone(),
            signer,
            config.max_upload_bytes,
            config.max_image_pixels,
            config.image_workers as usize,
            config.max_uploads as usize,
        )
        .map_err(|e| anyhow::anyhow!("could not start the image workers: {e}"))?,
    );
    // Uploads a crashed gateway left half-written: on start and hourly.
    tokio::spawn(files::upload::sweep_stale(store, shared.draining.clone()));
    let state = app::AppState {
        files,
        shared: Arc::clone(&shared),
        connections: Arc::new(Semaphore::new(config.max_connections)),
        per_ip: Arc::new(ConnectionsPerIp::new(config.max_connections_per_ip)),
        next_conn: Arc::new(AtomicU64::new(1)),
        gate: Arc::new(app::Gate {
            origins: OriginPolicy::from_list(&config.allowed_origins),
            tokens: TokenKeys::from_config(config.jwt_secret.as_deref(), config.jwt_public_key.as_deref())?,
            rates: Rates::new(config.send_rate, config.send_burst),
            proxies: config.trusted_proxies.clone().unwrap_or_default(),
        }),
    };
    tracing::info!(
        origins = ?state.gate.origins,
        tokens = state.gate.tokens.is_some(),
        send_rate = config.send_rate,
        send_burst = config.send_burst,
        max_connections_per_ip = config.max_connections_per_ip,
        trusted_proxies = ?state.gate.proxies,
        grpc_token = config.grpc_token.is_some(),
        "security settings"
    );
    if !config.static_dir.join("index.html").exists() {
        tracing::warn!(dir = %config.static_dir.display(), "no index.html in the static folder; set STATIC_DIR");
    }
    // Forgets users' send buckets once they have refilled (`rate.rs`).
    tokio::spawn(state.gate.rates.clone().keep_swept(shared.draining.clone()));
    let router = app::router(state, &config.static_dir);
    tokio::spawn(chat_runtime::metrics::upkeep(shared.metrics.handle(), shared.draining.clone()));
    tracing::info!(%addr, gateway, room_services = ?config.room_services, "gateway listening");

    let draining = shared.draining.clone();
    let server = serve::serve(listener, router, async move {
        shutdown.await;
        tracing::info!("draining: telling browsers to reconnect elsewhere");
        draining.cancel();
    });
    match drain::drain(server, &shared.draining, &shared.tasks, Duration::from_secs(config.drain_secs)).await {
        Drained::Everything => {}
        Drained::CutRequests => tracing::warn!("drain time is up with HTTP requests in progress; closing everything"),
        Drained::CutSessions => tracing::warn!(
            "drain time is up: remaining browsers are cut off; members whose leave was not sent will expire"
        ),
    }
    tracing::info!(gateway, "gateway stopped");
    Ok(())
}
