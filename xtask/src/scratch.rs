//! A scratch topology: the standard one, planned by [`plan::plan`] as for
//! `cargo xtask up`, for a program that starts its own to measure or test
//! the chat (the bench, the process tests). It differs from `up`'s in two
//! ways only:
//! - every port is a free one on loopback, so it collides with nothing on
//!   the machine (a running `cargo xtask up` included);
//! - it is [isolated](Plan::isolated): its processes get only the
//!   [`ESSENTIALS`](plan::ESSENTIALS) of our environment and what the plan
//!   sets, so a `JWT_SECRET`, `REDIS_HOST` or `PING_SECS` left exported in
//!   the shell cannot change what is measured or tested.

use std::path::Path;

use anyhow::Context;
use chat_testkit::redis_cluster;

use crate::plan::{self, Binaries, Broker, Layout, Plan};
use crate::ports;
use crate::up::find_on_path;

/// Where everything listens.
const HOST: &str = "127.0.0.1";

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub gateways: u16,
    pub room_services: u16,
    pub redis: Redis,
}

/// Which message bus the room-services share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redis {
    /// None: one room-service on its in-process broker.
    InProcess,
    /// One `redis-server` from PATH.
    One,
    /// A Redis Cluster of this many masters, no replicas (`redis-server` and
    /// `redis-cli` from PATH), on a free block of ports in 20000–21999.
    Cluster { masters: u16 },
}

/// The plan for `shape` on free loopback ports, isolated from our
/// environment; Redis keeps its files in `dir`.
pub fn plan(shape: &Shape, binaries: &Binaries, dir: &Path) -> anyhow::Result<Plan> {
    let (broker, redis_ports) = match shape.redis {
        Redis::InProcess => (Broker::InProcess, Vec::new()),
        Redis::One => {
            let server = redis_server()?;
            let port = ports::free_range(HOST, 1, &[])?;
            (Broker::StartRedis { server, port, dir: dir.to_path_buf() }, vec![port])
        }
        Redis::Cluster { masters } => {
            let server = redis_server()?;
            let cli = find_on_path("redis-cli").context("redis-cli is not on PATH: apt-get install -y redis-tools")?;
            let ports = redis_cluster::free_ports(usize::from(masters))
                .context("no free block of ports for the Redis Cluster in 20000-21999")?;
            let broker = Broker::StartCluster {
                server,
                cli,
                first_port: ports[0],
                masters,
                replicas: 0,
                dir: dir.to_path_buf(),
            };
            (broker, ports)
        }
    };
    let first_grpc_port = ports::free_range(HOST, shape.room_services, &redis_ports)?;
    let mut taken = redis_ports;
    taken.extend((0..shape.room_services).map(|i| first_grpc_port + i));
    let first_port = ports::free_range(HOST, shape.gateways, &taken)?;
    let layout = Layout {
        host: HOST.to_owned(),
        gateways: shape.gateways,
        room_services: shape.room_services,
        first_port,
        first_grpc_port,
        first_metrics_port: 0,
    };
    Ok(plan::plan(&layout, &broker, binaries)?.isolated())
}

fn redis_server() -> anyhow::Result<std::path::PathBuf> {
    find_on_path("redis-server").context("redis-server is not on PATH: apt-get install -y redis-server")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::plan::Inherit;

    fn binaries() -> Binaries {
        Binaries { room_service: PathBuf::from("/t/room-service"), gateway: PathBuf::from("/t/gateway") }
    }

    #[test]
    fn a_scratch_topology_is_isolated_on_free_loopback_ports() {
        let shape = Shape { gateways: 3, room_services: 2, redis: Redis::InProcess };

        let plan = plan(&shape, &binaries(), Path::new("/tmp/x")).expect("plan");

        assert_eq!(plan.processes().count(), 4, "one room-service without Redis, three gateways");
        for process in plan.processes() {
            assert_eq!(process.inherit, Inherit::Essentials, "{}", process.name);
            assert!(ports::is_free(HOST, process.ready_port), "{} on a free port", process.name);
            assert!(process.args.windows(2).any(|w| w == ["--host", HOST]), "{} on loopback", process.name);
        }
    }
}
