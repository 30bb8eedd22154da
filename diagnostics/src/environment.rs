//! Check 10: what commonly breaks local pairing that can be read without privileges.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::json;

use super::interfaces::{Link, list_links};
use super::report::Status;
use super::routes::Routes;
use super::runner::{BoxFuture, Env, Finding, State};
use localpair_core::candidate::{InterfaceClass, is_link_local};
use localpair_core::interfaces::{DEFAULT_ROUTE_PROBES, is_private, same_subnet};

/// One thing found about the environment.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Condition {
    /// Stable id; hints key on it.
    pub(crate) id: &'static str,
    /// `fail`, `warn` or `info` (info does not change the status).
    pub(crate) severity: &'static str,
    pub(crate) text: String,
    /// The interfaces concerned.
    pub(crate) interfaces: Vec<String>,
    /// The addresses or subnets concerned.
    pub(crate) addresses: Vec<String>,
}

fn condition(id: &'static str, severity: &'static str, text: String) -> Condition {
    Condition {
        id,
        severity,
        text,
        interfaces: Vec::new(),
        addresses: Vec::new(),
    }
}

/// What the interface list and the routes say about the environment.
pub(crate) fn assess(links: &[Link], default_ifaces: &[String]) -> Vec<Condition> {
    let mut found = Vec::new();
    let candidates: Vec<&Link> = links
        .iter()
        .filter(|l| l.class != InterfaceClass::Loopback && l.has("up") && !l.addrs.is_empty())
        .collect();
    let permitted: Vec<&Link> = candidates.iter().copied().filter(|l| l.permitted).collect();
    if permitted.is_empty() {
        let mut c = condition(
            "no-permitted-interface",
            "fail",
            if candidates.is_empty() {
                "no interface is up with an address".to_owned()
            } else {
                "[interfaces] allow/deny excludes every interface that has an address".to_owned()
            },
        );
        c.interfaces = candidates.iter().map(|l| l.name.clone()).collect();
        found.push(c);
    }
    let running: Vec<&Link> = permitted
        .iter()
        .copied()
        .filter(|l| l.has("running"))
        .collect();
    let addrs = |pred: &dyn Fn(IpAddr) -> bool| -> Vec<(String, String)> {
        running
            .iter()
            .flat_map(|l| {
                l.addrs
                    .iter()
                    .filter(|a| pred(a.ip))
                    .map(|a| (l.name.clone(), format!("{}/{}", a.ip, a.prefix_len)))
            })
            .collect()
    };
    let private = addrs(&is_private);
    let routable_private = addrs(&|ip| is_private(ip) && !is_link_local(ip));
    if !running.is_empty() && private.is_empty() {
        let public = addrs(&|ip| !ip.is_loopback());
        let mut c = condition(
            "no-private-address",
            "fail",
            "no private (LAN) address on any usable interface: this device is not on a local network".to_owned(),
        );
        c.interfaces = public.iter().map(|(i, _)| i.clone()).collect();
        c.addresses = public.iter().map(|(_, a)| a.clone()).collect();
        found.push(c);
    } else if !private.is_empty() && routable_private.is_empty() {
        let mut c = condition(
            "link-local-only",
            "warn",
            "only link-local addresses (169.254.x.x / fe80::): no DHCP server answered".to_owned(),
        );
        c.interfaces = private.iter().map(|(i, _)| i.clone()).collect();
        c.addresses = private.iter().map(|(_, a)| a.clone()).collect();
        found.push(c);
    }
    // Private IPv4 subnets on links a peer could share; tunnels and bridges are ranked last anyway.
    let mut subnets: Vec<(String, IpAddr, u8)> = Vec::new();
    for l in &running {
        if matches!(l.class, InterfaceClass::VirtualBridge | InterfaceClass::Vpn) {
            continue;
        }
        for a in &l.addrs {
            if a.ip.is_ipv4()
                && is_private(a.ip)
                && !is_link_local(a.ip)
                && !subnets
                    .iter()
                    .any(|(_, ip, len)| same_subnet(*ip, a.ip, (*len).min(a.prefix_len)))
            {
                subnets.push((l.name.clone(), a.ip, a.prefix_len));
            }
        }
    }
    if subnets.len() > 1 {
        let list: Vec<String> = subnets
            .iter()
            .map(|(i, ip, len)| format!("{ip}/{len} on {i}"))
            .collect();
        let mut c = condition(
            "several-private-subnets",
            "warn",
            format!("several private subnets: {}", list.join(", ")),
        );
        c.interfaces = subnets.iter().map(|(i, _, _)| i.clone()).collect();
        c.addresses = subnets
            .iter()
            .map(|(_, ip, len)| format!("{ip}/{len}"))
            .collect();
        found.push(c);
    }
    let class_of = |name: &str| links.iter().find(|l| l.name == name).map(|l| l.class);
    if let Some(tunnel) = default_ifaces
        .iter()
        .find(|i| class_of(i) == Some(InterfaceClass::Vpn))
    {
        let mut c = condition(
            "vpn-default-route",
            "warn",
            format!("the default route goes through {tunnel}, a VPN tunnel"),
        );
        c.interfaces = vec![tunnel.clone()];
        found.push(c);
    }
    let excluded: Vec<String> = default_ifaces
        .iter()
        .filter(|i| links.iter().any(|l| &l.name == *i && !l.permitted))
        .cloned()
        .collect();
    if !excluded.is_empty() {
        let mut c = condition(
            "default-route-excluded",
            "warn",
            format!(
                "[interfaces] excludes {}, which holds the default route",
                excluded.join(", ")
            ),
        );
        c.interfaces = excluded;
        found.push(c);
    }
    let vpns: Vec<String> = running
        .iter()
        .filter(|l| l.class == InterfaceClass::Vpn && !default_ifaces.contains(&l.name))
        .map(|l| l.name.clone())
        .collect();
    if !vpns.is_empty() {
        let mut c = condition(
            "vpn-up",
            "info",
            format!(
                "VPN tunnel(s) up: {} (not holding the default route)",
                vpns.join(", ")
            ),
        );
        c.interfaces = vpns;
        found.push(c);
    }
    let bridges: Vec<&Link> = permitted
        .iter()
        .copied()
        .filter(|l| l.class == InterfaceClass::VirtualBridge)
        .collect();
    if !bridges.is_empty() {
        let list: Vec<String> = bridges.iter().map(|l| l.name.clone()).collect();
        let mut c = condition(
            "virtual-bridges",
            "info",
            format!(
                "virtual bridges {}: their addresses are ranked last, no peer can reach them",
                list.join(", ")
            ),
        );
        c.interfaces = list;
        found.push(c);
    }
    found
}

pub(crate) fn check_environment<'a>(env: &'a Env, state: &'a mut State) -> BoxFuture<'a, Finding> {
    Box::pin(async move {
        let links = match &state.links {
            Some(links) => links.clone(),
            None => list_links(&env.ctx).0,
        };
        let default_ifaces = match &state.routes {
            Some(routes) => routes.interfaces(),
            None => lookup_default_interfaces(&links),
        };
        let conditions = assess(&links, &default_ifaces);
        for c in &conditions {
            tracing::debug!(id = c.id, severity = c.severity, "{}", c.text);
        }
        let status = conditions
            .iter()
            .fold(Status::Pass, |s, c| match c.severity {
                "fail" => s.worst(Status::Fail),
                "warn" => s.worst(Status::Warn),
                _ => s,
            });
        let problems: Vec<&str> = conditions
            .iter()
            .filter(|c| c.severity != "info")
            .map(|c| c.text.as_str())
            .collect();
        let notes = conditions.len() - problems.len();
        let summary = if problems.is_empty() {
            match notes {
                0 => "nothing known to break local pairing".to_owned(),
                1 => "nothing known to break local pairing (1 note)".to_owned(),
                n => format!("nothing known to break local pairing ({n} notes)"),
            }
        } else {
            problems.join("; ")
        };
        Finding::new(
            status,
            summary,
            json!({ "conditions": conditions, "default_route_interfaces": default_ifaces }),
        )
    })
}

fn lookup_default_interfaces(links: &[Link]) -> Vec<String> {
    let mut routes = Routes::default();
    for probe in DEFAULT_ROUTE_PROBES {
        let Ok(target) = probe.parse() else {
            continue;
        };
        if let Ok(ip) = localpair_core::interfaces::preferred_source(target)
            && let Some(l) = links.iter().find(|l| l.addrs.iter().any(|a| a.ip == ip))
        {
            routes.outbound.insert(
                if ip.is_ipv4() { "ipv4" } else { "ipv6" },
                super::routes::Outbound {
                    ip,
                    interface: Some(l.name.clone()),
                    class: Some(l.class),
                },
            );
        }
    }
    routes.interfaces()
}

#[cfg(test)]
mod tests {
    use super::super::interfaces::LinkAddr;
    use super::*;

    fn link(name: &str, class: InterfaceClass, addrs: &[&str]) -> Link {
        Link {
            name: name.to_owned(),
            index: Some(2),
            class,
            flags: vec!["up", "running", "multicast"],
            mtu: Some(1500),
            operstate: Some("up".to_owned()),
            mac: None,
            addrs: addrs
                .iter()
                .map(|a| {
                    let (ip, len) = a.split_once('/').unwrap_or((a, "24"));
                    let ip: IpAddr = ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
                    LinkAddr {
                        ip,
                        prefix_len: len.parse().unwrap_or(24),
                        scope: super::super::interfaces::scope(ip),
                        dad: localpair_core::interfaces::Dad::Done,
                    }
                })
                .collect(),
            permitted: true,
        }
    }

    fn ids(conditions: &[Condition]) -> Vec<&str> {
        conditions.iter().map(|c| c.id).collect()
    }

    #[test]
    fn a_plain_lan_has_nothing_to_say() {
        let links = [
            link("lo", InterfaceClass::Loopback, &["127.0.0.1/8"]),
            link(
                "eth0",
                InterfaceClass::Physical,
                &["192.168.1.20/24", "fe80::1/64"],
            ),
        ];
        assert!(assess(&links, &["eth0".to_owned()]).is_empty());
    }

    #[test]
    fn vpn_route_several_subnets_and_bridges() {
        let links = [
            link("eth0", InterfaceClass::Physical, &["10.0.0.5/24"]),
            link("wlan0", InterfaceClass::Physical, &["192.168.1.7/24"]),
            link("tun0", InterfaceClass::Vpn, &["10.8.0.2/24"]),
            link("docker0", InterfaceClass::VirtualBridge, &["172.17.0.1/16"]),
        ];
        let found = assess(&links, &["tun0".to_owned()]);
        assert_eq!(
            ids(&found),
            [
                "several-private-subnets",
                "vpn-default-route",
                "virtual-bridges"
            ]
        );
        assert_eq!(found[0].interfaces, ["eth0", "wlan0"]);
    }

    #[test]
    fn link_local_only_and_no_private_address() {
        let links = [link(
            "wlan0",
            InterfaceClass::Physical,
            &["169.254.10.20/16", "fe80::2/64"],
        )];
        assert_eq!(ids(&assess(&links, &[])), ["link-local-only"]);
        let links = [link("eth0", InterfaceClass::Physical, &["203.0.113.9/24"])];
        assert_eq!(
            ids(&assess(&links, &["eth0".to_owned()])),
            ["no-private-address"]
        );
    }

    #[test]
    fn a_filter_that_excludes_everything_is_named() {
        let mut eth = link("eth0", InterfaceClass::Physical, &["192.168.1.20/24"]);
        eth.permitted = false;
        let found = assess(&[eth], &["eth0".to_owned()]);
        assert_eq!(
            ids(&found),
            ["no-permitted-interface", "default-route-excluded"]
        );
    }
}
