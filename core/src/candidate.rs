//! What a resolver answers: an address of this device and why we believe peers can use it.

use std::cmp::Ordering;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What kind of link an interface is: what the OS says where it says it, else its name (see
/// [`classify`](crate::classify)).
///
/// Used to rank candidates: a VPN tunnel or a Docker bridge usually holds an address that a phone
/// on the same Wi-Fi cannot reach, so it goes last and says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum InterfaceClass {
    /// Wired Ethernet hardware.
    Ethernet,
    /// Wi-Fi hardware.
    Wifi,
    /// Hardware whose kind is not known (a name like macOS `en0`, or a bridge over a NIC): the
    /// link a peer on the LAN is most likely on.
    Physical,
    /// One end of a virtual Ethernet pair whose other end is elsewhere (veth, macvlan): a
    /// container's or a network namespace's uplink, LAN-class from inside.
    VirtualEthernet,
    /// A name we do not recognise.
    Unknown,
    /// A tunnel (WireGuard, OpenVPN, Tailscale, ZeroTier, PPP).
    Vpn,
    /// A software bridge or virtual NIC (Docker, libvirt, VirtualBox, VMware, veth).
    VirtualBridge,
    /// The loopback interface.
    Loopback,
}

impl InterfaceClass {
    /// Lower is preferred.
    pub fn rank(self) -> u8 {
        match self {
            Self::Ethernet | Self::Wifi | Self::Physical => 0,
            Self::VirtualEthernet | Self::Unknown => 1,
            Self::Vpn => 2,
            Self::VirtualBridge => 3,
            Self::Loopback => 4,
        }
    }

    /// Whether a peer on the local network can plausibly reach an address on this class of
    /// interface: ethernet, Wi-Fi, or a name we do not recognise (Windows calls its NIC
    /// "Ethernet"). VPN tunnels, virtual bridges and loopback are not.
    pub fn is_lan(self) -> bool {
        matches!(
            self,
            Self::Ethernet | Self::Wifi | Self::Physical | Self::VirtualEthernet | Self::Unknown
        )
    }

    /// The class name as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ethernet => "ethernet",
            Self::Wifi => "wifi",
            Self::Physical => "physical",
            Self::VirtualEthernet => "virtual-ethernet",
            Self::Unknown => "unknown",
            Self::Vpn => "vpn",
            Self::VirtualBridge => "virtual-bridge",
            Self::Loopback => "loopback",
        }
    }
}

impl fmt::Display for InterfaceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far an address has been proven usable.
///
/// A connection to one's own address is routed through loopback on every OS, so it proves the
/// address is ours and the listener answers there, not that a peer can reach it. Only a peer that
/// saw us at the address (and whose report we then checked) earns [`Confirmation::Peer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Confirmation {
    /// Not tested.
    None,
    /// Our own listener received a random code sent to this address.
    Local,
    /// A peer reported seeing us at this address, and a self-connection confirmed it is ours.
    Peer,
}

/// An address of this device that a peer might reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Candidate {
    /// The address.
    pub ip: IpAddr,
    /// Interface name, when known.
    pub interface: Option<String>,
    /// Interface index (the IPv6 scope id of link-local addresses), when known.
    pub if_index: Option<u32>,
    /// Prefix length of the address on its interface, when known.
    pub prefix_len: Option<u8>,
    /// The interface's class.
    pub class: InterfaceClass,
    /// Whether the interface carries the default route for the address family.
    pub default_route: bool,
    /// How far the address has been proven.
    pub confirmed: Confirmation,
    /// The strategy that produced it (filled in by the chain runner).
    pub strategy: String,
    /// A sentence a person can read: why this address, and why in this place.
    pub reason: String,
}

impl Candidate {
    /// A candidate with nothing but an address; strategies fill in the rest.
    pub fn new(ip: IpAddr) -> Self {
        Self {
            ip,
            interface: None,
            if_index: None,
            prefix_len: None,
            class: InterfaceClass::Unknown,
            default_route: false,
            confirmed: Confirmation::None,
            strategy: String::new(),
            reason: String::new(),
        }
    }

    /// The same candidate on an interface of `class`.
    #[must_use]
    pub fn with_class(mut self, class: InterfaceClass) -> Self {
        self.class = class;
        self
    }

    /// The same candidate, on the interface that holds the default route or not.
    #[must_use]
    pub fn with_default_route(mut self, default_route: bool) -> Self {
        self.default_route = default_route;
        self
    }

    /// A candidate for `ip` on `interface`, with the interface's name, index, class and the
    /// address's prefix length filled in.
    pub fn on_interface(ip: IpAddr, interface: &crate::interfaces::Interface) -> Self {
        let mut candidate = Self::new(ip);
        candidate.interface = Some(interface.name.clone());
        candidate.if_index = interface.index;
        candidate.class = interface.class;
        candidate.prefix_len = interface
            .addrs
            .iter()
            .find(|a| a.ip == ip)
            .map(|a| a.prefix_len);
        candidate
    }

    /// The IPv6 scope to dial this address with (the interface index for link-local, else 0).
    pub fn scope(&self) -> u32 {
        if is_link_local(self.ip) && self.ip.is_ipv6() {
            self.if_index.unwrap_or(0)
        } else {
            0
        }
    }

    /// A sentence on where the address sits and what that means for peers; strategies put their
    /// own finding in front of it.
    pub fn placement(&self) -> String {
        let name = self.interface.as_deref().unwrap_or("an unknown interface");
        let place = match self.class {
            InterfaceClass::Ethernet => format!("on Ethernet interface {name}"),
            InterfaceClass::Wifi => format!("on Wi-Fi interface {name}"),
            InterfaceClass::Physical => format!("on physical interface {name}"),
            InterfaceClass::VirtualEthernet => {
                format!("on {name}, a virtual Ethernet link (a container's or namespace's uplink)")
            }
            InterfaceClass::Unknown => format!("on {name} (interface type not recognised)"),
            InterfaceClass::Vpn => format!(
                "on {name}, a VPN tunnel: devices on the LAN usually cannot reach it; ranked low"
            ),
            InterfaceClass::VirtualBridge => format!(
                "on {name}, a virtual bridge (Docker/VM): other devices cannot reach it; ranked last"
            ),
            InterfaceClass::Loopback => format!("on {name}, loopback: this device only"),
        };
        if self.default_route {
            format!("{place}, which holds the default route")
        } else {
            place
        }
    }

    /// Whether the address sits on a LAN-class interface (see [`InterfaceClass::is_lan`]).
    pub fn is_lan(&self) -> bool {
        self.class.is_lan()
    }

    /// Orders candidates best first: LAN-class interfaces before VPN tunnels and virtual bridges
    /// (a full-tunnel VPN holds the default route, yet LAN peers cannot reach its address), then
    /// addresses a peer has seen us at, then the default-route interface, then by interface class,
    /// better confirmation, IPv4 before IPv6 (phones join IPv4 LANs more reliably), link-local last.
    pub fn preference(&self, other: &Self) -> Ordering {
        let key = |c: &Self| {
            (
                !c.is_lan(),
                c.confirmed != Confirmation::Peer,
                !c.default_route,
                c.class.rank(),
                std::cmp::Reverse(c.confirmed),
                is_link_local(c.ip),
                c.ip.is_ipv6(),
            )
        };
        key(self).cmp(&key(other))
    }
}

/// Whether the address is IPv4 169.254/16 or IPv6 fe80::/10.
pub fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

/// Sorts best first and merges duplicates of one address, keeping the strongest confirmation and
/// the first strategy's reason.
pub fn rank_candidates(candidates: Vec<Candidate>) -> Vec<Candidate> {
    let mut merged: Vec<Candidate> = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        match merged.iter_mut().find(|c| c.ip == candidate.ip) {
            Some(existing) => {
                if candidate.confirmed > existing.confirmed {
                    existing.confirmed = candidate.confirmed;
                    existing.reason = format!("{} ({})", existing.reason, candidate.reason);
                }
                existing.default_route |= candidate.default_route;
                if existing.interface.is_none() {
                    existing.interface = candidate.interface;
                    existing.if_index = candidate.if_index;
                    existing.class = candidate.class;
                }
            }
            None => merged.push(candidate),
        }
    }
    merged.sort_by(Candidate::preference);
    merged
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

    #[test]
    fn default_route_physical_first_bridge_last() {
        let ranked = rank_candidates(vec![
            cand("172.17.0.1", InterfaceClass::VirtualBridge, false),
            cand("10.8.0.2", InterfaceClass::Vpn, false),
            cand("192.168.1.20", InterfaceClass::Physical, false),
            cand("192.168.2.20", InterfaceClass::Physical, true),
        ]);
        let order: Vec<String> = ranked.iter().map(|c| c.ip.to_string()).collect();
        assert_eq!(
            order,
            ["192.168.2.20", "192.168.1.20", "10.8.0.2", "172.17.0.1"]
        );
    }

    #[test]
    fn a_full_tunnel_vpn_ranks_below_the_lan() {
        let ranked = rank_candidates(vec![
            cand("100.64.0.2", InterfaceClass::Vpn, true),
            cand("172.17.0.1", InterfaceClass::VirtualBridge, false),
            cand("10.84.0.2", InterfaceClass::Physical, false),
        ]);
        let order: Vec<String> = ranked.iter().map(|c| c.ip.to_string()).collect();
        assert_eq!(order, ["10.84.0.2", "100.64.0.2", "172.17.0.1"]);
    }

    #[test]
    fn where_a_peer_saw_us_beats_the_default_route() {
        let mut seen = cand("10.85.0.2", InterfaceClass::Physical, false);
        seen.confirmed = Confirmation::Peer;
        let ranked = rank_candidates(vec![
            cand("10.84.0.2", InterfaceClass::Physical, true),
            seen,
        ]);
        assert_eq!(ranked[0].ip.to_string(), "10.85.0.2");
    }

    #[test]
    fn duplicates_merge_keeping_strongest_confirmation() {
        let mut a = cand("10.0.0.2", InterfaceClass::Physical, true);
        a.confirmed = Confirmation::Local;
        a.strategy = "outbound-route".into();
        let mut b = a.clone();
        b.confirmed = Confirmation::Peer;
        b.strategy = "peer-observed".into();
        let ranked = rank_candidates(vec![a, b]);
        assert_eq!(ranked.len(), 1);
        assert_eq!(ranked[0].confirmed, Confirmation::Peer);
        assert_eq!(ranked[0].strategy, "outbound-route");
    }
}
