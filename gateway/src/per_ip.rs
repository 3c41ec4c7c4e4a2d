//! Connections per client address (`MAX_CONNECTIONS_PER_IP`): one client
//! opening connection after connection (a script, a runaway page) is held
//! to a share of the gateway instead of taking all of `MAX_CONNECTIONS`.
//!
//! The upgrade asks [`ConnectionsPerIp::open`] with the client's address
//! ([`crate::client_addr`]); the [`IpConnection`] it gets is held by the
//! session's task and gives the place back when dropped, however the session
//! ends. An address is counted only while it has a connection open: the
//! table holds at most one entry per open connection, and an entry goes at
//! zero.
//!
//! IPv6 addresses are counted per /64: one household or host is usually
//! given a whole /64 and can pick a new address in it for every connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ipnet::Ipv6Net;

/// The prefix an IPv6 client is counted by.
const IPV6_PREFIX: u8 = 64;

/// Open connections by client address (as [`counted_as`] gives it).
type Table = Mutex<HashMap<IpAddr, usize>>;

/// Open connections by client address.
#[derive(Debug)]
pub(crate) struct ConnectionsPerIp {
    /// 0: no cap.
    max: usize,
    open: Arc<Table>,
}

/// One connection counted against its address until dropped.
#[derive(Debug)]
#[must_use = "the connection is counted only while this lives"]
pub(crate) struct IpConnection(Option<(Arc<Table>, IpAddr)>);

/// An address already at the cap: the words of the HTTP 429.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "too many connections from your address ({shown}): at most {max} at once (MAX_CONNECTIONS_PER_IP); \
     close some of them (other tabs of this chat?) and try again"
)]
pub(crate) struct AtCap {
    shown: String,
    max: usize,
}

impl ConnectionsPerIp {
    /// At most `max` open connections per address; 0 = no cap.
    pub(crate) fn new(max: usize) -> Self {
        Self { max, open: Arc::default() }
    }

    /// Counts one more connection from `client`, or refuses it when that
    /// address already has `max` open.
    pub(crate) fn open(&self, client: IpAddr) -> Result<IpConnection, AtCap> {
        if self.max == 0 {
            return Ok(IpConnection(None));
        }
        let key = counted_as(client);
        let mut open = lock(&self.open);
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            // Not a fresh entry (max >= 1), so none is left at zero.
            let shown = if key.is_ipv6() { format!("{key}/{IPV6_PREFIX}") } else { key.to_string() };
            return Err(AtCap { shown, max: self.max });
        }
        *count += 1;
        Ok(IpConnection(Some((Arc::clone(&self.open), key))))
    }

    /// Addresses with a connection open now.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        lock(&self.open).len()
    }
}

impl Drop for IpConnection {
    fn drop(&mut self) {
        let Some((table, key)) = self.0.take() else { return };
        let mut open = lock(&table);
        if let Some(count) = open.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&key);
                // Give back what a crowd that has left grew the table to.
                let (len, capacity) = (open.len(), open.capacity());
                if capacity > 64 && len < capacity / 4 {
                    open.shrink_to(len * 2);
                }
            }
        }
    }
}

/// What `client` is counted as: IPv4 (an IPv4-mapped IPv6 address too) by
/// itself, IPv6 by its /64.
fn counted_as(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => Ipv6Net::new_assert(v6, IPV6_PREFIX).network().into(),
        v4 => v4,
    }
}

/// The table, even after a panic elsewhere while it was held: each change
/// to it is one step, so it is never left half-done.
fn lock(table: &Table) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("a test address")
    }

    #[test]
    fn an_address_at_the_cap_is_refused_until_one_of_its_connections_goes() {
        let per_ip = ConnectionsPerIp::new(2);
        let first = per_ip.open(ip("198.51.100.1")).expect("1 of 2");
        let _second = per_ip.open(ip("198.51.100.1")).expect("2 of 2");
        let refused = per_ip.open(ip("198.51.100.1")).expect_err("3 of 2");
        assert!(refused.to_string().contains("198.51.100.1"), "{refused}");
        assert!(refused.to_string().contains("MAX_CONNECTIONS_PER_IP"), "{refused}");
        let _other = per_ip.open(ip("198.51.100.2")).expect("another address has its own count");
        drop(first);
        let _again = per_ip.open(ip("198.51.100.1")).expect("a place came free");
    }

    #[test]
    fn addresses_leave_the_table_when_their_last_connection_goes() {
        let per_ip = ConnectionsPerIp::new(10);
        let held: Vec<_> =
            (0..1000u32).map(|i| per_ip.open(IpAddr::from(i.to_be_bytes())).expect("under the cap")).collect();
        assert_eq!(per_ip.addresses(), 1000);
        drop(held);
        assert_eq!(per_ip.addresses(), 0);
        assert!(lock(&per_ip.open).capacity() <= 128, "the table shrank: {}", lock(&per_ip.open).capacity());
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let per_ip = ConnectionsPerIp::new(1);
        let _a = per_ip.open(ip("2001:db8:1:2::1")).expect("first in the /64");
        let refused = per_ip.open(ip("2001:db8:1:2:ffff::9")).expect_err("same /64");
        assert!(refused.to_string().contains("2001:db8:1:2::/64"), "{refused}");
        let _b = per_ip.open(ip("2001:db8:1:3::1")).expect("another /64");
        let _c = per_ip.open(ip("203.0.113.5")).expect("IPv4");
        assert!(per_ip.open(ip("::ffff:203.0.113.5")).is_err(), "the same IPv4 client, mapped");
    }

    #[test]
    fn zero_is_no_cap_and_keeps_no_table() {
        let per_ip = ConnectionsPerIp::new(0);
        let held: Vec<_> = (0..500).map(|_| per_ip.open(ip("198.51.100.1")).expect("no cap")).collect();
        assert_eq!(per_ip.addresses(), 0);
        drop(held);
    }

    #[test]
    fn a_session_task_that_panics_gives_its_place_back() {
        let per_ip = Arc::new(ConnectionsPerIp::new(1));
        let task = std::thread::spawn({
            let per_ip = Arc::clone(&per_ip);
            move || {
                let _held = per_ip.open(ip("198.51.100.1")).expect("first");
                panic!("a session bug");
            }
        });
        assert!(task.join().is_err(), "the task panicked");
        assert!(per_ip.open(ip("198.51.100.1")).is_ok(), "the place came back");
    }
}
