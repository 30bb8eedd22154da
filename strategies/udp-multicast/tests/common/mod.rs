//! Helpers shared by the lab tests: each host runs its own tokio
//! runtime on a thread inside its namespace.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use localpair_core::config::{Settings, Source};
use localpair_core::{Fingerprint, Peer};
use localpair_lab::discovery::{self, Session};
use localpair_lab::{Host, LabError, NsThread};
use localpair_udp_multicast::Config;
use localpair_udp_multicast::wire::{Kind, Packet};

/// Settings for a host: its name, discovery with udp-multicast only, `window` long, plus `extra`.
pub(crate) fn settings(name: &str, window: Duration, extra: &str) -> Settings {
    Settings::load(Source::Toml(format!(
        "[device]\nname = \"{name}\"\nephemeral = true\n[discover]\norder = [\"udp-multicast\"]\ndeadline_ms = {}\n{extra}",
        window.as_millis()
    )))
    .unwrap()
}

/// A discover chain running on a host (see [`discover`]).
pub(crate) struct Run(NsThread<Result<Session, LabError>>);

impl Run {
    /// The session, once the chain has ended; it must have run udp-multicast alone.
    pub(crate) fn join(self) -> Session {
        let session = self.0.join().unwrap();
        assert_eq!(session.strategies, ["udp-multicast"]);
        session
    }
}

/// Runs the discover chain (built through the registry, as the CLI does) on `host` for `window`.
pub(crate) fn discover(host: &Host, name: &str, window: Duration, extra: &str) -> Run {
    Run(discovery::discover(host, settings(name, window, extra)).unwrap())
}

/// One session on every host at once (named `host-<i>`), each with the same window; returns the
/// sessions when all have ended.
pub(crate) fn discover_all(hosts: &[Host], window: Duration) -> Vec<Session> {
    let runs: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| discover(h, &format!("host-{i}"), window, ""))
        .collect();
    runs.into_iter().map(Run::join).collect()
}

/// The index of `iface` inside the calling thread's namespace.
pub(crate) fn if_index(iface: &str) -> u32 {
    localpair_core::interfaces::list_all()
        .unwrap()
        .into_iter()
        .find(|i| i.name == iface)
        .and_then(|i| i.index)
        .unwrap()
}

/// Sends `packets` to both default groups from `host` (its `eth0`), pacing them so the flood
/// lasts about `packets.len() / 2` ms.
pub(crate) fn send_to_groups(host: &Host, packets: Vec<Vec<u8>>) -> NsThread<usize> {
    let config = Config::default();
    host.spawn(move || {
        let index = if_index("eth0");
        let v4 = UdpSocket::bind(("0.0.0.0", 0)).unwrap();
        v4.set_multicast_ttl_v4(1).unwrap();
        let v6 = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).unwrap();
        let to_v4 = SocketAddr::from((config.group_v4, config.port));
        let to_v6 = SocketAddr::V6(SocketAddrV6::new(config.group_v6, config.port, 0, index));
        let mut sent = 0;
        for (i, packet) in packets.iter().enumerate() {
            let (socket, to) = if i % 2 == 0 {
                (&v4, to_v4)
            } else {
                (&v6, to_v6)
            };
            // Datagrams over the path MTU fail to send (EMSGSIZE) over IPv6; that is fine.
            if socket.send_to(packet, to).is_ok() {
                sent += 1;
            }
            if i % 2 == 1 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        sent
    })
    .unwrap()
}

/// A valid announcement from a made-up device.
pub(crate) fn forged(fingerprint: Fingerprint, name: &str) -> Vec<u8> {
    Packet::new(Kind::Announce, fingerprint, 9, name).encode()
}

/// Deterministic noise for floods.
pub(crate) struct Noise(u64);

impl Noise {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// One hostile datagram: random bytes (some over the size cap), or a valid packet cut short,
    /// with a byte flipped, with bytes appended, or with a bad version/kind/length.
    pub(crate) fn hostile(&mut self, template: &[u8]) -> Vec<u8> {
        match self.below(6) {
            0 => {
                let len = self.below(1400);
                self.bytes(len)
            }
            1 => template[..self.below(template.len())].to_vec(),
            2 => {
                let mut p = template.to_vec();
                let at = self.below(p.len());
                p[at] ^= 1 << self.below(8);
                p
            }
            3 => {
                let mut p = template.to_vec();
                let extra = 1 + self.below(1300);
                p.extend(self.bytes(extra));
                p
            }
            4 => {
                let mut p = template.to_vec();
                p[4 + self.below(3)] = self.next() as u8 | 0x80;
                p
            }
            _ => {
                let mut p = b"LPmc".to_vec();
                let len = self.below(200);
                p.extend(self.bytes(len));
                p
            }
        }
    }
}

/// Peer addresses as ip strings.
pub(crate) fn ips(peer: &Peer) -> Vec<IpAddr> {
    peer.addrs.iter().map(SocketAddr::ip).collect()
}

/// Shared barrier for hosts that must start together.
pub(crate) fn barrier(n: usize) -> Arc<std::sync::Barrier> {
    Arc::new(std::sync::Barrier::new(n))
}
