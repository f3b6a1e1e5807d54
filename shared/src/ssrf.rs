//! The SSRF guard for partner-supplied URLs (a partner's notification `callback_url`, solar's
//! `call_back_url`): they must be public http(s). DESIGN's table puts this beside `webhooks`; it is its own
//! module because the solar vertical and the transport use it too.
//!
//! Two checks, as DESIGN's reliability rules ask:
//! - [`check_url`] when a URL is configured or posted: the scheme, no credentials, and a host that is not
//!   `localhost` nor an IP literal outside the public internet ([`ip_is_public`]). The WHATWG parser has
//!   already canonicalised IPv4 literals, so a decimal (`http://2130706433/`), octal or hex spelling is
//!   read as the address it names.
//! - [`GuardedResolver`] at connect time, given to reqwest as its resolver: a name that resolves to any
//!   non-public address is refused, so that a public-looking name pointing inside is refused too. IP
//!   literals never reach a resolver, so the transport checks the URL again before each request.
//!
//! Refused, for IPv4: 0.0.0.0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16 (link-local, cloud metadata),
//! 172.16/12, 192.0.0/24 (IETF), 192.0.2/24, 198.51.100/24 and 203.0.113/24 (documentation), 192.168/16,
//! 198.18/15 (benchmarking), 224/4 (multicast), 240/4 (reserved) and the broadcast address. For IPv6: `::`,
//! `::1`, IPv4-mapped and IPv4-compatible addresses, 100::/64 (discard), 2001:db8::/32 (documentation),
//! 2001::/23 (IETF protocol assignments, Teredo included), fc00::/7 (ULA), fe80::/10 and fec0::/10, ff00::/8;
//! NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are as public as the IPv4 address they carry.
//!
//! [`UrlPolicy::allow_loopback`] (`[hub] allow_loopback_urls`, for local and test runs only) lets loopback
//! through (127/8, `::1`, `localhost`), and nothing else.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;

/// What partner-supplied URLs may point at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Loopback allowed (local and test runs; never on AWS).
    pub allow_loopback: bool,
}

/// Why a URL was refused (never repeats the URL: it may carry credentials or PII).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("must be an absolute http(s) URL")]
    NotHttp,
    #[error("must not carry credentials")]
    Credentials,
    #[error("must name a public host, not a loopback, private, link-local, reserved or documentation address")]
    NotPublic,
}

/// Whether `ip` is on the public internet (see the module docs for what is not).
pub fn ip_is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ipv4_is_public(ip),
        IpAddr::V6(ip) => ipv6_is_public(ip),
    }
}

fn ipv4_is_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0 // "this network"
        || a >= 240 // reserved
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0/24
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 198 && (b == 18 || b == 19))) // benchmarking 198.18/15
}

fn ipv6_is_public(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if ip.to_ipv4_mapped().is_some() || s[..6].iter().all(|s| *s == 0) {
        return false; // ::ffff:a.b.c.d, ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
    }
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return ipv4_is_public(embedded(s[6], s[7])); // NAT64 64:ff9b::/96
    }
    if s[0] == 0x2002 {
        return ipv4_is_public(embedded(s[1], s[2])); // 6to4 2002::/16
    }
    !(ip.is_multicast()
        || s[..4] == [0x100, 0, 0, 0] // discard 100::/64
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation 2001:db8::/32
        || (s[0] == 0x2001 && s[1] < 0x200) // IETF protocol assignments 2001::/23 (Teredo 2001::/32)
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
        || (s[0] & 0xfe00) == 0xfc00) // unique local fc00::/7
}

/// Whether a connection to `ip` is allowed under `policy`.
pub fn address_allowed(ip: IpAddr, policy: UrlPolicy) -> bool {
    // IPv4-mapped addresses are refused even when the IPv4 address is public (a mapped literal is a
    // classic way around address checks); under `allow_loopback` a mapped loopback is loopback.
    let canonical = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    ip_is_public(ip) || (policy.allow_loopback && canonical.is_loopback())
}

/// Check a partner-supplied URL when it is configured or posted: the parsed URL, or why it is refused.
pub fn check_url(raw: &str, policy: UrlPolicy) -> Result<Url, UrlRefusal> {
    let url = Url::parse(raw.trim()).map_err(|_| UrlRefusal::NotHttp)?;
    check_parsed(&url, policy)?;
    Ok(url)
}

/// [`check_url`] for a URL already parsed (the transport checks each request's URL with it).
pub fn check_parsed(url: &Url, policy: UrlPolicy) -> Result<(), UrlRefusal> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefusal::NotHttp);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    let Some(host) = url.host_str().filter(|host| !host.is_empty()) else {
        return Err(UrlRefusal::NotHttp);
    };
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip: Ipv6Addr = v6.parse().map_err(|_| UrlRefusal::NotHttp)?;
        return allowed(IpAddr::V6(ip), policy);
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return allowed(IpAddr::V4(ip), policy);
    }
    let domain = host.trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return Err(UrlRefusal::NotHttp);
    }
    let local = domain == "localhost" || domain.ends_with(".localhost");
    if local && !policy.allow_loopback {
        return Err(UrlRefusal::NotPublic);
    }
    Ok(())
}

fn allowed(ip: IpAddr, policy: UrlPolicy) -> Result<(), UrlRefusal> {
    if address_allowed(ip, policy) {
        Ok(())
    } else {
        Err(UrlRefusal::NotPublic)
    }
}

/// Looks a host name up: the system's resolver in production, a table in tests.
#[async_trait::async_trait]
pub trait Lookup: Send + Sync {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The system resolver (through tokio's `getaddrinfo` on a blocking thread).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

#[async_trait::async_trait]
impl Lookup for SystemLookup {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0))
            .await?
            .map(|addr| addr.ip())
            .collect())
    }
}

/// Why a name was refused at connect time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveRefusal {
    #[error("the name could not be resolved")]
    NotFound,
    #[error("the name resolves to an address that is not public")]
    NotPublic,
}

/// reqwest's resolver for partner URLs: every address a name resolves to must be allowed, or the name is
/// refused (a mixed answer is refused whole, so that no retry can reach the inside address).
#[derive(Clone)]
pub struct GuardedResolver {
    lookup: Arc<dyn Lookup>,
    policy: UrlPolicy,
}

impl GuardedResolver {
    pub fn new(lookup: Arc<dyn Lookup>, policy: UrlPolicy) -> Self {
        GuardedResolver { lookup, policy }
    }

    /// The addresses `host` may be reached at, or why not.
    pub async fn resolve_host(&self, host: &str) -> Result<Vec<IpAddr>, ResolveRefusal> {
        let addresses = self
            .lookup
            .lookup(host)
            .await
            .map_err(|_| ResolveRefusal::NotFound)?;
        if addresses.is_empty() {
            return Err(ResolveRefusal::NotFound);
        }
        if addresses
            .iter()
            .any(|ip| !address_allowed(*ip, self.policy))
        {
            return Err(ResolveRefusal::NotPublic);
        }
        Ok(addresses)
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addresses = this.resolve_host(name.as_str()).await?;
            let addrs: reqwest::dns::Addrs =
                Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const REFUSED: &[&str] = &[
        "http://127.0.0.1/cb",
        "http://127.8.9.10/cb",
        "http://[::1]/cb",
        "http://[::ffff:127.0.0.1]/cb",
        "http://[::ffff:10.0.0.1]/cb",
        "http://[::ffff:8.8.8.8]/cb",
        "http://[::127.0.0.1]/cb",
        "http://0.0.0.0/cb",
        "http://0.1.2.3/cb",
        "http://[::]/cb",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/cb",
        "http://10.1.2.3/cb",
        "http://172.16.0.1/cb",
        "http://172.31.255.255/cb",
        "http://192.168.1.1/cb",
        "http://100.64.0.1/cb",
        "http://100.127.255.255/cb",
        "http://192.0.0.8/cb",
        "http://192.0.2.1/cb",
        "http://198.51.100.7/cb",
        "http://203.0.113.9/cb",
        "http://198.18.0.1/cb",
        "http://240.0.0.1/cb",
        "http://255.255.255.255/cb",
        "http://224.0.0.1/cb",
        "http://[fc00::1]/cb",
        "http://[fd12:3456::1]/cb",
        "http://[fec0::1]/cb",
        "http://[ff02::1]/cb",
        "http://[2001:db8::1]/cb",
        "http://[100::1]/cb",
        "http://[2001::1]/cb",
        "http://[64:ff9b::a00:1]/cb",
        "http://[2002:a00:1::1]/cb",
        // Other spellings of 127.0.0.1: decimal, hex, octal, short forms.
        "http://2130706433/cb",
        "http://0x7f000001/cb",
        "http://0177.0.0.1/cb",
        "http://127.1/cb",
        "http://localhost/cb",
        "http://LOCALHOST./cb",
        "http://api.localhost/cb",
    ];

    #[test]
    fn every_non_public_address_is_refused() {
        for raw in REFUSED {
            assert_eq!(
                check_url(raw, UrlPolicy::default()),
                Err(UrlRefusal::NotPublic),
                "{raw}"
            );
        }
    }

    #[test]
    fn public_hosts_pass() {
        for raw in [
            "https://partner.example.com/leadhub",
            "http://93.184.216.34:8080/cb",
            "https://[2606:2800:220:1::1]/cb",
            "https://[64:ff9b::5db8:d822]/cb",
            "https://8.8.8.8/cb",
            "https://100.128.0.1/cb",
            "https://172.32.0.1/cb",
        ] {
            assert!(check_url(raw, UrlPolicy::default()).is_ok(), "{raw}");
        }
    }

    #[test]
    fn only_http_without_credentials() {
        assert_eq!(
            check_url("ftp://partner.example.com/", UrlPolicy::default()),
            Err(UrlRefusal::NotHttp)
        );
        assert_eq!(
            check_url("/relative", UrlPolicy::default()),
            Err(UrlRefusal::NotHttp)
        );
        assert_eq!(
            check_url("https://user:pw@partner.example.com/", UrlPolicy::default()),
            Err(UrlRefusal::Credentials)
        );
    }

    #[test]
    fn allowing_loopback_allows_loopback_and_nothing_else() {
        let policy = UrlPolicy {
            allow_loopback: true,
        };
        for raw in [
            "http://127.0.0.1:8080/cb",
            "http://[::1]/cb",
            "http://[::ffff:127.0.0.1]/cb",
            "http://localhost:3000/cb",
        ] {
            assert!(check_url(raw, policy).is_ok(), "{raw}");
        }
        for raw in [
            "http://10.0.0.1/cb",
            "http://169.254.169.254/",
            "http://0.0.0.0/cb",
            "http://[fd00::1]/cb",
        ] {
            assert_eq!(check_url(raw, policy), Err(UrlRefusal::NotPublic), "{raw}");
        }
    }

    struct Table(BTreeMap<&'static str, Vec<IpAddr>>);

    #[async_trait::async_trait]
    impl Lookup for Table {
        async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
            self.0
                .get(host)
                .cloned()
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such name"))
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_private_address_is_refused_at_connect_time() {
        let table = Table(BTreeMap::from([
            ("inside.partner.example", vec![ip("10.0.0.5")]),
            ("metadata.partner.example", vec![ip("169.254.169.254")]),
            (
                "mixed.partner.example",
                vec![ip("93.184.216.34"), ip("127.0.0.1")],
            ),
            ("mapped.partner.example", vec![ip("::ffff:192.168.0.1")]),
            ("public.partner.example", vec![ip("93.184.216.34")]),
            ("loop.partner.example", vec![ip("127.0.0.1")]),
        ]));
        let resolver = GuardedResolver::new(Arc::new(table), UrlPolicy::default());
        for name in [
            "inside.partner.example",
            "metadata.partner.example",
            "mixed.partner.example",
            "mapped.partner.example",
            "loop.partner.example",
        ] {
            assert_eq!(
                resolver.resolve_host(name).await,
                Err(ResolveRefusal::NotPublic),
                "{name}"
            );
        }
        assert_eq!(
            resolver.resolve_host("public.partner.example").await,
            Ok(vec![ip("93.184.216.34")])
        );
        assert_eq!(
            resolver.resolve_host("nowhere.example").await,
            Err(ResolveRefusal::NotFound)
        );
    }
}
