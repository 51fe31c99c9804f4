//! The client's address behind reverse proxies: `X-Forwarded-For` is
//! believed only from peers the operator named as trusted proxies, so a
//! client cannot pick the address its rate limit is counted under.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// An address or a network (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `ip` or `ip/prefix`; `None` when it is neither.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (ip, prefix) = match s.trim().split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix.parse::<u8>().ok()?)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = ip.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 peer on a dual-stack socket shows as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key a client address is counted under by rate limits and caps:
/// an IPv4 address itself, an IPv6 address's /64 network. One IPv6
/// subscriber is given a whole /64 (or more), so counting single IPv6
/// addresses would let one machine take 2^64 budgets.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !(u128::from(u64::MAX))).into()),
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    pub(crate) fn push(&mut self, network: Network) {
        self.0.push(network);
    }

    /// Whether `ip` is one of the trusted proxies.
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client's address: the peer, unless the peer is a trusted
    /// proxy; then the last `X-Forwarded-For` hop that is not one (each
    /// proxy appends the address it heard from, so hops left of the last
    /// untrusted one are the client's to invent).
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                // A hop that is no address: stop at what is known.
                break;
            };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(list: &[&str]) -> TrustedProxies {
        let mut t = TrustedProxies::default();
        for n in list {
            t.push(Network::parse(n).unwrap());
        }
        t
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            client_key(ip("2001:db8:1:2::9"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:3::1")),
            client_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(client_key(ip("203.0.113.9")), ip("203.0.113.9"));
        assert_eq!(client_key(ip("::ffff:203.0.113.9")), ip("203.0.113.9"));
    }

    #[test]
    fn networks_parse_and_match() {
        for bad in ["", "10.0.0.0/33", "fd00::/129", "nope", "10.0.0.0/x"] {
            assert_eq!(Network::parse(bad), None, "{bad}");
        }
        let net = Network::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped peers");
        assert!(Network::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Network::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(
            Network::parse("192.0.2.7")
                .unwrap()
                .contains(ip("192.0.2.7"))
        );
        assert!(
            !Network::parse("192.0.2.7")
                .unwrap()
                .contains(ip("192.0.2.8"))
        );
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let t = proxies(&["10.0.0.0/8"]);
        // An untrusted peer's header is its own invention.
        assert_eq!(
            t.client(ip("203.0.113.9"), &xff(&["1.2.3.4"])),
            ip("203.0.113.9")
        );
        // A trusted proxy: the last hop it heard from.
        assert_eq!(
            t.client(ip("10.0.0.2"), &xff(&["198.51.100.7"])),
            ip("198.51.100.7")
        );
        // Hops the client wrote itself, left of the real one, are ignored.
        assert_eq!(
            t.client(ip("10.0.0.2"), &xff(&["1.1.1.1, 198.51.100.7"])),
            ip("198.51.100.7")
        );
        // Through two trusted proxies, across two header lines.
        assert_eq!(
            t.client(ip("10.0.0.2"), &xff(&["6.6.6.6, 198.51.100.7", "10.0.0.9"])),
            ip("198.51.100.7")
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(t.client(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
        assert_eq!(t.client(ip("10.0.0.2"), &xff(&["unknown"])), ip("10.0.0.2"));
        // Nothing trusted: always the peer.
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.2"), &xff(&["1.2.3.4"])),
            ip("10.0.0.2")
        );
    }
}
