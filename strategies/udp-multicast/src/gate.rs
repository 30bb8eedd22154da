//! Which sightings deserve an observation report: the defence against being used as a reflector.
//!
//! An announcement is an unverified datagram: its source address and its confirm port are
//! whatever the sender wrote. Without a gate, one forged packet (a fresh key, a third party's
//! address and port) makes every listening device open a TCP connection and a TLS handshake to
//! that third party. So a report is offered only when
//!
//! - the same key has been heard at least [`HEARD_BEFORE_REPORT`] times from the same source
//!   address (one forged packet is not enough; a real device repeats itself within its start-up
//!   burst), and
//! - nothing was offered to the same address and port in the last [`PER_TARGET`], whatever key
//!   named it (fresh keys cannot multiply the connections to one target).
//!
//! The reporter adds the global limit (one connection a second in total, `report::PER_SECOND`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use localpair_core::Fingerprint;
use localpair_core::peer::{Rounds, evict_least};
use tokio::time::Instant;

/// Times a key must be heard from one source address before a report goes there: two, so a
/// single forged datagram never causes a connection, while a real device (whose start-up burst
/// sends four packets within 1.5 s, and whose steady announcements repeat every few seconds)
/// is reported at its second packet.
pub(crate) const HEARD_BEFORE_REPORT: u32 = 2;
/// Least time between two reports offered to the same address and port: a real peer needs one
/// report per address, and a retry after 30 s is soon enough for a failed one.
pub(crate) const PER_TARGET: Duration = Duration::from_secs(30);
/// Most (key, source address) pairs counted. A flood of forged keys or spoofed sources evicts
/// the pairs heard in the fewest rounds (`localpair_core::peer::ROUND`), longest ago — its own —
/// so a device that keeps announcing keeps its count. 1024 pairs are 256 peers with four
/// addresses each.
pub(crate) const MAX_SOURCES: usize = 1024;
/// Most targets remembered within [`PER_TARGET`]; when all are that recent, nothing new is
/// offered until one ages out (which caps offers at 1024 per 30 s even before the reporter's own
/// rate limit).
pub(crate) const MAX_TARGETS: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Count {
    times: u32,
    rounds: Rounds,
    last: Instant,
}

/// How often a (key, source address) pair has been heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Packets.
    pub(crate) times: u32,
    /// Distinct rounds.
    pub(crate) rounds: u32,
    /// This packet began a new round.
    pub(crate) new_round: bool,
}

#[derive(Debug)]
pub(crate) struct Gate {
    sources: HashMap<(Fingerprint, IpAddr), Count>,
    targets: HashMap<SocketAddr, Instant>,
    origin: Instant,
}

impl Gate {
    pub(crate) fn new(origin: Instant) -> Self {
        Self {
            sources: HashMap::new(),
            targets: HashMap::new(),
            origin,
        }
    }

    /// Counts a packet of `key` from `source`.
    pub(crate) fn heard(&mut self, key: Fingerprint, source: IpAddr, now: Instant) -> Tally {
        let pair = (key, source);
        if !self.sources.contains_key(&pair) && self.sources.len() >= MAX_SOURCES {
            evict_least(&mut self.sources, |c| (c.rounds.count(), c.last));
        }
        let count = self.sources.entry(pair).or_insert(Count {
            times: 0,
            rounds: Rounds::default(),
            last: now,
        });
        count.times = count.times.saturating_add(1);
        count.last = now;
        let new_round = count
            .rounds
            .heard(now.saturating_duration_since(self.origin));
        Tally {
            times: count.times,
            rounds: count.rounds.count(),
            new_round,
        }
    }

    /// Whether a report to `target` may be offered now, after the key was heard `times` from its
    /// source; if so, the target's slot is taken for [`PER_TARGET`].
    pub(crate) fn may_report(&mut self, target: SocketAddr, times: u32, now: Instant) -> bool {
        if times < HEARD_BEFORE_REPORT {
            return false;
        }
        if let Some(last) = self.targets.get(&target)
            && now.saturating_duration_since(*last) < PER_TARGET
        {
            return false;
        }
        if !self.targets.contains_key(&target) && self.targets.len() >= MAX_TARGETS {
            self.targets
                .retain(|_, last| now.saturating_duration_since(*last) < PER_TARGET);
            if self.targets.len() >= MAX_TARGETS {
                return false;
            }
        }
        self.targets.insert(target, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> Fingerprint {
        let mut fp = [3u8; 32];
        fp[..4].copy_from_slice(&n.to_be_bytes());
        Fingerprint::from_bytes(fp)
    }

    const SRC: [u8; 4] = [10, 0, 0, 50];

    #[test]
    fn one_packet_is_not_enough() {
        let now = Instant::now();
        let mut gate = Gate::new(now);
        let target = SocketAddr::from((SRC, 7777));
        let once = gate.heard(key(1), SRC.into(), now).times;
        assert!(!gate.may_report(target, once, now));
        let twice = gate.heard(key(1), SRC.into(), now).times;
        assert!(gate.may_report(target, twice, now));
    }

    #[test]
    fn fresh_keys_get_one_report_per_target_per_window() {
        let t0 = Instant::now();
        let mut gate = Gate::new(t0);
        let target = SocketAddr::from((SRC, 7777));
        let mut offered = Vec::new();
        for n in 0..600u32 {
            let now = t0 + Duration::from_millis(u64::from(n) * 100);
            gate.heard(key(n), SRC.into(), now);
            let times = gate.heard(key(n), SRC.into(), now).times;
            if gate.may_report(target, times, now) {
                offered.push(now - t0);
            }
        }
        // 60 s of fresh keys naming one target: at 0 s and 30 s.
        assert_eq!(offered, [Duration::ZERO, PER_TARGET]);
    }

    #[test]
    fn tables_are_bounded_and_a_regular_source_keeps_its_count() {
        let t0 = Instant::now();
        let mut gate = Gate::new(t0);
        let genuine = key(u32::MAX);
        let home = IpAddr::from([10, 0, 0, 2]);
        for n in 0..20_000u32 {
            let now = t0 + Duration::from_millis(u64::from(n));
            // The genuine device announces every 500 ms; forged keys come in quick pairs, from
            // spoofed sources, some under the genuine key.
            if n % 500 == 0 {
                gate.heard(genuine, home, now);
            }
            let spoofed = IpAddr::from([10, 0, (n >> 8) as u8, n as u8]);
            gate.heard(if n % 2 == 0 { key(n) } else { genuine }, spoofed, now);
            gate.heard(key(n), SRC.into(), now);
            let times = gate.heard(key(n), SRC.into(), now).times;
            gate.may_report(SocketAddr::from((spoofed, 1)), times, now);
        }
        assert_eq!(gate.sources.len(), MAX_SOURCES);
        assert!(gate.targets.len() <= MAX_TARGETS);
        let later = t0 + Duration::from_secs(25);
        let tally = gate.heard(genuine, home, later);
        assert_eq!(tally.times, 41);
        assert_eq!(tally.rounds, 21);
    }
}
