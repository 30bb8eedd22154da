//! The attacker's tools for the attack tests: datagrams with forged source addresses (raw
//! sockets, IPv4 and IPv6) and listening in on the group. Everything runs inside lab hosts.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::time::Duration;

use localpair_core::Fingerprint;
use localpair_udp_multicast::Config;
use localpair_udp_multicast::wire::{self, Kind, Packet};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Sends UDP datagrams with any source address: the link-layer attacker of the threat model.
pub(crate) struct Spoofer {
    v4: Socket,
    v6: Socket,
    if_index: u32,
    config: Config,
}

impl Spoofer {
    /// Raw sockets in the calling thread's namespace, sending out of interface `if_index`.
    pub(crate) fn new(if_index: u32) -> Self {
        let v4 = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)).unwrap();
        v4.set_header_included_v4(true).unwrap();
        let v6 = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::UDP)).unwrap();
        v6.set_header_included_v6(true).unwrap();
        Self {
            v4,
            v6,
            if_index,
            config: Config::default(),
        }
    }

    /// `payload` to the IPv4 group, claiming to come from `from` (port: the group's).
    pub(crate) fn send_v4(&self, from: Ipv4Addr, payload: &[u8]) -> bool {
        let to = self.config.group_v4;
        let port = self.config.port;
        let udp_len = 8 + payload.len();
        let mut p = Vec::with_capacity(20 + udp_len);
        // Version/IHL, TOS, total length, id, flags/fragment, TTL 1, UDP, checksum (the kernel
        // fills in length, id and checksum of a raw IPv4 header).
        p.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, 1, 17, 0, 0]);
        p.extend_from_slice(&from.octets());
        p.extend_from_slice(&to.octets());
        p.extend_from_slice(&port.to_be_bytes());
        p.extend_from_slice(&port.to_be_bytes());
        p.extend_from_slice(&(udp_len as u16).to_be_bytes());
        // UDP checksum 0: "none", which IPv4 allows.
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        let dest = SockAddr::from(SocketAddrV4::new(to, 0));
        self.v4.send_to(&p, &dest).is_ok()
    }

    /// `payload` to the IPv6 group, claiming to come from `from`.
    pub(crate) fn send_v6(&self, from: Ipv6Addr, payload: &[u8]) -> bool {
        let to = self.config.group_v6;
        let port = self.config.port;
        let udp_len = (8 + payload.len()) as u16;
        let mut udp = Vec::with_capacity(usize::from(udp_len));
        udp.extend_from_slice(&port.to_be_bytes());
        udp.extend_from_slice(&port.to_be_bytes());
        udp.extend_from_slice(&udp_len.to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let sum = checksum_v6(from, to, &udp);
        udp[6..8].copy_from_slice(&sum.to_be_bytes());
        let mut p = Vec::with_capacity(40 + udp.len());
        // Version 6, no traffic class or flow label, payload length, next header UDP, hop limit 1.
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&udp_len.to_be_bytes());
        p.extend_from_slice(&[17, 1]);
        p.extend_from_slice(&from.octets());
        p.extend_from_slice(&to.octets());
        p.extend_from_slice(&udp);
        let dest = SockAddr::from(SocketAddrV6::new(to, 0, 0, self.if_index));
        self.v6.send_to(&p, &dest).is_ok()
    }
}

/// The UDP checksum over the IPv6 pseudo-header (RFC 8200 §8.1); never 0 on the wire.
fn checksum_v6(from: Ipv6Addr, to: Ipv6Addr, udp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&from.octets());
    add(&to.octets());
    add(&(udp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 17]);
    add(udp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xffff,
        s => s,
    }
}

/// A forged announcement: any key, any confirm port.
pub(crate) fn announcement(key: Fingerprint, confirm_port: u16) -> Vec<u8> {
    Packet::new(Kind::Announce, key, confirm_port, "forged").encode()
}

/// A fresh key for the `n`th forged identity.
pub(crate) fn key(n: u32) -> Fingerprint {
    let mut fp = [0x5a; 32];
    fp[..4].copy_from_slice(&n.to_be_bytes());
    Fingerprint::from_bytes(fp)
}

/// A link-local IPv6 address for the `n`th spoofed source.
pub(crate) fn link_local(n: u32) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5a5a, 0, (n >> 16) as u16, n as u16)
}

/// Listens on the IPv4 group (inside the calling thread's namespace) until a device whose name
/// is `name` announces itself, and returns its key and confirm port: what any device on the
/// link hears.
pub(crate) fn overhear(local: Ipv4Addr, name: &str, within: Duration) -> (Fingerprint, u16) {
    let config = Config::default();
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.set_reuse_port(true).unwrap();
    socket
        .bind(&SockAddr::from(SocketAddr::from((
            Ipv4Addr::UNSPECIFIED,
            config.port,
        ))))
        .unwrap();
    socket.join_multicast_v4(&config.group_v4, &local).unwrap();
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; wire::MAX_DATAGRAM];
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Ok((len, _)) = socket.recv_from(&mut buf)
            && let Ok(packet) = wire::parse(&buf[..len])
            && packet.name == name
        {
            return (packet.fingerprint, packet.confirm_port);
        }
    }
    panic!("{name} was not heard on the group within {within:?}");
}
