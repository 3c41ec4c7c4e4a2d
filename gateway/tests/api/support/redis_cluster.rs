//! A real Redis Cluster for tests: `redis-server --cluster-enabled yes`
//! processes on loopback, joined with `redis-cli --cluster create`, killed
//! and their files removed when dropped.
//!
//! Cluster nodes announce TCP addresses (the cluster protocol has no unix
//! sockets), so each cluster takes a block of fixed ports in 20000–21999,
//! with its bus ports (+10000) in 30000–31999: below the ephemeral range,
//! tried until a block is free on both.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};

/// Ports of the next cluster; spread by process id so two test runs on one
/// machine start apart.
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);
const FIRST_PORT: u16 = 20000;
const PORT_SPAN: u16 = 2000;
const BUS_OFFSET: u16 = 10000;

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
        let ports = free_ports(count);
        let dir = std::env::temp_dir().join(format!("chat-test-redis-cluster-{}-{}", std::process::id(), ports[0]));
        std::fs::create_dir_all(&dir).expect("create a temp dir for the cluster");
        let mut cluster = Self { nodes: Vec::new(), dir };
        for &port in &ports {
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--cluster-enabled", "yes"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                // Quick failure detection, so a failover test stays short.
                .args(["--cluster-node-timeout", "1000", "--save", "", "--appendonly", "no", "--dir"])
                .arg(&cluster.dir)
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
        for &port in &ports {
            wait_for(
                &format!("redis-server on port {port} to answer PING"),
                || async move { cluster_ping(port).await },
            )
            .await;
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let output = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| {
                panic!("cannot run redis-cli ({e}): install it with `apt-get install -y redis-tools` (redis-server brings it)")
            });
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        for &port in &ports {
            wait_for(&format!("node {port} to see the whole cluster ok"), || async move {
                let Some(mut conn) = connect(port).await else { return false };
                let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(&mut conn).await.unwrap_or_default();
                let known = info.lines().any(|l| l.trim() == format!("cluster_known_nodes:{count}"));
                info.contains("cluster_state:ok") && known
            })
            .await;
        }
        // Replicas in sync with their masters, or a failover would lose writes
        // the test counts on.
        for &port in &ports {
            wait_for(&format!("node {port} to be a master or an in-sync replica"), || async move {
                let Some(mut conn) = connect(port).await else { return false };
                let info: String =
                    redis::cmd("INFO").arg("replication").query_async(&mut conn).await.unwrap_or_default();
                info.contains("role:master") || info.contains("master_link_status:up")
            })
            .await;
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
            .await;
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

/// `count` consecutive ports whose bus ports are free too.
fn free_ports(count: usize) -> Vec<u16> {
    let count = u16::try_from(count).expect("a small cluster");
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
            return ports;
        }
    }
    panic!("no free block of {count} ports in {FIRST_PORT}..{} for a Redis Cluster", FIRST_PORT + PORT_SPAN);
}

async fn connect(port: u16) -> Option<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    tokio::time::timeout(Duration::from_secs(1), client.get_multiplexed_async_connection()).await.ok()?.ok()
}

async fn cluster_ping(port: u16) -> bool {
    let Some(mut conn) = connect(port).await else { return false };
    redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
}

async fn wait_for<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after 15 s waiting for {what}");
}
