//! Which address a request comes from (`TRUSTED_PROXIES`): what the
//! per-address connection cap ([`crate::per_ip`]) counts.
//!
//! The serve loop (`serve.rs`) hands every request its TCP peer as axum's
//! `ConnectInfo<SocketAddr>`. By default that peer is the client. Behind a
//! balancer every peer is the balancer, so the gateway may be told which
//! peers are proxies: a request from one of them is taken to come from the
//! address in its `X-Forwarded-For` that the proxies vouch for.
//!
//! Each proxy appends the address it was connected from to the right of
//! `X-Forwarded-For`; whatever a client wrote itself stays on the left. So
//! the list is read from the right, skipping addresses that are themselves
//! trusted proxies (a chain of them), and the first untrusted one is the
//! client: everything left of it was written by that client and is not
//! believed. A request from a peer that is not a trusted proxy keeps its
//! peer address whatever it sends; a header that cannot be read falls back
//! to the peer too (all such requests then count against that proxy).

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::HeaderValue;
use ipnet::IpNet;

/// The header proxies name the client in (RFC 7239's `Forwarded` is not read).
const FORWARDED_FOR: &str = "x-forwarded-for";

/// The proxies whose `X-Forwarded-For` is believed; none by default.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// `TRUSTED_PROXIES`: comma-separated addresses (`10.0.0.5`) and CIDR
    /// ranges (`10.0.0.0/8`, `fd00::/8`). Empty entries are skipped, so an
    /// empty value (compose passes `TRUSTED_PROXIES=` when unset) is none.
    pub fn parse(list: &str) -> Result<Self, String> {
        let entries = list.split(',').map(str::trim).filter(|entry| !entry.is_empty());
        Ok(Self(entries.map(|entry| parse_range(entry).map(|net| net.trunc())).collect::<Result<_, _>>()?))
    }

    /// Whether any proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        self.walk(peer, headers.get_all(FORWARDED_FOR).iter())
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The walk from the right over the `X-Forwarded-For` lines (in the
    /// order they came; several lines make one list).
    fn walk<'a>(&self, peer: IpAddr, lines: impl DoubleEndedIterator<Item = &'a HeaderValue>) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        // All trusted so far: the furthest hop named is the best we know
        // (a request sent by a proxy itself, a health check).
        let mut furthest = peer;
        for line in lines.rev() {
            let Ok(line) = line.to_str() else { return peer };
            for entry in line.rsplit(',') {
                let Some(hop) = hop(entry) else { return peer };
                if !self.trusts(hop) {
                    return hop;
                }
                furthest = hop;
            }
        }
        furthest
    }
}

/// One entry of the list: an address, possibly with a port (`1.2.3.4:80`,
/// `[2001:db8::1]:80`, as some proxies write it); `None` for anything else
/// (`unknown`, an empty entry, a name).
fn hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let addr = entry.parse::<IpAddr>().or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip())).ok()?;
    Some(addr.to_canonical())
}

/// One `TRUSTED_PROXIES` entry: a range or one address.
fn parse_range(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>().or_else(|_| text.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
        format!("{text:?} is neither an IP address nor a CIDR range (e.g. 10.0.0.5, 10.0.0.0/8, fd00::/8)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("a test address")
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.join(",")).expect("test ranges")
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let trusted = &["10.0.0.0/8", "192.168.1.7", "fd00::/8"];
        // (case, trusted, peer, X-Forwarded-For lines, client)
        type Case = (&'static str, &'static [&'static str], &'static str, &'static [&'static str], &'static str);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("no proxies: the header is ignored", &[], "203.0.113.9", &["198.51.100.1"], "203.0.113.9"),
            ("untrusted peer: the header is ignored", trusted, "203.0.113.9", &["198.51.100.1"], "203.0.113.9"),
            ("trusted peer, no header", trusted, "10.0.0.2", &[], "10.0.0.2"),
            ("trusted peer, one hop", trusted, "10.0.0.2", &["198.51.100.1"], "198.51.100.1"),
            ("a spoofed left-most entry is not believed", trusted, "10.0.0.2", &["1.1.1.1, 198.51.100.1"], "198.51.100.1"),
            ("a chain of trusted proxies is skipped", trusted, "10.0.0.2", &["1.1.1.1, 198.51.100.1, 192.168.1.7, 10.9.9.9"], "198.51.100.1"),
            ("a single trusted address, not its neighbour", trusted, "10.0.0.2", &["192.168.1.8, 192.168.1.7"], "192.168.1.8"),
            ("several header lines make one list", trusted, "10.0.0.2", &["1.1.1.1", "198.51.100.1, 10.1.1.1"], "198.51.100.1"),
            ("spaces and ports", trusted, "10.0.0.2", &[" 198.51.100.1:5555 ,10.1.1.1:80"], "198.51.100.1"),
            ("IPv6, bracketed with a port", trusted, "fd00::1", &["[2001:db8::7]:443"], "2001:db8::7"),
            ("IPv6 plain", trusted, "10.0.0.2", &["2001:db8::7"], "2001:db8::7"),
            ("an IPv4-mapped peer is the IPv4 address", trusted, "::ffff:10.0.0.2", &["198.51.100.1"], "198.51.100.1"),
            ("an IPv4-mapped hop is the IPv4 address", trusted, "10.0.0.2", &["::ffff:198.51.100.1"], "198.51.100.1"),
            ("every hop trusted: the furthest", trusted, "10.0.0.2", &["10.3.3.3, 10.4.4.4"], "10.3.3.3"),
            ("garbage: the peer", trusted, "10.0.0.2", &["not-an-address"], "10.0.0.2"),
            ("unknown: the peer", trusted, "10.0.0.2", &["unknown"], "10.0.0.2"),
            ("an empty entry before the client: the peer", trusted, "10.0.0.2", &["198.51.100.1,"], "10.0.0.2"),
            ("an empty header: the peer", trusted, "10.0.0.2", &[""], "10.0.0.2"),
            ("garbage left of the client is never read", trusted, "10.0.0.2", &["garbage, 198.51.100.1"], "198.51.100.1"),
            ("garbage inside the trusted chain: the peer", trusted, "10.0.0.2", &["198.51.100.1, garbage, 10.1.1.1"], "10.0.0.2"),
        ];
        for (case, trusted, peer, lines, client) in cases {
            let mut headers = HeaderMap::new();
            for line in *lines {
                headers.append(FORWARDED_FOR, HeaderValue::from_str(line).expect("a header value"));
            }
            assert_eq!(proxies(trusted).client(ip(peer), &headers), ip(client), "{case}");
        }
    }

    #[test]
    fn a_header_that_is_not_text_falls_back_to_the_peer() {
        let mut headers = HeaderMap::new();
        headers.append(FORWARDED_FOR, HeaderValue::from_bytes(b"198.51.100.1\xff").expect("opaque bytes"));
        assert_eq!(proxies(&["10.0.0.0/8"]).client(ip("10.0.0.2"), &headers), ip("10.0.0.2"));
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges_and_anything_else_says_what_is_expected() {
        let parsed = TrustedProxies::parse("10.0.0.5, 10.1.2.3/8 ,::1,,").expect("a list");
        let expected: Vec<IpNet> =
            ["10.0.0.5/32", "10.0.0.0/8", "::1/128"].iter().map(|n| n.parse().expect("net")).collect();
        assert_eq!(parsed.0, expected, "host bits in a range are dropped; empty entries skipped");
        assert!(TrustedProxies::parse("").expect("empty").is_empty());
        assert!(TrustedProxies::parse(" , ").expect("blank").is_empty());
        for bad in ["balancer", "10.0.0.0/33", "10.0.0", "10.0.0.1, 10.0.0.300"] {
            let why = TrustedProxies::parse(bad).expect_err(bad);
            assert!(why.contains("CIDR"), "{bad:?}: {why}");
        }
    }
}
