//! Network interfaces: listing, allow/deny filtering, classification, and private-address tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use serde::{Deserialize, Serialize};

use crate::candidate::InterfaceClass;
use crate::config::InterfacesConfig;
use crate::error::Error;

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InterfaceAddr {
    /// The address.
    pub ip: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// IPv4 broadcast address, when the interface has one.
    pub broadcast: Option<Ipv4Addr>,
    /// Where IPv6 duplicate address detection stands for this address (always
    /// [`Dad::Done`] for IPv4, and wherever the OS does not tell).
    pub dad: Dad,
}

/// The state of IPv6 duplicate address detection (RFC 4862 §5.4) for one address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Dad {
    /// Usable (or not subject to DAD).
    #[default]
    Done,
    /// Still being checked (about a second after a link comes up): the address cannot be used
    /// yet, and connecting to or from it fails with `EADDRNOTAVAIL`.
    Tentative,
    /// Another device on the link answered for the address: it will never become usable.
    Failed,
}

/// An interface with all its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Interface {
    /// OS name, e.g. `eth0`.
    pub name: String,
    /// OS index (the IPv6 scope id).
    pub index: Option<u32>,
    /// Our classification.
    pub class: InterfaceClass,
    /// Operationally up: carrier present (IFF_RUNNING on POSIX).
    pub up: bool,
    /// Point-to-point link (typical of tunnels).
    pub point_to_point: bool,
    /// Its addresses.
    pub addrs: Vec<InterfaceAddr>,
}

impl InterfaceAddr {
    /// An address with its prefix length (no broadcast).
    pub fn new(ip: IpAddr, prefix_len: u8) -> Self {
        Self {
            ip,
            prefix_len,
            broadcast: None,
            dad: Dad::Done,
        }
    }
}

impl Interface {
    /// An interface that is up, classified by its name only (for tests and custom strategies:
    /// the machine running them is not asked).
    pub fn new(name: &str, index: Option<u32>, addrs: Vec<InterfaceAddr>) -> Self {
        Self {
            name: name.to_owned(),
            index,
            class: crate::classify::by_name(name),
            up: true,
            point_to_point: false,
            addrs,
        }
    }

    /// Whether `ip` lies inside one of this interface's subnets.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.addrs
            .iter()
            .any(|a| same_subnet(a.ip, ip, a.prefix_len))
    }

    /// Whether one of the addresses is exactly `ip`.
    pub fn has_addr(&self, ip: IpAddr) -> bool {
        self.addrs.iter().any(|a| a.ip == ip)
    }
}

/// Whether `a` and `b` share the first `prefix_len` bits (false across families).
pub fn same_subnet(a: IpAddr, b: IpAddr, prefix_len: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let bits = u32::from(prefix_len.min(32));
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let bits = u32::from(prefix_len.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Private addresses a LAN peer can use: IPv4 RFC 1918 and 169.254/16, IPv6 ULA fc00::/7 and
/// link-local fe80::/10 (which needs the interface index as its scope).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => is_unique_local(v6) || v6.is_unicast_link_local(),
    }
}

fn is_unique_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xfe00 == 0xfc00
}

/// Classifies an interface: what the OS says about it (Linux: sysfs), else its name under the
/// Linux, macOS and Windows naming rules (see [`classify`](crate::classify)).
pub fn classify(name: &str, loopback: bool) -> InterfaceClass {
    if loopback {
        return InterfaceClass::Loopback;
    }
    crate::classify::linux_facts(name)
        .and_then(|facts| crate::classify::from_linux_facts(&facts))
        .unwrap_or_else(|| crate::classify::by_name(name))
}

/// The `[interfaces]` allow/deny globs, compiled.
#[derive(Debug, Clone, Default)]
pub struct InterfaceFilter {
    allow: Vec<glob::Pattern>,
    deny: Vec<glob::Pattern>,
    include_loopback: bool,
}

impl InterfaceFilter {
    /// Compiles the globs; a bad pattern names its key.
    pub fn new(config: &InterfacesConfig) -> Result<Self, Error> {
        let compile = |key: &str, patterns: &[String]| {
            patterns
                .iter()
                .map(|p| {
                    glob::Pattern::new(p).map_err(|e| Error::InvalidPattern {
                        key: key.to_owned(),
                        pattern: p.clone(),
                        reason: e.msg.to_owned(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            allow: compile("interfaces.allow", &config.allow)?,
            deny: compile("interfaces.deny", &config.deny)?,
            include_loopback: config.include_loopback,
        })
    }

    /// Whether an interface name passes: on the allow list (or the list is empty) and not denied.
    pub fn permits(&self, name: &str, class: InterfaceClass) -> bool {
        if class == InterfaceClass::Loopback && !self.include_loopback && self.allow.is_empty() {
            return false;
        }
        let allowed = self.allow.is_empty() || self.allow.iter().any(|p| p.matches(name));
        allowed && !self.deny.iter().any(|p| p.matches(name))
    }

    /// Why [`InterfaceFilter::list`] leaves nothing to work with, in words that say what is
    /// true of `all` (every interface, from [`list_all`]): nothing but loopback is up, or the
    /// `[interfaces]` rules filtered the rest out (named), or no permitted interface has an
    /// address.
    pub fn why_none(&self, all: &[Interface]) -> String {
        let others: Vec<&Interface> = all
            .iter()
            .filter(|i| i.class != InterfaceClass::Loopback && !i.addrs.is_empty())
            .collect();
        let down: Vec<&str> = others
            .iter()
            .filter(|i| !i.up)
            .map(|i| i.name.as_str())
            .collect();
        if others.is_empty() || down.len() == others.len() {
            let what = if down.is_empty() {
                "no network interface has an address".to_owned()
            } else {
                format!("{} is down", down.join(", "))
            };
            return format!("only loopback is up: {what} (is this device connected to a network?)");
        }
        let filtered: Vec<&str> = others
            .iter()
            .filter(|i| !self.permits(&i.name, i.class))
            .map(|i| i.name.as_str())
            .collect();
        if filtered.len() == others.len() {
            return format!(
                "[interfaces] allow/deny filters out every interface with an address ({})",
                filtered.join(", ")
            );
        }
        "no permitted interface is up with a usable address".to_owned()
    }

    /// [`InterfaceFilter::why_none`] for this device's interfaces now.
    pub fn why_none_now(&self) -> String {
        match list_all() {
            Ok(all) => self.why_none(&all),
            Err(error) => format!("the interfaces cannot be listed: {error}"),
        }
    }

    /// Lists the interfaces this filter permits.
    pub fn list(&self) -> Result<Vec<Interface>, Error> {
        Ok(list_all()?
            .into_iter()
            .filter(|i| self.permits(&i.name, i.class))
            .collect())
    }
}

/// Lists every interface with its addresses, unfiltered, in OS order.
pub fn list_all() -> Result<Vec<Interface>, Error> {
    let raw = if_addrs::get_if_addrs().map_err(Error::Interfaces)?;
    let dad_states = ipv6_dad_states();
    let mut out: Vec<Interface> = Vec::new();
    for entry in raw {
        let addr = match &entry.addr {
            if_addrs::IfAddr::V4(v4) => InterfaceAddr {
                ip: IpAddr::V4(v4.ip),
                prefix_len: v4.prefixlen,
                broadcast: v4.broadcast,
                dad: Dad::Done,
            },
            if_addrs::IfAddr::V6(v6) => InterfaceAddr {
                ip: IpAddr::V6(v6.ip),
                prefix_len: v6.prefixlen,
                broadcast: None,
                dad: dad_states
                    .iter()
                    .find(|(ip, _)| *ip == v6.ip)
                    .map_or(Dad::Done, |(_, dad)| *dad),
            },
        };
        match out.iter_mut().find(|i| i.name == entry.name) {
            Some(existing) => existing.addrs.push(addr),
            None => out.push(Interface {
                class: classify(&entry.name, entry.is_loopback()),
                name: entry.name.clone(),
                index: entry.index,
                // On POSIX if-addrs reports Up only with IFF_RUNNING: a bridge without ports
                // (docker0 with no container) is UP but not running, and no peer can be there.
                up: entry.is_oper_up(),
                point_to_point: entry.is_p2p(),
                addrs: vec![addr],
            }),
        }
    }
    Ok(out)
}

/// IPv6 addresses whose duplicate address detection is not done, as the OS reports them.
///
/// Linux: `/proc/net/if_inet6` (flags `IFA_F_TENTATIVE` 0x40 and `IFA_F_DADFAILED` 0x08).
/// Elsewhere: empty (the OS offers no portable way; a tentative address then shows up as an
/// `EADDRNOTAVAIL` error when used).
fn ipv6_dad_states() -> Vec<(Ipv6Addr, Dad)> {
    #[cfg(target_os = "linux")]
    {
        use std::io::Read as _;
        // A few hundred bytes per address; anything past this many bytes is not read.
        const CAP: u64 = 1 << 20;
        let mut text = String::new();
        let read = std::fs::File::open("/proc/net/if_inet6")
            .and_then(|f| f.take(CAP).read_to_string(&mut text));
        match read {
            Ok(_) => parse_if_inet6(&text),
            Err(_) => Vec::new(),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
    }
}

/// Parses Linux's `/proc/net/if_inet6`: one address per line, `<32 hex digits> <ifindex>
/// <prefix len> <scope> <flags> <name>`, all hex. Lines that do not parse are skipped; only
/// addresses whose DAD is not done are returned.
pub(crate) fn parse_if_inet6(text: &str) -> Vec<(Ipv6Addr, Dad)> {
    const TENTATIVE: u32 = 0x40;
    const DAD_FAILED: u32 = 0x08;
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let hex = fields.next()?;
            let flags = fields.nth(3)?;
            let bits = u128::from_str_radix(hex, 16)
                .ok()
                .filter(|_| hex.len() == 32)?;
            let flags = u32::from_str_radix(flags, 16).ok()?;
            let dad = if flags & DAD_FAILED != 0 {
                Dad::Failed
            } else if flags & TENTATIVE != 0 {
                Dad::Tentative
            } else {
                return None;
            };
            Some((Ipv6Addr::from(bits), dad))
        })
        .collect()
}

/// The source address the OS would use to reach `target`: a UDP socket is connected, which makes
/// the kernel pick a route and a source address, and nothing is sent.
pub fn preferred_source(target: SocketAddr) -> std::io::Result<IpAddr> {
    let bind: SocketAddr = match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(bind)?;
    socket.connect(target)?;
    Ok(socket.local_addr()?.ip())
}

/// Addresses whose route the OS is asked about: documentation ranges (RFC 5737, RFC 3849), which
/// follow the default route like any public address and are never really contacted.
pub const DEFAULT_ROUTE_PROBES: [&str; 2] = ["192.0.2.1:9", "[2001:db8::1]:9"];

/// Names of the interfaces that hold the default route, found by asking the OS which source
/// address it would use for the probe targets.
pub fn default_route_interfaces(interfaces: &[Interface], probes: &[SocketAddr]) -> Vec<String> {
    let mut names = Vec::new();
    for probe in probes {
        let Ok(source) = preferred_source(*probe) else {
            continue;
        };
        if let Some(i) = interfaces.iter().find(|i| i.has_addr(source))
            && !names.contains(&i.name)
        {
            names.push(i.name.clone());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn why_nothing_is_left_says_what_is_true() {
        let lo = Interface::new(
            "lo",
            Some(1),
            vec![InterfaceAddr::new(IpAddr::from([127, 0, 0, 1]), 8)],
        );
        let mut eth0 = Interface::new(
            "eth0",
            Some(2),
            vec![InterfaceAddr::new(IpAddr::from([10, 0, 0, 2]), 24)],
        );
        let none = InterfaceFilter::default();
        assert!(
            none.why_none(std::slice::from_ref(&lo))
                .starts_with("only loopback is up: no network interface has an address")
        );
        eth0.up = false;
        let both = [lo.clone(), eth0.clone()];
        assert!(
            none.why_none(&both)
                .starts_with("only loopback is up: eth0 is down")
        );
        eth0.up = true;
        let both = [lo, eth0];
        let deny_eth = InterfaceFilter::new(&InterfacesConfig {
            deny: vec!["eth*".to_owned()],
            ..InterfacesConfig::default()
        })
        .unwrap_or_default();
        assert_eq!(
            deny_eth.why_none(&both),
            "[interfaces] allow/deny filters out every interface with an address (eth0)"
        );
    }

    #[test]
    fn if_inet6_flags() {
        let text = "fd770000000000000000000000000011 02 40 00 40     eth0\n\
                    fe80000000000000284c50fffe000001 02 40 20 80     eth0\n\
                    fd770000000000000000000000000012 02 40 00 48     eth0\n\
                    garbage\n\
                    fd77 02 40 00 40 eth0\n";
        let states = parse_if_inet6(text);
        assert_eq!(
            states,
            [
                (
                    "fd77::11".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
                    Dad::Tentative
                ),
                (
                    "fd77::12".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
                    Dad::Failed
                ),
            ]
        );
    }

    fn filter(allow: &[&str], deny: &[&str]) -> InterfaceFilter {
        InterfaceFilter::new(&InterfacesConfig {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
            include_loopback: false,
        })
        .unwrap()
    }

    #[test]
    fn classes_by_name() {
        for (name, class) in [
            ("eth0", InterfaceClass::Physical),
            ("enp3s0", InterfaceClass::Physical),
            ("wlan0", InterfaceClass::Wifi),
            ("wlp2s0", InterfaceClass::Wifi),
            ("docker0", InterfaceClass::VirtualBridge),
            ("br-1a2b", InterfaceClass::VirtualBridge),
            ("virbr0", InterfaceClass::VirtualBridge),
            ("vboxnet0", InterfaceClass::VirtualBridge),
            ("vmnet8", InterfaceClass::VirtualBridge),
            ("veth12ab", InterfaceClass::VirtualBridge),
            ("tun0", InterfaceClass::Vpn),
            ("tap1", InterfaceClass::Vpn),
            ("wg0", InterfaceClass::Vpn),
            ("utun3", InterfaceClass::Vpn),
            ("tailscale0", InterfaceClass::Vpn),
            ("zt5u4r", InterfaceClass::Vpn),
            ("lo", InterfaceClass::Loopback),
            ("mystery", InterfaceClass::Unknown),
        ] {
            // The names alone: the machine running the test is not asked.
            assert_eq!(crate::classify::by_name(name), class, "{name}");
        }
    }

    #[test]
    fn private_ranges() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.1.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["fd00::1", "fc12::1", "fe80::1"] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.64.0.1",
            "2001:db8::1",
            "127.0.0.1",
            "::1",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn allow_deny_globs() {
        let f = filter(&[], &["docker*", "veth*"]);
        assert!(f.permits("eth0", InterfaceClass::Physical));
        assert!(!f.permits("docker0", InterfaceClass::VirtualBridge));
        assert!(!f.permits("lo", InterfaceClass::Loopback));
        let f = filter(&["wl*"], &[]);
        assert!(f.permits("wlan0", InterfaceClass::Physical));
        assert!(!f.permits("eth0", InterfaceClass::Physical));
        let f = filter(&["lo"], &[]);
        assert!(f.permits("lo", InterfaceClass::Loopback));
    }

    #[test]
    fn bad_glob_names_its_key() {
        let err = InterfaceFilter::new(&InterfacesConfig {
            allow: vec![],
            deny: vec!["[".into()],
            include_loopback: false,
        })
        .unwrap_err();
        assert!(err.to_string().contains("interfaces.deny"), "{err}");
    }

    #[test]
    fn subnets() {
        let a: IpAddr = "10.0.0.5".parse().unwrap();
        assert!(same_subnet(a, "10.0.0.200".parse().unwrap(), 24));
        assert!(!same_subnet(a, "10.0.1.5".parse().unwrap(), 24));
        assert!(same_subnet(a, "1.2.3.4".parse().unwrap(), 0));
        let b: IpAddr = "fe80::1".parse().unwrap();
        assert!(same_subnet(b, "fe80::2".parse().unwrap(), 64));
        assert!(!same_subnet(a, b, 0));
    }
}
