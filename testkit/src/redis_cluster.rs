//! A local Redis Cluster: `redis-server --cluster-enabled yes` processes on
//! loopback, joined with `redis-cli --cluster create`. One recipe for all
//! who start one:
//! - the tests' [`RedisCluster`], which owns its nodes and kills them (and
//!   removes their files) when dropped;
//! - `cargo xtask up --redis-cluster` and the bench, whose supervisor owns
//!   the nodes (it shows or logs their output and stops them in order):
//!   they start each node with [`node_args`] and call [`join`] once the
//!   nodes listen.
//!
//! Cluster nodes announce TCP addresses (the cluster protocol has no unix
//! sockets), and each node's cluster bus listens on its port +
//! [`BUS_OFFSET`]. [`free_ports`] finds a block of fixed ports in
//! 20000–21999, with its bus ports in 30000–31999: below the ephemeral
//! range, tried until a block is free on both.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};

/// A node's cluster bus listens on its port + this.
pub const BUS_OFFSET: u16 = 10000;
/// How long [`join`] waits for the cluster to form (and a test for a node).
const PATIENCE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

/// Ports of the next cluster; spread by process id so two test runs on one
/// machine start apart.
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);
const FIRST_PORT: u16 = 20000;
const PORT_SPAN: u16 = 2000;

/// The arguments of `redis-server` for the cluster node on 127.0.0.1:`port`:
/// nothing kept on disk but its cluster file (`nodes-<port>.conf` in `dir`),
/// and a node counted as failing after `node_timeout` without an answer.
pub fn node_args(port: u16, dir: &Path, node_timeout: Duration) -> Vec<String> {
    let mut args: Vec<String> =
        ["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            .into_iter()
            .map(str::to_owned)
            .collect();
    args.extend(["--dir".to_owned(), dir.display().to_string()]);
    args.extend(["--cluster-enabled".to_owned(), "yes".to_owned()]);
    args.extend(["--cluster-config-file".to_owned(), format!("nodes-{port}.conf")]);
    args.extend(["--cluster-node-timeout".to_owned(), node_timeout.as_millis().to_string()]);
    args
}

/// The arguments of `redis-cli` that join the nodes on `ports` into one
/// cluster: slots spread evenly over the masters, `replicas` replicas each.
pub fn create_args(ports: &[u16], replicas: usize) -> Vec<String> {
    let mut args = vec!["--cluster".to_owned(), "create".to_owned()];
    args.extend(ports.iter().map(|port| format!("127.0.0.1:{port}")));
    args.extend(["--cluster-replicas".to_owned(), replicas.to_string(), "--cluster-yes".to_owned()]);
    args
}

/// Joins the listening nodes on `ports` into a cluster with `cli`
/// (`redis-cli`), `replicas` replicas per master, and returns once every
/// node sees the whole cluster ok and every replica is in sync with its
/// master (so a failover loses nothing and the first command finds its
/// slot served). Returns what redis-cli printed; the error says which step
/// failed.
pub async fn join(cli: &Path, ports: &[u16], replicas: usize) -> Result<String, String> {
    for &port in ports {
        wait_for(&format!("redis-server on port {port} to answer PING"), || async move { ping(port).await }).await?;
    }
    let output = Command::new(cli)
        .args(create_args(ports, replicas))
        // Our nodes have no password: one for another Redis in the shell
        // would only make redis-cli warn.
        .env_remove("REDISCLI_AUTH")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            format!(
                "cannot run {} ({e}): install it with `apt-get install -y redis-tools` (redis-server brings it)",
                cli.display()
            )
        })?;
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        return Err(format!("redis-cli --cluster create failed ({}): {printed}", output.status));
    }
    let count = ports.len();
    for &port in ports {
        wait_for(&format!("node {port} to see the whole cluster ok"), || async move {
            let Some(mut conn) = connect(port).await else { return false };
            let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(&mut conn).await.unwrap_or_default();
            let known = info.lines().any(|l| l.trim() == format!("cluster_known_nodes:{count}"));
            info.contains("cluster_state:ok") && known
        })
        .await?;
    }
    for &port in ports {
        wait_for(&format!("node {port} to be a master or an in-sync replica"), || async move {
            let Some(mut conn) = connect(port).await else { return false };
            let info: String = redis::cmd("INFO").arg("replication").query_async(&mut conn).await.unwrap_or_default();
            info.contains("role:master") || info.contains("master_link_status:up")
        })
        .await?;
    }
    Ok(printed)
}

/// `count` consecutive free ports whose bus ports are free too, in
/// 20000–21999; `None` when no block of them is free.
pub fn free_ports(count: usize) -> Option<Vec<u16>> {
    let count = u16::try_from(count).ok().filter(|c| *c > 0 && *c < PORT_SPAN)?;
    let spread = (std::process::id() % u32::from(PORT_SPAN / 20)) as u16 * 20;
    let _ = NEXT_PORT.compare_exchange(0, FIRST_PORT + spread, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..100 {
        let first = NEXT_PORT.fetch_add(count, Ordering::Relaxed);
        let first = FIRST_PORT + (first - FIRST_PORT) % (PORT_SPAN - count);
        let ports: Vec<u16> = (first..first + count).collect();
        let free = ports.iter().all(|&p| {
            std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", p + BUS_OFFSET)).is_ok()
        });
        if free {
            return Some(ports);
        }
    }
    None
}

/// A Redis Cluster a test started; its nodes are killed and their files
/// removed when it is dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<(u16, Child)>,
    dir: PathBuf,
}

impl RedisCluster {
    /// `masters` masters, each with `replicas` replicas, slots spread evenly;
    /// returns once every node agrees the cluster is ok. Fails the test with
    /// the install command when redis-server or redis-cli is missing.
    pub async fn start(masters: usize, replicas: usize) -> Self {
        let count = masters * (1 + replicas);
        let ports = free_ports(count).unwrap_or_else(|| {
            panic!("no free block of {count} ports in {FIRST_PORT}..{} for a Redis Cluster", FIRST_PORT + PORT_SPAN)
        });
        let dir = std::env::temp_dir().join(format!("chat-test-redis-cluster-{}-{}", std::process::id(), ports[0]));
        std::fs::create_dir_all(&dir).expect("create a temp dir for the cluster");
        let mut cluster = Self { nodes: Vec::new(), dir };
        for &port in &ports {
            let child = Command::new("redis-server")
                // Quick failure detection, so a failover test stays short.
                .args(node_args(port, &cluster.dir, Duration::from_millis(1000)))
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start redis-server ({e}). The cluster tests need a real Redis 7: install it \
                         with `apt-get install -y redis-server` (or put redis-server on PATH)"
                    )
                });
            cluster.nodes.push((port, child));
        }
        if let Err(error) = join(Path::new("redis-cli"), &ports, replicas).await {
            panic!("{error}");
        }
        cluster
    }

    /// Seed URLs, one per node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|(port, _)| format!("redis://127.0.0.1:{port}")).collect()
    }

    /// A plain connection to one node (no cluster routing), to look inside.
    pub async fn node(&self, port: u16) -> redis::aio::MultiplexedConnection {
        connect(port).await.unwrap_or_else(|| panic!("cannot connect to cluster node {port}"))
    }

    /// The ports of the nodes that are masters now.
    pub async fn masters(&self) -> Vec<u16> {
        let mut masters = Vec::new();
        for (port, _) in &self.nodes {
            let info: String =
                redis::cmd("INFO").arg("replication").query_async(&mut self.node(*port).await).await.expect("INFO");
            if info.contains("role:master") {
                masters.push(*port);
            }
        }
        masters
    }

    /// The port of the master serving `key`'s slot now, as the masters'
    /// `CLUSTER NODES` says.
    pub async fn master_of(&self, key: &str) -> u16 {
        for port in self.masters().await {
            let mut conn = self.node(port).await;
            let slot: u16 =
                redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async(&mut conn).await.expect("KEYSLOT");
            let owner: String = redis::cmd("CLUSTER").arg("NODES").query_async(&mut conn).await.expect("CLUSTER NODES");
            for line in owner.lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() < 9 || !fields[2].contains("master") {
                    continue;
                }
                let owns = fields[8..].iter().any(|range| match range.split_once('-') {
                    Some((a, b)) => {
                        a.parse::<u16>().is_ok_and(|a| a <= slot) && b.parse::<u16>().is_ok_and(|b| slot <= b)
                    }
                    None => range.parse::<u16>().is_ok_and(|s| s == slot),
                });
                if owns {
                    let addr = fields[1].split('@').next().unwrap_or_default();
                    return addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port in CLUSTER NODES");
                }
            }
        }
        panic!("no master owns the slot of {key}");
    }

    /// Promotes a replica of the master serving `key` with `CLUSTER FAILOVER`
    /// (the master hands over once the replica has every write) and waits
    /// until every node sees the new master. Returns (old, new) master ports.
    pub async fn fail_over(&self, key: &str) -> (u16, u16) {
        let old = self.master_of(key).await;
        let mut replica = None;
        for (port, _) in &self.nodes {
            let info: String =
                redis::cmd("INFO").arg("replication").query_async(&mut self.node(*port).await).await.expect("INFO");
            if info.contains("role:slave") && info.contains(&format!("master_port:{old}")) {
                replica = Some(*port);
            }
        }
        let new = replica.unwrap_or_else(|| panic!("master {old} has no replica: start the cluster with replicas"));
        let _: String =
            redis::cmd("CLUSTER").arg("FAILOVER").query_async(&mut self.node(new).await).await.expect("FAILOVER");
        for (port, _) in &self.nodes {
            let port = *port;
            wait_for(&format!("node {port} to see {new} as the master of {key}"), || async move {
                let Some(mut conn) = connect(port).await else { return false };
                let nodes: String = redis::cmd("CLUSTER").arg("NODES").query_async(&mut conn).await.unwrap_or_default();
                nodes.lines().any(|l| l.contains(&format!("127.0.0.1:{new}@")) && l.contains("master"))
            })
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        }
        (old, new)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn connect(port: u16) -> Option<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    tokio::time::timeout(Duration::from_secs(1), client.get_multiplexed_async_connection()).await.ok()?.ok()
}

async fn ping(port: u16) -> bool {
    let Some(mut conn) = connect(port).await else { return false };
    redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
}

/// Polls `check` until it holds; the error names `what` after [`PATIENCE`].
async fn wait_for<F, Fut>(what: &str, check: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
    Err(format!("timed out after {} s waiting for {what}", PATIENCE.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_keeps_nothing_but_its_cluster_file_and_listens_on_loopback() {
        let args = node_args(7001, Path::new("/tmp/c"), Duration::from_millis(2000));
        assert_eq!(
            args,
            [
                "--port",
                "7001",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                "/tmp/c",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes-7001.conf",
                "--cluster-node-timeout",
                "2000",
            ]
        );
    }

    #[test]
    fn create_names_every_node_and_the_replicas_per_master() {
        assert_eq!(
            create_args(&[7000, 7001, 7002], 0),
            [
                "--cluster",
                "create",
                "127.0.0.1:7000",
                "127.0.0.1:7001",
                "127.0.0.1:7002",
                "--cluster-replicas",
                "0",
                "--cluster-yes"
            ]
        );
    }

    #[test]
    fn free_ports_are_a_block_free_with_its_bus_ports() {
        let ports = free_ports(3).expect("a free block");
        assert_eq!(ports.len(), 3);
        assert_eq!(ports[2], ports[0] + 2, "consecutive");
        assert!((FIRST_PORT..FIRST_PORT + PORT_SPAN).contains(&ports[0]));
        let again = free_ports(3).expect("a second block");
        assert!(again.iter().all(|p| !ports.contains(p)), "the next call moves on: {ports:?} then {again:?}");
    }
}
