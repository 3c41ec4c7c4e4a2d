//! The processes under test: start them, know their pids, stop them.
//!
//! - The standard topology, as `cargo xtask up` runs it: a `redis-server`
//!   (from PATH, on a private unix socket in a temp dir, nothing saved), then
//!   the room-services, then the gateways — the release binaries found next
//!   to this program, each its own process on a free loopback port, logging
//!   at `warn` into `<tmp>/<name>.log`.
//! - The floor: this program re-executed with `--serve-floor`, which binds
//!   port 0 and prints its address on stdout.
//! - An existing deployment (`--gateway`): just URLs, nothing started, no
//!   pids to read.
//!
//! Every child is killed if the bench dies (`kill_on_drop`); [`Deployment::stop`]
//! stops them in reverse order of start, SIGTERM first.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use crate::procstat::Watched;

/// How long a started process gets to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process gets to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Configuration variables of the binaries that a developer's shell might
/// have set; removed so only what the bench sets applies.
const CONFIG_VARS: &[&str] = &[
    "HOST",
    "PORT",
    "ROOM_SERVICES",
    "GATEWAY_ID",
    "STATIC_DIR",
    "MAX_CONNECTIONS",
    "HEARTBEAT_SECS",
    "DRAIN_SECS",
    "GRPC_PORT",
    "METRICS_PORT",
    "REDIS_URL",
    "INSTANCE_ID",
    "HISTORY_LEN",
    "ROOM_TTL_SECS",
    "PRESENCE_TTL_SECS",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "REDIS_CLUSTER_URLS",
    "GRPC_TOKEN",
    "ALLOWED_ORIGINS",
    "JWT_SECRET",
    "JWT_PUBLIC_KEY",
    "SEND_RATE",
    "SEND_BURST",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Topology,
    Floor,
    Existing,
}

/// What the bench loads: gateway URLs and the processes behind them.
pub struct Deployment {
    pub kind: Kind,
    /// WebSocket URLs of the gateways (or of the floor).
    pub urls: Vec<String>,
    /// Processes to read CPU and memory of, in table order; gateways (or the
    /// floor) in the order of `urls`.
    pub procs: Vec<Watched>,
    /// In start order.
    children: Vec<Child>,
    dir: Option<PathBuf>,
}

impl Deployment {
    pub fn label(&self) -> &'static str {
        match self.kind {
            Kind::Topology => "topology",
            Kind::Floor => "floor",
            Kind::Existing => "deployment",
        }
    }

    /// The processes under test plus the bench itself.
    pub fn watched(&self) -> Vec<Watched> {
        let mut all = self.procs.clone();
        all.push(Watched::bench());
        all
    }

    /// The process serving `urls[i]`, when the bench started it.
    pub fn gateway_process(&self, i: usize) -> Option<&Watched> {
        let gateways: Vec<&Watched> =
            self.procs.iter().filter(|p| p.name.starts_with("gw") || p.name == "floor").collect();
        gateways.get(i).copied()
    }

    pub fn existing(urls: Vec<String>) -> Self {
        Self { kind: Kind::Existing, urls, procs: Vec::new(), children: Vec::new(), dir: None }
    }

    /// SIGTERM to each process, newest first (gateways before room-services
    /// before Redis); a process still running after [`STOP_TIMEOUT`] is killed.
    pub async fn stop(mut self) {
        while let Some(mut child) = self.children.pop() {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
            if tokio::time::timeout(STOP_TIMEOUT, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The gateway and room-service binaries next to this program: in its own
/// folder (`target/release/`), or the one above.
fn binaries() -> anyhow::Result<(PathBuf, PathBuf)> {
    let exe = std::env::current_exe().context("where is this program?")?;
    let candidates: Vec<&Path> = exe.ancestors().skip(1).take(2).collect();
    let find = |name: &str| candidates.iter().map(|dir| dir.join(name)).find(|p| p.is_file());
    match (find("room-service"), find("gateway")) {
        (Some(rs), Some(gw)) => Ok((rs, gw)),
        _ => bail!(
            "the room-service and gateway binaries are not next to {} (looked in {}); build them first:\n    \
             cargo build --release -p gateway -p room-service\nor load a running deployment with --gateway URL",
            exe.display(),
            candidates.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" and "),
        ),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<std::fs::File> {
    std::fs::File::create(dir.join(format!("{name}.log"))).context("creating a log file")
}

/// The last lines of a process's log, for an error message.
fn log_tail(dir: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Waits until `ready` says yes, failing early if the child exits.
async fn wait_ready<F, Fut>(child: &mut Child, name: &str, dir: &Path, mut ready: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < READY_TIMEOUT {
        if let Some(status) = child.try_wait()? {
            bail!("{name} exited ({status}) before it was ready; its log:\n{}", log_tail(dir, name));
        }
        if ready().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{name} was not ready within {READY_TIMEOUT:?}; its log:\n{}", log_tail(dir, name))
}

async fn tcp_ready(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
}

fn pid_of(child: &Child) -> Option<u32> {
    child.id()
}

/// Starts Redis, `room_services` room-services and `gateways` gateways.
/// `max_connections` is each gateway's `MAX_CONNECTIONS`.
pub async fn start_topology(
    gateways: usize,
    room_services: usize,
    redis_cluster: usize,
    max_connections: usize,
) -> anyhow::Result<Deployment> {
    let (room_service_bin, gateway_bin) = binaries()?;
    let dir = std::env::temp_dir().join(format!("chat-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut deployment =
        Deployment { kind: Kind::Topology, urls: Vec::new(), procs: Vec::new(), children: Vec::new(), dir: Some(dir) };
    let dir = deployment.dir.clone().unwrap_or_default();

    let redis_env = if redis_cluster > 0 {
        ("REDIS_CLUSTER_URLS", start_cluster(&mut deployment, &dir, redis_cluster).await?)
    } else {
        let socket = dir.join("redis.sock");
        let mut redis = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(log_file(&dir, "redis")?)
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start redis-server from PATH; apt-get install -y redis-server, or use --gateway URL")?;
        wait_ready(&mut redis, "redis", &dir, || {
            let socket = socket.clone();
            async move { tokio::net::UnixStream::connect(socket).await.is_ok() }
        })
        .await?;
        deployment.procs.push(Watched { name: "redis".into(), pid: pid_of(&redis) });
        deployment.children.push(redis);
        ("REDIS_URL", format!("redis+unix://{}", socket.display()))
    };
    let mut rs_urls = Vec::new();
    for i in 1..=room_services {
        let port = free_port()?;
        let name = format!("rs{i}");
        let mut child = Command::new(&room_service_bin)
            .env_remove_all(CONFIG_VARS)
            .env("HOST", "127.0.0.1")
            .env("GRPC_PORT", port.to_string())
            .env("METRICS_PORT", "0")
            .env(redis_env.0, &redis_env.1)
            .env("INSTANCE_ID", format!("room-service-{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log_file(&dir, &name)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", room_service_bin.display()))?;
        wait_ready(&mut child, &name, &dir, || tcp_ready(port)).await?;
        deployment.procs.push(Watched { name, pid: pid_of(&child) });
        deployment.children.push(child);
        rs_urls.push(format!("http://127.0.0.1:{port}"));
    }

    for i in 1..=gateways {
        let port = free_port()?;
        let name = format!("gw{i}");
        let mut child = Command::new(&gateway_bin)
            .env_remove_all(CONFIG_VARS)
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("ROOM_SERVICES", rs_urls.join(","))
            .env("MAX_CONNECTIONS", max_connections.to_string())
            // The senders post far past a person's rate on purpose.
            .env("SEND_RATE", "0")
            .env("DRAIN_SECS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log_file(&dir, &name)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", gateway_bin.display()))?;
        wait_ready(&mut child, &name, &dir, || tcp_ready(port)).await?;
        deployment.procs.push(Watched { name, pid: pid_of(&child) });
        deployment.children.push(child);
        deployment.urls.push(format!("ws://127.0.0.1:{port}/ws"));
    }
    Ok(deployment)
}

/// First port of a bench Redis Cluster's nodes: below the ephemeral range,
/// and so is each node's bus port (+10000).
const CLUSTER_FIRST_PORT: u16 = 21100;

/// Starts `masters` cluster-enabled redis-servers, joins them with
/// `redis-cli --cluster create` and waits for `cluster_state:ok`; returns
/// the seed URLs for `REDIS_CLUSTER_URLS`.
async fn start_cluster(deployment: &mut Deployment, dir: &std::path::Path, masters: usize) -> anyhow::Result<String> {
    let ports: Vec<u16> = (0..masters as u16).map(|i| CLUSTER_FIRST_PORT + i).collect();
    for (i, port) in ports.iter().enumerate() {
        let name = format!("redis{}", i + 1);
        let mut node = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf"), "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(log_file(dir, &name)?)
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start redis-server from PATH; apt-get install -y redis-server")?;
        let port = *port;
        wait_ready(&mut node, &name, dir, || tcp_ready(port)).await?;
        deployment.procs.push(Watched { name, pid: pid_of(&node) });
        deployment.children.push(node);
    }
    let mut create = Command::new("redis-cli");
    create.args(["--cluster", "create"]);
    for port in &ports {
        create.arg(format!("127.0.0.1:{port}"));
    }
    let made = create.args(["--cluster-replicas", "0", "--cluster-yes"]).stdin(Stdio::null()).output().await?;
    anyhow::ensure!(
        made.status.success(),
        "redis-cli --cluster create failed (ports {}–{} busy?): {}",
        ports[0],
        ports[ports.len() - 1],
        String::from_utf8_lossy(&made.stdout)
    );
    for _ in 0..100 {
        let info = Command::new("redis-cli").args(["-p", &ports[0].to_string(), "cluster", "info"]).output().await?;
        if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
            return Ok(ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect::<Vec<_>>().join(","));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the bench's Redis Cluster did not reach cluster_state:ok")
}

/// Starts the floor: this program with `--serve-floor`.
pub async fn start_floor() -> anyhow::Result<Deployment> {
    let exe = std::env::current_exe().context("where is this program?")?;
    let mut child = Command::new(exe)
        .arg("--serve-floor")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the floor server")?;
    let stdout = child.stdout.take().context("the floor's stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(READY_TIMEOUT, lines.next_line())
        .await
        .context("the floor did not say where it listens")??
        .context("the floor exited before it listened")?;
    let addr = line.strip_prefix("listening on ").context("unexpected first line from the floor")?.to_owned();
    let pid = pid_of(&child);
    Ok(Deployment {
        kind: Kind::Floor,
        urls: vec![format!("ws://{addr}/ws")],
        procs: vec![Watched { name: "floor".into(), pid }],
        children: vec![child],
        dir: None,
    })
}

/// `Command::env_remove` over a list.
trait EnvRemoveAll {
    fn env_remove_all(&mut self, vars: &[&str]) -> &mut Self;
}

impl EnvRemoveAll for Command {
    fn env_remove_all(&mut self, vars: &[&str]) -> &mut Self {
        for var in vars {
            self.env_remove(var);
        }
        self
    }
}

/// What the flags ask to measure, in order: the topology (or the given
/// deployment), then the floor.
pub fn sides(args: &crate::Args) -> Vec<Kind> {
    let mut sides = Vec::new();
    if !args.gateway.is_empty() {
        sides.push(Kind::Existing);
    } else if !args.floor_only {
        sides.push(Kind::Topology);
    }
    if args.gateway.is_empty() && !args.no_floor {
        sides.push(Kind::Floor);
    }
    sides
}

/// Starts one side; gateways accept at least `connections` browsers.
pub async fn start(kind: Kind, args: &crate::Args, connections: usize) -> anyhow::Result<Deployment> {
    let deployment = match kind {
        Kind::Topology => {
            start_topology(args.gateways, args.room_services, args.redis_cluster, connections.max(10_000) + 100).await?
        }
        Kind::Floor => start_floor().await?,
        Kind::Existing => Deployment::existing(args.gateway.clone()),
    };
    let pids: Vec<String> =
        deployment.procs.iter().map(|p| format!("{} {}", p.name, p.pid.unwrap_or_default())).collect();
    println!("[{}] up: {} ({})", deployment.label(), deployment.urls.join(" "), pids.join(", "));
    Ok(deployment)
}
