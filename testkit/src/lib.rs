//! # chat-testkit
//!
//! Real parts started and stopped by whoever needs them: the integration
//! tests of every crate, and (for the Redis Cluster and the scratch
//! PostgreSQL) `cargo xtask up` and the bench.
//!
//! - [`RedisServer`]: a `redis-server` on a private unix socket, so a Redis
//!   already running on the machine is left alone and tests never collide
//!   on a port.
//! - [`PostgresServer`]: a scratch PostgreSQL cluster in a temp dir, on a
//!   unix socket there, in the same way ([`postgres_server::bin_dir`]
//!   says whether PostgreSQL is installed at all).
//! - [`redis_cluster`]: a local Redis Cluster — the one recipe (node
//!   arguments, joining, waiting until it is ok) used by the tests'
//!   [`RedisCluster`] and by xtask's supervisor.
//! - [`OtlpCollector`]: an OTLP/gRPC trace receiver on port 0 that keeps
//!   the spans services export, for tests of their traces.
//! - [`rerun`]: part of a test run again in a child process with variables
//!   in its environment, as a developer's shell would have them.

pub mod redis_cluster;

pub mod otlp_collector;
pub mod postgres_server;
mod redis_server;
pub mod rerun;
pub mod s3_server;

pub use otlp_collector::OtlpCollector;
pub use postgres_server::PostgresServer;
pub use redis_cluster::RedisCluster;
pub use redis_server::RedisServer;
pub use s3_server::S3Server;
