//! Developer commands for the chat workspace, run as `cargo xtask <command>`
//! (the alias lives in `.cargo/config.toml`).
//!
//! # `cargo xtask up`
//! Builds `room-service` and `gateway`, then runs the whole topology on this
//! machine with no Docker: a throw-away `redis-server` when one is on `PATH`,
//! a scratch PostgreSQL for the durable history when `initdb` is installed,
//! room-services sharing them, and gateways spreading rooms over them. Every
//! child's output is shown line by line behind its name; Ctrl+C (or SIGTERM)
//! stops them all, gateways first, and returns.
//!
//! # `cargo xtask test`
//! Installs what the tests need when it is missing, then runs them; see [`test`].
//!
//! # `cargo xtask token --sub ada --name "Ada"`
//! Prints a development token for gateways run with `JWT_SECRET` (the same
//! secret must be in the environment); see [`token`].
//!
//! # Layout
//! - [`cli`]: the flags.
//! - [`plan`]: which processes to start, with which arguments and environment,
//!   in which order — pure, decided from the flags and what was found.
//! - [`binaries`]: `cargo build` of the two binaries, and where the executables are.
//! - [`ports`]: choosing and checking local TCP ports.
//! - [`prefix`]: copying a child's output to ours, each line behind its name.
//! - [`supervise`]: spawning the plan, waiting for it, and stopping it.
//! - [`store`]: the PostgreSQL the room-services keep history in (a scratch
//!   one, `--database-url`, or none), and what is said about it.
//! - [`scratch`]: the same topology on free ports, isolated from the shell,
//!   for programs that start their own (the bench, the process tests).
//! - [`up`]: the `up` command, tying the above together.
//! - [`test`]: the `test` command.
//!
//! As a library this is the one topology starter: `cargo xtask up`, the
//! bench (`bench/`) and the tests that start the binaries as processes all
//! plan with [`plan`] and run with [`supervise`]; a Redis Cluster is formed
//! by `chat_testkit::redis_cluster` for all of them.

pub mod binaries;
pub mod cli;
pub mod plan;
pub mod ports;
pub mod prefix;
pub mod scratch;
pub mod store;
pub mod supervise;
pub mod test;
pub mod token;
pub mod up;
