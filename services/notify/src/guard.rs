//! The guard in front of the provider addresses schools configure themselves (server-side
//! request forgery): only http(s) URLs whose host resolves to public addresses, checked
//! when the address is saved and again at every send, where the connection goes only to
//! the addresses just checked (a name that resolves elsewhere a moment later is never
//! asked again), without redirects and without a proxy. The county's own provider
//! (`notify_webhook_url`, set by operators) is exempt and may be internal. Operators may
//! allow chosen private `address:port` pairs for schools (`notify_webhook_allow`).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How long one name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an address was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not an http(s) URL with a host.
    NotHttp,
    /// The host is, or resolves to, an address schools may not reach.
    Internal(IpAddr),
    /// The host name does not resolve (now).
    Unresolvable,
}

impl Refused {
    /// (Chinese, English) for a person.
    pub fn message(&self) -> (String, String) {
        match self {
            Self::NotHttp => (
                "服务商地址须为 http(s):// 开头的网址。".into(),
                "The provider address must be an http(s):// URL.".into(),
            ),
            Self::Internal(ip) => (
                format!(
                    "服务商地址指向本机、内网或保留地址（{ip}），不能使用；请填写服务商的公网地址。"
                ),
                format!(
                    "The provider address points to this machine, a private network or a reserved address ({ip}); enter the provider's public address."
                ),
            ),
            Self::Unresolvable => (
                "服务商地址的域名无法解析。".into(),
                "The provider's host name does not resolve.".into(),
            ),
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotHttp => write!(f, "provider address refused: not an http(s) URL"),
            Self::Internal(ip) => write!(
                f,
                "provider address refused: {ip} is a local, private or reserved address"
            ),
            Self::Unresolvable => write!(f, "provider address refused: the host does not resolve"),
        }
    }
}

/// A URL that passed: the host as written and the addresses it may be reached at.
#[derive(Clone, Debug)]
pub struct Vetted {
    pub url: url::Url,
    /// The host name, when the URL names one (None for an address literal).
    pub name: Option<String>,
    pub addrs: Vec<SocketAddr>,
}

/// The rule, with the operators' exceptions.
#[derive(Clone, Debug, Default)]
pub struct WebhookGuard {
    allow: Arc<HashSet<SocketAddr>>,
}

impl WebhookGuard {
    /// `allow`: `address:port` pairs schools may use although they are private
    /// (e.g. `10.2.0.8:8080`, `[fd00::8]:443`).
    pub fn new(allow: &[String]) -> Result<Self, String> {
        let allow = allow
            .iter()
            .map(|a| {
                a.trim()
                    .parse::<SocketAddr>()
                    .map_err(|_| format!("{a:?} is not an address:port pair such as 10.2.0.8:8080"))
            })
            .collect::<Result<HashSet<_>, _>>()?;
        Ok(Self {
            allow: Arc::new(allow),
        })
    }

    /// Whether a school's provider may be reached at `addr`.
    pub fn allows(&self, addr: SocketAddr) -> bool {
        is_public(addr.ip()) || self.allow.contains(&addr)
    }

    /// Checks `raw` as it would be used now: scheme, host, and every address the host
    /// resolves to. A name with any refused address is refused as a whole.
    pub async fn vet(&self, raw: &str) -> Result<Vetted, Refused> {
        let url = url::Url::parse(raw.trim()).map_err(|_| Refused::NotHttp)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::NotHttp);
        }
        let port = url.port_or_known_default().ok_or(Refused::NotHttp)?;
        let (name, addrs) = match url.host() {
            None => return Err(Refused::NotHttp),
            Some(url::Host::Ipv4(ip)) => (None, vec![SocketAddr::new(IpAddr::V4(ip), port)]),
            Some(url::Host::Ipv6(ip)) => (None, vec![SocketAddr::new(IpAddr::V6(ip), port)]),
            Some(url::Host::Domain(d)) => {
                let found =
                    tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((d, port))).await;
                match found {
                    Ok(Ok(addrs)) => (Some(d.to_owned()), addrs.collect::<Vec<_>>()),
                    _ => return Err(Refused::Unresolvable),
                }
            }
        };
        if addrs.is_empty() {
            return Err(Refused::Unresolvable);
        }
        if let Some(bad) = addrs.iter().find(|a| !self.allows(**a)) {
            return Err(Refused::Internal(bad.ip()));
        }
        Ok(Vetted { url, name, addrs })
    }

    /// A client that reaches `v` only at its checked addresses: the name is pinned to them,
    /// any other name fails to resolve, redirects are not followed and no proxy is used.
    pub fn client(v: &Vetted) -> reqwest::Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(NoResolver));
        if let Some(name) = &v.name {
            b = b.resolve_to_addrs(name, &v.addrs);
        }
        b.build()
    }
}

/// Resolves nothing: a guarded client connects only to the addresses pinned for its name.
struct NoResolver;

impl reqwest::dns::Resolve for NoResolver {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async {
            Err::<reqwest::dns::Addrs, _>(Box::<dyn std::error::Error + Send + Sync>::from(
                "not a checked address",
            ))
        })
    }
}

/// Whether `ip` is a public unicast address: not loopback, private, link-local (with the
/// cloud metadata address 169.254.169.254), shared (CGNAT), unspecified, multicast,
/// broadcast, documentation, benchmarking or reserved; IPv6 forms that carry an IPv4
/// address (mapped, compatible, NAT64, 6to4) are judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                   // "this network", unspecified
        || a == 10                             // private
        || a == 127                            // loopback
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254)              // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // documentation
        || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast
        || (a == 192 && b == 168)              // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100)   // documentation
        || (a == 203 && b == 0 && c == 113)    // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96).
    if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        if ip.is_unspecified() || ip.is_loopback() {
            return false;
        }
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    // 6to4 (2002::/16) carries an IPv4 address in its next 32 bits.
    if s[0] == 0x2002 {
        let [a, b] = s[1].to_be_bytes();
        let [c, d] = s[2].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !((s[0] & 0xfe00) == 0xfc00              // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80         // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0         // site-local (deprecated) fec0::/10
        || (s[0] & 0xff00) == 0xff00         // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0)     // Teredo
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only 100::/64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_refused_and_public_ones_pass() {
        for bad in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
        ] {
            assert!(!is_public(ip(bad)), "{bad} must be refused");
        }
        for good in [
            "1.1.1.1",
            "114.114.114.114",
            "172.32.0.1",
            "100.128.0.1",
            "169.255.0.1",
            "2400:3200::1",
            "::ffff:1.2.3.4",
        ] {
            assert!(is_public(ip(good)), "{good} is public");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_by_scheme_and_every_address() {
        let g = WebhookGuard::default();
        for (url, want) in [
            ("ftp://1.1.1.1/x", Refused::NotHttp),
            ("not a url", Refused::NotHttp),
            (
                "http://127.0.0.1:8080/send",
                Refused::Internal(ip("127.0.0.1")),
            ),
            ("http://2130706433/", Refused::Internal(ip("127.0.0.1"))),
            ("http://0x7f.1/", Refused::Internal(ip("127.0.0.1"))),
            (
                "http://169.254.169.254/latest/meta-data/",
                Refused::Internal(ip("169.254.169.254")),
            ),
            (
                "http://[::ffff:7f00:1]/",
                Refused::Internal(ip("::ffff:127.0.0.1")),
            ),
            ("https://[fe80::1]/", Refused::Internal(ip("fe80::1"))),
        ] {
            assert_eq!(g.vet(url).await.unwrap_err(), want, "{url}");
        }
        // A name that resolves to loopback is refused like the address itself.
        assert!(matches!(
            g.vet("http://localhost:9/send").await.unwrap_err(),
            Refused::Internal(a) if a.is_loopback()
        ));
        let ok = g.vet("https://1.1.1.1/send").await.unwrap();
        assert_eq!(ok.addrs, vec!["1.1.1.1:443".parse().unwrap()]);
        // An allowed pair passes; the same address on another port does not.
        let g = WebhookGuard::new(&["127.0.0.1:8080".into()]).unwrap();
        assert!(g.vet("http://127.0.0.1:8080/send").await.is_ok());
        assert!(g.vet("http://127.0.0.1:8081/send").await.is_err());
        assert!(WebhookGuard::new(&["10.0.0.1".into()]).is_err());
    }
}
