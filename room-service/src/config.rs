//! Command-line flags, each with an environment variable to fall back on.
//!
//! The binary reads both ([`clap::Parser::parse`]). Code that builds a
//! config from explicit values — tests, above all — starts from
//! [`Config::defaults`], which reads no environment variable: a developer's
//! exported `REDIS_CLUSTER_URLS` or `GRPC_TOKEN` cannot change what a test
//! checks.

use std::time::Duration;

use clap::Parser;

/// A room-service: keeps chat rooms (order, history, presence) and serves
/// them to gateways over gRPC.
#[derive(Debug, Clone, Parser)]
#[command(name = "room-service", version)]
pub struct Config {
    /// Address to listen on. Anything but loopback needs GRPC_TOKEN (or
    /// ALLOW_OPEN_GRPC), since the API can post as anyone.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// gRPC port (chat.v1.RoomService, grpc.health.v1, reflection). The same
    /// port also answers plain HTTP GET /metrics (Prometheus) and /healthz,
    /// so instances on one host need nothing but distinct gRPC ports.
    #[arg(long, env = "GRPC_PORT", default_value_t = 50051)]
    pub grpc_port: u16,

    /// An extra HTTP port for /metrics and /healthz, besides the gRPC port;
    /// 0 (the default): none.
    #[arg(long, env = "METRICS_PORT", default_value_t = 0)]
    pub metrics_port: u16,

    /// Redis to share rooms through, e.g. redis://:password@host:6379/0.
    /// Wins over REDIS_HOST/REDIS_PORT/REDIS_PASSWORD. Unset (and no
    /// REDIS_HOST or REDIS_CLUSTER_URLS): an in-process broker, for a single
    /// room-service.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Redis host, as the Node chat configured it; used when REDIS_URL is unset.
    #[arg(long, env = "REDIS_HOST")]
    pub redis_host: Option<String>,

    /// Redis port, with REDIS_HOST.
    #[arg(long, env = "REDIS_PORT", default_value_t = 6379)]
    pub redis_port: u16,

    /// Redis password, with REDIS_HOST or REDIS_CLUSTER_URLS (a password in
    /// a URL wins).
    #[arg(long, env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,

    /// Redis Cluster seed nodes, comma-separated, e.g.
    /// redis://127.0.0.1:7000,redis://127.0.0.1:7001: rooms are spread over
    /// the cluster's masters (sharded pub/sub). Used instead of REDIS_URL;
    /// setting both is refused.
    #[arg(long, env = "REDIS_CLUSTER_URLS", value_delimiter = ',')]
    pub redis_cluster_urls: Vec<String>,

    /// This instance's name: the `room_service` label on its metrics (default: room-service-<grpc port>).
    #[arg(long, env = "INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Events kept per room (Redis trims approximately, keeping at least this many).
    #[arg(long, env = "HISTORY_LEN", default_value_t = 1000)]
    pub history_len: usize,

    /// Seconds a room may go without a stored event before its history and
    /// sequence are deleted (its next event starts a new epoch).
    #[arg(long, env = "ROOM_TTL_SECS", default_value_t = 7 * 24 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub room_ttl_secs: u64,

    /// Seconds after sending during which a message may be edited (deletes
    /// have no limit). 0 (the default): any time.
    #[arg(long, env = "EDIT_WINDOW_SECS", default_value_t = 0)]
    pub edit_window_secs: u64,

    /// Seconds a member stays present without a heartbeat from its gateway.
    #[arg(long, env = "PRESENCE_TTL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub presence_ttl_secs: u64,

    /// Token every chat.v1.RoomService call must carry as `authorization:
    /// Bearer <token>` (gateways send theirs); others get UNAUTHENTICATED.
    /// Health and reflection stay open. Unset: the API is open to anyone who
    /// can reach the port, which is refused on a non-loopback HOST unless
    /// ALLOW_OPEN_GRPC is set.
    #[arg(long, env = "GRPC_TOKEN", hide_env_values = true)]
    pub grpc_token: Option<String>,

    /// PostgreSQL to keep every room's messages in for good, e.g.
    /// postgres://user:password@host:5432/chat: checked (and its schema
    /// brought up to date) at start, which fails if it cannot be reached.
    /// Enables scrollback past what Redis holds and Search. Unset: history
    /// is only what Redis keeps (HISTORY_LEN per room), not durable.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Answer a Send or SendBatch only once PostgreSQL committed its
    /// messages (group commit: many sends per transaction), instead of once
    /// Redis holds them. Needs DATABASE_URL. While PostgreSQL is down, sends
    /// fail (INTERNAL) rather than being acknowledged.
    #[arg(long, env = "STORE_SYNC", value_parser = clap::builder::BoolishValueParser::new())]
    pub store_sync: bool,

    /// Days a message is kept in the store (PostgreSQL) before retention
    /// removes it, a small batch at a time; each room's newest message is
    /// kept whatever its age. 0 (the default): kept for ever. Needs
    /// DATABASE_URL.
    #[arg(long, env = "HISTORY_RETENTION_DAYS", default_value_t = 0)]
    pub history_retention_days: u32,

    /// Serve chat.v1.RoomService without GRPC_TOKEN on a non-loopback HOST,
    /// on purpose (e.g. on a private network nothing else can reach).
    /// Without it such a start is refused: anyone who can reach the port
    /// could post as `system` and remove members.
    #[arg(long, env = "ALLOW_OPEN_GRPC", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_open_grpc: bool,

    /// Seconds an uploaded file may wait to be posted in a message; past
    /// it the sweep deletes it (and its bytes, unless another upload shares them).
    #[arg(long, env = "UPLOAD_TTL_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_ttl_secs: u64,

    /// Where uploaded files are kept (the sweep deletes those nobody posted).
    #[command(flatten)]
    pub blobs: chat_runtime::blobs::BlobArgs,

    /// Log lines as `text` (for people) or `json` (one object per line).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: chat_runtime::logging::LogFormat,

    /// Traces over OTLP/gRPC (OTEL_EXPORTER_OTLP_ENDPOINT and friends).
    #[command(flatten)]
    pub traces: chat_runtime::traces::TraceConfig,
}

impl Config {
    pub(crate) fn retention(&self) -> crate::broker::Retention {
        crate::broker::Retention {
            history_len: self.history_len.max(1),
            room_ttl: Duration::from_secs(self.room_ttl_secs),
        }
    }

    pub(crate) fn upload_ttl(&self) -> Duration {
        Duration::from_secs(self.upload_ttl_secs)
    }

    pub(crate) fn presence_ttl(&self) -> Duration {
        Duration::from_secs(self.presence_ttl_secs)
    }

    /// Every setting at its default, whatever the environment holds.
    pub fn defaults() -> Self {
        chat_runtime::config::defaults("room-service")
    }

    /// The settings `args` give (the program name first), the rest at their
    /// defaults; no environment variable is read.
    pub fn from_flags<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        chat_runtime::config::from_flags(args)
    }

    /// The defaults ([`Self::defaults`]), with `redis_url` set as given.
    pub fn with_redis(redis_url: Option<String>) -> Self {
        let mut config = Self::defaults();
        config.redis_url = redis_url;
        config
    }

    /// The defaults ([`Self::defaults`]), on the Redis Cluster with these
    /// seed nodes.
    pub fn with_redis_cluster(seeds: Vec<String>) -> Self {
        let mut config = Self::with_redis(None);
        config.redis_cluster_urls = seeds;
        config
    }

    /// Refuses store settings that cannot work: `STORE_SYNC` or
    /// `HISTORY_RETENTION_DAYS` without a store to apply them to.
    pub(crate) fn check_store(&self) -> Result<(), ConfigError> {
        if self.database_url.is_some() {
            return Ok(());
        }
        if self.store_sync {
            return Err(ConfigError::SyncWithoutStore);
        }
        if self.history_retention_days > 0 {
            return Err(ConfigError::RetentionWithoutStore);
        }
        Ok(())
    }

    /// How long the store keeps a message; `None`: for ever.
    pub(crate) fn history_retention(&self) -> Option<Duration> {
        (self.history_retention_days > 0).then(|| Duration::from_secs(u64::from(self.history_retention_days) * 86_400))
    }

    /// Which Redis to use, from REDIS_URL, REDIS_HOST/PORT/PASSWORD or
    /// REDIS_CLUSTER_URLS.
    pub(crate) fn redis(&self) -> Result<RedisTarget, ConfigError> {
        let seeds: Vec<String> =
            self.redis_cluster_urls.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
        if !seeds.is_empty() {
            if self.redis_url.is_some() || self.redis_host.is_some() {
                return Err(ConfigError::TwoRedises);
            }
            return Ok(RedisTarget::Cluster { seeds, password: self.redis_password.clone() });
        }
        if let Some(url) = &self.redis_url {
            if self.redis_host.is_some() {
                tracing::info!("REDIS_URL and REDIS_HOST are both set: using REDIS_URL");
            }
            return Ok(RedisTarget::Single(url.clone()));
        }
        match &self.redis_host {
            Some(host) if host.trim().is_empty() => Err(ConfigError::EmptyHost),
            Some(host) => {
                let auth = match &self.redis_password {
                    Some(password) if !password.is_empty() => format!(":{}@", percent_encode(password)),
                    _ => String::new(),
                };
                let host = host.trim();
                // An IPv6 address needs brackets in a URL.
                let host =
                    if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
                Ok(RedisTarget::Single(format!("redis://{auth}{host}:{}", self.redis_port)))
            }
            None => Ok(RedisTarget::InProcess),
        }
    }
}

/// Where rooms live, as the configuration says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RedisTarget {
    /// No Redis configured: the in-process broker.
    InProcess,
    /// One Redis, by URL.
    Single(String),
    /// A Redis Cluster, by its seed nodes; `password` applies to seeds
    /// whose URL has none.
    Cluster { seeds: Vec<String>, password: Option<String> },
}

/// A configuration that cannot work, said so at startup.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ConfigError {
    #[error("REDIS_CLUSTER_URLS is set together with REDIS_URL or REDIS_HOST: set only one of them")]
    TwoRedises,
    #[error("REDIS_HOST is empty: set it to the Redis host name, or unset it")]
    EmptyHost,
    #[error(
        "STORE_SYNC=1 acknowledges a send once PostgreSQL committed it, but DATABASE_URL is not set: set DATABASE_URL, or unset STORE_SYNC"
    )]
    SyncWithoutStore,
    #[error(
        "HISTORY_RETENTION_DAYS removes old messages from the store, but DATABASE_URL is not set: set DATABASE_URL, or unset HISTORY_RETENTION_DAYS"
    )]
    RetentionWithoutStore,
}

/// Percent-encodes everything but unreserved characters, so any password
/// fits in a URL's user-info part.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The URL with any password replaced, for logs.
pub(crate) fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(flags: &[&str]) -> Config {
        Config::from_flags(std::iter::once("room-service").chain(flags.iter().copied())).expect("valid flags")
    }

    /// Set in the child run of [`the_defaults_ignore_the_environment`].
    const CHILD: &str = "ROOM_SERVICE_CONFIG_TEST_CHILD";

    /// What a developer might have exported while running the tests.
    const SHELL: [(&str, &str); 7] = [
        ("REDIS_CLUSTER_URLS", "redis://127.0.0.1:7000"),
        ("REDIS_HOST", "cache.example"),
        ("REDIS_URL", "redis://shell.example:6379"),
        ("GRPC_TOKEN", "from-the-shell"),
        ("HOST", "192.0.2.7"),
        ("HISTORY_LEN", "7"),
        ("ALLOW_OPEN_GRPC", "1"),
    ];

    #[test]
    fn the_defaults_ignore_the_environment() {
        if std::env::var_os(CHILD).is_some() {
            // The variables are in effect here: parsing the usual way reads them...
            let from_shell = Config::parse_from(["room-service"]);
            assert_eq!((from_shell.grpc_token.as_deref(), from_shell.history_len), (Some("from-the-shell"), 7));
            assert!(from_shell.allow_open_grpc, "ALLOW_OPEN_GRPC=1 reads as true");
            // ...and neither the defaults nor explicit flags do.
            for config in [Config::defaults(), Config::with_redis(None), parse(&["--grpc-port", "1"])] {
                assert_eq!(config.redis(), Ok(RedisTarget::InProcess));
                assert_eq!((config.grpc_token, config.allow_open_grpc), (None, false));
                assert_eq!((config.host.as_str(), config.history_len), ("127.0.0.1", 1000));
            }
            let cluster = Config::with_redis_cluster(vec!["redis://a:7000".into()]);
            assert_eq!(
                cluster.redis(),
                Ok(RedisTarget::Cluster { seeds: vec!["redis://a:7000".into()], password: None })
            );
            return;
        }
        // Setting a variable in this process would set it for every test
        // running alongside (and needs `unsafe`): the check runs in a child
        // run of this very test, with the variables set there.
        let this_test = format!(
            "{}::the_defaults_ignore_the_environment",
            module_path!().split_once("::").map_or("", |(_, path)| path)
        );
        let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--exact", &this_test, "--nocapture", "--test-threads", "1"])
            .env(CHILD, "1")
            .envs(SHELL)
            .output()
            .expect("the test binary runs");
        let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "the child run failed:\n{said}");
        assert!(said.contains("1 passed"), "the child ran the check (not zero tests):\n{said}");
    }

    #[test]
    fn redis_comes_from_the_url_the_host_or_the_cluster_seeds() {
        let cases: [(&[&str], Result<RedisTarget, ConfigError>); 8] = [
            (&[], Ok(RedisTarget::InProcess)),
            (&["--redis-url", "redis://r:1"], Ok(RedisTarget::Single("redis://r:1".into()))),
            (&["--redis-host", "cache"], Ok(RedisTarget::Single("redis://cache:6379".into()))),
            (
                &["--redis-host", "cache", "--redis-port", "6380", "--redis-password", "p@ss:w/rd %"],
                Ok(RedisTarget::Single("redis://:p%40ss%3Aw%2Frd%20%25@cache:6380".into())),
            ),
            (&["--redis-host", "::1"], Ok(RedisTarget::Single("redis://[::1]:6379".into()))),
            (
                &["--redis-url", "redis://url:1", "--redis-host", "host"],
                Ok(RedisTarget::Single("redis://url:1".into())),
            ),
            (
                &["--redis-cluster-urls", "redis://a:7000, redis://b:7001", "--redis-password", "pw"],
                Ok(RedisTarget::Cluster {
                    seeds: vec!["redis://a:7000".into(), "redis://b:7001".into()],
                    password: Some("pw".into()),
                }),
            ),
            (&["--redis-cluster-urls", "redis://a:7000", "--redis-url", "redis://b"], Err(ConfigError::TwoRedises)),
        ];
        for (flags, expected) in cases {
            assert_eq!(parse(flags).redis(), expected, "flags {flags:?}");
        }
    }

    #[test]
    fn store_settings_need_a_store() {
        let cases: [(&[&str], Result<(), ConfigError>); 5] = [
            (&[], Ok(())),
            (&["--store-sync"], Err(ConfigError::SyncWithoutStore)),
            (&["--history-retention-days", "30"], Err(ConfigError::RetentionWithoutStore)),
            (&["--store-sync", "--database-url", "postgres://db/chat"], Ok(())),
            (&["--history-retention-days", "30", "--database-url", "postgres://db/chat"], Ok(())),
        ];
        for (flags, expected) in cases {
            assert_eq!(parse(flags).check_store(), expected, "flags {flags:?}");
        }
        assert_eq!(parse(&["--history-retention-days", "2"]).history_retention(), Some(Duration::from_secs(172_800)));
        assert_eq!(parse(&[]).history_retention(), None, "0: kept for ever");
    }

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(redact("redis://:s3cret@redis:6379/0"), "redis://***@redis:6379/0");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
