//! What a discovery session keeps: one entry per key fingerprint, bounded in peers and in
//! addresses per peer, whatever the network sends.
//!
//! Peers are merged by their full fingerprint, never by the 8-byte device id: a forged
//! announcement that carries someone's id under another key is another peer, and cannot add
//! addresses to the real one or lend it its key.
//!
//! When a table is full the entry worth least goes: for peers, one the goal does not look for
//! (a goal with a `matching` filter protects what it matches), sighted the fewest times,
//! longest ago; for one peer's addresses, the one carried by the
//! fewest sightings, longest ago. A flood of one-shot forged identities or spoofed source
//! addresses therefore churns through the entries it created itself, while a device that keeps
//! announcing (and so is sighted again and again) stays.
//!
//! Each peer remembers which steps still see it; when the last of them reports it lost (or
//! ends), a watching session removes it from its live list. A session that only reports keeps
//! every peer it saw.

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::discover::DiscoveryGoal;
use super::engine::Goal;
use super::watch::Publisher;
use crate::discoverer::Sighting;
use crate::identity::Fingerprint;
use crate::peer::{MAX_ADDRS, Peer};

/// Most peers one discovery session keeps. A LAN where pairing happens holds a few dozen
/// devices at most; 256 leaves room for a big office floor while a flood of forged identities
/// (a new key per packet) costs at most 256 entries of about 1 KiB.
pub const MAX_PEERS: usize = 256;

/// A peer and what the collector knows about its sightings.
struct Tracked {
    peer: Peer,
    /// Position in first-seen order (the report lists peers in that order).
    first: u64,
    /// Sightings of this key so far.
    sightings: u32,
    /// Sequence number of the last sighting.
    last: u64,
    /// Whether the goal matched it.
    matched: bool,
    /// Whether it may not be evicted: the goal names what it looks for and this is it.
    protected: bool,
    /// For each address in `peer.addrs`: how many sightings carried it, and the last one that did.
    hits: Vec<(SocketAddr, u32, u64)>,
    /// The steps that reported it and have not said they lost it (a handful: one per strategy).
    seen_by: Vec<usize>,
}

/// Who hears about changes while the session runs.
#[derive(Debug)]
pub(super) enum Live {
    /// Nobody: the report at the end is all.
    Nobody,
    /// Each sighting that brings a new peer or new addresses (dropped when the channel is full).
    Sightings(mpsc::Sender<Peer>),
    /// A live list, with lost peers removed from it (and from the session's table).
    List(Publisher),
}

impl From<Publisher> for Live {
    fn from(publisher: Publisher) -> Self {
        Self::List(publisher)
    }
}

pub(super) struct Collector {
    names: Vec<String>,
    own: Fingerprint,
    started: Instant,
    goal: DiscoveryGoal,
    peers: HashMap<Fingerprint, Tracked>,
    seq: u64,
    matched: usize,
    evicted: u64,
    live: Live,
}

impl Collector {
    pub(super) fn new(
        names: Vec<String>,
        own: Fingerprint,
        started: Instant,
        goal: DiscoveryGoal,
        live: Live,
    ) -> Self {
        Self {
            names,
            own,
            started,
            goal,
            peers: HashMap::new(),
            seq: 0,
            matched: 0,
            evicted: 0,
            live,
        }
    }

    /// The peers kept, in the order they were first seen.
    pub(super) fn into_peers(self) -> Vec<Peer> {
        if self.evicted > 0 {
            tracing::debug!(
                evicted = self.evicted,
                kept = self.peers.len(),
                "discovery forgot peers to stay within {MAX_PEERS}"
            );
        }
        let mut kept: Vec<Tracked> = self.peers.into_values().collect();
        kept.sort_by_key(|t| t.first);
        kept.into_iter().map(|t| t.peer).collect()
    }

    fn matches(&self, peer: &Peer) -> bool {
        self.goal.matching.as_ref().is_none_or(|m| m(peer))
    }

    fn reached(&self) -> bool {
        self.goal.count.is_some_and(|n| self.matched >= n)
    }

    fn offer_live(&self, peer: &Peer) {
        if let Live::Sightings(live) = &self.live {
            // A full channel drops the sighting: the report has it.
            let _ = live.try_send(peer.clone());
        }
    }

    fn publish(&self, peer: &Peer) {
        if let Live::List(list) = &self.live {
            list.put(peer);
        }
    }

    fn watching(&self) -> bool {
        matches!(self.live, Live::List(_))
    }

    /// Step `index` no longer sees `fingerprint`: when no step does, a watching session
    /// forgets the peer.
    fn lost(&mut self, index: usize, fingerprint: &Fingerprint) {
        let Some(tracked) = self.peers.get_mut(fingerprint) else {
            return;
        };
        tracked.seen_by.retain(|step| *step != index);
        if tracked.seen_by.is_empty() && self.watching() {
            self.forget(fingerprint);
        }
    }

    fn forget(&mut self, fingerprint: &Fingerprint) {
        if let Some(tracked) = self.peers.remove(fingerprint) {
            if tracked.matched {
                self.matched = self.matched.saturating_sub(1);
            }
            if let Live::List(list) = &self.live {
                list.remove(fingerprint);
            }
        }
    }

    /// Makes room for a new peer; `false` when every entry is protected (the new one is dropped).
    fn make_room(&mut self) -> bool {
        if self.peers.len() < MAX_PEERS {
            return true;
        }
        let victim = self
            .peers
            .iter()
            .filter(|(_, t)| !t.protected)
            .min_by_key(|(_, t)| (t.sightings, t.last))
            .map(|(fp, _)| *fp);
        match victim {
            Some(fp) => {
                self.forget(&fp);
                self.evicted += 1;
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, index: usize, mut peer: Peer) {
        if !self.make_room() {
            return;
        }
        peer.addrs.truncate(MAX_ADDRS);
        let hits = peer.addrs.iter().map(|a| (*a, 1, self.seq)).collect();
        let matched = self.matches(&peer);
        if matched {
            self.matched += 1;
        }
        let protected = matched && self.goal.matching.is_some();
        self.offer_live(&peer);
        self.publish(&peer);
        self.peers.insert(
            peer.fingerprint,
            Tracked {
                peer,
                first: self.seq,
                sightings: 1,
                last: self.seq,
                matched,
                protected,
                hits,
                seen_by: vec![index],
            },
        );
    }

    fn merge(&mut self, index: usize, peer: Peer) {
        let seq = self.seq;
        let watching = self.watching();
        let Some(tracked) = self.peers.get_mut(&peer.fingerprint) else {
            return;
        };
        if !tracked.seen_by.contains(&index) {
            tracked.seen_by.push(index);
        }
        let before = watching.then(|| tracked.peer.clone());
        tracked.sightings = tracked.sightings.saturating_add(1);
        tracked.last = seq;
        let mut fresh: Vec<SocketAddr> = Vec::new();
        for addr in &peer.addrs {
            if fresh.len() < MAX_ADDRS
                && !tracked.peer.addrs.contains(addr)
                && !fresh.contains(addr)
            {
                fresh.push(*addr);
            }
        }
        // Room for the new addresses: the least-carried, longest-unseen ones go first.
        let over = (tracked.peer.addrs.len() + fresh.len()).saturating_sub(MAX_ADDRS);
        for _ in 0..over {
            let Some(worst) = tracked
                .hits
                .iter()
                .enumerate()
                .filter(|(_, (a, _, _))| !peer.addrs.contains(a))
                .min_by_key(|(_, (_, n, last))| (*n, *last))
                .map(|(i, _)| i)
            else {
                break;
            };
            let (addr, _, _) = tracked.hits.swap_remove(worst);
            tracked.peer.addrs.retain(|a| *a != addr);
        }
        for (addr, n, last) in &mut tracked.hits {
            if peer.addrs.contains(addr) {
                *n = n.saturating_add(1);
                *last = seq;
            }
        }
        let sighting = peer.clone();
        tracked.peer.absorb(peer);
        let mut added = false;
        for addr in fresh {
            if tracked.peer.addrs.contains(&addr) {
                tracked.hits.push((addr, 1, seq));
                added = true;
            }
        }
        // A later sighting can complete a peer (its session tag, say) so that it now matches.
        let now_matches =
            !tracked.matched && self.goal.matching.as_ref().is_none_or(|m| m(&tracked.peer));
        if now_matches {
            tracked.matched = true;
            tracked.protected = self.goal.matching.is_some();
            self.matched += 1;
        }
        let changed = before.is_some_and(|before| before != tracked.peer);
        let now = changed.then(|| tracked.peer.clone());
        if added {
            self.offer_live(&sighting);
        }
        if let Some(now) = now {
            self.publish(&now);
        }
    }
}

impl Goal<(usize, Sighting)> for Collector {
    fn item(&mut self, (index, sighting): (usize, Sighting)) -> bool {
        let mut peer = match sighting {
            Sighting::Found(peer) => peer,
            Sighting::Lost(fingerprint) => {
                self.lost(index, &fingerprint);
                return false;
            }
        };
        if peer.fingerprint == self.own {
            return false;
        }
        self.seq += 1;
        peer.strategy.clone_from(&self.names[index]);
        peer.found_after = self.started.elapsed();
        if self.peers.contains_key(&peer.fingerprint) {
            self.merge(index, peer);
        } else {
            self.insert(index, peer);
        }
        self.reached()
    }

    fn counts(&self, (_, sighting): &(usize, Sighting)) -> bool {
        matches!(sighting, Sighting::Found(_))
    }

    fn step_done(&mut self, _found: usize) -> bool {
        self.reached()
    }

    fn step_ended(&mut self, index: usize) {
        let seen: Vec<Fingerprint> = self
            .peers
            .iter()
            .filter(|(_, tracked)| tracked.seen_by.contains(&index))
            .map(|(fingerprint, _)| *fingerprint)
            .collect();
        for fingerprint in seen {
            self.lost(index, &fingerprint);
        }
    }

    fn until(&self) -> Option<tokio_util::sync::CancellationToken> {
        self.goal.until.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Fingerprint;

    fn collector() -> Collector {
        Collector::new(
            vec!["a".into()],
            Fingerprint::from_bytes([0; 32]),
            Instant::now(),
            DiscoveryGoal::default(),
            Live::Nobody,
        )
    }

    fn key(n: u32) -> Fingerprint {
        let mut fp = [9u8; 32];
        fp[..4].copy_from_slice(&n.to_be_bytes());
        Fingerprint::from_bytes(fp)
    }

    fn peer(fp: Fingerprint, addrs: &[&str]) -> Peer {
        Peer::new(
            fp,
            "p".into(),
            addrs.iter().map(|a| a.parse().unwrap()).collect(),
        )
    }

    #[test]
    fn merges_by_the_whole_fingerprint_not_the_device_id() {
        let mut c = collector();
        let real = key(1);
        let mut forged_bytes = *real.as_bytes();
        forged_bytes[31] ^= 1; // same first 8 bytes: same device id, another key
        let forged = Fingerprint::from_bytes(forged_bytes);
        assert_eq!(real.device_id(), forged.device_id());
        c.item((0, Sighting::Found(peer(forged, &["10.0.0.66:1"]))));
        c.item((0, Sighting::Found(peer(real, &["10.0.0.2:4000"]))));
        c.item((0, Sighting::Found(peer(forged, &["10.0.0.67:1"]))));
        let peers = c.into_peers();
        assert_eq!(peers.len(), 2);
        let genuine = peers.iter().find(|p| p.fingerprint == real).unwrap();
        assert_eq!(genuine.addrs, ["10.0.0.2:4000".parse().unwrap()]);
    }

    #[test]
    fn a_flood_of_identities_keeps_the_peer_that_keeps_announcing() {
        let mut c = collector();
        let genuine = peer(key(0), &["10.0.0.2:4000"]);
        c.item((0, Sighting::Found(genuine.clone())));
        c.item((0, Sighting::Found(genuine.clone())));
        for n in 1..10_000 {
            c.item((0, Sighting::Found(peer(key(n), &["10.0.0.9:1"]))));
            if n % 500 == 0 {
                c.item((0, Sighting::Found(genuine.clone())));
            }
        }
        let peers = c.into_peers();
        assert_eq!(peers.len(), MAX_PEERS);
        assert_eq!(
            peers[0].fingerprint, genuine.fingerprint,
            "first seen stays first"
        );
    }

    #[test]
    fn spoofed_sources_do_not_grow_or_take_over_an_address_list() {
        let mut c = collector();
        let fp = key(7);
        let real = "10.0.0.2:4000";
        // The flood comes first and fills the list; then every sighting of the real device
        // carries its address (beside whatever spoofed one its other link shows at the time).
        for n in 0..10_000u32 {
            let spoofed = format!("[fe80::{:x}:{:x}%2]:4000", n >> 16, n & 0xffff);
            if n < 100 {
                c.item((0, Sighting::Found(peer(fp, &[&spoofed]))));
            } else {
                c.item((0, Sighting::Found(peer(fp, &[real, &spoofed]))));
            }
        }
        let peers = c.into_peers();
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].addrs.len(), MAX_ADDRS);
        assert_eq!(peers[0].addrs[0], real.parse().unwrap());
    }

    #[test]
    fn matched_peers_are_never_evicted() {
        let target = key(424_242);
        let mut c = Collector::new(
            vec!["a".into()],
            Fingerprint::from_bytes([0; 32]),
            Instant::now(),
            DiscoveryGoal {
                count: Some(1),
                matching: Some(std::sync::Arc::new(move |p: &Peer| p.fingerprint == target)),
                until: None,
            },
            Live::Nobody,
        );
        assert!(c.item((0, Sighting::Found(peer(target, &["10.0.0.2:1"])))));
        for n in 0..1000 {
            c.item((0, Sighting::Found(peer(key(n), &["10.0.0.9:1"]))));
        }
        assert!(c.into_peers().iter().any(|p| p.fingerprint == target));
    }
}
