//! Local TCP ports: which are free before starting, and when a started
//! process has opened its own.

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use tokio::net::TcpStream;

/// Redis's port unless told otherwise: next to the usual 6379, so a system
/// Redis there is left alone.
pub const DEFAULT_REDIS_PORT: u16 = 6380;

/// Whether nothing listens on `host:port` yet, tested by binding it as the
/// process would.
pub fn is_free(host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    TcpListener::bind((host, port)).is_ok()
}

/// The port for a redis-server we start: `wanted` if given (taken or not, so
/// the error says so), else [`DEFAULT_REDIS_PORT`] when free, else one the
/// system hands out that is not in `avoid` (the ports of the rest of the plan).
pub fn redis_port(wanted: Option<u16>, avoid: &[u16]) -> std::io::Result<u16> {
    if let Some(port) = wanted {
        return Ok(port);
    }
    if is_free("127.0.0.1", DEFAULT_REDIS_PORT) && !avoid.contains(&DEFAULT_REDIS_PORT) {
        return Ok(DEFAULT_REDIS_PORT);
    }
    // A handful of tries is plenty: the system's ephemeral range is wide and
    // the plan holds only a few ports.
    for _ in 0..16 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        if !avoid.contains(&port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::other("found no free port for redis-server"))
}

/// The first of `count` consecutive ports free on `host` and not in
/// `avoid`, found around ports the system hands out: for a topology that
/// must not collide with anything on the machine (the bench's).
pub fn free_range(host: &str, count: u16, avoid: &[u16]) -> std::io::Result<u16> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    // A block of a few ports next to a free one is almost always free:
    // a handful of tries is plenty.
    for _ in 0..32 {
        let first = TcpListener::bind((host, 0))?.local_addr()?.port();
        let Some(last) = first.checked_add(count.saturating_sub(1)) else { continue };
        if (first..=last).all(|port| !avoid.contains(&port) && is_free(host, port)) {
            return Ok(first);
        }
    }
    Err(std::io::Error::other(format!("found no {count} consecutive free ports on {host}")))
}

/// Whether something accepts TCP connections on `host:port` right now.
pub async fn answers(host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    matches!(tokio::time::timeout(Duration::from_millis(500), TcpStream::connect((host, port))).await, Ok(Ok(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_not_free_and_is_free_again_once_released() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();

        assert!(!is_free("127.0.0.1", port));
        drop(listener);
        assert!(is_free("127.0.0.1", port));
    }

    #[test]
    fn an_asked_for_redis_port_is_kept() {
        assert_eq!(redis_port(Some(7777), &[]).expect("port"), 7777);
    }

    #[test]
    fn the_redis_port_avoids_the_plan_and_the_default_when_taken() {
        let _taken = TcpListener::bind((Ipv4Addr::LOCALHOST, DEFAULT_REDIS_PORT));
        let port = redis_port(None, &[DEFAULT_REDIS_PORT]).expect("port");
        assert_ne!(port, DEFAULT_REDIS_PORT);
        assert!(is_free("127.0.0.1", port));
    }

    #[test]
    fn a_free_range_is_free_throughout_and_misses_what_to_avoid() {
        let first = free_range("127.0.0.1", 4, &[]).expect("a free range");
        assert!((first..first + 4).all(|port| is_free("127.0.0.1", port)));

        let avoid: Vec<u16> = (first..first + 4).collect();
        let other = free_range("127.0.0.1", 4, &avoid).expect("another range");
        assert!((other..other + 4).all(|port| !avoid.contains(&port)), "{avoid:?} and {other}");
    }

    #[tokio::test]
    async fn answers_tells_a_listening_port_from_a_closed_one() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();

        assert!(answers("127.0.0.1", port).await);
        drop(listener);
        assert!(!answers("127.0.0.1", port).await);
    }
}
