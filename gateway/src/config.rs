//! Command-line flags, each with an environment variable to fall back on.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// A chat gateway: serves the page and the browser WebSocket, and turns
/// browser frames into calls on room-services.
#[derive(Debug, Clone, Parser)]
#[command(name = "gateway", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,

    /// HTTP port: the page at /, the WebSocket at /ws, /healthz, /readyz, /metrics.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// Room-service gRPC endpoints, comma-separated. Every gateway must list
    /// the same ones, so they agree on which room-service serves a room.
    #[arg(long, env = "ROOM_SERVICES", value_delimiter = ',', default_value = "http://127.0.0.1:50051")]
    pub room_services: Vec<String>,

    /// This gateway's name, shown to browsers and in member lists (default: gw-<port>).
    #[arg(long, env = "GATEWAY_ID")]
    pub gateway_id: Option<String>,

    /// Folder with the browser page.
    #[arg(long, env = "STATIC_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../static"))]
    pub static_dir: PathBuf,

    /// Most simultaneous WebSocket connections; more get HTTP 503.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Seconds between presence heartbeats for this gateway's members.
    #[arg(long, env = "HEARTBEAT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_secs: u64,

    /// Seconds between WebSocket pings to each browser. A browser that sends
    /// nothing (no frame, no pong) for twice this is closed (4010) and leaves
    /// its rooms with reason `timeout`.
    #[arg(long, env = "PING_SECS", default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..))]
    pub ping_secs: u64,

    /// Seconds a browser whose connection vanished (or whose gateway
    /// restarted) stays in its rooms for its session to resume on any
    /// gateway; then it leaves with reason `disconnected`. 0: leave at once.
    #[arg(long, env = "RESUME_GRACE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub resume_grace_secs: u64,

    /// Seconds to wait for browsers to go and leave notices to be sent on shutdown.
    #[arg(long, env = "DRAIN_SECS", default_value_t = 10)]
    pub drain_secs: u64,

    // --- Security (README "Security") ---------------------------------------
    /// Origins whose pages may open /ws, comma-separated (e.g.
    /// https://chat.example); `*` = any. Unset: only this gateway's own pages
    /// (Origin matching the Host header). Requests without an Origin (not
    /// browsers) are accepted. Refused upgrades get HTTP 403.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Shared secret for HS256 tokens. Set (or JWT_PUBLIC_KEY set): /ws needs
    /// ?token=<JWT>, and members are named by their token. Unset: open chat.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// PEM file with an RSA (RS256) or EC P-256 (ES256) public key that tokens
    /// may be signed for, instead of or besides JWT_SECRET.
    #[arg(long, env = "JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,

    /// Messages per second after the burst, per user with tokens (shared by
    /// all of a user's connections to this gateway), per connection
    /// without; 0 = no limit.
    #[arg(long, env = "SEND_RATE", default_value_t = 10)]
    pub send_rate: u32,

    /// Messages one user (with tokens) or one connection (without) may send
    /// at once; 0 = no limit.
    #[arg(long, env = "SEND_BURST", default_value_t = 20)]
    pub send_burst: u32,

    /// Bearer token sent with every call to the room-services (their GRPC_TOKEN).
    #[arg(long, env = "GRPC_TOKEN", hide_env_values = true)]
    pub grpc_token: Option<String>,
}

impl Config {
    /// The config a bare run gets, pointed at `room_services`, with nothing
    /// read from the environment: what tests and tools start from, so a
    /// variable in the developer's shell cannot change what they run.
    pub fn with_room_services(room_services: Vec<String>) -> Self {
        let mut config: Self = chat_runtime::config::defaults("gateway");
        config.room_services = room_services;
        config
    }

    pub fn heartbeat_every(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs)
    }

    pub fn ping_every(&self) -> Duration {
        Duration::from_secs(self.ping_secs)
    }

    pub fn resume_grace(&self) -> Duration {
        Duration::from_secs(self.resume_grace_secs)
    }
}
