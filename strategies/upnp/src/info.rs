//! What is known about one gateway ([`GatewayInfo`]) and what kind of address it reported
//! ([`AddressScope`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use igd_next::aio::Gateway;
use igd_next::aio::tokio::Tokio;

/// What is known about a UPnP IGD gateway on the local subnet, as [`Upnp::probe`] found it.
///
/// The external address is the gateway's own: it is reported here and in candidate reasons, never
/// used as a LAN candidate.
///
/// [`Upnp::probe`]: crate::Upnp::probe
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayInfo {
    /// The interface the gateway answered on.
    pub interface: String,
    /// Whether that interface holds the default route.
    pub default_route: bool,
    /// Our address facing the gateway (its subnet holds the gateway).
    pub local_addr: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// The gateway's LAN address.
    pub gateway_addr: Ipv4Addr,
    /// The root device description, e.g. `http://192.168.1.1:5000/rootDesc.xml`.
    pub description_url: String,
    /// The WAN connection service's control URL, e.g. `http://192.168.1.1:5000/ctl/IPConn`.
    pub control_url: String,
    /// The WAN connection service, e.g. `urn:schemas-upnp-org:service:WANIPConnection:2`.
    pub service_type: String,
    /// The root device's `friendlyName` (control characters removed, at most 64 characters).
    pub friendly_name: Option<String>,
    /// The `SERVER` header of the search answer, e.g. `Linux/5.4 UPnP/1.1 MiniUPnPd/2.3.1`.
    pub server: Option<String>,
    /// The external address as the gateway reported it; `None` when it reported none (see
    /// [`external_note`](Self::external_note)).
    pub external_ip: Option<IpAddr>,
    /// What kind of address `external_ip` is.
    pub external_scope: Option<AddressScope>,
    /// Whether `external_ip` is a public (globally routable) address.
    pub external_is_global: bool,
    /// The gateway's external address is itself private or shared (RFC 1918, CGNAT, ...): another
    /// NAT sits between it and the internet, so a port mapping here does not make this device
    /// reachable from the internet.
    pub double_nat: bool,
    /// Why there is no external address (`GetExternalIPAddress` failed, or answered 0.0.0.0).
    pub external_note: Option<String>,
    /// `M-SEARCH` rounds it took to get an answer.
    pub searches: u32,
    /// Time from the first `M-SEARCH` to the end of the probe.
    pub elapsed: Duration,
    pub(crate) gateway: Gateway<Tokio>,
}

impl GatewayInfo {
    /// "10.77.0.1 (FRITZ!Box 7590)", or just the address when the gateway has no name.
    pub fn name(&self) -> String {
        match &self.friendly_name {
            Some(name) => format!("{} ({name})", self.gateway_addr),
            None => self.gateway_addr.to_string(),
        }
    }

    /// One sentence on the external address, for reasons and reports.
    pub fn external_summary(&self) -> String {
        match (self.external_ip, self.external_scope) {
            (Some(ip), Some(AddressScope::Global)) => {
                format!("external address {ip} (public; reported only, not a LAN address)")
            }
            (Some(ip), Some(scope)) => format!(
                "external address {ip} is not public ({scope}): double NAT, a port mapping there \
                 does not make this device reachable from the internet"
            ),
            (Some(ip), None) => format!("external address {ip}"),
            (None, _) => match &self.external_note {
                Some(note) => format!("external address unknown: {note}"),
                None => "external address unknown".to_owned(),
            },
        }
    }

    /// The gateway as igd-next knows it, for calls this crate does not wrap
    /// (`get_generic_port_mapping_entry`, ...).
    pub fn igd(&self) -> &Gateway<Tokio> {
        &self.gateway
    }
}

impl fmt::Display for GatewayInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UPnP gateway {} on {}, facing {}; {}",
            self.name(),
            self.interface,
            self.local_addr,
            self.external_summary()
        )
    }
}

/// What kind of address an external address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressScope {
    /// Globally routable.
    Global,
    /// RFC 1918 private (10/8, 172.16/12, 192.168/16) or IPv6 ULA.
    Private,
    /// RFC 6598 shared address space 100.64/10: carrier-grade NAT.
    SharedCgnat,
    /// 169.254/16 or fe80::/10.
    LinkLocal,
    /// 127/8 or ::1.
    Loopback,
    /// Documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32).
    Documentation,
    /// Anything else that is not routable: 0/8, 192.0.0/24, 198.18/15, 240/4, multicast, ...
    Reserved,
}

impl AddressScope {
    /// Classifies an address.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                if v6.is_loopback() {
                    Self::Loopback
                } else if first & 0xfe00 == 0xfc00 {
                    Self::Private
                } else if first & 0xffc0 == 0xfe80 {
                    Self::LinkLocal
                } else if first == 0x2001 && v6.segments()[1] == 0x0db8 {
                    Self::Documentation
                } else if let Some(v4) = v6.to_ipv4_mapped() {
                    Self::of_v4(v4)
                } else if v6.is_unspecified() || v6.is_multicast() || first & 0xe000 != 0x2000 {
                    Self::Reserved
                } else {
                    Self::Global
                }
            }
        }
    }

    fn of_v4(ip: Ipv4Addr) -> Self {
        let [a, b, c, _] = ip.octets();
        if ip.is_private() {
            Self::Private
        } else if a == 100 && b & 0xc0 == 64 {
            Self::SharedCgnat
        } else if ip.is_link_local() {
            Self::LinkLocal
        } else if ip.is_loopback() {
            Self::Loopback
        } else if ip.is_documentation() {
            Self::Documentation
        } else if a == 0
            || (a == 192 && b == 0 && c == 0)
            || (a == 198 && b & 0xfe == 18)
            || a >= 224
        {
            Self::Reserved
        } else {
            Self::Global
        }
    }
}

impl fmt::Display for AddressScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Global => "public",
            Self::Private => "private, RFC 1918",
            Self::SharedCgnat => "shared address space, RFC 6598: carrier-grade NAT",
            Self::LinkLocal => "link-local",
            Self::Loopback => "loopback",
            Self::Documentation => "documentation range",
            Self::Reserved => "reserved",
        })
    }
}
