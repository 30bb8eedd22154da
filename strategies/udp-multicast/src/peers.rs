//! The peers heard so far: one entry per key fingerprint, with the address it was last heard
//! from on each interface, forgotten after a silence.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use localpair_core::peer::{Rounds, evict_least};
use localpair_core::{Fingerprint, Peer};
use tokio::time::Instant;

use crate::wire::Packet;

/// Most peers remembered (as many as the discovery session keeps, see
/// `localpair_core::chain::MAX_PEERS`): a flood of forged announcements evicts the peers heard
/// in the fewest rounds (`localpair_core::peer::ROUND`), longest ago — its own identities —
/// instead of growing without bound.
pub(crate) const MAX_PEERS: usize = 256;

/// Where a packet arrived: interface name and address family.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct LinkKey {
    pub(crate) iface: String,
    pub(crate) v6: bool,
}

impl LinkKey {
    pub(crate) fn label(&self) -> String {
        format!("{} ({})", self.iface, if self.v6 { "IPv6" } else { "IPv4" })
    }
}

#[derive(Debug, Clone)]
struct Sighting {
    link: LinkKey,
    addr: SocketAddr,
    last_seen: Instant,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    pairing_port: Option<u16>,
    session_tag: Option<[u8; 8]>,
    link_port: Option<u16>,
    offer: Option<localpair_core::Offer>,
    short_channel: Option<u8>,
    sightings: Vec<Sighting>,
    last_seen: Instant,
    /// Rounds this key was heard in: a device that keeps announcing outranks forged
    /// identities (one packet or a quick burst each) when the table is full.
    rounds: Rounds,
}

/// What one packet changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Heard {
    /// The fingerprint was not in the table (first sighting, or back after expiry).
    pub(crate) new_peer: bool,
    /// Something a `Peer` shows changed: report it again.
    pub(crate) changed: bool,
}

#[derive(Debug)]
pub(crate) struct PeerTable {
    entries: HashMap<Fingerprint, Entry>,
    expire_after: Duration,
    ever: usize,
    evicted: Vec<Fingerprint>,
    origin: Instant,
}

impl PeerTable {
    pub(crate) fn new(expire_after: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            expire_after,
            ever: 0,
            evicted: Vec::new(),
            origin: Instant::now(),
        }
    }

    /// Records `packet`, heard on `link` from `addr` (its source ip with the confirm port).
    pub(crate) fn observe(
        &mut self,
        link: &LinkKey,
        addr: SocketAddr,
        packet: &Packet,
        now: Instant,
    ) -> Heard {
        let fingerprint = packet.fingerprint;
        let elapsed = now.saturating_duration_since(self.origin);
        let Some(entry) = self.entries.get_mut(&fingerprint) else {
            if self.entries.len() >= MAX_PEERS {
                self.evict_least_heard();
            }
            self.ever += 1;
            let mut rounds = Rounds::default();
            rounds.heard(elapsed);
            self.entries.insert(
                fingerprint,
                Entry {
                    name: packet.name.clone(),
                    pairing_port: packet.pairing_port,
                    session_tag: packet.session_tag,
                    link_port: packet.link_port,
                    offer: packet.offer,
                    short_channel: packet.short_channel,
                    sightings: vec![Sighting {
                        link: link.clone(),
                        addr,
                        last_seen: now,
                    }],
                    last_seen: now,
                    rounds,
                },
            );
            return Heard {
                new_peer: true,
                changed: true,
            };
        };
        let mut changed = false;
        if entry.name != packet.name {
            entry.name.clone_from(&packet.name);
            changed = true;
        }
        if entry.pairing_port != packet.pairing_port
            || entry.session_tag != packet.session_tag
            || entry.link_port != packet.link_port
            || entry.offer != packet.offer
            || entry.short_channel != packet.short_channel
        {
            entry.pairing_port = packet.pairing_port;
            entry.session_tag = packet.session_tag;
            entry.link_port = packet.link_port;
            entry.offer = packet.offer;
            entry.short_channel = packet.short_channel;
            changed = true;
        }
        entry.last_seen = now;
        entry.rounds.heard(elapsed);
        match entry.sightings.iter_mut().find(|s| s.link == *link) {
            Some(sighting) => {
                if sighting.addr != addr {
                    sighting.addr = addr;
                    changed = true;
                }
                sighting.last_seen = now;
            }
            None => {
                entry.sightings.push(Sighting {
                    link: link.clone(),
                    addr,
                    last_seen: now,
                });
                changed = true;
            }
        }
        Heard {
            new_peer: false,
            changed,
        }
    }

    fn evict_least_heard(&mut self) {
        if let Some(fp) = evict_least(&mut self.entries, |e| (e.rounds.count(), e.last_seen)) {
            tracing::trace!(peer = %fp.short(), "peer table full; forgetting the peer heard least");
            // Bounded: drained by the engine after every packet.
            if self.evicted.len() < MAX_PEERS {
                self.evicted.push(fp);
            }
        }
    }

    /// The peers evicted to make room since the last call (their report state goes too).
    pub(crate) fn take_evicted(&mut self) -> Vec<Fingerprint> {
        std::mem::take(&mut self.evicted)
    }

    /// Forgets addresses not heard from for the expiry time, and peers left without any;
    /// returns the peers forgotten.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Fingerprint> {
        let limit = self.expire_after;
        let mut gone = Vec::new();
        self.entries.retain(|fp, entry| {
            entry
                .sightings
                .retain(|s| now.saturating_duration_since(s.last_seen) <= limit);
            let keep = !entry.sightings.is_empty();
            if !keep {
                gone.push(*fp);
            }
            keep
        });
        gone
    }

    /// The peer as discoverers report it: every current address, IPv4 first.
    pub(crate) fn peer(&self, fingerprint: &Fingerprint) -> Option<Peer> {
        let entry = self.entries.get(fingerprint)?;
        let mut addrs: Vec<SocketAddr> = Vec::with_capacity(entry.sightings.len());
        for s in &entry.sightings {
            if !addrs.contains(&s.addr) {
                addrs.push(s.addr);
            }
        }
        addrs.sort_by_key(SocketAddr::is_ipv6);
        let mut peer = Peer::new(*fingerprint, entry.name.clone(), addrs);
        peer.pairing_port = entry.pairing_port;
        peer.session_tag = entry.session_tag;
        peer.link_port = entry.link_port;
        peer.offer = entry.offer;
        peer.short_channel = entry.short_channel;
        Some(peer)
    }

    /// The name a peer announces, if it is known.
    pub(crate) fn name(&self, fingerprint: &Fingerprint) -> Option<&str> {
        self.entries.get(fingerprint).map(|e| e.name.as_str())
    }

    /// Peers currently remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Distinct peers heard during the session (a peer that expired and came back counts twice).
    pub(crate) fn ever(&self) -> usize {
        self.ever
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Kind;

    fn packet(fp: u8, name: &str) -> Packet {
        Packet::new(
            Kind::Announce,
            Fingerprint::from_bytes([fp; 32]),
            4000,
            name,
        )
    }

    fn link(iface: &str, v6: bool) -> LinkKey {
        LinkKey {
            iface: iface.into(),
            v6,
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_peer_on_two_interfaces_is_one_peer_with_both_addresses() {
        let t0 = Instant::now();
        let mut table = PeerTable::new(Duration::from_secs(15));
        let p = packet(1, "a");
        let first = table.observe(&link("eth0", false), addr("10.0.0.2:4000"), &p, t0);
        assert_eq!(
            first,
            Heard {
                new_peer: true,
                changed: true
            }
        );
        let again = table.observe(&link("eth0", false), addr("10.0.0.2:4000"), &p, t0);
        assert_eq!(
            again,
            Heard {
                new_peer: false,
                changed: false
            }
        );
        let v6 = table.observe(&link("eth0", true), addr("[fe80::2%3]:4000"), &p, t0);
        assert!(v6.changed && !v6.new_peer);
        let wifi = table.observe(&link("wlan0", false), addr("192.168.1.5:4000"), &p, t0);
        assert!(wifi.changed);
        let peer = table.peer(&p.fingerprint).unwrap();
        assert_eq!(
            peer.addrs,
            [
                addr("10.0.0.2:4000"),
                addr("192.168.1.5:4000"),
                addr("[fe80::2%3]:4000")
            ]
        );
        assert_eq!(peer.id, p.fingerprint.device_id());
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn a_moved_peer_replaces_its_address() {
        let t0 = Instant::now();
        let mut table = PeerTable::new(Duration::from_secs(15));
        let p = packet(1, "a");
        table.observe(&link("eth0", false), addr("10.0.0.2:4000"), &p, t0);
        let moved = table.observe(&link("eth0", false), addr("10.0.0.9:4000"), &p, t0);
        assert!(moved.changed);
        assert_eq!(
            table.peer(&p.fingerprint).unwrap().addrs,
            [addr("10.0.0.9:4000")]
        );
    }

    #[test]
    fn advert_and_name_changes_are_changes() {
        let t0 = Instant::now();
        let mut table = PeerTable::new(Duration::from_secs(15));
        let mut p = packet(1, "a");
        table.observe(&link("eth0", false), addr("10.0.0.2:4000"), &p, t0);
        p.pairing_port = Some(7000);
        p.session_tag = Some([9; 8]);
        assert!(
            table
                .observe(&link("eth0", false), addr("10.0.0.2:4000"), &p, t0)
                .changed
        );
        let peer = table.peer(&p.fingerprint).unwrap();
        assert_eq!(peer.pairing_port, Some(7000));
        assert_eq!(peer.session_tag, Some([9; 8]));
        p.name = "b".into();
        assert!(
            table
                .observe(&link("eth0", false), addr("10.0.0.2:4000"), &p, t0)
                .changed
        );
        assert_eq!(table.name(&p.fingerprint), Some("b"));
    }

    #[test]
    fn silent_peers_expire_and_come_back_as_new() {
        let t0 = Instant::now();
        let mut table = PeerTable::new(Duration::from_secs(15));
        let p = packet(1, "a");
        let q = packet(2, "b");
        table.observe(&link("eth0", false), addr("10.0.0.2:4000"), &p, t0);
        table.observe(&link("eth0", true), addr("[fe80::2%3]:4000"), &p, t0);
        table.observe(&link("eth0", false), addr("10.0.0.3:4000"), &q, t0);
        let t1 = t0 + Duration::from_secs(10);
        table.observe(&link("eth0", false), addr("10.0.0.2:4000"), &p, t1);
        let gone = table.expire(t0 + Duration::from_secs(16));
        assert_eq!(gone, [q.fingerprint]);
        // The IPv6 address of p went silent; its IPv4 address keeps it alive.
        assert_eq!(
            table.peer(&p.fingerprint).unwrap().addrs,
            [addr("10.0.0.2:4000")]
        );
        let back = table.observe(
            &link("eth0", false),
            addr("10.0.0.3:4000"),
            &q,
            t0 + Duration::from_secs(17),
        );
        assert!(back.new_peer);
        assert_eq!(table.ever(), 3);
    }

    #[test]
    fn a_device_that_keeps_announcing_outlasts_a_flood() {
        let t0 = Instant::now();
        let mut table = PeerTable::new(Duration::from_secs(15));
        let genuine = packet(0xaa, "genuine");
        // Its start-up burst, then one announcement every 5 s; a new forged identity every
        // 5 ms (200 a second) for ten minutes, each announced twice in a row.
        let schedule = [0u64, 100, 500, 1500];
        for ms in (0..600_000u64).step_by(5) {
            let now = t0 + Duration::from_millis(ms);
            if schedule.contains(&ms) || (ms >= 5000 && ms % 5000 == 0) {
                table.observe(&link("eth0", false), addr("10.0.0.2:4000"), &genuine, now);
            }
            let mut fp = [0u8; 32];
            fp[..8].copy_from_slice(&ms.to_be_bytes());
            let p = Packet::new(Kind::Announce, Fingerprint::from_bytes(fp), 1, "x");
            table.observe(&link("eth0", false), addr("10.0.0.9:1"), &p, now);
            table.observe(&link("eth0", false), addr("10.0.0.9:1"), &p, now);
        }
        assert_eq!(table.len(), MAX_PEERS);
        assert!(table.peer(&genuine.fingerprint).is_some());
    }

    #[test]
    fn a_flood_of_identities_is_bounded() {
        let t0 = Instant::now();
        let mut table = PeerTable::new(Duration::from_secs(15));
        for i in 0..1000u32 {
            let mut fp = [0u8; 32];
            fp[..4].copy_from_slice(&i.to_be_bytes());
            let p = Packet::new(Kind::Answer, Fingerprint::from_bytes(fp), 1, "x");
            table.observe(
                &link("eth0", false),
                addr("10.0.0.2:1"),
                &p,
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        assert_eq!(table.len(), MAX_PEERS);
        assert_eq!(table.take_evicted().len(), MAX_PEERS);
        // The newest survive.
        let mut newest = [0u8; 32];
        newest[..4].copy_from_slice(&999u32.to_be_bytes());
        assert!(table.peer(&Fingerprint::from_bytes(newest)).is_some());
    }
}
