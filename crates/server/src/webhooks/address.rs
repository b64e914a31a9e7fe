//! Which addresses a webhook may be sent to.
//!
//! The idea: a webhook makes this server send requests wherever its URL
//! points, so a URL naming the loopback interface, a private network or a
//! cloud's metadata service (169.254.169.254) would let whoever holds an
//! admin token probe the networks the server sits in (server-side request
//! forgery). By default only public addresses are allowed:
//!
//! - a URL whose host is an IP address is refused when it is created and
//!   when it is sent ([`private_literal`]);
//! - a host name is resolved at every attempt by [`PublicOnly`], which
//!   drops every non-public address, so a name that resolves (or is made
//!   to resolve, later) to a private address is never connected to.
//!
//! A receiver on the same machine or network (tests, an internal alert
//! router) needs `--allow-private-webhooks`.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `ip` is a public unicast address: not loopback, private,
/// link-local, shared (carrier-grade NAT), unspecified, multicast,
/// broadcast, documentation or benchmarking space, nor an IPv6 form of
/// one of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (RFC 6598) and benchmarking (RFC 2544).
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (18..20).contains(&b))
        // Reserved for future use (240/4).
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // Documentation (2001:db8::/32).
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // NAT64 and the deprecated IPv4-compatible forms can reach IPv4
        // addresses of any kind.
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)
        || ip.segments()[..6].iter().all(|&s| s == 0))
}

/// Why a URL's host may not be sent to, when it is an IP address that is
/// not public (or `localhost`); `None` for any other host.
pub fn private_literal(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    // An IPv6 host is written in brackets.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return (!is_public(ip)).then(|| format!("{ip} is not a public address"));
    }
    let lower = host.to_ascii_lowercase();
    (lower == "localhost" || lower.ends_with(".localhost")).then(|| format!("{host} is the loopback interface"))
}

/// A resolver that keeps only public addresses (see the module doc).
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.iter().copied().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let why = if all.is_empty() {
                    format!("{host} has no address")
                } else {
                    format!("{host} resolves only to addresses that are not public (see --allow-private-webhooks)")
                };
                return Err(why.into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_private_addresses() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "::ffff:93.184.216.34",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_hosts() {
        let why = |u: &str| private_literal(&reqwest::Url::parse(u).unwrap());
        assert!(why("http://127.0.0.1:9000/hook").is_some());
        assert!(why("http://[::1]/hook").is_some());
        assert!(why("http://169.254.169.254/latest/meta-data").is_some());
        assert!(why("http://LOCALHOST:8080/").is_some());
        assert!(why("http://api.localhost/").is_some());
        assert!(why("https://93.184.216.34/hook").is_none());
        assert!(why("https://hooks.example.org/x").is_none());
    }

    #[tokio::test]
    async fn the_resolver_drops_private_addresses() {
        let name: Name = "localhost".parse().unwrap();
        let err = PublicOnly.resolve(name).await.err().expect("localhost is refused");
        assert!(err.to_string().contains("not public"), "{err}");
    }
}
