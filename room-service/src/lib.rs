//! # room-service
//!
//! Keeps chat rooms and serves them to gateways over gRPC (`chat.v1`).
//!
//! ## Layout
//! - `config`: flags and environment.
//! - `auth`: the `GRPC_TOKEN` check on every `chat.v1.RoomService` call, and
//!   the refusal to serve it open beyond loopback.
//! - `broker`: where rooms live — Redis (shared by every room-service) or
//!   in-process (one room-service alone) — behind the [`Broker`] trait.
//! - `service`: the gRPC handlers: validate, build events, call the broker.
//! - `presence_batch`: joins and leaves of a room applied in batches, one
//!   Redis step and one presence event per batch.
//! - `store`: the durable record of messages in PostgreSQL (paging, search).
//! - `seeding`: with a store, Redis is a cache: a room Redis lost is seeded
//!   from where the store says its numbering stands, so it keeps its epoch
//!   and goes on from its last seq.
//! - `archive`: copies every stored message of the rooms served here from
//!   Redis into the store, in batches off the send path, catching up from
//!   the Redis history whatever it missed.
//! - `group_commit`: `STORE_SYNC=1`, sends answered once PostgreSQL
//!   committed them, many sends per transaction.
//! - `retention`: `HISTORY_RETENTION_DAYS`, old messages removed from the
//!   store in small batches.
//! - `stream`: one gateway's Subscribe stream: replay, then live, gaps
//!   filled from history.
//! - `metrics`: what it counts, served at `/metrics`.
//! - `traced`: with traces on, a call's span continues the gateway's trace
//!   (`traceparent` in its metadata), and the events it stores carry it on.
//! - `attachments`: files posted in rooms: their records (behind the
//!   `Records` seam each broker implements, written through to the store),
//!   the claim at Send, and the sweep of uploads nobody posted.
//!
//! ## Public surface
//! Everything above is `pub(crate)`. Other crates get what they use: [`run`]
//! and [`run_with_metrics`] with a [`Config`] (the binary, and the gateway's
//! tests, which run room-services in-process); and the [`Broker`] trait with
//! its two brokers and the types in its signatures, for the broker contract
//! test that holds both to the same promises.
//!
//! ## How an event flows
//! A gateway calls `Send`. The handler checks the input, and the broker
//! stores the message in one atomic step: check the sender is a member and
//! take its name, next sequence number, append to the room's bounded
//! history, publish on the room's channel. Joins and leaves queue at the
//! room's presence batcher, which applies all that are waiting in one step
//! and publishes one presence event for them. Every
//! room-service subscribed to that room receives it once, and its fanout
//! hands the same event to each gateway stream open for the room; each
//! gateway then writes it to its own browsers.

// Internals are `pub(crate)`: the public surface is what lib.rs re-exports,
// so the dead-code lint sees everything else.
#![warn(unreachable_pub)]

mod archive;
pub mod attachments;
mod auth;
mod broker;
mod config;
mod group_commit;
mod metrics;
pub mod people;
mod presence_batch;
mod retention;
mod seeding;
mod service;
pub mod store;
mod stream;
mod traced;

pub use crate::broker::{
    Broker, BrokerError, BrokerResult, ChangeOp, ChangeOrder, ChangeOutcome, Fanout, Leave, MembersPage, MemoryBroker,
    MessageState, Outgoing, Position, PresenceChange, PresenceOutcome, RECONNECT_MAX_DELAY, RedisBroker, Retention,
    Snapshot, SnapshotSize, Stored, Subscription,
};
pub use crate::config::Config;
pub use crate::metrics::RoomServiceMetrics;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chat_proto::v1::room_service_server::RoomServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::archive::Archive;
use crate::config::RedisTarget;
use crate::seeding::Seeder;
use crate::service::Rooms;

/// Events buffered per room for the slowest local stream before it must
/// refill from history.
const FANOUT_CAPACITY: usize = 1024;
/// How often idle subscriptions are dropped and presence is checked.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// How often the broker is pinged for the health service.
const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// Calls one gateway connection may have in flight; past it the room-service
/// answers RESOURCE_EXHAUSTED at once (busy, not gone), so a storm is shed
/// rather than queued without bound.
const MAX_CALLS_PER_CONNECTION: usize = 16_384;

/// Serves the room-service on `listener` (gRPC, and HTTP GET `/metrics`)
/// and on `config.metrics_port` (metrics only; 0 = none) until `shutdown`
/// completes, then ends every open stream (so gateways move on at once) and
/// returns.
///
/// Refuses to start when the listener is on a non-loopback address and
/// `config` has no `grpc_token` (nor `allow_open_grpc`), saying how to fix it.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    refuse_open_api(&config, &listener)?;
    let metrics_listener = match config.metrics_port {
        0 => None,
        port => Some(TcpListener::bind((config.host.as_str(), port)).await.with_context(|| {
            format!(
                "cannot listen for metrics on {}:{port} (set METRICS_PORT to a free port, or 0: /metrics is on the gRPC port too)",
                config.host
            )
        })?),
    };
    start(config, listener, metrics_listener, shutdown).await
}

/// [`run`] with the metrics listener given rather than bound from the config.
pub async fn run_with_metrics(
    config: Config,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    refuse_open_api(&config, &listener)?;
    start(config, listener, metrics_listener, shutdown).await
}

/// Checked on the address actually bound, whatever `HOST` said.
fn refuse_open_api(config: &Config, listener: &TcpListener) -> anyhow::Result<()> {
    let token = auth::RequireToken::new(config.grpc_token.as_deref());
    Ok(auth::refuse_open_api(listener.local_addr()?, &token, config.allow_open_grpc)?)
}

/// Connects the broker the config names and serves until `shutdown`.
async fn start(
    config: Config,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let instance = match &config.instance_id {
        Some(id) => id.clone(),
        None => format!("room-service-{}", listener.local_addr()?.port()),
    };
    let metrics = Arc::new(RoomServiceMetrics::new(&instance));
    let fanout = Fanout::new(FANOUT_CAPACITY, Arc::clone(&metrics));
    config.check_store()?;
    let store = connect_store(&config).await?;
    let sync = store.as_ref().filter(|_| config.store_sync).map(|store| {
        let (committer, queue) = group_commit::Committer::new();
        let committed = Arc::new(group_commit::Committed::default());
        tokio::spawn(group_commit::run(queue, store.clone(), Arc::clone(&committed), Arc::clone(&metrics)));
        (committer, committed)
    });
    let (committer, committed) = sync.unzip();
    let archive = store.as_ref().map(|store| {
        let (archive, queue) = Archive::new(Arc::clone(&metrics), committed);
        fanout.archive_to(Arc::clone(&archive));
        Archiving { archive, queue, store: store.clone() }
    });
    let parts =
        Parts { config, listener, metrics_listener, metrics, store, committer, archive, fanout: Arc::clone(&fanout) };
    // With a store, a room Redis has no numbering for is seeded from it
    // (`seeding`), never started afresh by the broker.
    let seeded = parts.store.is_some();
    match parts.config.redis()? {
        RedisTarget::Single(url) => {
            let connected = RedisBroker::connect(&url, parts.config.retention(), fanout).await;
            let broker = connected.map(|b| if seeded { b.seeded_by_caller() } else { b }).with_context(|| {
                format!(
                    "cannot connect to Redis at {} (check REDIS_URL or REDIS_HOST/REDIS_PORT/REDIS_PASSWORD, or unset them to run alone on the in-process broker)",
                    config::redact(&url)
                )
            })?;
            tracing::info!(
                redis = config::redact(&url),
                "broker: Redis; rooms are shared with every room-service on it"
            );
            serve(parts, Arc::new(broker), shutdown).await
        }
        RedisTarget::Cluster { seeds, password } => {
            let shown = seeds.iter().map(|s| config::redact(s)).collect::<Vec<_>>().join(",");
            let broker =
                RedisBroker::connect_cluster(&seeds, password.as_deref(), parts.config.retention(), fanout)
                    .await
                    .map(|b| if seeded { b.seeded_by_caller() } else { b })
                    .with_context(|| {
                        format!(
                            "cannot connect to the Redis Cluster at {shown} (check REDIS_CLUSTER_URLS and REDIS_PASSWORD; the nodes must run with cluster-enabled yes)"
                        )
                    })?;
            tracing::info!(
                seeds = shown,
                "broker: Redis Cluster; rooms are spread over its masters, events on sharded pub/sub"
            );
            serve(parts, Arc::new(broker), shutdown).await
        }
        RedisTarget::InProcess => {
            tracing::info!(
                "broker: in-process (no REDIS_URL, REDIS_HOST or REDIS_CLUSTER_URLS); rooms live in this process only"
            );
            let broker = MemoryBroker::new(parts.config.retention(), fanout);
            let broker = if seeded { broker.seeded_by_caller() } else { broker };
            serve(parts, Arc::new(broker), shutdown).await
        }
    }
}

/// The store `DATABASE_URL` names, connected and migrated; `None` when it is
/// unset. Failing to reach it stops the start: a room-service that was told
/// to keep messages for good must not quietly serve without doing so.
async fn connect_store(config: &Config) -> anyhow::Result<Option<store::Store>> {
    let Some(url) = &config.database_url else { return Ok(None) };
    let shown = config::redact(url);
    // On a task of its own: the compiler cannot prove sqlx's migration
    // future `Send` for every lifetime when it is part of `run`'s future.
    let owned = url.clone();
    let connected = tokio::task::spawn_blocking(move || {
        tokio::runtime::Handle::current().block_on(async move { store::Store::connect(&owned).await })
    })
    .await
    .context("connecting the store panicked")?;
    let store = connected.with_context(|| {
        format!(
            "cannot connect to PostgreSQL at {shown} (check DATABASE_URL, or unset it to keep history in Redis only)"
        )
    })?;
    if config.store_sync {
        tracing::info!(
            database = shown,
            "store: PostgreSQL, STORE_SYNC: a send is answered once PostgreSQL committed it (group commit)"
        );
    } else {
        tracing::info!(database = shown, "store: PostgreSQL; messages are archived there in batches");
    }
    Ok(Some(store))
}

/// What `serve` needs besides the broker.
struct Parts {
    config: Config,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    metrics: Arc<RoomServiceMetrics>,
    store: Option<store::Store>,
    /// STORE_SYNC's committer, its task already running.
    committer: Option<group_commit::Committer>,
    archive: Option<Archiving>,
    /// The broker's fanout: what this process saw of each room, for seeding.
    fanout: Arc<Fanout>,
}

/// The archiver's parts, made before the broker so that the fanout offers
/// it every message from the first; its task starts in `serve`.
struct Archiving {
    archive: Arc<Archive>,
    queue: tokio::sync::mpsc::Receiver<store::StoredMessage>,
    store: store::Store,
}

async fn serve<B: Broker + people::Directory + attachments::Records>(
    parts: Parts,
    broker: Arc<B>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Parts { config, listener, metrics_listener, metrics, store, committer, archive, fanout } = parts;
    let stopping = CancellationToken::new();
    if let (Some(store), Some(keep_for)) = (&store, config.history_retention()) {
        tokio::spawn(retention::run(store.clone(), keep_for, Arc::clone(&metrics), stopping.clone()));
    }
    let seeder = store.as_ref().map(|store| Arc::new(Seeder::new(Arc::clone(&broker), store.clone(), fanout)));
    let rooms = Arc::new(
        Rooms::new(
            Arc::clone(&broker),
            config.presence_ttl(),
            stopping.clone(),
            Arc::clone(&metrics),
            store,
            seeder,
            committer,
        )
        .traced(config.traces.enabled())
        .edit_window((config.edit_window_secs > 0).then(|| Duration::from_secs(config.edit_window_secs))),
    );
    if archive.is_none() {
        // Said once everything else connected: a failed start stays one line.
        tracing::info!(
            "no DATABASE_URL: history is only what Redis keeps (HISTORY_LEN per room), not durable; no search"
        );
    }
    tokio::spawn(metrics::upkeep(metrics.handle(), stopping.clone()));
    if let Some(metrics_listener) = metrics_listener {
        let archive = archive.as_ref().map(|a| Arc::clone(&a.archive));
        tokio::spawn(metrics::serve(metrics_listener, metrics.handle(), archive, stopping.clone()));
    }
    let http = tonic::service::Routes::from(metrics::routes(
        metrics.handle(),
        archive.as_ref().map(|a| Arc::clone(&a.archive)),
    ));
    if let Some(Archiving { archive, queue, store }) = archive {
        tokio::spawn(archive::run(archive, queue, store, Arc::clone(&broker), stopping.clone()));
    }

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<RoomServiceServer<Rooms<B>>>().await;
    // v1 for current grpcurl and grpcui, v1alpha for older grpcurl builds.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(chat_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(chat_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("building the reflection service")?;

    tokio::spawn(housekeeping(
        Arc::clone(&rooms),
        Arc::clone(&broker),
        config.presence_ttl(),
        stopping.clone(),
        metrics,
    ));
    // The records the service writes through to the store: the sweep
    // counts blob uses where the service records them.
    spawn_sweep(&config, rooms.attachment_records(), stopping.clone());
    tokio::spawn(watch_health(broker, health, stopping.clone()));

    tracing::info!(addr = %listener.local_addr()?, "room-service listening for gRPC");
    let stop = stopping.clone();
    let mut server = tonic::transport::Server::builder();
    if config.traces.enabled() {
        server = server.trace_fn(traced::server_span);
    }
    server
        .load_shed(true)
        .concurrency_limit_per_connection(MAX_CALLS_PER_CONNECTION)
        // Plain HTTP/1.1 on the gRPC port too, for GET /metrics: instances on
        // one host then need nothing but distinct gRPC ports.
        .accept_http1(true)
        .add_routes(http)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        // issue 10: RoomService calls need GRPC_TOKEN; health and reflection do not.
        .add_service(InterceptedService::new(
            RoomServiceServer::from_arc(rooms),
            auth::RequireToken::new(config.grpc_token.as_deref()),
        ))
        // Events are small and latency-bound: no Nagle delay on gateway streams.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async move {
            shutdown.await;
            tracing::info!("shutting down: ending streams so gateways move their rooms");
            stop.cancel();
        })
        .await
        .context("gRPC server failed")?;
    stopping.cancel();
    Ok(())
}

/// Starts the sweep of attachments nobody posted (see `attachments::sweep`).
/// Without a file store it still removes their records, and says the bytes stay.
fn spawn_sweep<R: attachments::Records>(config: &Config, records: Arc<R>, stopping: CancellationToken) {
    let blobs = match chat_runtime::blobs::BlobStore::open(&config.blobs) {
        Ok(blobs) => Some(blobs),
        Err(error) => {
            tracing::warn!(%error, "no file storage: unposted attachments are swept, their files stay");
            None
        }
    };
    let ttl = config.upload_ttl();
    // Often enough that an upload goes within a tenth of its TTL past it.
    let every = (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(300));
    tokio::spawn(attachments::Sweep::new(records, blobs, ttl).run(every, stopping));
}

/// Drops bus subscriptions nobody reads, and removes members whose gateway
/// stopped heartbeats (with a leave notice) in the rooms this process serves.
async fn housekeeping<B: Broker + people::Directory>(
    rooms: Arc<Rooms<B>>,
    broker: Arc<B>,
    presence_ttl: Duration,
    stopping: CancellationToken,
    metrics: Arc<RoomServiceMetrics>,
) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    // Often enough that a member whose session did not resume leaves soon
    // after its grace (the gateway's RESUME_GRACE_SECS) runs out.
    let reap_every = (presence_ttl.as_secs() / 3).clamp(1, 2);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            _ = tick.tick() => {}
        }
        broker.drop_idle_subscriptions().await;
        let subscribed = broker.subscribed_rooms();
        metrics.rooms.set(subscribed.len() as f64);
        ticks += 1;
        if ticks.is_multiple_of(reap_every) {
            for room in subscribed {
                if let Err(error) = rooms.reap(&room).await {
                    tracing::warn!(%room, %error, "could not check presence");
                }
            }
        }
    }
}

/// The health service name generic probes check: the server as a whole.
const OVERALL: &str = "";

/// Reports SERVING only while the broker answers, for `chat.v1.RoomService`
/// and for the server as a whole (`""`).
async fn watch_health<B: Broker>(
    broker: Arc<B>,
    health: tonic_health::server::HealthReporter,
    stopping: CancellationToken,
) {
    let mut serving = true;
    let mut tick = tokio::time::interval(HEALTH_EVERY);
    loop {
        if stopping.run_until_cancelled(tick.tick()).await.is_none() {
            health.set_not_serving::<RoomServiceServer<Rooms<B>>>().await;
            health.set_service_status(OVERALL, ServingStatus::NotServing).await;
            return;
        }
        let ok = match tokio::time::timeout(HEALTH_EVERY, broker.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::warn!(%error, "broker is not answering");
                false
            }
            Err(_) => false,
        };
        if ok != serving {
            serving = ok;
            if ok {
                tracing::info!("broker answers again: serving");
                health.set_serving::<RoomServiceServer<Rooms<B>>>().await;
                health.set_service_status(OVERALL, ServingStatus::Serving).await;
            } else {
                health.set_not_serving::<RoomServiceServer<Rooms<B>>>().await;
                health.set_service_status(OVERALL, ServingStatus::NotServing).await;
            }
        }
    }
}
