//! Check 2: the routes. Default routes from `/proc/net/route` and `/proc/net/ipv6_route` on
//! Linux (readable without privileges); elsewhere that part is missing and the details say so.
//! The outbound address per family comes from a route lookup (nothing is sent).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;
use serde_json::{Value, json};

use super::interfaces::list_links;
use super::report::Status;
use super::runner::{BoxFuture, Env, Finding, State};
use localpair_core::candidate::InterfaceClass;
use localpair_core::interfaces::{self, DEFAULT_ROUTE_PROBES};

/// A default route from the routing table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DefaultRoute {
    pub(crate) family: &'static str,
    pub(crate) gateway: Option<IpAddr>,
    pub(crate) interface: String,
    pub(crate) class: InterfaceClass,
    pub(crate) metric: u32,
}

/// The source address the OS picks towards the internet, per family.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Outbound {
    pub(crate) ip: IpAddr,
    pub(crate) interface: Option<String>,
    pub(crate) class: Option<InterfaceClass>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Routes {
    pub(crate) defaults: Vec<DefaultRoute>,
    pub(crate) outbound: BTreeMap<&'static str, Outbound>,
}

impl Routes {
    /// Names of the interfaces holding a default route, IPv4 first.
    pub(crate) fn interfaces(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let from_table = self.defaults.iter().map(|d| d.interface.clone());
        let from_lookup = self.outbound.values().filter_map(|o| o.interface.clone());
        for name in from_table.chain(from_lookup) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

/// Parses `/proc/net/route`: default routes (destination and mask 0).
pub(crate) fn parse_route_v4(text: &str) -> Vec<(String, Ipv4Addr, u32)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 || f[1] != "00000000" || f[7] != "00000000" {
                return None;
            }
            // The kernel prints the address as a native-endian u32.
            let gateway = u32::from_str_radix(f[2], 16).ok()?;
            let metric = f[6].parse().ok()?;
            Some((
                f[0].to_owned(),
                Ipv4Addr::from(gateway.to_ne_bytes()),
                metric,
            ))
        })
        .collect()
}

/// Parses `/proc/net/ipv6_route`: default routes (`::/0`), minus the kernel's reject route on lo.
pub(crate) fn parse_route_v6(text: &str) -> Vec<(String, Ipv6Addr, u32)> {
    const RTF_REJECT: u32 = 0x0200;
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[0] != "0".repeat(32) || f[1] != "00" {
                return None;
            }
            let flags = u32::from_str_radix(f[8], 16).ok()?;
            if flags & RTF_REJECT != 0 || f[9] == "lo" {
                return None;
            }
            let gateway = Ipv6Addr::from(u128::from_str_radix(f[4], 16).ok()?);
            let metric = u32::from_str_radix(f[5], 16).ok()?;
            Some((f[9].to_owned(), gateway, metric))
        })
        .collect()
}

pub(crate) fn check_routes<'a>(env: &'a Env, state: &'a mut State) -> BoxFuture<'a, Finding> {
    Box::pin(async move {
        let links = match &state.links {
            Some(links) => links.clone(),
            None => list_links(&env.ctx).0,
        };
        let class_of = |name: &str| {
            links
                .iter()
                .find(|l| l.name == name)
                .map_or_else(|| interfaces::classify(name, false), |l| l.class)
        };
        let mut routes = Routes::default();
        let mut errors = Vec::new();
        let table_v4 = std::fs::read_to_string("/proc/net/route");
        let table_v6 = std::fs::read_to_string("/proc/net/ipv6_route");
        let table_read = table_v4.is_ok();
        if let Ok(text) = &table_v4 {
            for (interface, gateway, metric) in parse_route_v4(text) {
                routes.defaults.push(DefaultRoute {
                    family: "ipv4",
                    gateway: (!gateway.is_unspecified()).then_some(IpAddr::V4(gateway)),
                    class: class_of(&interface),
                    interface,
                    metric,
                });
            }
        }
        if let Ok(text) = &table_v6 {
            for (interface, gateway, metric) in parse_route_v6(text) {
                routes.defaults.push(DefaultRoute {
                    family: "ipv6",
                    gateway: (!gateway.is_unspecified()).then_some(IpAddr::V6(gateway)),
                    class: class_of(&interface),
                    interface,
                    metric,
                });
            }
        }
        let mut lookup_errors = serde_json::Map::new();
        let mut lookup_failures = Vec::new();
        let mut no_v6 = false;
        for (family, probe) in ["ipv4", "ipv6"].into_iter().zip(DEFAULT_ROUTE_PROBES) {
            let Ok(target) = probe.parse::<SocketAddr>() else {
                continue;
            };
            match interfaces::preferred_source(target) {
                Ok(ip) => {
                    let owner = links.iter().find(|l| l.addrs.iter().any(|a| a.ip == ip));
                    routes.outbound.insert(
                        family,
                        Outbound {
                            ip,
                            interface: owner.map(|l| l.name.clone()),
                            class: owner.map(|l| l.class),
                        },
                    );
                }
                Err(error) => {
                    lookup_errors.insert(family.to_owned(), Value::String(error.to_string()));
                    lookup_failures.push(format!("route lookup for {target} ({family}): {error}"));
                }
            }
        }
        let no_default = routes.defaults.is_empty() && routes.outbound.is_empty();
        // One family without a route is normal (most LANs have no IPv6 default route): only
        // when both lack one are the lookups' errors part of the problem.
        if no_default {
            errors.extend(lookup_failures);
        } else if !routes.outbound.contains_key("ipv6")
            && !routes.defaults.iter().any(|d| d.family == "ipv6")
        {
            no_v6 = true;
        }
        let v4 = routes.defaults.iter().find(|d| d.family == "ipv4");
        let main_class = v4
            .map(|d| d.class)
            .or_else(|| routes.outbound.get("ipv4").and_then(|o| o.class));
        let (status, summary) = if no_default {
            (
                Status::Warn,
                "no default route: outbound-route cannot pick an address (fine on an isolated LAN; interface-sweep still finds LAN addresses)".to_owned(),
            )
        } else {
            let mut parts = Vec::new();
            for d in &routes.defaults {
                let via = d.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
                parts.push(format!(
                    "{} default route{via} on {} ({})",
                    family_label(d.family),
                    d.interface,
                    d.class
                ));
            }
            for (family, o) in &routes.outbound {
                parts.push(format!(
                    "{} outbound address {}{}",
                    family_label(family),
                    o.ip,
                    o.interface
                        .as_ref()
                        .map(|i| format!(" on {i}"))
                        .unwrap_or_default()
                ));
            }
            if no_v6 {
                parts.push("no IPv6 default route".to_owned());
            }
            match main_class {
                Some(InterfaceClass::Vpn) => (
                    Status::Warn,
                    format!(
                        "the default route goes through a VPN tunnel: {}",
                        parts.join("; ")
                    ),
                ),
                Some(InterfaceClass::VirtualBridge) => (
                    Status::Warn,
                    format!(
                        "the default route goes through a virtual bridge: {}",
                        parts.join("; ")
                    ),
                ),
                _ => (Status::Pass, parts.join("; ")),
            }
        };
        let details = json!({
            "source": if table_read {
                "/proc/net/route and /proc/net/ipv6_route; outbound addresses by route lookup of 192.0.2.1 and 2001:db8::1 (a connected UDP socket: nothing is sent)"
            } else {
                "route lookup of 192.0.2.1 and 2001:db8::1 only (a connected UDP socket: nothing is sent); the routing table is not readable on this OS"
            },
            "default_routes": routes.defaults,
            "outbound": routes.outbound,
            "lookup_errors": lookup_errors,
            "no_default_route": no_default,
        });
        state.routes = Some(routes);
        Finding::new(status, summary, details).with_errors(errors)
    })
}

fn family_label(family: &str) -> &'static str {
    if family == "ipv6" { "IPv6" } else { "IPv4" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_routes_from_proc() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth0\t00000000\tFE004D0A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                  eth0\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let parsed = parse_route_v4(v4);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].0, "eth0");
        if cfg!(target_endian = "little") {
            assert_eq!(parsed[0].1, Ipv4Addr::new(10, 77, 0, 254));
        }
        assert_eq!(parsed[0].2, 100);

        let v6 = format!(
            "{z} 00 {z} 00 {z} ffffffff 00000001 00000000 00200200 lo\n\
             {z} 00 {z} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 wlan0\n\
             fe800000000000000000000000000000 40 {z} 00 {z} 00000100 00000001 00000000 00000001 wlan0\n",
            z = "0".repeat(32)
        );
        let parsed = parse_route_v6(&v6);
        assert_eq!(parsed.len(), 1, "{parsed:?}");
        assert_eq!(parsed[0].0, "wlan0");
        assert_eq!(parsed[0].1, "fe80::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(parsed[0].2, 1024);
    }
}
