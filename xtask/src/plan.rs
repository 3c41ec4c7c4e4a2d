//! The plan of a local topology: which processes, with which arguments and
//! environment, started tier by tier (Redis, then room-services, then
//! gateways) and stopped in the reverse order.
//!
//! Everything here is pure: the flags and what was found on the machine go
//! in, a [`Plan`] comes out, so the shape of the topology is unit-tested
//! without starting anything. `cargo xtask up` and the bench (through
//! [`crate::scratch`]) both start their topology from [`plan`]; the bench's
//! is [isolated](Plan::isolated) from the shell it runs in, with its own
//! settings [set](Plan::set_env) over it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chat_testkit::redis_cluster;

/// The first cluster node's port unless --redis-port says otherwise.
pub const DEFAULT_CLUSTER_PORT: u16 = 7000;
/// How long a cluster node waits for another before it counts it as failing.
const CLUSTER_NODE_TIMEOUT: Duration = Duration::from_millis(2000);

/// What a process may take of our environment, whoever started us: it
/// configures nothing of the chat (`RUST_LOG` only sets how much it logs).
pub const ESSENTIALS: [&str; 8] = ["PATH", "HOME", "USER", "TMPDIR", "LANG", "TZ", "RUST_LOG", "RUST_BACKTRACE"];

/// The most room-services a plan runs without Redis: the in-process broker
/// lives inside one process, so a second room-service would not see its rooms.
const IN_PROCESS_ROOM_SERVICES: u16 = 1;

/// The shape the flags ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Address every process listens on.
    pub host: String,
    pub gateways: u16,
    pub room_services: u16,
    pub first_port: u16,
    pub first_grpc_port: u16,
    /// 0 turns the room-services' metrics port off.
    pub first_metrics_port: u16,
}

/// Which message bus the room-services share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broker {
    /// Start `server` on 127.0.0.1:`port`, keeping nothing on disk, in `dir`.
    StartRedis { server: PathBuf, port: u16, dir: PathBuf },
    /// Start a Redis Cluster of `masters` × (1 + `replicas`) `server`s on
    /// 127.0.0.1 from `first_port`, joined by `cli`, in `dir`.
    StartCluster { server: PathBuf, cli: PathBuf, first_port: u16, masters: u16, replicas: u16, dir: PathBuf },
    /// A Redis someone else runs.
    Existing { url: String },
    /// No Redis: one room-service on its in-process broker.
    InProcess,
}

/// The two executables `cargo build` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    pub room_service: PathBuf,
    pub gateway: PathBuf,
}

/// One process to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Shown before each of its log lines, e.g. `gateway-3001`.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Set in its environment, over what it inherits.
    pub env: BTreeMap<String, String>,
    /// What it inherits of ours.
    pub inherit: Inherit,
    /// The TCP port that accepts connections once it is up.
    pub ready_port: u16,
}

/// What a process takes of our environment before its own [`Process::env`]
/// is set over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inherit {
    /// All of it but these names. `cargo xtask up` hands the developer's
    /// shell on to the chat's binaries on purpose (`SEND_RATE=0 cargo xtask
    /// up`, `GRPC_TOKEN`, `JWT_SECRET`: see the README); the names removed
    /// are those that would contradict the plan (another way to name a Redis).
    AllBut(Vec<String>),
    /// Only the [`ESSENTIALS`]: the process is configured by the plan alone,
    /// whatever the shell exports (the bench, whose numbers must not depend
    /// on the shell it runs in; Redis, which needs nothing of it). Nothing
    /// to keep up to date when a binary grows a setting.
    Essentials,
}

/// A step run once a tier listens, before the next tier starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setup {
    /// Join the tier's cluster-enabled redis-servers on `ports` into one
    /// Redis Cluster with `cli` (`redis-cli`), `replicas` replicas per
    /// master, and wait until every node says it is ok.
    JoinCluster { cli: PathBuf, ports: Vec<u16>, replicas: u16 },
}

/// Processes started together, after the tier before them is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// What the tier is, for messages: "redis", "room-services", "gateways".
    pub role: &'static str,
    pub processes: Vec<Process>,
    /// Run once the tier listens, before the next tier starts.
    pub setup: Option<Setup>,
}

/// A whole topology, in start order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub tiers: Vec<Tier>,
    /// Host to connect to for what listens on the layout's host.
    pub connect_host: String,
    /// Things the developer should know about this plan (printed before start).
    pub notes: Vec<String>,
}

impl Plan {
    /// Every process, in start order.
    pub fn processes(&self) -> impl Iterator<Item = &Process> {
        self.tiers.iter().flat_map(|tier| tier.processes.iter())
    }

    /// Every port this plan will listen on, with the process that will.
    pub fn listening_ports(&self) -> Vec<(u16, &str)> {
        let mut ports = Vec::new();
        for process in self.processes() {
            for port in listening_ports_of(process) {
                ports.push((port, process.name.as_str()));
            }
        }
        ports
    }

    /// Every process starts with only the [`ESSENTIALS`] of our environment
    /// and what the plan sets ([`Inherit::Essentials`]).
    pub fn isolated(mut self) -> Self {
        for tier in &mut self.tiers {
            for process in &mut tier.processes {
                process.inherit = Inherit::Essentials;
            }
        }
        self
    }

    /// Sets `name=value` in the environment of every process of the tier
    /// `role` ([`REDIS`], [`ROOM_SERVICES`], [`GATEWAYS`]).
    pub fn set_env(&mut self, role: &str, name: &str, value: &str) {
        for tier in self.tiers.iter_mut().filter(|tier| tier.role == role) {
            for process in &mut tier.processes {
                process.env.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// The lines that tell the developer where to point a browser and grpcurl.
    pub fn summary(&self) -> Vec<String> {
        let host = &self.connect_host;
        let mut lines = Vec::new();
        for tier in &self.tiers {
            for process in &tier.processes {
                let port = process.ready_port;
                match tier.role {
                    GATEWAYS => lines.push(format!(
                        "chat:    http://{host}:{port}/    (metrics http://{host}:{port}/metrics, ready http://{host}:{port}/readyz)"
                    )),
                    ROOM_SERVICES => {
                        let metrics = flag_value(process, "--metrics-port")
                            .filter(|port| *port != "0")
                            .map(|port| format!("    (metrics http://{host}:{port}/metrics)"))
                            .unwrap_or_default();
                        lines.push(format!(
                            "grpc:    grpcurl -plaintext {host}:{port} list{metrics}"
                        ));
                    }
                    _ if flag_value(process, "--cluster-enabled").is_some() => {
                        lines.push(format!("redis:   redis-cli -c -p {port}"));
                    }
                    _ => lines.push(format!("redis:   redis-cli -p {port}")),
                }
            }
        }
        lines
    }
}

/// The tiers' roles, in start order.
pub const REDIS: &str = "redis";
pub const ROOM_SERVICES: &str = "room-services";
pub const GATEWAYS: &str = "gateways";

/// Decides the processes for `layout` on `broker`, or says which flag is wrong.
pub fn plan(layout: &Layout, broker: &Broker, binaries: &Binaries) -> anyhow::Result<Plan> {
    let connect_host = connect_host(&layout.host);
    let mut tiers = Vec::new();
    let mut notes = Vec::new();

    let redis_url = match broker {
        Broker::StartRedis { server, port, dir } => {
            tiers.push(Tier { role: REDIS, processes: vec![redis_process(server, *port, dir)], setup: None });
            Some(RedisEnv::Url(format!("redis://127.0.0.1:{port}")))
        }
        Broker::StartCluster { server, cli, first_port, masters, replicas, dir } => {
            let nodes = masters.saturating_mul(replicas.saturating_add(1));
            let ports = port_range("--redis-port", *first_port, nodes)?;
            let processes = ports.iter().map(|&port| cluster_node_process(server, port, dir)).collect();
            let setup = Setup::JoinCluster { cli: cli.clone(), ports: ports.clone(), replicas: *replicas };
            tiers.push(Tier { role: REDIS, processes, setup: Some(setup) });
            Some(RedisEnv::Cluster(
                ports.iter().map(|port| format!("redis://127.0.0.1:{port}")).collect::<Vec<_>>().join(","),
            ))
        }
        Broker::Existing { url } => Some(RedisEnv::Url(url.clone())),
        Broker::InProcess => None,
    };

    let room_service_count = if redis_url.is_some() {
        layout.room_services
    } else {
        if layout.room_services > IN_PROCESS_ROOM_SERVICES {
            notes.push(format!(
                "without Redis only one room-service can hold the rooms: starting 1, not {}",
                layout.room_services
            ));
        }
        IN_PROCESS_ROOM_SERVICES
    };

    let grpc_ports = port_range("--first-grpc-port", layout.first_grpc_port, room_service_count)?;
    let metrics_ports = if layout.first_metrics_port == 0 {
        vec![0; usize::from(room_service_count)]
    } else {
        port_range("--first-metrics-port", layout.first_metrics_port, room_service_count)?
    };
    let room_services: Vec<Process> = grpc_ports
        .iter()
        .zip(&metrics_ports)
        .map(|(&grpc_port, &metrics_port)| {
            room_service_process(&binaries.room_service, &layout.host, grpc_port, metrics_port, redis_url.as_ref())
        })
        .collect();
    tiers.push(Tier { role: ROOM_SERVICES, processes: room_services, setup: None });

    let upstreams = grpc_ports.iter().map(|port| format!("http://{connect_host}:{port}")).collect::<Vec<_>>().join(",");
    let gateways = port_range("--first-port", layout.first_port, layout.gateways)?
        .into_iter()
        .map(|port| gateway_process(&binaries.gateway, &layout.host, port, &upstreams))
        .collect();
    tiers.push(Tier { role: GATEWAYS, processes: gateways, setup: None });

    let mut plan = Plan { tiers, connect_host, notes };
    // A file link is signed by the gateway that put it in a message and
    // checked by whichever serves it: the run's gateways share one secret,
    // fresh per run. (Where files are kept is shared already: the default
    // FILES_DIR is one folder in the temp dir for every process here.)
    plan.set_env(GATEWAYS, "FILES_SECRET", &format!("{:032x}", rand::random::<u128>()));
    refuse_shared_ports(&plan)?;
    Ok(plan)
}

fn redis_process(server: &std::path::Path, port: u16, dir: &std::path::Path) -> Process {
    Process {
        name: format!("redis-{port}"),
        program: server.to_path_buf(),
        // A scratch Redis: loopback only, nothing written to disk.
        args: strings([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.display().to_string(),
        ]),
        env: BTreeMap::new(),
        inherit: Inherit::Essentials,
        ready_port: port,
    }
}

/// How room-services find Redis.
#[derive(Debug, Clone)]
enum RedisEnv {
    Url(String),
    /// Comma-separated seed nodes.
    Cluster(String),
}

/// A redis-server that is one node of a local Redis Cluster; its cluster
/// bus listens on `port` + 10000.
fn cluster_node_process(server: &std::path::Path, port: u16, dir: &std::path::Path) -> Process {
    Process {
        name: format!("redis-{port}"),
        program: server.to_path_buf(),
        args: redis_cluster::node_args(port, dir, CLUSTER_NODE_TIMEOUT),
        env: BTreeMap::new(),
        inherit: Inherit::Essentials,
        ready_port: port,
    }
}

fn room_service_process(
    program: &std::path::Path,
    host: &str,
    grpc_port: u16,
    metrics_port: u16,
    redis: Option<&RedisEnv>,
) -> Process {
    let name = format!("room-service-{grpc_port}");
    let mut env = BTreeMap::new();
    let mut env_remove = Vec::new();
    // REDIS_URL goes through the environment, not argv, because a URL may
    // carry a password and argv is visible to every user in `ps`. The other
    // way to name a Redis is removed, so a stray one in the shell is no clash.
    match redis {
        Some(RedisEnv::Url(url)) => {
            env.insert("REDIS_URL".to_owned(), url.clone());
            env_remove.push("REDIS_CLUSTER_URLS".to_owned());
        }
        Some(RedisEnv::Cluster(seeds)) => {
            env.insert("REDIS_CLUSTER_URLS".to_owned(), seeds.clone());
            env_remove.extend(["REDIS_URL".to_owned(), "REDIS_HOST".to_owned()]);
        }
        // REDIS_HOST names a Redis as well as REDIS_URL does: left in, the
        // "in-process broker" would be a Redis after all.
        None => env_remove.extend(["REDIS_URL".to_owned(), "REDIS_HOST".to_owned(), "REDIS_CLUSTER_URLS".to_owned()]),
    }
    Process {
        args: strings([
            "--host",
            host,
            "--grpc-port",
            &grpc_port.to_string(),
            "--metrics-port",
            &metrics_port.to_string(),
            "--instance-id",
            &name,
        ]),
        name,
        program: program.to_path_buf(),
        env,
        inherit: Inherit::AllBut(env_remove),
        ready_port: grpc_port,
    }
}

fn gateway_process(program: &std::path::Path, host: &str, port: u16, upstreams: &str) -> Process {
    Process {
        name: format!("gateway-{port}"),
        program: program.to_path_buf(),
        args: strings([
            "--host",
            host,
            "--port",
            &port.to_string(),
            "--room-services",
            upstreams,
            "--gateway-id",
            &format!("gw-{port}"),
        ]),
        env: BTreeMap::new(),
        inherit: Inherit::AllBut(Vec::new()),
        ready_port: port,
    }
}

/// `count` consecutive ports from `first`, or an error naming `flag`.
fn port_range(flag: &str, first: u16, count: u16) -> anyhow::Result<Vec<u16>> {
    let last = u32::from(first) + u32::from(count) - 1;
    let last = u16::try_from(last)
        .ok()
        .with_context(|| format!("{flag} {first} leaves no room for {count} ports below 65536"))?;
    Ok((first..=last).collect())
}

fn refuse_shared_ports(plan: &Plan) -> anyhow::Result<()> {
    let mut seen: BTreeMap<u16, &str> = BTreeMap::new();
    for (port, name) in plan.listening_ports() {
        if let Some(first) = seen.insert(port, name) {
            bail!(
                "{first} and {name} would both listen on port {port}: \
                 move one range with --first-port, --first-grpc-port, \
                 --first-metrics-port or --redis-port"
            );
        }
    }
    Ok(())
}

fn listening_ports_of(process: &Process) -> Vec<u16> {
    let mut ports = vec![process.ready_port];
    if let Some(metrics) = flag_value(process, "--metrics-port").and_then(|p| p.parse().ok())
        && metrics != 0
    {
        ports.push(metrics);
    }
    ports
}

fn flag_value<'a>(process: &'a Process, flag: &str) -> Option<&'a str> {
    let at = process.args.iter().position(|arg| arg == flag)?;
    process.args.get(at + 1).map(String::as_str)
}

/// Where a client connects to reach something listening on `host`: a
/// wildcard address is not something to connect to, loopback is.
pub fn connect_host(host: &str) -> String {
    match host {
        "0.0.0.0" | "" => "127.0.0.1".to_owned(),
        "::" | "[::]" => "[::1]".to_owned(),
        _ if host.contains(':') && !host.starts_with('[') => format!("[{host}]"),
        _ => host.to_owned(),
    }
}

fn strings<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            host: "127.0.0.1".to_owned(),
            gateways: 3,
            room_services: 2,
            first_port: 3000,
            first_grpc_port: 50051,
            first_metrics_port: 9091,
        }
    }

    fn binaries() -> Binaries {
        Binaries {
            room_service: PathBuf::from("/t/release/room-service"),
            gateway: PathBuf::from("/t/release/gateway"),
        }
    }

    fn start_redis() -> Broker {
        Broker::StartRedis {
            server: PathBuf::from("/usr/bin/redis-server"),
            port: 6380,
            dir: PathBuf::from("/tmp/chat-up-1"),
        }
    }

    fn names(plan: &Plan) -> Vec<&str> {
        plan.processes().map(|p| p.name.as_str()).collect()
    }

    fn process<'a>(plan: &'a Plan, name: &str) -> &'a Process {
        plan.processes().find(|p| p.name == name).unwrap_or_else(|| panic!("no process {name} in {:?}", names(plan)))
    }

    #[test]
    fn the_default_topology_is_redis_two_room_services_three_gateways_in_that_order() {
        let plan = plan(&layout(), &start_redis(), &binaries()).expect("plan");

        let roles: Vec<_> = plan.tiers.iter().map(|t| t.role).collect();
        assert_eq!(roles, ["redis", "room-services", "gateways"]);
        assert_eq!(
            names(&plan),
            ["redis-6380", "room-service-50051", "room-service-50052", "gateway-3000", "gateway-3001", "gateway-3002",]
        );
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn redis_keeps_nothing_on_disk_and_listens_on_loopback_only() {
        let plan = plan(&layout(), &start_redis(), &binaries()).expect("plan");
        let redis = process(&plan, "redis-6380");

        assert_eq!(redis.program, PathBuf::from("/usr/bin/redis-server"));
        assert_eq!(
            redis.args,
            ["--port", "6380", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", "/tmp/chat-up-1"]
        );
        assert_eq!(redis.ready_port, 6380);
    }

    #[test]
    fn every_room_service_gets_the_started_redis_and_its_own_ports() {
        let plan = plan(&layout(), &start_redis(), &binaries()).expect("plan");

        for (name, grpc, metrics) in [("room-service-50051", "50051", "9091"), ("room-service-50052", "50052", "9092")]
        {
            let rs = process(&plan, name);
            assert_eq!(rs.program, PathBuf::from("/t/release/room-service"), "{name}");
            assert_eq!(
                rs.args,
                ["--host", "127.0.0.1", "--grpc-port", grpc, "--metrics-port", metrics, "--instance-id", name],
                "{name}"
            );
            assert_eq!(rs.env.get("REDIS_URL").map(String::as_str), Some("redis://127.0.0.1:6380"), "{name}");
            assert_eq!(rs.inherit, Inherit::AllBut(strings(["REDIS_CLUSTER_URLS"])), "{name}");
        }
    }

    #[test]
    fn every_gateway_lists_every_room_service() {
        let plan = plan(&layout(), &start_redis(), &binaries()).expect("plan");

        for port in ["3000", "3001", "3002"] {
            let gw = process(&plan, &format!("gateway-{port}"));
            assert_eq!(
                gw.args,
                [
                    "--host",
                    "127.0.0.1",
                    "--port",
                    port,
                    "--room-services",
                    "http://127.0.0.1:50051,http://127.0.0.1:50052",
                    "--gateway-id",
                    &format!("gw-{port}"),
                ],
                "gateway-{port}"
            );
        }
    }

    #[test]
    fn an_existing_redis_is_passed_through_and_nothing_is_started_for_it() {
        let url = "redis://:secret@10.0.0.5:6379";
        let broker = Broker::Existing { url: url.to_owned() };
        let plan = plan(&layout(), &broker, &binaries()).expect("plan");

        assert_eq!(plan.tiers[0].role, "room-services");
        for name in ["room-service-50051", "room-service-50052"] {
            assert_eq!(process(&plan, name).env.get("REDIS_URL").map(String::as_str), Some(url));
            assert!(
                !process(&plan, name).args.iter().any(|a| a.contains("secret")),
                "the password must stay out of argv"
            );
        }
    }

    #[test]
    fn without_redis_one_room_service_runs_on_the_in_process_broker() {
        let plan = plan(&layout(), &Broker::InProcess, &binaries()).expect("plan");

        assert_eq!(names(&plan), ["room-service-50051", "gateway-3000", "gateway-3001", "gateway-3002"]);
        let rs = process(&plan, "room-service-50051");
        assert!(!rs.env.contains_key("REDIS_URL"));
        assert_eq!(rs.inherit, Inherit::AllBut(strings(["REDIS_URL", "REDIS_HOST", "REDIS_CLUSTER_URLS"])));
        assert!(process(&plan, "gateway-3001").args.contains(&"http://127.0.0.1:50051".to_owned()));
        assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
        assert!(plan.notes[0].contains("starting 1, not 2"), "{:?}", plan.notes);
    }

    #[test]
    fn counts_and_first_ports_follow_the_flags() {
        let layout = Layout {
            gateways: 2,
            room_services: 3,
            first_port: 8000,
            first_grpc_port: 7000,
            first_metrics_port: 0,
            ..layout()
        };
        let plan = plan(&layout, &start_redis(), &binaries()).expect("plan");

        assert_eq!(
            names(&plan),
            [
                "redis-6380",
                "room-service-7000",
                "room-service-7001",
                "room-service-7002",
                "gateway-8000",
                "gateway-8001",
            ]
        );
        assert_eq!(
            flag_value(process(&plan, "room-service-7002"), "--metrics-port"),
            Some("0"),
            "metrics off stays off"
        );
        assert_eq!(
            flag_value(process(&plan, "gateway-8001"), "--room-services"),
            Some("http://127.0.0.1:7000,http://127.0.0.1:7001,http://127.0.0.1:7002")
        );
    }

    #[test]
    fn a_wildcard_host_is_reached_through_loopback() {
        let layout = Layout { host: "0.0.0.0".to_owned(), ..layout() };
        let plan = plan(&layout, &start_redis(), &binaries()).expect("plan");

        let gw = process(&plan, "gateway-3000");
        assert_eq!(flag_value(gw, "--host"), Some("0.0.0.0"));
        assert_eq!(flag_value(gw, "--room-services"), Some("http://127.0.0.1:50051,http://127.0.0.1:50052"));
        assert_eq!(plan.connect_host, "127.0.0.1");
    }

    #[test]
    fn a_redis_cluster_is_six_nodes_joined_before_the_room_services_start() {
        let broker = Broker::StartCluster {
            server: PathBuf::from("/usr/bin/redis-server"),
            cli: PathBuf::from("/usr/bin/redis-cli"),
            first_port: 7000,
            masters: 3,
            replicas: 1,
            dir: PathBuf::from("/tmp/chat-up-1"),
        };
        let plan = plan(&layout(), &broker, &binaries()).expect("plan");

        let redis = &plan.tiers[0];
        let ports: Vec<u16> = redis.processes.iter().map(|p| p.ready_port).collect();
        assert_eq!(ports, [7000, 7001, 7002, 7003, 7004, 7005]);
        assert!(redis.processes.iter().all(|p| flag_value(p, "--cluster-enabled") == Some("yes")));
        assert_eq!(
            redis.setup,
            Some(Setup::JoinCluster { cli: PathBuf::from("/usr/bin/redis-cli"), ports: ports.clone(), replicas: 1 }),
            "the cluster is joined once its nodes listen"
        );
        let seeds = (7000..=7005).map(|p| format!("redis://127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
        for name in ["room-service-50051", "room-service-50052"] {
            let rs = process(&plan, name);
            assert_eq!(rs.env.get("REDIS_CLUSTER_URLS"), Some(&seeds), "{name}");
            assert!(!rs.env.contains_key("REDIS_URL"), "{name}");
            assert!(
                matches!(&rs.inherit, Inherit::AllBut(names) if names.contains(&"REDIS_URL".to_owned())),
                "{name}: {:?}",
                rs.inherit
            );
        }
    }

    #[test]
    fn under_up_the_binaries_inherit_the_shell_and_redis_inherits_nothing_of_it() {
        let plan = plan(&layout(), &start_redis(), &binaries()).expect("plan");

        assert_eq!(process(&plan, "redis-6380").inherit, Inherit::Essentials);
        assert_eq!(process(&plan, "gateway-3000").inherit, Inherit::AllBut(Vec::new()));
        assert!(matches!(process(&plan, "room-service-50051").inherit, Inherit::AllBut(_)));
    }

    #[test]
    fn an_isolated_plan_passes_nothing_of_the_shell_on_but_the_essentials() {
        let plan = plan(&layout(), &start_redis(), &binaries()).expect("plan").isolated();

        for process in plan.processes() {
            assert_eq!(process.inherit, Inherit::Essentials, "{}", process.name);
        }
        for name in ["JWT_SECRET", "REDIS_CLUSTER_URLS", "REDIS_HOST", "PING_SECS", "GRPC_TOKEN"] {
            assert!(!ESSENTIALS.contains(&name), "{name} is configuration, not an essential");
        }
        assert_eq!(
            process(&plan, "room-service-50051").env.get("REDIS_URL").map(String::as_str),
            Some("redis://127.0.0.1:6380"),
            "what the plan sets stays"
        );
    }

    #[test]
    fn the_gateways_of_a_run_share_one_files_secret() {
        let plan = plan(&layout(), &start_redis(), &binaries()).expect("plan");
        let secrets: Vec<&String> = plan
            .tiers
            .iter()
            .filter(|tier| tier.role == GATEWAYS)
            .flat_map(|tier| &tier.processes)
            .map(|gw| gw.env.get("FILES_SECRET").expect("a FILES_SECRET"))
            .collect();
        assert_eq!(secrets.len(), 3);
        assert!(secrets.iter().all(|s| *s == secrets[0] && s.len() == 32), "{secrets:?}");
    }

    #[test]
    fn set_env_reaches_every_process_of_one_tier_only() {
        let mut plan = plan(&layout(), &start_redis(), &binaries()).expect("plan");

        plan.set_env(GATEWAYS, "SEND_RATE", "0");

        for port in [3000, 3001, 3002] {
            let gw = process(&plan, &format!("gateway-{port}"));
            assert_eq!(gw.env.get("SEND_RATE").map(String::as_str), Some("0"), "{}", gw.name);
        }
        assert!(!process(&plan, "room-service-50051").env.contains_key("SEND_RATE"));
        assert!(!process(&plan, "redis-6380").env.contains_key("SEND_RATE"));
    }

    #[test]
    fn connect_hosts() {
        for (host, expected) in [
            ("127.0.0.1", "127.0.0.1"),
            ("0.0.0.0", "127.0.0.1"),
            ("::", "[::1]"),
            ("::1", "[::1]"),
            ("[::1]", "[::1]"),
            ("localhost", "localhost"),
        ] {
            assert_eq!(connect_host(host), expected, "host {host}");
        }
    }

    #[test]
    fn overlapping_port_ranges_are_refused_with_the_flags_to_change() {
        for (case, layout, broker) in [
            ("gateways over metrics", Layout { first_port: 9090, ..layout() }, start_redis()),
            ("gateways over grpc", Layout { first_port: 50050, ..layout() }, start_redis()),
            (
                "redis over a gateway",
                layout(),
                Broker::StartRedis { server: PathBuf::from("redis-server"), port: 3001, dir: PathBuf::from("/tmp/x") },
            ),
        ] {
            let error = plan(&layout, &broker, &binaries()).expect_err(case).to_string();
            assert!(error.contains("would both listen on port"), "{case}: {error}");
            assert!(error.contains("--first-port"), "{case}: {error}");
        }
    }

    #[test]
    fn a_range_past_65535_is_refused_naming_its_flag() {
        let layout = Layout { first_port: 65534, ..layout() };
        let error = plan(&layout, &start_redis(), &binaries()).expect_err("3 gateways from 65534").to_string();
        assert!(error.contains("--first-port 65534"), "{error}");
    }

    #[test]
    fn the_summary_points_at_every_gateway_and_room_service() {
        let plan = plan(&layout(), &start_redis(), &binaries()).expect("plan");
        let summary = plan.summary().join("\n");

        for expected in [
            "http://127.0.0.1:3000/",
            "http://127.0.0.1:3001/",
            "http://127.0.0.1:3002/",
            "grpcurl -plaintext 127.0.0.1:50051 list",
            "grpcurl -plaintext 127.0.0.1:50052 list",
            "http://127.0.0.1:9092/metrics",
            "redis-cli -p 6380",
        ] {
            assert!(summary.contains(expected), "{expected} missing from:\n{summary}");
        }
    }
}
