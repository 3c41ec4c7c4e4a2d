//! `cargo xtask up`: build, decide the topology, check its ports, start the
//! store ([`crate::store`]), run it until Ctrl+C or until one of its
//! processes ends, then stop it all, the store last.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::binaries;
use crate::cli::UpArgs;
use crate::plan::{self, Broker, Layout, Plan};
use crate::ports;
use crate::prefix::Style;
use crate::store::Store;
use crate::supervise::{self, Stop, Supervisor, Timing};

/// What is said when there is no redis-server, word for word.
pub const NO_REDIS: &str = "redis-server not found: running ONE room-service on the in-process \
     broker (apt-get install redis-server for the multi-instance topology)";

/// The Redis Cluster of `--redis-cluster`: 3 masters, each with a replica.
const CLUSTER_MASTERS: u16 = 3;
const CLUSTER_REPLICAS: u16 = 1;

/// Runs the `up` command. `Ok` after a Ctrl+C / SIGTERM; an error when the
/// topology could not start or one of its processes ended by itself.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    // Built before any signal handler is installed, so a Ctrl+C during the
    // build ends cargo and us the ordinary way.
    let binaries = match &args.bin_dir {
        Some(dir) => binaries::in_dir(dir)?,
        None => binaries::build(args.debug).await?,
    };

    let layout = Layout {
        host: args.host.clone(),
        gateways: args.gateways,
        room_services: args.room_services,
        first_port: args.first_port,
        first_grpc_port: args.first_grpc_port,
        first_metrics_port: args.first_metrics_port,
    };
    let (broker, scratch_dir) = choose_broker(&args, &layout, &binaries)?;
    let mut plan = plan::plan(&layout, &broker, &binaries)?;
    refuse_busy_ports(&plan, &layout.host)?;
    if let Some(dir) = &scratch_dir {
        std::fs::create_dir_all(dir)?;
    }

    let width = plan.processes().map(|p| p.name.len()).max().unwrap_or(0);
    let style = Style::detect(width.max("xtask".len()));
    let mut supervisor = Supervisor::new(&plan, style, Timing::default());
    match &broker {
        Broker::StartRedis { server, port, .. } => {
            supervisor.say(&format!("starting {} on port {port} (nothing kept on disk)", server.display()))
        }
        Broker::StartCluster { first_port, masters, replicas, .. } => supervisor.say(&format!(
            "starting a Redis Cluster ({masters} masters, {} replicas) on ports {first_port}-{} (nothing kept on disk)",
            masters * replicas,
            first_port + masters * (1 + replicas) - 1
        )),
        Broker::Existing { .. } => supervisor.say("using the Redis given by --redis-url"),
        Broker::InProcess => supervisor.say(NO_REDIS),
    }
    for note in &plan.notes {
        supervisor.say(note);
    }

    // Listening before PostgreSQL starts: a Ctrl+C while it does (it is in
    // a process group of its own) stops everything the ordinary way.
    let mut interrupts = supervise::interrupts()?;
    if args.database_url.is_none() && chat_testkit::postgres_server::bin_dir().is_some() {
        supervisor.say("starting a scratch PostgreSQL in a temp dir (initdb; nothing kept after exit)");
    }
    let store = Store::choose(args.database_url.as_deref()).await;
    store.apply(&mut plan);
    supervisor.say(&store.announcement());

    let outcome = supervisor.run(&plan, &mut interrupts).await;
    let stop = match &outcome {
        Ok(stop) => {
            supervisor.say(&format!("{stop}: stopping everything"));
            Some(stop.clone())
        }
        Err(error) => {
            supervisor.say(&format!("{error:#}: stopping everything"));
            None
        }
    };
    supervisor.stop(&mut interrupts).await;
    // After the room-services: they write to it until they are gone.
    store.stop().await;
    if let Some(dir) = scratch_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    supervisor.say("all stopped");

    match stop {
        Some(Stop::Signal(_)) => Ok(()),
        Some(stop) => bail!("{stop}"),
        None => outcome.map(|_| ()),
    }
}

/// Which Redis to use, and the scratch directory to remove afterwards when we
/// start our own.
fn choose_broker(
    args: &UpArgs,
    layout: &Layout,
    binaries: &plan::Binaries,
) -> anyhow::Result<(Broker, Option<PathBuf>)> {
    if let Some(url) = &args.redis_url {
        return Ok((Broker::Existing { url: url.clone() }, None));
    }
    if args.redis_cluster {
        let (Some(server), Some(cli)) = (find_on_path("redis-server"), find_on_path("redis-cli")) else {
            bail!("--redis-cluster needs redis-server and redis-cli on PATH: apt-get install redis-server");
        };
        let dir = std::env::temp_dir().join(format!("chat-xtask-redis-cluster-{}", std::process::id()));
        let first_port = args.redis_port.unwrap_or(plan::DEFAULT_CLUSTER_PORT);
        let (masters, replicas) = (CLUSTER_MASTERS, CLUSTER_REPLICAS);
        return Ok((Broker::StartCluster { server, cli, first_port, masters, replicas, dir: dir.clone() }, Some(dir)));
    }
    let Some(server) = find_on_path("redis-server") else {
        return Ok((Broker::InProcess, None));
    };
    // The rest of the plan's ports, so a system-chosen Redis port avoids them.
    let others = plan::plan(layout, &Broker::InProcess, binaries)
        .map(|plan| plan.listening_ports().into_iter().map(|(port, _)| port).collect())
        .unwrap_or_else(|_| Vec::new());
    let port = ports::redis_port(args.redis_port, &others)?;
    let dir = std::env::temp_dir().join(format!("chat-xtask-redis-{}", std::process::id()));
    Ok((Broker::StartRedis { server, port, dir: dir.clone() }, Some(dir)))
}

/// Fails, naming every taken port and its process, before anything starts.
fn refuse_busy_ports(plan: &Plan, host: &str) -> anyhow::Result<()> {
    let busy: Vec<String> = plan
        .listening_ports()
        .into_iter()
        .filter(|(port, _)| !ports::is_free(host, *port))
        .map(|(port, name)| format!("{port} (for {name})"))
        .collect();
    if !busy.is_empty() {
        bail!(
            "port {} already in use on {host}: is another `cargo xtask up` running? \
             Stop it, or move the ranges with --first-port, --first-grpc-port, \
             --first-metrics-port or --redis-port",
            busy.join(", ")
        );
    }
    Ok(())
}

/// Where `program` is on `PATH`, if it is an executable there.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
