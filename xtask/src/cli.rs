//! The command line of `cargo xtask`.
//!
//! No flag here reads the environment: `PORT`, `REDIS_URL` and friends belong
//! to the binaries, and a stray one in a developer's shell must not reshape
//! the topology.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Developer commands for the chat workspace")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the binaries and run Redis, room-services and gateways locally until Ctrl+C.
    ///
    /// Starts redis-server from PATH when there is one (with no persistence, in
    /// a temporary directory); without it, runs ONE room-service on the
    /// in-process broker and says so. Starts a scratch PostgreSQL for the
    /// durable history when initdb is installed (or uses --database-url);
    /// without it, history is Redis's only and not durable, and it says so.
    Up(UpArgs),

    /// Install what the tests need when it is missing (with apt, as root; or
    /// print the command), then run the page's unit tests and
    /// `cargo test --workspace`, or only the packages given with -p:
    /// `cargo xtask test [<cargo test args>]`.
    Test(TestArgs),

    /// Print a token (JWT, HS256) for gateways run with JWT_SECRET, which must
    /// be set to the same secret here: `cargo xtask token --sub ada --name "Ada"`.
    Token(TokenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// Passed on to `cargo test`, e.g. `-p gateway --test api browser`
    /// (with -p/--package, only those packages are tested).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cargo_args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The user's stable id (the `sub` claim).
    #[arg(long)]
    pub sub: String,

    /// The name shown in rooms (default: the sub).
    #[arg(long)]
    pub name: Option<String>,

    /// Rooms the token may join, comma-separated (default: any).
    #[arg(long, value_delimiter = ',')]
    pub rooms: Vec<String>,

    /// Seconds until the token expires.
    #[arg(long, default_value_t = 24 * 3600)]
    pub ttl_secs: u64,
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// How many gateways to run, on ports first-port, first-port+1, …
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub gateways: u16,

    /// How many room-services to run (only one without Redis).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub room_services: u16,

    /// HTTP/WebSocket port of the first gateway.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u16).range(1..))]
    pub first_port: u16,

    /// gRPC port of the first room-service.
    #[arg(long, default_value_t = 50051, value_parser = clap::value_parser!(u16).range(1..))]
    pub first_grpc_port: u16,

    /// Metrics (HTTP /metrics) port of the first room-service; 0 turns them off.
    #[arg(long, default_value_t = 9091)]
    pub first_metrics_port: u16,

    /// Port for the redis-server this command starts [default: 6380, or a free
    /// port if 6380 is taken]. 6380 keeps clear of a system Redis on 6379.
    #[arg(long, conflicts_with = "redis_url")]
    pub redis_port: Option<u16>,

    /// Use this Redis instead of starting one, e.g. redis://:secret@127.0.0.1:6379.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,

    /// Start a local Redis Cluster instead of one Redis: 3 masters and 3
    /// replicas on --redis-port (default 7000) and the next five (cluster bus
    /// +10000), joined with `redis-cli --cluster create`; room-services get
    /// REDIS_CLUSTER_URLS.
    #[arg(long, conflicts_with = "redis_url")]
    pub redis_cluster: bool,

    /// Keep history in this PostgreSQL instead of starting a scratch one,
    /// e.g. postgres://chat:secret@127.0.0.1:5432/chat (room-services get it
    /// as DATABASE_URL). Without it a scratch PostgreSQL is started in a
    /// temp dir when initdb is installed; with none, history is Redis's only.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// Address every process listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Build and run the debug binaries instead of the release ones.
    #[arg(long, conflicts_with = "bin_dir")]
    pub debug: bool,

    /// Run the room-service and gateway executables in this folder instead
    /// of building them.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_documented_topology() {
        let Command::Up(args) = Cli::parse_from(["cargo xtask", "up"]).command else { panic!("up parses as Up") };
        assert_eq!(args.gateways, 3);
        assert_eq!(args.room_services, 2);
        assert_eq!(args.first_port, 3000);
        assert_eq!(args.first_grpc_port, 50051);
        assert_eq!(args.first_metrics_port, 9091);
        assert_eq!(args.redis_port, None);
        assert_eq!(args.redis_url, None);
        assert!(!args.redis_cluster);
        assert_eq!(args.database_url, None);
        assert!(!args.debug);
        assert_eq!(args.bin_dir, None);
    }

    #[test]
    fn a_redis_port_makes_no_sense_with_an_existing_redis() {
        let parsed =
            Cli::try_parse_from(["cargo xtask", "up", "--redis-url", "redis://127.0.0.1:6379", "--redis-port", "7000"]);
        assert!(parsed.is_err());
    }

    #[test]
    fn zero_gateways_is_refused() {
        assert!(Cli::try_parse_from(["cargo xtask", "up", "--gateways", "0"]).is_err());
    }
}
