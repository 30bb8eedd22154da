//! `HostSpec`: how a lab host is wired, and the validation of names and addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::LabError;

/// Linux limit for interface names (IFNAMSIZ - 1).
pub(crate) const IFNAME_MAX: usize = 15;

/// The gateway address hosts route to by default. Nothing answers there: the lab has no uplink, so packets to
/// non-LAN addresses are lost inside the lab (ARP for the gateway goes unanswered) and never reach a real network.
pub const DEFAULT_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 254);

/// How to wire a lab host; a builder passed to [`Lab::add_host`](crate::Lab::add_host).
///
/// Defaults: LAN interface `eth0` with `10.77.0.<10 + index>/24` (index is 1-based: the first host is
/// `10.77.0.11`), loopback up, a default route via [`DEFAULT_GATEWAY`] (`onlink`), no ULA, not isolated, no extra
/// interfaces. Every host has IPv6 duplicate address detection off (addresses are usable at once instead of
/// "tentative" for a second) and `rp_filter` 0 (so behaviour does not depend on the root namespace's settings).
///
/// **Multicast and routes**: Linux picks the interface for an IPv4 multicast send (and for an `IP_ADD_MEMBERSHIP`
/// with interface `0.0.0.0`) by a route lookup of the group. With no default route and no multicast route that
/// fails with `ENETUNREACH`/`ENODEV`, although the LAN is right there. So a host *without* a default route gets
/// `224.0.0.0/4 dev <iface>` unless [`multicast_route`](Self::multicast_route) says otherwise; a host *with* one
/// needs none (the default route already names the interface). IPv6 needs nothing: the kernel puts `ff00::/8` on
/// every interface.
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub(crate) name: Option<String>,
    pub(crate) addr: Option<String>,
    pub(crate) iface: String,
    pub(crate) default_route: bool,
    pub(crate) gateway: Ipv4Addr,
    pub(crate) multicast_route: Option<bool>,
    pub(crate) ipv6_ula: bool,
    pub(crate) isolated: bool,
    pub(crate) extras: Vec<Extra>,
    pub(crate) segment: String,
    pub(crate) default_dev: Option<String>,
}

/// The bridge in the switch namespace that hosts plug into unless told otherwise.
pub const DEFAULT_SEGMENT: &str = "br0";

/// An extra interface inside a host.
#[derive(Debug, Clone)]
pub(crate) struct Extra {
    pub(crate) kind: ExtraKind,
    pub(crate) name: String,
    pub(crate) cidr: Option<String>,
    /// For [`ExtraKind::Lan`]: the switch segment (bridge) its other end is plugged into.
    pub(crate) segment: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtraKind {
    /// A bridge without ports, like `docker0` or `virbr0` on a real machine; `carrier: false` once had a port.
    Bridge { carrier: bool },
    /// One end of a veth pair whose other end stays down: an interface that is UP but has NO-CARRIER.
    Unplugged,
    /// A layer-3 tunnel device (`ip tuntap ... mode tun`) held open by a process, as a VPN client holds its
    /// tunnel: UP, carrier on, point-to-point; what is routed into it is never read, so it goes nowhere.
    Tun,
    /// A second network card: a veth pair whose other end is a port of another switch segment.
    Lan,
}

impl Default for HostSpec {
    fn default() -> Self {
        Self {
            name: None,
            addr: None,
            iface: "eth0".to_owned(),
            default_route: true,
            gateway: DEFAULT_GATEWAY,
            multicast_route: None,
            ipv6_ula: false,
            isolated: false,
            extras: Vec::new(),
            segment: DEFAULT_SEGMENT.to_owned(),
            default_dev: None,
        }
    }
}

impl HostSpec {
    /// The default spec (see the type docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// A label for messages (default `h<index>`); the namespace name does not depend on it.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// The LAN address as CIDR, e.g. `"10.77.0.50/24"` (validated by `add_host`).
    pub fn addr(mut self, cidr: &str) -> Self {
        self.addr = Some(cidr.to_owned());
        self
    }

    /// The LAN interface name inside the host (default `eth0`, at most 15 bytes).
    pub fn iface(mut self, name: &str) -> Self {
        self.iface = name.to_owned();
        self
    }

    /// Whether the host gets a default route (default: yes).
    pub fn default_route(mut self, on: bool) -> Self {
        self.default_route = on;
        self
    }

    /// The default route's gateway (default [`DEFAULT_GATEWAY`]); it is added `onlink`, so it need not be in the
    /// host's subnet and need not exist.
    pub fn gateway(mut self, gateway: Ipv4Addr) -> Self {
        self.gateway = gateway;
        self
    }

    /// Forces the `224.0.0.0/4 dev <iface>` route on or off; by default it is added exactly when there is no
    /// default route (see the type docs for why).
    pub fn multicast_route(mut self, on: bool) -> Self {
        self.multicast_route = Some(on);
        self
    }

    /// Adds the ULA `fd77::<n>/64` on the LAN interface, `n` being the host number written in hex digits
    /// (`10.77.0.11` gets `fd77::11`). IPv6 link-local addresses exist on every host anyway.
    pub fn ipv6_ula(mut self, on: bool) -> Self {
        self.ipv6_ula = on;
        self
    }

    /// Starts the host's switch port as isolated (Wi-Fi AP/client isolation): isolated ports cannot talk to each
    /// other, only to non-isolated ones. Changeable later with [`Host::set_isolated`](crate::Host::set_isolated).
    pub fn isolated(mut self, on: bool) -> Self {
        self.isolated = on;
        self
    }

    /// Adds a bridge device inside the host with `cidr` on it, brought up, e.g. `("docker0", "172.17.0.1/16")`.
    ///
    /// It has no ports. A bridge that *never had* a port keeps its carrier: `UP,LOWER_UP`, state `UNKNOWN`. For the
    /// state real machines usually show (`docker0` after its containers stopped: `NO-CARRIER`, state `DOWN`, its
    /// route `linkdown`) use [`extra_bridge_no_carrier`](Self::extra_bridge_no_carrier). Either way the address
    /// is local, so binding to it and connecting to it from the same host work (local traffic goes over `lo`),
    /// but no peer can reach it.
    pub fn extra_bridge(mut self, name: &str, cidr: &str) -> Self {
        self.extras.push(Extra {
            kind: ExtraKind::Bridge { carrier: true },
            name: name.to_owned(),
            cidr: Some(cidr.to_owned()),
            segment: None,
        });
        self
    }

    /// Like [`extra_bridge`](Self::extra_bridge), but the bridge is left the way it is after its last port went
    /// away: `NO-CARRIER`, state `DOWN`, route `linkdown` (the usual look of `docker0` or `virbr0`). Built by
    /// enslaving a temporary veth and deleting it; the bridge gets a fixed locally administered MAC, because one
    /// that lost all its ports would otherwise show `00:00:00:00:00:00`.
    pub fn extra_bridge_no_carrier(mut self, name: &str, cidr: &str) -> Self {
        self.extras.push(Extra {
            kind: ExtraKind::Bridge { carrier: false },
            name: name.to_owned(),
            cidr: Some(cidr.to_owned()),
            segment: None,
        });
        self
    }

    /// Adds an interface that is administratively UP but has no carrier (`NO-CARRIER`, state `DOWN`, routes
    /// `linkdown`), like a laptop's unplugged ethernet port, with `cidr` on it. Built from a veth pair whose peer
    /// stays down; the peer is named by the kernel.
    pub fn extra_unplugged(mut self, name: &str, cidr: &str) -> Self {
        self.extras.push(Extra {
            kind: ExtraKind::Unplugged,
            name: name.to_owned(),
            cidr: Some(cidr.to_owned()),
            segment: None,
        });
        self
    }

    /// Adds a tunnel device `name` (`ip tuntap add mode tun`) with `cidr` on it, held open by a process inside
    /// the host so it has a carrier, like the `tun0` of OpenVPN or `wg0` of a running WireGuard. Nothing reads
    /// it: packets routed into it are lost inside the host. Combine with [`default_dev`](Self::default_dev) for a
    /// full-tunnel VPN.
    pub fn extra_tun(mut self, name: &str, cidr: &str) -> Self {
        self.extras.push(Extra {
            kind: ExtraKind::Tun,
            name: name.to_owned(),
            cidr: Some(cidr.to_owned()),
            segment: None,
        });
        self
    }

    /// Puts the default route on interface `name` (`default dev <name>`, no gateway) instead of via the LAN
    /// gateway: what a full-tunnel VPN does with its tunnel.
    pub fn default_dev(mut self, name: &str) -> Self {
        self.default_dev = Some(name.to_owned());
        self.default_route = true;
        self
    }

    /// The switch segment the LAN interface is plugged into (default [`DEFAULT_SEGMENT`]). Each segment is a
    /// bridge of its own in the switch namespace, created on first use: hosts on different segments share no
    /// link, like two separate Wi-Fi networks.
    pub fn segment(mut self, name: &str) -> Self {
        self.segment = name.to_owned();
        self
    }

    /// Adds a second network card `iface` with `cidr`, plugged into switch segment `segment` (see
    /// [`segment`](Self::segment)); no route besides its subnet's.
    pub fn extra_lan(mut self, iface: &str, cidr: &str, segment: &str) -> Self {
        self.extras.push(Extra {
            kind: ExtraKind::Lan,
            name: iface.to_owned(),
            cidr: Some(cidr.to_owned()),
            segment: Some(segment.to_owned()),
        });
        self
    }

    /// Every switch segment this host plugs into.
    pub(crate) fn segments(&self) -> Vec<String> {
        let mut all = vec![self.segment.clone()];
        for segment in self.extras.iter().filter_map(|e| e.segment.clone()) {
            if !all.contains(&segment) {
                all.push(segment);
            }
        }
        all
    }
}

/// Checks an interface name the way the kernel will, so the error names the culprit instead of `ip` failing.
pub(crate) fn check_ifname(name: &str) -> Result<(), LabError> {
    let bad = name.is_empty()
        || name.len() > IFNAME_MAX
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(LabError::InvalidSpec(format!(
            "interface name {name:?} must be 1..={IFNAME_MAX} bytes without '/', ':' or spaces"
        )));
    }
    Ok(())
}

/// Parses `addr/len` (IPv4 or IPv6).
pub(crate) fn parse_cidr(cidr: &str) -> Result<(IpAddr, u8), LabError> {
    let invalid = || LabError::InvalidSpec(format!("{cidr:?} is not an address/prefix-length"));
    let (addr, len) = cidr.split_once('/').ok_or_else(invalid)?;
    let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
    let len: u8 = len.parse().map_err(|_| invalid())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(invalid());
    }
    Ok((addr, len))
}

/// Parses an IPv4 `addr/len`.
pub(crate) fn parse_cidr_v4(cidr: &str) -> Result<(Ipv4Addr, u8), LabError> {
    match parse_cidr(cidr)? {
        (IpAddr::V4(a), len) => Ok((a, len)),
        (IpAddr::V6(_), _) => Err(LabError::InvalidSpec(format!(
            "{cidr:?}: the LAN address must be IPv4 (use ipv6_ula for IPv6)"
        ))),
    }
}

/// The ULA for host number `n`: its decimal digits read as hex, so `.11` and `::11` match by eye.
pub(crate) fn ula_for(n: u8) -> Ipv6Addr {
    let group = u16::from_str_radix(&n.to_string(), 16).unwrap_or(u16::from(n));
    Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            parse_cidr_v4("10.77.0.11/24").expect("valid"),
            (Ipv4Addr::new(10, 77, 0, 11), 24)
        );
        assert!(parse_cidr_v4("10.77.0.11").is_err());
        assert!(parse_cidr_v4("10.77.0.11/33").is_err());
        assert!(parse_cidr_v4("fd77::1/64").is_err());
        assert!(parse_cidr("fd77::1/64").is_ok());
    }

    #[test]
    fn ifname_rules() {
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("exactly15chars_").is_ok());
        assert!(check_ifname("sixteen_chars___").is_err());
        assert!(check_ifname("a b").is_err());
        assert!(check_ifname("").is_err());
    }

    #[test]
    fn ula_mirrors_ipv4() {
        assert_eq!(ula_for(11).to_string(), "fd77::11");
        assert_eq!(ula_for(254).to_string(), "fd77::254");
    }
}
