//! Command-line flags, each with an environment variable to fall back on.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::client_addr::TrustedProxies;

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

    /// Most simultaneous WebSocket connections from one client address (an
    /// IPv6 client: its /64); more get HTTP 429 until one closes. Not 1 or
    /// 5: a company or school behind NAT, or a mobile carrier's CGNAT, is
    /// many people on one address, each with a few tabs. It stops one
    /// client from taking all of MAX_CONNECTIONS and multiplying its send
    /// rate by opening connections. Behind a balancer, set TRUSTED_PROXIES
    /// too, or everyone counts as the balancer. 0 = no cap.
    #[arg(long, env = "MAX_CONNECTIONS_PER_IP", default_value_t = 100)]
    pub max_connections_per_ip: usize,

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

    // --- Security (docs/security.md) ---------------------------------------
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

    /// Proxies (balancers) whose X-Forwarded-For names the client,
    /// comma-separated addresses or CIDR ranges (e.g. 10.0.0.5,fd00::/8).
    /// A request from one of them counts as coming from the right-most
    /// address in X-Forwarded-For that is not itself a listed proxy; what a
    /// client writes further left is not believed. Unset: the TCP peer is
    /// the client and X-Forwarded-For is ignored. Used by
    /// MAX_CONNECTIONS_PER_IP.
    #[arg(long, env = "TRUSTED_PROXIES", value_parser = TrustedProxies::parse)]
    pub trusted_proxies: Option<TrustedProxies>,

    /// Messages per second after the burst, per user with tokens (shared by
    /// all of a user's connections to this gateway), per connection
    /// without; 0 = no limit.
    #[arg(long, env = "SEND_RATE", default_value_t = 10)]
    pub send_rate: u32,

    /// Messages one user (with tokens) or one connection (without) may send
    /// at once; 0 = no limit.
    #[arg(long, env = "SEND_BURST", default_value_t = 20)]
    pub send_burst: u32,

    // --- Attachments (docs/files.md) ----------------------------------------
    /// Largest upload, in bytes; a larger one is refused with 413 (before
    /// reading when Content-Length says so, else when the stream passes it).
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = chat_proto::files::DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: u64,

    /// Most pixels (width x height, from the header) an image may have;
    /// more is refused with 422 before anything is decoded.
    #[arg(long, env = "MAX_IMAGE_PIXELS", default_value_t = chat_proto::files::DEFAULT_MAX_IMAGE_PIXELS)]
    pub max_image_pixels: u64,

    /// Images stripped and thumbnailed at once (CPU threads).
    #[arg(long, env = "IMAGE_WORKERS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub image_workers: u64,

    /// Uploads this gateway receives at once; more get 503 + Retry-After.
    #[arg(long, env = "MAX_UPLOADS", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_uploads: u64,

    /// Key that signs file URLs; every gateway of one chat must share it.
    /// Unset: a random one per process (links work on this gateway only).
    #[arg(long, env = "FILES_SECRET", hide_env_values = true)]
    pub files_secret: Option<String>,

    #[command(flatten)]
    pub blobs: chat_runtime::blobs::BlobArgs,

    /// Bearer token sent with every call to the room-services (their GRPC_TOKEN).
    #[arg(long, env = "GRPC_TOKEN", hide_env_values = true)]
    pub grpc_token: Option<String>,

    /// Log lines as `text` (for people) or `json` (one object per line).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: chat_runtime::logging::LogFormat,

    /// Traces over OTLP/gRPC (OTEL_EXPORTER_OTLP_ENDPOINT and friends).
    #[command(flatten)]
    pub traces: chat_runtime::traces::TraceConfig,
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
