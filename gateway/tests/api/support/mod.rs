//! Real topologies for tests: a redis-server the test starts, room-services
//! and gateways running in-process on port 0 exactly as their binaries run
//! them, WebSocket clients on real sockets and gRPC clients on real channels,
//! and headless Chromium showing the page (`browser`).

mod archived;
pub mod browser;
mod chromedriver;
mod client;
pub mod tab;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use chat_proto::v1::room_service_client::RoomServiceClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub use archived::archived_up_to;
pub use chat_testkit::{RedisCluster, RedisServer};
#[allow(unused_imports)] // each test file uses a different part
pub use client::{Client, http_get, messages, metric, texts};

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Logs of the parts under test, when TEST_LOG is set (e.g. TEST_LOG=debug).
pub fn init_logs() {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// A server running in this process on a runtime of its own, like a
/// separate process: stopping it runs its shutdown path; killing it drops
/// the runtime with every task on it, as a crash would, with no cleanup.
struct Node {
    addr: SocketAddr,
    /// The room-service's metrics port.
    metrics_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    kill: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

/// A server's trace settings and the service name it exports under.
type Traced = (chat_runtime::traces::TraceConfig, &'static str);

impl Node {
    /// With `traces` configured, the server's threads log to a subscriber
    /// of its own that exports its spans, as its binary's would (tests
    /// cannot share the process-wide one: each server has its own service
    /// name), and its last spans are flushed when it stops.
    fn spawn<F, Fut>(listener: std::net::TcpListener, traces: Traced, serve: F) -> Self
    where
        F: FnOnce(TcpListener, Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let addr = listener.local_addr().expect("bound");
        let (stop, stopped) = oneshot::channel::<()>();
        let (kill, killed) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let (config, service) = traces;
            let traces = chat_runtime::traces::Traces::start(&config, service).expect("the trace pipeline starts");
            let dispatch = traces.as_ref().map(|traces| {
                let filter = tracing_subscriber::EnvFilter::new("info");
                chat_runtime::logging::dispatch(Default::default(), filter, Some(traces), std::io::sink, false)
            });
            let _on_this_thread = dispatch.as_ref().map(tracing::dispatcher::set_default);
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(dispatch) = dispatch.clone() {
                // Each runtime thread keeps the server's subscriber for its
                // whole life (the guard is never dropped on purpose).
                builder.on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&dispatch)));
            }
            let runtime = builder.worker_threads(1).enable_all().build().expect("a runtime for the server");
            let result = runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                let shutdown = Box::pin(async move {
                    let _ = stopped.await;
                });
                tokio::select! {
                    result = serve(listener, shutdown) => result,
                    _ = killed => Ok(()),
                }
            });
            runtime.shutdown_background();
            if let Some(traces) = traces {
                traces.shutdown();
            }
            result
        });
        Self { addr, metrics_addr: None, stop: Some(stop), kill: Some(kill), thread: Some(thread) }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join().await;
    }

    async fn kill(mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        self.join().await;
    }

    async fn join(&mut self) {
        let addr = self.addr;
        let thread = self.thread.take().expect("joined once");
        let joined =
            tokio::time::timeout(Duration::from_secs(20), tokio::task::spawn_blocking(move || thread.join())).await;
        match joined {
            Ok(Ok(Ok(Ok(())))) => {}
            Ok(Ok(Ok(Err(error)))) => panic!("server at {addr} failed: {error:#}"),
            Ok(Ok(Err(_))) | Ok(Err(_)) => panic!("server at {addr} panicked"),
            Err(_) => panic!("server at {addr} did not stop within 20 s"),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

pub struct Topology {
    pub redis: Option<RedisServer>,
    /// Set by [`Topology::on_cluster`] instead of `redis`.
    pub redis_cluster: Option<RedisCluster>,
    room_services: Vec<Option<Node>>,
    room_service_config: room_service::Config,
    gateways: Vec<Option<Node>>,
    gateway_config: gateway::Config,
}

impl Topology {
    /// A real redis-server, `room_services` room-services on it and
    /// `gateways` gateways that list every room-service.
    pub async fn start(room_services: usize, gateways: usize) -> Self {
        Self::start_with(room_services, gateways, |_| {}).await
    }

    /// [`Self::start`] with the room-services' config adjusted by `tweak`.
    pub async fn start_with(
        room_services: usize,
        gateways: usize,
        tweak: impl FnOnce(&mut room_service::Config),
    ) -> Self {
        let redis = RedisServer::start().await;
        let mut config = quick(room_service::Config::with_redis(Some(redis.url())));
        tweak(&mut config);
        Self::build(Some(redis), config, room_services, gateways).await
    }

    /// Room-services on a real Redis Cluster of `masters` masters with
    /// `replicas` replicas each (REDIS_CLUSTER_URLS), and gateways.
    pub async fn on_cluster(masters: usize, replicas: usize, room_services: usize, gateways: usize) -> Self {
        Self::on_cluster_with(masters, replicas, room_services, gateways, |_| {}).await
    }

    /// [`Self::on_cluster`] with the room-services' config adjusted by `tweak`.
    pub async fn on_cluster_with(
        masters: usize,
        replicas: usize,
        room_services: usize,
        gateways: usize,
        tweak: impl FnOnce(&mut room_service::Config),
    ) -> Self {
        let cluster = RedisCluster::start(masters, replicas).await;
        let mut config = quick(room_service::Config::with_redis_cluster(cluster.urls()));
        tweak(&mut config);
        let mut topology = Self::build(None, config, room_services, gateways).await;
        topology.redis_cluster = Some(cluster);
        topology
    }

    /// [`Self::start`] with both tiers' configs adjusted: the room-services'
    /// by `tweak_rs`, the gateways' by `tweak_gw` (after the harness's own
    /// settings, so it can turn the send limit back on).
    pub async fn start_configured(
        room_services: usize,
        gateways: usize,
        tweak_rs: impl FnOnce(&mut room_service::Config),
        tweak_gw: impl FnOnce(&mut gateway::Config),
    ) -> Self {
        Self::start_on(RedisServer::start().await, room_services, gateways, tweak_rs, tweak_gw).await
    }

    /// [`Self::start_configured`] on a Redis the test started, e.g.
    /// [`RedisServer::start_persistent`].
    pub async fn start_on(
        redis: RedisServer,
        room_services: usize,
        gateways: usize,
        tweak_rs: impl FnOnce(&mut room_service::Config),
        tweak_gw: impl FnOnce(&mut gateway::Config),
    ) -> Self {
        let mut config = quick(room_service::Config::with_redis(Some(redis.url())));
        tweak_rs(&mut config);
        Self::build_with(Some(redis), config, room_services, gateways, tweak_gw).await
    }

    /// The embedded mode: one room-service on its in-process broker.
    pub async fn embedded(gateways: usize) -> Self {
        Self::build(None, quick(room_service::Config::with_redis(None)), 1, gateways).await
    }

    async fn build(
        redis: Option<RedisServer>,
        rs_config: room_service::Config,
        room_services: usize,
        gateways: usize,
    ) -> Self {
        Self::build_with(redis, rs_config, room_services, gateways, |_| {}).await
    }

    async fn build_with(
        redis: Option<RedisServer>,
        rs_config: room_service::Config,
        room_services: usize,
        gateways: usize,
        tweak_gw: impl FnOnce(&mut gateway::Config),
    ) -> Self {
        init_logs();
        let mut topology = Self {
            redis,
            redis_cluster: None,
            room_services: Vec::new(),
            room_service_config: rs_config,
            gateways: Vec::new(),
            gateway_config: gateway::Config::with_room_services(Vec::new()),
        };
        for _ in 0..room_services {
            let node = topology.spawn_room_service(0).await;
            topology.room_services.push(Some(node));
        }
        let mut gw_config =
            gateway::Config::with_room_services((0..room_services).map(|i| topology.room_service_url(i)).collect());
        gw_config.heartbeat_secs = 1;
        gw_config.drain_secs = 3;
        // A vanished browser's leave comes after the resume grace: short
        // here, so tests that watch for it need not wait the default 10 s
        // (tests of the grace itself set their own).
        gw_config.resume_grace_secs = 5;
        // Tests of other things send faster than a person types, and open
        // more connections from 127.0.0.1 than one person would;
        // security.rs and limits.rs turn the limits back on.
        gw_config.send_rate = 0;
        gw_config.max_connections_per_ip = 0;
        gw_config.grpc_token = topology.room_service_config.grpc_token.clone();
        tweak_gw(&mut gw_config);
        topology.gateway_config = gw_config;
        for _ in 0..gateways {
            let node = topology.spawn_gateway(0).await;
            topology.gateways.push(Some(node));
        }
        topology
    }

    async fn spawn_room_service(&self, port: u16) -> Node {
        let listener = bind(port).await;
        let metrics = bind(0).await;
        let metrics_addr = metrics.local_addr().expect("bound");
        let mut config = self.room_service_config.clone();
        config.grpc_port = listener.local_addr().expect("bound").port();
        config.metrics_port = metrics_addr.port();
        config.instance_id = Some(format!("rs-{}", config.grpc_port));
        let traces = (config.traces.clone(), "chat-room-service");
        let mut node = Node::spawn(listener, traces, move |listener, shutdown| async move {
            let metrics = TcpListener::from_std(metrics).expect("tokio listener");
            room_service::run_with_metrics(config, listener, Some(metrics), shutdown).await
        });
        node.metrics_addr = Some(metrics_addr);
        node
    }

    async fn spawn_gateway(&self, port: u16) -> Node {
        let listener = bind(port).await;
        let config = self.gateway_config.clone();
        let traces = (config.traces.clone(), "chat-gateway");
        Node::spawn(listener, traces, move |listener, shutdown| gateway::run(config, listener, shutdown))
    }

    pub fn gateway_addr(&self, i: usize) -> SocketAddr {
        self.gateways[i].as_ref().expect("gateway is running").addr
    }

    /// The addresses of the gateways still running.
    pub fn live_gateways(&self) -> Vec<SocketAddr> {
        self.gateways.iter().flatten().map(|node| node.addr).collect()
    }

    pub fn room_service_addr(&self, i: usize) -> SocketAddr {
        self.room_services[i].as_ref().expect("room-service is running").addr
    }

    pub fn room_service_metrics_addr(&self, i: usize) -> SocketAddr {
        self.room_services[i].as_ref().and_then(|n| n.metrics_addr).expect("room-service is running")
    }

    pub fn room_service_url(&self, i: usize) -> String {
        format!("http://{}", self.room_service_addr(i))
    }

    /// A gRPC client on room-service `i`.
    pub async fn grpc(&self, i: usize) -> RoomServiceClient<Channel> {
        RoomServiceClient::connect(self.room_service_url(i)).await.expect("connect to room-service")
    }

    /// A gRPC client on room-service `i` that sends `token` as its bearer token.
    pub async fn grpc_with_token(
        &self,
        i: usize,
        token: Option<&str>,
    ) -> RoomServiceClient<tonic::service::interceptor::InterceptedService<Channel, gateway::Bearer>> {
        let channel = Channel::from_shared(self.room_service_url(i)).expect("url").connect().await.expect("connect");
        RoomServiceClient::with_interceptor(channel, gateway::Bearer::new(token).expect("ascii token"))
    }

    /// A browser-like WebSocket client on gateway `i`.
    pub async fn client(&self, i: usize) -> Client {
        Client::connect(self.gateway_addr(i)).await
    }

    /// Stops gateway `i` gracefully (drain) and waits for it to end.
    pub async fn stop_gateway(&mut self, i: usize) {
        let node = self.gateways[i].take().expect("gateway is running");
        node.stop().await;
    }

    /// Ends gateway `i` abruptly, as a crash would.
    pub async fn kill_gateway(&mut self, i: usize) {
        self.gateways[i].take().expect("gateway is running").kill().await;
    }

    /// Stops gateway `i` and starts it again on the same port.
    pub async fn restart_gateway(&mut self, i: usize) {
        let port = self.gateway_addr(i).port();
        self.stop_gateway(i).await;
        self.gateways[i] = Some(self.spawn_gateway(port).await);
    }

    /// Stops room-service `i` gracefully and waits for it to end.
    pub async fn stop_room_service(&mut self, i: usize) {
        let node = self.room_services[i].take().expect("room-service is running");
        node.stop().await;
    }

    /// Ends room-service `i` abruptly, as a crash would.
    pub async fn kill_room_service(&mut self, i: usize) {
        self.room_services[i].take().expect("room-service is running").kill().await;
    }

    /// Which room-service every gateway sends `room` to while all are up.
    pub fn owner_of(&self, room: &str) -> usize {
        let urls: Vec<String> = (0..self.room_services.len()).map(|i| self.room_service_url(i)).collect();
        let services = gateway::RoomServices::new(&urls).expect("urls");
        let first = services.ranked(room)[0].url.clone();
        urls.iter().position(|u| *u == first).expect("ranked url is one of ours")
    }
}

/// The room-service settings tests start from (a test's tweak may change
/// them): a crashed gateway's members expire after 3 s instead of 30, so
/// tests of it are quick.
fn quick(mut config: room_service::Config) -> room_service::Config {
    config.presence_ttl_secs = 3;
    config
}

async fn bind(port: u16) -> std::net::TcpListener {
    // Rebinding a port just freed can race with its last sockets closing.
    for _ in 0..100 {
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            listener.set_nonblocking(true).expect("nonblocking listener");
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot bind 127.0.0.1:{port}");
}
