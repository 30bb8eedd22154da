//! What kind of link an interface is: what the OS says where it says it (Linux sysfs), else the
//! naming rules of Linux, macOS and Windows.
//!
//! The OS is asked first because names lie: Windows calls its NIC "Ethernet 2", macOS shares the
//! `en` prefix between Wi-Fi and Ethernet, and a container's `eth0` is one end of a veth pair.

use crate::candidate::InterfaceClass;

/// What Linux says about an interface under `/sys/class/net/<name>/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinuxFacts {
    /// `type`: the ARPHRD link type (1 Ethernet, 772 loopback, 65534 none: an L3 tunnel, …).
    pub link_type: Option<u32>,
    /// `device` exists: a bus device (PCI, USB, SDIO) backs it, real hardware.
    pub has_device: bool,
    /// `wireless` or `phy80211` exists: an 802.11 interface.
    pub wireless: bool,
    /// `tun_flags` exists: a tun/tap device (a VPN client's tunnel).
    pub tun: bool,
    /// `bridge` exists: a software bridge.
    pub bridge: bool,
    /// A port of the bridge is real hardware (the bridge carries the LAN, as on a host whose VMs
    /// share its network), rather than only virtual ports (Docker, libvirt NAT).
    pub bridge_has_hardware_port: bool,
    /// `iflink` differs from `ifindex`: the other end of a pair lives elsewhere (a veth, whose
    /// peer is in another namespace: a container's or a lab host's uplink).
    pub paired: bool,
}

/// ARPHRD values that are L3 tunnels.
const TUNNEL_TYPES: &[u32] = &[
    65534, // ARPHRD_NONE: tun, WireGuard
    768,   // ARPHRD_TUNNEL: ipip
    769,   // ARPHRD_TUNNEL6
    776,   // ARPHRD_SIT
    778,   // ARPHRD_IPGRE
    823,   // ARPHRD_IP6GRE
    512,   // ARPHRD_PPP
];
const ARPHRD_ETHER: u32 = 1;
const ARPHRD_LOOPBACK: u32 = 772;

/// The class the Linux facts imply, when they imply one.
pub fn from_linux_facts(facts: &LinuxFacts) -> Option<InterfaceClass> {
    let link_type = facts.link_type?;
    Some(if link_type == ARPHRD_LOOPBACK {
        InterfaceClass::Loopback
    } else if facts.tun || TUNNEL_TYPES.contains(&link_type) {
        InterfaceClass::Vpn
    } else if facts.bridge {
        if facts.bridge_has_hardware_port {
            InterfaceClass::Physical
        } else {
            InterfaceClass::VirtualBridge
        }
    } else if facts.wireless {
        InterfaceClass::Wifi
    } else if facts.has_device && link_type == ARPHRD_ETHER {
        InterfaceClass::Ethernet
    } else if facts.has_device {
        InterfaceClass::Physical
    } else if facts.paired && link_type == ARPHRD_ETHER {
        InterfaceClass::VirtualEthernet
    } else {
        return None;
    })
}

/// Reads the facts of interface `name` from sysfs; `None` when it has no sysfs entry.
#[cfg(target_os = "linux")]
pub fn linux_facts(name: &str) -> Option<LinuxFacts> {
    use std::path::Path;
    // An interface name never holds a path separator; refuse one rather than read elsewhere.
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    let dir = Path::new("/sys/class/net").join(name);
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .ok()
            .map(|s| s.trim().to_owned())
    };
    let link_type = read("type")?.parse().ok();
    let bridge_has_hardware_port = std::fs::read_dir(dir.join("brif"))
        .map(|ports| {
            ports.flatten().any(|port| {
                Path::new("/sys/class/net")
                    .join(port.file_name())
                    .join("device")
                    .exists()
            })
        })
        .unwrap_or(false);
    Some(LinuxFacts {
        link_type,
        has_device: dir.join("device").exists(),
        wireless: dir.join("wireless").exists() || dir.join("phy80211").exists(),
        tun: dir.join("tun_flags").exists(),
        bridge: dir.join("bridge").exists(),
        bridge_has_hardware_port,
        paired: read("iflink").is_some_and(|l| Some(l) != read("ifindex")),
    })
}

/// Elsewhere the OS is not asked (macOS and Windows need system APIs or privileges for this);
/// the naming rules decide.
#[cfg(not(target_os = "linux"))]
pub fn linux_facts(_name: &str) -> Option<LinuxFacts> {
    None
}

/// The class an interface's name implies on Linux, macOS or Windows; [`InterfaceClass::Unknown`]
/// when no rule knows it.
pub fn by_name(name: &str) -> InterfaceClass {
    let lower = name.to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| lower.starts_with(p));
    let contains = |parts: &[&str]| parts.iter().any(|p| lower.contains(p));
    // Windows: friendly names, often with a number ("Ethernet 2") or a qualifier.
    if contains(&["loopback pseudo-interface"]) || lower == "lo" || starts(&["lo0"]) {
        return InterfaceClass::Loopback;
    }
    if contains(&[
        "vethernet",
        "virtualbox",
        "vmware",
        "hyper-v",
        "host-only",
        "default switch",
    ]) || starts(&[
        "docker", "br-", "virbr", "vboxnet", "vmnet", "veth", "cni", "flannel", "lxcbr", "lxdbr",
        "podman", "vnet", "kube", "cali", "weave",
        // macOS: Internet Sharing and VM bridges, Apple Wireless Direct Link (AirDrop).
        "bridge", "awdl", "llw", "anpi", "ap1",
    ]) {
        return InterfaceClass::VirtualBridge;
    }
    if contains(&[
        "vpn",
        "tap-windows",
        "wireguard",
        "openvpn",
        "tailscale",
        "zerotier",
        "wintun",
    ]) || starts(&[
        "tun",
        "tap",
        "wg",
        "utun",
        "tailscale",
        "zt",
        "ppp",
        "ipsec",
        "nordlynx",
        "proton",
        "gpd",
        "gif",
        "stf",
    ]) {
        return InterfaceClass::Vpn;
    }
    if starts(&[
        "wi-fi",
        "wifi",
        "wlan",
        "wl",
        "wireless network connection",
        "ath",
    ]) {
        return InterfaceClass::Wifi;
    }
    if starts(&["ethernet", "local area connection"]) {
        return InterfaceClass::Ethernet;
    }
    // `en` is Ethernet on Linux (enp3s0) but Wi-Fi or Ethernet on macOS (en0): hardware, kind
    // unknown by name.
    if starts(&["eth", "en", "em", "bond"]) {
        return InterfaceClass::Physical;
    }
    InterfaceClass::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_three_systems() {
        let cases = [
            // Linux
            ("lo", InterfaceClass::Loopback),
            ("eth0", InterfaceClass::Physical),
            ("enp3s0", InterfaceClass::Physical),
            ("wlan0", InterfaceClass::Wifi),
            ("wlp2s0", InterfaceClass::Wifi),
            ("docker0", InterfaceClass::VirtualBridge),
            ("veth1a2b3c", InterfaceClass::VirtualBridge),
            ("wg0", InterfaceClass::Vpn),
            ("tun0", InterfaceClass::Vpn),
            ("tailscale0", InterfaceClass::Vpn),
            // macOS
            ("lo0", InterfaceClass::Loopback),
            ("en0", InterfaceClass::Physical),
            ("bridge100", InterfaceClass::VirtualBridge),
            ("awdl0", InterfaceClass::VirtualBridge),
            ("llw0", InterfaceClass::VirtualBridge),
            ("utun3", InterfaceClass::Vpn),
            ("gif0", InterfaceClass::Vpn),
            // Windows
            ("Ethernet", InterfaceClass::Ethernet),
            ("Ethernet 2", InterfaceClass::Ethernet),
            ("Wi-Fi", InterfaceClass::Wifi),
            ("WLAN", InterfaceClass::Wifi),
            ("vEthernet (WSL)", InterfaceClass::VirtualBridge),
            ("vEthernet (Default Switch)", InterfaceClass::VirtualBridge),
            (
                "VirtualBox Host-Only Network",
                InterfaceClass::VirtualBridge,
            ),
            (
                "VMware Network Adapter VMnet8",
                InterfaceClass::VirtualBridge,
            ),
            ("OpenVPN TAP-Windows6", InterfaceClass::Vpn),
            ("WireGuard Tunnel", InterfaceClass::Vpn),
            ("Loopback Pseudo-Interface 1", InterfaceClass::Loopback),
            ("Local Area Connection* 2", InterfaceClass::Ethernet),
            ("Bluetooth Network Connection", InterfaceClass::Unknown),
            ("mystery", InterfaceClass::Unknown),
        ];
        for (name, class) in cases {
            assert_eq!(by_name(name), class, "{name}");
        }
    }

    #[test]
    fn what_linux_says() {
        let ether = LinuxFacts {
            link_type: Some(1),
            ..LinuxFacts::default()
        };
        let cases = [
            (
                LinuxFacts {
                    has_device: true,
                    ..ether.clone()
                },
                Some(InterfaceClass::Ethernet),
            ),
            (
                LinuxFacts {
                    has_device: true,
                    wireless: true,
                    ..ether.clone()
                },
                Some(InterfaceClass::Wifi),
            ),
            (
                LinuxFacts {
                    paired: true,
                    ..ether.clone()
                },
                Some(InterfaceClass::VirtualEthernet),
            ),
            (
                LinuxFacts {
                    bridge: true,
                    ..ether.clone()
                },
                Some(InterfaceClass::VirtualBridge),
            ),
            (
                LinuxFacts {
                    bridge: true,
                    bridge_has_hardware_port: true,
                    ..ether.clone()
                },
                Some(InterfaceClass::Physical),
            ),
            (
                LinuxFacts {
                    tun: true,
                    ..ether.clone()
                },
                Some(InterfaceClass::Vpn),
            ),
            (
                LinuxFacts {
                    link_type: Some(65534),
                    ..LinuxFacts::default()
                },
                Some(InterfaceClass::Vpn),
            ),
            (
                LinuxFacts {
                    link_type: Some(772),
                    ..LinuxFacts::default()
                },
                Some(InterfaceClass::Loopback),
            ),
            // Nothing telling (a dummy, say): the name decides.
            (ether, None),
            (LinuxFacts::default(), None),
        ];
        for (facts, class) in cases {
            assert_eq!(from_linux_facts(&facts), class, "{facts:?}");
        }
    }
}
