//! The client's address: the TCP peer, unless the peer is one of the configured trusted
//! proxies, in which case the nearest address in `X-Forwarded-For` that is not itself a
//! trusted proxy. With every peer trusted (`trust_forwarded_for`) only the right-most entry,
//! the one the load balancer appended, is believed. A client cannot choose its own address
//! by sending the header.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::ConnectInfo;
use http::HeaderMap;

/// One trusted network: an address and a prefix length (`10.0.0.0/8`, `::1/128`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen on an IPv6 socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
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

impl FromStr for Network {
    type Err = String;

    /// `a.b.c.d`, `a.b.c.d/n`, an IPv6 address, or one with `/n`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network (e.g. 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0–{max}"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

/// The peers whose `X-Forwarded-For` is believed (configuration: `trusted_proxies`).
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    networks: Vec<Network>,
    /// Every peer is trusted (`trust_forwarded_for`): only for instances that nothing but
    /// the load balancer can reach.
    any: bool,
}

impl TrustedProxies {
    /// Nobody: the TCP peer is the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// Every peer (the older `trust_forwarded_for` switch).
    pub fn any() -> Self {
        Self {
            networks: Vec::new(),
            any: true,
        }
    }

    /// Parses a list of addresses and networks, naming the first bad entry.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Self, String> {
        let networks = list
            .iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<Vec<Network>, _>>()?;
        Ok(Self {
            networks,
            any: false,
        })
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.any || self.networks.iter().any(|n| n.contains(ip))
    }

    /// The client's address for a request from `peer` carrying `headers`.
    ///
    /// Proxies append the address they received from, so the list is read from the right:
    /// the first address (from the right) that is not a trusted proxy is the client. A
    /// malformed entry stops the walk at the last trusted hop, which is then the client:
    /// garbage cannot be used to pick an address.
    ///
    /// With every peer trusted ([`Self::any`]) a walk would never stop and would end at the
    /// left-most entry, which the client wrote itself; there only the right-most entry — the
    /// address the load balancer received the connection from — is the client.
    pub fn client_ip(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        if self.any {
            return Some(
                hops.last()
                    .and_then(|hop| hop.trim().parse::<IpAddr>().ok())
                    .unwrap_or(peer),
            );
        }
        for hop in hops.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        Some(client)
    }

    /// [`Self::client_ip`] from a request's parts (the peer from axum's `ConnectInfo`).
    pub fn client_ip_of(
        &self,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> Option<IpAddr> {
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        self.client_ip(headers, peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_match() {
        let n: Network = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains(ip("10.1.200.3")));
        assert!(!n.contains(ip("10.2.0.1")));
        assert!(n.contains(ip("::ffff:10.1.0.9")));
        let one: Network = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("lb.internal".parse::<Network>().is_err());
        assert!("0.0.0.0/0"
            .parse::<Network>()
            .unwrap()
            .contains(ip("8.8.8.8")));
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let got = proxies.client_ip(&xff("1.2.3.4"), Some(ip("203.0.113.9")));
        assert_eq!(got, Some(ip("203.0.113.9")));
        assert_eq!(
            TrustedProxies::none().client_ip(&xff("1.2.3.4"), Some(ip("10.0.0.1"))),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn a_trusted_proxy_chain_is_walked_from_the_right() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        // The client spoofed 1.1.1.1; the load balancer appended the real 198.51.100.7,
        // then an inner proxy 10.0.0.5.
        let got = proxies.client_ip(
            &xff("1.1.1.1, 198.51.100.7, 10.0.0.5"),
            Some(ip("10.0.0.2")),
        );
        assert_eq!(got, Some(ip("198.51.100.7")));
        // Garbage stops the walk at the last trusted hop.
        let got = proxies.client_ip(&xff("nonsense, 10.0.0.5"), Some(ip("10.0.0.2")));
        assert_eq!(got, Some(ip("10.0.0.5")));
        // No header: the proxy itself.
        let got = proxies.client_ip(&HeaderMap::new(), Some(ip("10.0.0.2")));
        assert_eq!(got, Some(ip("10.0.0.2")));
    }

    #[test]
    fn trusting_every_peer_believes_only_the_entry_the_load_balancer_appended() {
        let any = TrustedProxies::any();
        let lb = Some(ip("10.0.0.2"));
        // The client wrote 1.2.3.4; the load balancer appended the real 198.51.100.7.
        assert_eq!(
            any.client_ip(&xff("1.2.3.4, 198.51.100.7"), lb),
            Some(ip("198.51.100.7"))
        );
        // Rotating the left-most entries changes nothing.
        assert_eq!(
            any.client_ip(&xff("5.6.7.8, 9.9.9.9, 198.51.100.7"), lb),
            Some(ip("198.51.100.7"))
        );
        // Two headers: the last value of the last one.
        let mut h = xff("1.2.3.4");
        h.append("x-forwarded-for", "198.51.100.8".parse().unwrap());
        assert_eq!(any.client_ip(&h, lb), Some(ip("198.51.100.8")));
        // Garbage at the end or no header: the peer.
        assert_eq!(any.client_ip(&xff("1.2.3.4, junk"), lb), lb);
        assert_eq!(any.client_ip(&HeaderMap::new(), lb), lb);
    }
}
