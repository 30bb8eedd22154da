//! Where a host listens and which addresses its code names.

use std::net::{IpAddr, Ipv4Addr};

use crate::code::Flow;
use localpair_core::candidate::{Candidate, Confirmation, InterfaceClass, is_link_local};
use localpair_core::interfaces::Interface;

/// The addresses a host listens on and the ones its code lists, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenPlan {
    /// For [`HostOptions::listen_on`](super::HostOptions::listen_on).
    pub listen_on: Vec<IpAddr>,
    /// For [`HostOptions::candidates`](super::HostOptions::candidates).
    pub code: Vec<IpAddr>,
    /// Set when the plan is weak and the person hosting should know why (only VPN or
    /// virtual-bridge addresses).
    pub warning: Option<String>,
}

/// Plans a host's listeners from the resolved candidates (best first, as the resolver chain
/// ranks them); `None` when no candidate is usable at all.
///
/// The pre-shared flow listens on every address and names the best `max_in_code` in the code.
/// The post-shared flow listens only where peers can reach it: every address a peer saw it at,
/// plus every LAN-class address; a VPN tunnel or virtual-bridge address is used only when there
/// is nothing else, with a warning. Loopback is never used, and IPv6 link-local addresses only
/// when there is no IPv4 address (the joiner must guess their scope). Loopback is used only when
/// the resolvers found nothing else (they report it only when `[interfaces]` asks for it: tests,
/// one machine), with a warning.
pub fn listen_addresses(
    flow: Flow,
    candidates: &[Candidate],
    max_in_code: usize,
) -> Option<ListenPlan> {
    let has_ipv4 = candidates
        .iter()
        .any(|c| c.ip.is_ipv4() && c.class != InterfaceClass::Loopback);
    let usable: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.class != InterfaceClass::Loopback && !c.ip.is_loopback())
        .filter(|c| !(has_ipv4 && c.ip.is_ipv6() && is_link_local(c.ip)))
        .collect();
    if usable.is_empty() {
        let local: Vec<IpAddr> = candidates.iter().map(|c| c.ip).collect();
        if local.is_empty() {
            return None;
        }
        return Some(ListenPlan {
            listen_on: local.clone(),
            code: local.into_iter().take(max_in_code.max(1)).collect(),
            warning: Some(
                "only loopback addresses: other devices cannot reach this one".to_owned(),
            ),
        });
    }
    let reachable: Vec<IpAddr> = usable
        .iter()
        .filter(|c| c.is_lan() || c.confirmed == Confirmation::Peer)
        .map(|c| c.ip)
        .collect();
    let (listen_on, code, warning) = match flow {
        Flow::Pre => (
            vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
            usable.iter().map(|c| c.ip).collect(),
            reachable.is_empty().then(|| weak_warning(&usable)),
        ),
        _ if !reachable.is_empty() => (reachable.clone(), reachable, None),
        _ => {
            let all: Vec<IpAddr> = usable.iter().map(|c| c.ip).collect();
            (all.clone(), all, Some(weak_warning(&usable)))
        }
    };
    Some(ListenPlan {
        listen_on,
        code: code.into_iter().take(max_in_code.max(1)).collect(),
        warning,
    })
}

/// A warning when every address in a code sits on an interface that is down (no carrier: a
/// cable out, Wi-Fi off): the code is valid, but nobody can use it until a link comes up.
pub(crate) fn down_warning(code: &[IpAddr], interfaces: &[Interface]) -> Option<String> {
    let mut down: Vec<&str> = Vec::new();
    for ip in code {
        let holder = interfaces
            .iter()
            .find(|i| i.addrs.iter().any(|a| a.ip == *ip))?;
        if holder.up {
            return None;
        }
        if !down.contains(&holder.name.as_str()) {
            down.push(&holder.name);
        }
    }
    (!down.is_empty()).then(|| {
        format!(
            "every address in the code is on an interface that is down ({}: no carrier); other \
             devices cannot reach this one until it is up",
            down.join(", ")
        )
    })
}

fn weak_warning(usable: &[&Candidate]) -> String {
    let places: Vec<String> = usable
        .iter()
        .map(|c| {
            format!(
                "{} ({}, {})",
                c.ip,
                c.interface.as_deref().unwrap_or("unknown interface"),
                c.class
            )
        })
        .collect();
    format!(
        "this device has no LAN address, only {}: devices on the local network are unlikely to \
         reach it (a VPN or a virtual network?)",
        places.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(ip: &str, class: InterfaceClass, default_route: bool) -> Candidate {
        let ip = ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Candidate::new(ip)
            .with_class(class)
            .with_default_route(default_route)
    }

    fn ips(list: &[IpAddr]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn post_flow_never_listens_on_a_vpn_alone_when_the_lan_exists() {
        let ranked = localpair_core::candidate::rank_candidates(vec![
            cand("100.64.0.2", InterfaceClass::Vpn, true),
            cand("10.84.0.2", InterfaceClass::Physical, false),
        ]);
        let plan = listen_addresses(Flow::Post, &ranked, 4).unwrap_or_else(|| unreachable!());
        assert_eq!(ips(&plan.listen_on), ["10.84.0.2"]);
        assert_eq!(ips(&plan.code), ["10.84.0.2"]);
        assert_eq!(plan.warning, None);
    }

    #[test]
    fn post_flow_listens_on_both_lans_and_where_a_peer_saw_us() {
        let mut seen_on_vpn = cand("100.64.0.2", InterfaceClass::Vpn, false);
        seen_on_vpn.confirmed = Confirmation::Peer;
        let ranked = localpair_core::candidate::rank_candidates(vec![
            cand("10.84.0.2", InterfaceClass::Physical, true),
            cand("10.85.0.2", InterfaceClass::Physical, false),
            cand("172.17.0.1", InterfaceClass::VirtualBridge, false),
            seen_on_vpn,
        ]);
        let plan = listen_addresses(Flow::Post, &ranked, 4).unwrap_or_else(|| unreachable!());
        assert_eq!(
            ips(&plan.listen_on),
            ["10.84.0.2", "10.85.0.2", "100.64.0.2"]
        );
    }

    #[test]
    fn a_bridge_alone_is_used_with_a_warning() {
        let ranked = vec![cand("172.17.0.1", InterfaceClass::VirtualBridge, false)];
        let plan = listen_addresses(Flow::Post, &ranked, 4).unwrap_or_else(|| unreachable!());
        assert_eq!(ips(&plan.listen_on), ["172.17.0.1"]);
        assert!(
            plan.warning
                .is_some_and(|w| w.contains("docker") || w.contains("virtual"))
        );
    }

    #[test]
    fn pre_flow_listens_everywhere_and_lists_the_lan_first() {
        let ranked = localpair_core::candidate::rank_candidates(vec![
            cand("100.64.0.2", InterfaceClass::Vpn, true),
            cand("10.84.0.2", InterfaceClass::Physical, false),
            cand("fe80::1", InterfaceClass::Physical, false),
            cand("127.0.0.1", InterfaceClass::Loopback, false),
        ]);
        let plan = listen_addresses(Flow::Pre, &ranked, 4).unwrap_or_else(|| unreachable!());
        assert_eq!(ips(&plan.listen_on), ["0.0.0.0"]);
        assert_eq!(ips(&plan.code), ["10.84.0.2", "100.64.0.2"]);
    }

    #[test]
    fn loopback_only_when_nothing_else_and_nothing_is_none() {
        let ranked = vec![cand("127.0.0.1", InterfaceClass::Loopback, false)];
        let plan = listen_addresses(Flow::Post, &ranked, 4).unwrap_or_else(|| unreachable!());
        assert_eq!(ips(&plan.listen_on), ["127.0.0.1"]);
        assert!(plan.warning.is_some());
        assert_eq!(listen_addresses(Flow::Post, &[], 4), None);
    }

    #[test]
    fn a_code_whose_every_address_is_on_a_down_interface_is_warned_about() {
        use localpair_core::interfaces::InterfaceAddr;
        let iface = |name: &str, ip: &str, up: bool| {
            let ip = ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
            let mut i = Interface::new(name, None, vec![InterfaceAddr::new(ip, 24)]);
            i.up = up;
            i
        };
        let all = [
            iface("eth0", "10.0.0.2", false),
            iface("wlan0", "10.1.0.2", true),
        ];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let warning = down_warning(&[ip("10.0.0.2")], &all).unwrap_or_default();
        assert!(
            warning.contains("interface that is down (eth0: no carrier)"),
            "{warning}"
        );
        assert_eq!(down_warning(&[ip("10.0.0.2"), ip("10.1.0.2")], &all), None);
        assert_eq!(
            down_warning(&[ip("10.9.9.9")], &all),
            None,
            "unknown: no claim"
        );
        assert_eq!(down_warning(&[], &all), None);
    }
}
