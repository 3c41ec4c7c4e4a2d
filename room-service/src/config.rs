//! Command-line flags, each with an environment variable to fall back on.

use std::time::Duration;

use clap::Parser;

/// A room-service: keeps chat rooms (order, history, presence) and serves
/// them to gateways over gRPC.
#[derive(Debug, Clone, Parser)]
#[command(name = "room-service", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,

    /// gRPC port (chat.v1.RoomService, grpc.health.v1, reflection).
    #[arg(long, env = "GRPC_PORT", default_value_t = 50051)]
    pub grpc_port: u16,

    /// HTTP port for Prometheus metrics at /metrics; 0 turns it off.
    #[arg(long, env = "METRICS_PORT", default_value_t = 9091)]
    pub metrics_port: u16,

    /// Redis to share rooms through, e.g. redis://:password@host:6379/0.
    /// Unset: an in-process broker, for a single room-service.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// This instance's name in logs and metrics (default: <hostname>-<grpc port>).
    #[arg(long, env = "INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Events kept per room (Redis trims approximately, keeping at least this many).
    #[arg(long, env = "HISTORY_LEN", default_value_t = 1000)]
    pub history_len: usize,

    /// Seconds a room may go without a stored event before its history and
    /// sequence are deleted (its next event starts a new epoch).
    #[arg(long, env = "ROOM_TTL_SECS", default_value_t = 7 * 24 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub room_ttl_secs: u64,

    /// Seconds a member stays present without a heartbeat from its gateway.
    #[arg(long, env = "PRESENCE_TTL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub presence_ttl_secs: u64,

    /// Token every chat.v1.RoomService call must carry as `authorization:
    /// Bearer <token>` (gateways send theirs); others get UNAUTHENTICATED.
    /// Health and reflection stay open. Unset: the API is open to anyone who
    /// can reach the port.
    #[arg(long, env = "GRPC_TOKEN", hide_env_values = true)]
    pub grpc_token: Option<String>,
}

impl Config {
    pub fn retention(&self) -> crate::broker::Retention {
        crate::broker::Retention {
            history_len: self.history_len.max(1),
            room_ttl: Duration::from_secs(self.room_ttl_secs),
        }
    }

    pub fn presence_ttl(&self) -> Duration {
        Duration::from_secs(self.presence_ttl_secs)
    }

    /// The config a bare run gets, with `redis_url` set as given.
    pub fn with_redis(redis_url: Option<String>) -> Self {
        let mut config = Self::parse_from(["room-service"]);
        config.redis_url = redis_url;
        config
    }
}

/// The URL with any password replaced, for logs.
pub fn redact(url: &str) -> String {
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

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(redact("redis://:s3cret@redis:6379/0"), "redis://***@redis:6379/0");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
