//! Which interfaces get a socket, and how each socket is set up.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use localpair_core::InterfaceClass;
use localpair_core::interfaces::Interface;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::config::Config;
use crate::peers::LinkKey;

/// One (interface, address family) pair that gets its own socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkSpec {
    /// The interface, with every address (for the subnet check).
    pub(crate) iface: Interface,
    /// IPv4: the address we join and send from; IPv6: the link-local address.
    pub(crate) local: IpAddr,
    /// The OS interface index (the IPv6 scope).
    pub(crate) index: u32,
}

impl LinkSpec {
    pub(crate) fn key(&self) -> LinkKey {
        LinkKey {
            iface: self.iface.name.clone(),
            v6: self.local.is_ipv6(),
        }
    }

    /// Whether an existing socket still fits: same interface index and local address.
    pub(crate) fn same_socket(&self, other: &Self) -> bool {
        self.index == other.index && self.local == other.local
    }

    /// Where announcements go.
    pub(crate) fn group(&self, config: &Config) -> SocketAddr {
        match self.local {
            IpAddr::V4(_) => SocketAddr::from((config.group_v4, config.port)),
            IpAddr::V6(_) => SocketAddr::V6(SocketAddrV6::new(
                config.group_v6,
                config.port,
                0,
                self.index,
            )),
        }
    }
}

/// The links to open on `interfaces` (already filtered by `[interfaces]`), and why each other
/// interface was passed over.
/// Why no link can be opened: what is true of the device's interfaces (only loopback is up, or
/// `[interfaces]` filtered them out), then, when that is not the whole story, why each permitted
/// interface was passed over.
pub(crate) fn no_link_detail(ctx: &localpair_core::Context, skipped: &[String]) -> String {
    let why = ctx.why_no_interfaces();
    let relevant: Vec<&String> = skipped
        .iter()
        .filter(|s| !s.ends_with(": loopback"))
        .collect();
    if why.starts_with("only loopback") || relevant.is_empty() {
        return why;
    }
    relevant
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

pub(crate) fn select(interfaces: &[Interface], ipv6: bool) -> (Vec<LinkSpec>, Vec<String>) {
    let mut links = Vec::new();
    let mut skipped = Vec::new();
    for iface in interfaces {
        if iface.class == InterfaceClass::Loopback {
            skipped.push(format!("{}: loopback", iface.name));
            continue;
        }
        if !iface.up {
            skipped.push(format!("{}: down", iface.name));
            continue;
        }
        let index = iface.index.unwrap_or(0);
        let v4 = iface.addrs.iter().find_map(|a| match a.ip {
            IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_unspecified() => Some(v4),
            _ => None,
        });
        let v6 = iface.addrs.iter().find_map(|a| match a.ip {
            IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(v6),
            _ => None,
        });
        let before = links.len();
        if let Some(v4) = v4 {
            links.push(LinkSpec {
                iface: iface.clone(),
                local: IpAddr::V4(v4),
                index,
            });
        }
        if let Some(v6) = v6.filter(|_| ipv6 && index != 0) {
            links.push(LinkSpec {
                iface: iface.clone(),
                local: IpAddr::V6(v6),
                index,
            });
        }
        if links.len() == before {
            skipped.push(format!(
                "{}: no IPv4{} address",
                iface.name,
                if ipv6 { " or IPv6 link-local" } else { "" }
            ));
        }
    }
    (links, skipped)
}

/// A link's socket: tokio receives on it; sends go through a duplicate of the descriptor as
/// plain non-blocking syscalls, because tokio's `try_send_to` refuses (`WouldBlock`, without
/// trying) until its reactor has seen the socket writable, which loses the very first
/// announcement of a fresh socket.
#[derive(Debug)]
pub(crate) struct LinkSocket {
    pub(crate) recv: UdpSocket,
    send: std::net::UdpSocket,
}

impl LinkSocket {
    pub(crate) fn send_to(&self, bytes: &[u8], dest: SocketAddr) -> io::Result<usize> {
        self.send.send_to(bytes, dest)
    }
}

/// A socket joined to the group on exactly this link, TTL/hops 1, multicast loop on (our own
/// echoes tell whether the host passes multicast at all), non-blocking, registered with tokio.
pub(crate) fn open(spec: &LinkSpec, config: &Config) -> io::Result<LinkSocket> {
    let socket = match spec.local {
        IpAddr::V4(local) => open_v4(local, config)?,
        IpAddr::V6(_) => open_v6(spec.index, config)?,
    };
    socket.set_nonblocking(true)?;
    let send = socket.try_clone()?.into();
    Ok(LinkSocket {
        recv: UdpSocket::from_std(socket.into())?,
        send,
    })
}

fn shared(domain: Domain) -> io::Result<Socket> {
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    // One socket per interface, and other localpair programs on this device, share the port.
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket.set_reuse_port(true)?;
    Ok(socket)
}

fn open_v4(local: Ipv4Addr, config: &Config) -> io::Result<Socket> {
    let socket = shared(Domain::IPV4)?;
    // Without this, Linux delivers the group's datagrams from every interface any socket on the
    // host joined, and one interface's socket would hear another's traffic.
    #[cfg(target_os = "linux")]
    if let Err(error) = socket.set_multicast_all_v4(false) {
        tracing::debug!(%error, "IP_MULTICAST_ALL cannot be turned off; the subnet check still applies");
    }
    // Bound to the group, not the wildcard: unicast datagrams to the port never reach us.
    // Some systems refuse that bind; the wildcard works everywhere.
    if socket
        .bind(&SocketAddr::from((config.group_v4, config.port)).into())
        .is_err()
    {
        socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port)).into())?;
    }
    socket.join_multicast_v4(&config.group_v4, &local)?;
    socket.set_multicast_if_v4(&local)?;
    socket.set_multicast_ttl_v4(1)?;
    socket.set_multicast_loop_v4(true)?;
    Ok(socket)
}

fn open_v6(index: u32, config: &Config) -> io::Result<Socket> {
    let socket = shared(Domain::IPV6)?;
    socket.set_only_v6(true)?;
    #[cfg(target_os = "linux")]
    if let Err(error) = socket.set_multicast_all_v6(false) {
        tracing::debug!(%error, "IPV6_MULTICAST_ALL cannot be turned off; the scoped bind still applies");
    }
    // A link-scoped group bound with its scope ties the socket to that interface.
    let scoped = SocketAddrV6::new(config.group_v6, config.port, 0, index);
    if socket.bind(&SocketAddr::V6(scoped).into()).is_err() {
        socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, config.port)).into())?;
    }
    socket.join_multicast_v6(&config.group_v6, index)?;
    socket.set_multicast_if_v6(index)?;
    socket.set_multicast_hops_v6(1)?;
    socket.set_multicast_loop_v6(true)?;
    Ok(socket)
}

/// The peer's confirmation listener: its packet's source with the port it announced, scoped to
/// our interface when link-local.
pub(crate) fn listener_addr(ip: IpAddr, port: u16, index: u32) -> SocketAddr {
    match ip {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, index))
        }
        _ => SocketAddr::new(ip, port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use localpair_core::interfaces::InterfaceAddr;

    fn iface(name: &str, index: u32, addrs: &[(&str, u8)]) -> Interface {
        Interface::new(
            name,
            Some(index),
            addrs
                .iter()
                .map(|(ip, len)| InterfaceAddr::new(ip.parse().unwrap(), *len))
                .collect(),
        )
    }

    #[test]
    fn selection_takes_ipv4_and_link_local_of_up_non_loopback_interfaces() {
        let mut down = iface("eth1", 3, &[("192.168.5.2", 24)]);
        down.up = false;
        let list = [
            iface("lo", 1, &[("127.0.0.1", 8), ("::1", 128)]),
            iface(
                "eth0",
                2,
                &[("10.0.0.2", 24), ("fd00::2", 64), ("fe80::2", 64)],
            ),
            down,
            iface("tun0", 4, &[("2001:db8::5", 64)]),
        ];
        let (links, skipped) = select(&list, true);
        let got: Vec<(String, String)> = links
            .iter()
            .map(|l| (l.iface.name.clone(), l.local.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("eth0".to_owned(), "10.0.0.2".to_owned()),
                ("eth0".to_owned(), "fe80::2".to_owned())
            ]
        );
        assert_eq!(
            skipped,
            [
                "lo: loopback",
                "eth1: down",
                "tun0: no IPv4 or IPv6 link-local address"
            ]
        );
        let (links, _) = select(&list, false);
        assert_eq!(links.len(), 1);
        let config = Config::default();
        assert_eq!(
            links[0].group(&config).to_string(),
            format!("{}:{}", config.group_v4, config.port)
        );
    }

    #[test]
    fn ipv6_group_carries_the_scope() {
        let (links, _) = select(&[iface("eth0", 7, &[("fe80::2", 64)])], true);
        let group = links[0].group(&Config::default());
        assert!(matches!(group, SocketAddr::V6(v6) if v6.scope_id() == 7));
        assert!(links[0].key().v6);
    }
}
