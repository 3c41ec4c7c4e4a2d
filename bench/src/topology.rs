//! The processes under test: start them, know their pids, stop them.
//!
//! - The standard topology, started by the same code as `cargo xtask up`:
//!   xtask builds the binaries (or takes them from `--bin-dir`), its
//!   [`plan`] decides the processes — a `redis-server` (or a Redis Cluster,
//!   joined by testkit's recipe), the room-services, then the gateways, on
//!   free loopback ports ([`scratch`]) — and its [`Supervisor`] starts them
//!   tier by tier and stops them in reverse. The bench's own settings go on
//!   top: no send limit, a short drain, room for every browser, logs at
//!   `warn` into `<tmp>/<name>.log`. With the store on, a scratch
//!   PostgreSQL (xtask's [`Store::scratch`], testkit's recipe) is started
//!   first and every room-service gets its `DATABASE_URL`; it is stopped
//!   after them.
//! - The floor: this program re-executed as `--serve-floor --floor-port P`,
//!   under the same supervisor.
//! - An existing deployment (`--gateway`): just URLs, nothing started, no
//!   pids to read.
//!
//! Every process the bench starts is [isolated](xtask::plan::Plan::isolated)
//! from the shell it runs in: it gets only the [`ESSENTIALS`] of the bench's
//! environment (PATH, HOME, …) and what the plan sets, so a `JWT_SECRET` or
//! `PING_SECS` left exported there cannot change what is measured.
//!
//! [`ESSENTIALS`]: xtask::plan::ESSENTIALS

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use xtask::plan::{self, Inherit, Plan, Process, Tier};
use xtask::store::Store;
use xtask::supervise::{Interrupts, Output, Stop, Supervisor, Timing};
use xtask::{binaries, ports, scratch};

use crate::procstat::Watched;

/// How long a started process gets to accept connections, and how long a
/// tier gets to exit after SIGTERM before it is killed.
const TIMING: Timing = Timing { startup: Duration::from_secs(30), grace: Duration::from_secs(3) };
/// Where everything listens.
const HOST: &str = "127.0.0.1";
/// Log lines of a process shown when it did not come up.
const LOG_TAIL: usize = 15;
/// Starts of the topology tried when a chosen port was taken meanwhile.
const START_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The standard topology; `store`: with a scratch PostgreSQL behind it;
    /// `sync`: and `STORE_SYNC=1` (a send answered once PostgreSQL has it).
    Topology {
        store: bool,
        sync: bool,
    },
    Floor,
    Existing,
}

/// Whether the started topology keeps history in PostgreSQL (`--store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreMode {
    /// Redis only.
    Off,
    /// With a scratch PostgreSQL (`DATABASE_URL` on every room-service).
    On,
    /// Both, one after the other, in the same run: on, then off.
    Both,
    /// With the store and `STORE_SYNC=1`: sends acknowledged after
    /// PostgreSQL committed them (group commit).
    Sync,
    /// All three in the same run: sync, on, off.
    All,
}

/// What the bench loads: gateway URLs and the processes behind them.
pub struct Deployment {
    pub kind: Kind,
    /// WebSocket URLs of the gateways (or of the floor).
    pub urls: Vec<String>,
    /// Processes to read CPU and memory of, in table order; gateways (or the
    /// floor) in the order of `urls`.
    pub procs: Vec<Watched>,
    /// The room-services' gRPC addresses (`http://host:port`), when started.
    pub room_services: Vec<String>,
    /// The port of the started Redis (one Redis only).
    pub redis_port: Option<u16>,
    started: Option<Started>,
}

/// What the bench started and must stop.
struct Started {
    supervisor: Supervisor,
    /// Never fed: the bench ends a run by itself (a Ctrl+C ends the bench,
    /// and `kill_on_drop` its children).
    interrupts: Interrupts,
    /// Logs and Redis's files.
    dir: PathBuf,
    /// The scratch PostgreSQL, stopped after the room-services.
    store: Option<Store>,
}

impl Deployment {
    pub fn label(&self) -> &'static str {
        match self.kind {
            Kind::Topology { store: false, .. } => "topology",
            Kind::Topology { store: true, sync: false } => "topo+pg",
            Kind::Topology { store: true, sync: true } => "topo+pgsync",
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
        Self {
            kind: Kind::Existing,
            urls,
            procs: Vec::new(),
            room_services: Vec::new(),
            redis_port: None,
            started: None,
        }
    }

    /// The `DATABASE_URL` of the scratch PostgreSQL, when there is one.
    pub fn database_url(&self) -> Option<String> {
        self.started.as_ref()?.store.as_ref()?.url()
    }

    /// Stops what the bench started, gateways first (SIGTERM, then SIGKILL
    /// after [`TIMING`]'s grace), and removes its logs.
    pub async fn stop(self) {
        if let Some(mut started) = self.started {
            started.supervisor.stop(&mut started.interrupts).await;
            if let Some(store) = started.store {
                store.stop().await;
            }
            let _ = std::fs::remove_dir_all(&started.dir);
        }
    }
}

/// Starts `plan` under a supervisor logging into `dir`; fails with the log
/// of the process that did not come up.
async fn start_plan(plan: &Plan, dir: PathBuf) -> anyhow::Result<Started> {
    let mut supervisor = Supervisor::with_output(plan, Output::LogFiles(dir.clone()), TIMING);
    let (_never, mut interrupts) = mpsc::channel(1);
    let failure = match supervisor.start(plan, &mut interrupts).await {
        Ok(None) => return Ok(Started { supervisor, interrupts, dir, store: None }),
        Ok(Some(stop)) => {
            let name = match &stop {
                Stop::Exited { name, .. } | Stop::NotReady { name, .. } => Some(name.clone()),
                Stop::Signal(_) => None,
            };
            let log = name.and_then(|name| supervisor.log_tail(&name, LOG_TAIL)).unwrap_or_default();
            anyhow::anyhow!("{stop}; its log:\n{log}")
        }
        Err(error) => error,
    };
    supervisor.stop(&mut interrupts).await;
    let _ = std::fs::remove_dir_all(&dir);
    Err(failure.context("starting the processes under test"))
}

/// A scratch directory for one started deployment.
fn scratch_dir(what: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("chat-bench-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Short names for the tables: `redis` (or `redis1`…), `rs1`…, `gw1`…
fn table_name(role: &str, index: usize, of: usize) -> String {
    match role {
        plan::REDIS if of == 1 => "redis".to_owned(),
        plan::REDIS => format!("redis{}", index + 1),
        plan::ROOM_SERVICES => format!("rs{}", index + 1),
        plan::GATEWAYS => format!("gw{}", index + 1),
        other => other.to_owned(),
    }
}

/// The standard topology for `args`, as `cargo xtask up` plans it on free
/// ports and isolated ([`scratch`]), with the bench's settings: gateways
/// accept `max_connections` browsers each.
async fn topology_plan(args: &crate::Args, max_connections: usize, dir: &Path) -> anyhow::Result<Plan> {
    let binaries = match &args.bin_dir {
        Some(bin_dir) => binaries::in_dir(bin_dir)?,
        None => binaries::build(args.debug).await?,
    };
    let count = |flag: &str, n: usize| u16::try_from(n).with_context(|| format!("{flag} {n} is too many"));
    let shape = scratch::Shape {
        gateways: count("--gateways", args.gateways)?,
        room_services: count("--room-services", args.room_services)?,
        redis: match args.redis_cluster {
            0 => scratch::Redis::One,
            masters => scratch::Redis::Cluster { masters: count("--redis-cluster", masters)? },
        },
    };
    let mut plan = scratch::plan(&shape, &binaries, dir)?;
    plan.set_env(plan::GATEWAYS, "MAX_CONNECTIONS", &max_connections.to_string());
    // The senders post far past a person's rate on purpose.
    plan.set_env(plan::GATEWAYS, "SEND_RATE", "0");
    // Every simulated browser connects from this machine's address.
    plan.set_env(plan::GATEWAYS, "MAX_CONNECTIONS_PER_IP", "0");
    plan.set_env(plan::GATEWAYS, "DRAIN_SECS", "1");
    // Upload mode posts 50 files at once through one gateway.
    plan.set_env(plan::GATEWAYS, "MAX_UPLOADS", "64");
    let files = dir.join("files");
    for role in [plan::ROOM_SERVICES, plan::GATEWAYS] {
        plan.set_env(role, "RUST_LOG", "warn");
        // Uploads land in the run's scratch folder, removed with it.
        plan.set_env(role, "FILES_DIR", &files.to_string_lossy());
    }
    Ok(plan)
}

/// Starts Redis, the room-services and the gateways `args` asks for, with
/// a scratch PostgreSQL behind the room-services when `store`.
pub async fn start_topology(
    args: &crate::Args,
    max_connections: usize,
    store: bool,
    sync: bool,
) -> anyhow::Result<Deployment> {
    let store = if store { Some(Store::scratch().await?) } else { None };
    let mut attempt = 1;
    let (plan, mut started) = loop {
        let dir = scratch_dir("topology")?;
        let mut plan = match topology_plan(args, max_connections, &dir).await {
            Ok(plan) => plan,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(error);
            }
        };
        if let Some(store) = &store {
            store.apply(&mut plan);
            if sync {
                plan.set_env(plan::ROOM_SERVICES, "STORE_SYNC", "1");
            }
        }
        match start_plan(&plan, dir).await {
            Ok(started) => break (plan, started),
            // A free port can be taken between choosing it and listening on
            // it (by a client's ephemeral port, on a busy machine): choose again.
            Err(error) if attempt < START_ATTEMPTS && format!("{error:#}").contains("Address already in use") => {
                eprintln!("[topology] a port was taken before the process listened on it; choosing ports again");
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    };
    started.store = store;

    let pids: BTreeMap<&str, Option<u32>> = started.supervisor.pids().into_iter().collect();
    let mut deployment = Deployment {
        kind: Kind::Topology { store: started.store.is_some(), sync: sync && started.store.is_some() },
        urls: Vec::new(),
        procs: Vec::new(),
        room_services: Vec::new(),
        redis_port: None,
        started: None,
    };
    for tier in &plan.tiers {
        for (i, process) in tier.processes.iter().enumerate() {
            let name = table_name(tier.role, i, tier.processes.len());
            deployment.procs.push(Watched { name, pid: pids.get(process.name.as_str()).copied().flatten() });
            let address = format!("{}:{}", plan.connect_host, process.ready_port);
            match tier.role {
                plan::GATEWAYS => deployment.urls.push(format!("ws://{address}/ws")),
                plan::ROOM_SERVICES => deployment.room_services.push(format!("http://{address}")),
                plan::REDIS if tier.processes.len() == 1 => deployment.redis_port = Some(process.ready_port),
                _ => {}
            }
        }
    }
    deployment.started = Some(started);
    Ok(deployment)
}

/// Starts the floor: this program with `--serve-floor`, on a free port.
pub async fn start_floor() -> anyhow::Result<Deployment> {
    let exe = std::env::current_exe().context("where is this program?")?;
    let port = ports::free_range(HOST, 1, &[])?;
    let floor = Process {
        name: "floor".to_owned(),
        program: exe,
        args: vec!["--serve-floor".to_owned(), "--floor-port".to_owned(), port.to_string()],
        env: BTreeMap::from([("RUST_LOG".to_owned(), "warn".to_owned())]),
        inherit: Inherit::Essentials,
        ready_port: port,
    };
    let plan = Plan {
        tiers: vec![Tier { role: "floor", processes: vec![floor], setup: None }],
        connect_host: HOST.to_owned(),
        notes: Vec::new(),
    };
    let started = start_plan(&plan, scratch_dir("floor")?).await?;
    let pid = started.supervisor.pids().first().and_then(|(_, pid)| *pid);
    Ok(Deployment {
        kind: Kind::Floor,
        urls: vec![format!("ws://{HOST}:{port}/ws")],
        procs: vec![Watched { name: "floor".into(), pid }],
        room_services: Vec::new(),
        redis_port: None,
        started: Some(started),
    })
}

const OFF: Kind = Kind::Topology { store: false, sync: false };
const ON: Kind = Kind::Topology { store: true, sync: false };
const SYNC: Kind = Kind::Topology { store: true, sync: true };

/// What the flags ask to measure, in order: the topology (with the store,
/// then without, as `--store` says, `default` when it does not; or the
/// given deployment), then the floor.
pub fn sides(args: &crate::Args, default: StoreMode) -> Vec<Kind> {
    let mut sides = Vec::new();
    if !args.gateway.is_empty() {
        sides.push(Kind::Existing);
    } else if !args.floor_only {
        match args.store.unwrap_or(default) {
            StoreMode::Off => sides.push(OFF),
            StoreMode::On => sides.push(ON),
            StoreMode::Both => sides.extend([ON, OFF]),
            StoreMode::Sync => sides.push(SYNC),
            StoreMode::All => sides.extend([SYNC, ON, OFF]),
        }
    }
    if args.gateway.is_empty() && !args.no_floor {
        sides.push(Kind::Floor);
    }
    sides
}

/// Starts one side; gateways accept at least `connections` browsers.
pub async fn start(kind: Kind, args: &crate::Args, connections: usize) -> anyhow::Result<Deployment> {
    let deployment = match kind {
        Kind::Topology { store, sync } => start_topology(args, connections.max(10_000) + 100, store, sync).await?,
        Kind::Floor => start_floor().await?,
        Kind::Existing => Deployment::existing(args.gateway.clone()),
    };
    let pids: Vec<String> =
        deployment.procs.iter().map(|p| format!("{} {}", p.name, p.pid.unwrap_or_default())).collect();
    println!("[{}] up: {} ({})", deployment.label(), deployment.urls.join(" "), pids.join(", "));
    Ok(deployment)
}
