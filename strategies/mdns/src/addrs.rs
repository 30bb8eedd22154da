//! Which of a resolved service's addresses we may report.
//!
//! mdns-sd can hand us addresses we never asked for: A/AAAA records learnt on an interface we
//! disabled, a peer's docker bridge or VPN address, loopback. Only addresses a peer could be
//! reached at over a permitted interface are kept.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use localpair_core::interfaces::Interface;

/// The socket addresses of a service at `port`, from its resolved `(ip, scope)` pairs (scope = the
/// interface index an IPv6 address was learnt on, 0 when unknown), keeping those inside a subnet of
/// one of `interfaces`. An IPv6 link-local address is kept only with the index of a permitted
/// interface as its scope, since it means nothing without one. Best first: IPv4, then routable
/// IPv6, then link-local; sorted within each group, without duplicates.
pub(crate) fn permitted(
    found: impl IntoIterator<Item = (IpAddr, u32)>,
    port: u16,
    interfaces: &[Interface],
    ipv6: bool,
) -> Vec<SocketAddr> {
    let mut out: Vec<(u8, SocketAddr)> = Vec::new();
    for (ip, scope) in found {
        if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
            continue;
        }
        let kept = match ip {
            IpAddr::V4(v4) => interfaces
                .iter()
                .any(|i| i.contains(ip))
                .then(|| (0, SocketAddr::from((v4, port)))),
            IpAddr::V6(_) if !ipv6 => None,
            IpAddr::V6(v6) if is_link_local(v6) => interfaces
                .iter()
                .any(|i| scope != 0 && i.index == Some(scope) && i.contains(ip))
                .then(|| (2, SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)))),
            IpAddr::V6(v6) => interfaces
                .iter()
                .any(|i| i.contains(ip))
                .then(|| (1, SocketAddr::V6(SocketAddrV6::new(v6, port, 0, 0)))),
        };
        if let Some(entry) = kept
            && !out.contains(&entry)
        {
            out.push(entry);
        }
    }
    out.sort();
    out.into_iter().map(|(_, addr)| addr).collect()
}

fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;
    use localpair_core::interfaces::InterfaceAddr;

    fn eth0() -> Interface {
        Interface::new(
            "eth0",
            Some(2),
            vec![
                InterfaceAddr::new("10.77.0.11".parse().unwrap(), 24),
                InterfaceAddr::new("fd77::11".parse().unwrap(), 64),
                InterfaceAddr::new("fe80::1".parse().unwrap(), 64),
            ],
        )
    }

    fn run(found: &[(&str, u32)], ipv6: bool) -> Vec<String> {
        permitted(
            found.iter().map(|(ip, s)| (ip.parse().unwrap(), *s)),
            4000,
            &[eth0()],
            ipv6,
        )
        .into_iter()
        .map(|a| a.to_string())
        .collect()
    }

    #[test]
    fn keeps_only_permitted_subnets_best_first() {
        let got = run(
            &[
                ("fe80::2", 2),
                ("172.17.0.1", 0),
                ("fd77::12", 0),
                ("10.77.0.12", 0),
                ("127.0.0.1", 0),
                ("::1", 0),
                ("0.0.0.0", 0),
                ("10.77.1.12", 0),
                ("2001:db8::1", 0),
                ("10.77.0.12", 0),
            ],
            true,
        );
        assert_eq!(
            got,
            ["10.77.0.12:4000", "[fd77::12]:4000", "[fe80::2%2]:4000"]
        );
    }

    #[test]
    fn link_local_needs_a_permitted_scope() {
        assert!(run(&[("fe80::2", 0)], true).is_empty());
        assert!(run(&[("fe80::2", 7)], true).is_empty());
        assert_eq!(run(&[("fe80::2", 2)], true), ["[fe80::2%2]:4000"]);
    }

    #[test]
    fn ipv6_off_drops_ipv6() {
        assert_eq!(
            run(&[("fd77::12", 0), ("fe80::2", 2), ("10.77.0.9", 0)], false),
            ["10.77.0.9:4000"]
        );
    }

    #[test]
    fn nothing_permitted_nothing_kept() {
        let got = permitted([("10.77.0.12".parse().unwrap(), 0)], 1, &[], true);
        assert!(got.is_empty());
    }
}
