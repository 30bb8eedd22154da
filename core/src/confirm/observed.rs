//! Peer observations: who may post one, and the bounded lists they are kept in.
//!
//! A report comes over a TLS connection anyone on the network can open with a key of its own
//! making, so the listener believes it only from a key it has heard announcing from the very
//! address the report comes from (a discoverer tells it, through [`Confirmer::heard`]), and keeps
//! few per reporter: one client key can no longer fill the list and push the real reports out.
//!
//! [`Confirmer::heard`]: super::Confirmer::heard

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::wire::ScopedIp;
use crate::identity::Fingerprint;
use crate::peer::{Rounds, evict_least};

/// Most peer observations kept. Each names one of our addresses; a device has a few, and a
/// report about an address we do not have is dropped by the resolver anyway.
pub const MAX_OBSERVATIONS: usize = 32;
/// Most observations kept from one reporter: it sees us at one IPv4 and one link-local IPv6
/// address per shared network, so 4 covers two shared networks; past it its oldest goes.
pub const MAX_PER_REPORTER: usize = 4;
/// Most keys remembered as heard announcing: the size of the discoverer's own peer table, which
/// is what feeds this one.
pub const MAX_HEARD_KEYS: usize = 256;
/// Source addresses remembered per heard key: an IPv4 and a link-local IPv6 address on each of
/// up to four shared networks. Spoofed sources under a known key churn through these slots.
pub const MAX_HEARD_SOURCES: usize = 8;
/// Refused reports (from keys never heard) remembered for diagnostics, which show them as "this
/// device hears us but we do not hear it": enough to name the devices of a home network.
pub const MAX_UNHEARD: usize = 8;

/// A peer's report of where it saw us. The scope in `ip` is the reporter's view and means nothing
/// here: resolve it against our own interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Observation {
    /// The address the peer saw our packets come from.
    pub ip: ScopedIp,
    /// The reporting peer's key.
    pub reporter: Fingerprint,
    /// Where the report came from.
    pub reporter_addr: SocketAddr,
    /// When it arrived.
    pub at: Instant,
}

impl Observation {
    /// An observation (for tests and for strategies that learn of one some other way).
    pub fn new(
        ip: ScopedIp,
        reporter: Fingerprint,
        reporter_addr: SocketAddr,
        at: Instant,
    ) -> Self {
        Self {
            ip,
            reporter,
            reporter_addr,
            at,
        }
    }
}

#[derive(Debug)]
struct HeardKey {
    /// Source addresses with the sequence number of the last announcement from each.
    sources: Vec<(IpAddr, u64)>,
    /// Rounds this key was heard in.
    rounds: Rounds,
    last: u64,
}

/// Keys heard announcing, and the reports refused because their key was not among them.
#[derive(Debug, Default)]
pub(super) struct Book {
    heard: HashMap<Fingerprint, HeardKey>,
    seq: u64,
    origin: Option<Instant>,
    unheard: Vec<Observation>,
}

impl Book {
    /// Notes an announcement of `key` from `from`. When full, the key heard in the fewest rounds
    /// (then longest ago) is forgotten, so a flood of forged keys evicts its own.
    pub(super) fn heard(&mut self, key: Fingerprint, from: IpAddr) {
        let elapsed = self.origin.get_or_insert_with(Instant::now).elapsed();
        self.heard_at(key, from, elapsed);
    }

    fn heard_at(&mut self, key: Fingerprint, from: IpAddr, elapsed: std::time::Duration) {
        self.seq += 1;
        let seq = self.seq;
        let from = from.to_canonical();
        if !self.heard.contains_key(&key) && self.heard.len() >= MAX_HEARD_KEYS {
            evict_least(&mut self.heard, |h| (h.rounds.count(), h.last));
        }
        let entry = self.heard.entry(key).or_insert(HeardKey {
            sources: Vec::new(),
            rounds: Rounds::default(),
            last: seq,
        });
        entry.rounds.heard(elapsed);
        entry.last = seq;
        match entry.sources.iter_mut().find(|(ip, _)| *ip == from) {
            Some((_, last)) => *last = seq,
            None => {
                if entry.sources.len() >= MAX_HEARD_SOURCES
                    && let Some(oldest) = entry
                        .sources
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (_, last))| *last)
                        .map(|(i, _)| i)
                {
                    entry.sources.swap_remove(oldest);
                }
                entry.sources.push((from, seq));
            }
        }
    }

    /// Whether `key` was heard announcing from `from`.
    pub(super) fn was_heard(&self, key: &Fingerprint, from: IpAddr) -> bool {
        let from = from.to_canonical();
        self.heard
            .get(key)
            .is_some_and(|h| h.sources.iter().any(|(ip, _)| *ip == from))
    }

    /// Remembers a refused report for diagnostics (one per reporter, newest last, bounded).
    pub(super) fn refused(&mut self, observation: Observation) {
        self.unheard.retain(|o| o.reporter != observation.reporter);
        if self.unheard.len() >= MAX_UNHEARD {
            self.unheard.remove(0);
        }
        self.unheard.push(observation);
    }

    pub(super) fn unheard(&self) -> Vec<Observation> {
        self.unheard.clone()
    }
}

/// Adds `observation` to `list` (newest last): it replaces an older report of the same address,
/// then the reporter's oldest past [`MAX_PER_REPORTER`], then the oldest report of whoever has
/// the most past [`MAX_OBSERVATIONS`].
pub(super) fn admit(list: &mut Vec<Observation>, observation: Observation) {
    list.retain(|o| o.ip != observation.ip);
    let mine = list
        .iter()
        .filter(|o| o.reporter == observation.reporter)
        .count();
    if mine >= MAX_PER_REPORTER
        && let Some(oldest) = list.iter().position(|o| o.reporter == observation.reporter)
    {
        list.remove(oldest);
    }
    if list.len() >= MAX_OBSERVATIONS {
        let mut counts: HashMap<Fingerprint, usize> = HashMap::new();
        for o in list.iter() {
            *counts.entry(o.reporter).or_default() += 1;
        }
        let most = counts.values().copied().max().unwrap_or(0);
        if let Some(oldest) = list.iter().position(|o| counts[&o.reporter] == most) {
            list.remove(oldest);
        }
    }
    list.push(observation);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Fingerprint {
        Fingerprint::from_bytes([n; 32])
    }

    fn seen(n: u8, reporter: u8) -> Observation {
        Observation::new(
            ScopedIp {
                ip: IpAddr::from([10, 0, 0, n]),
                scope: 0,
            },
            key(reporter),
            SocketAddr::from(([10, 0, 0, reporter], 5000)),
            Instant::now(),
        )
    }

    #[test]
    fn one_reporter_cannot_flush_the_list() {
        let mut list = Vec::new();
        admit(&mut list, seen(1, 1));
        for n in 2..200 {
            admit(&mut list, seen(n, 66));
        }
        assert_eq!(list.len(), 1 + MAX_PER_REPORTER);
        assert_eq!(list[0].reporter, key(1));
        assert_eq!(list[0].ip.ip, IpAddr::from([10, 0, 0, 1]));
    }

    #[test]
    fn many_reporters_evict_the_most_prolific_first() {
        let mut list = Vec::new();
        admit(&mut list, seen(1, 1));
        for r in 2..10u8 {
            for n in 0..MAX_PER_REPORTER as u8 {
                admit(&mut list, seen(100 + r * 10 + n, r));
            }
        }
        assert_eq!(list.len(), MAX_OBSERVATIONS);
        assert!(list.iter().any(|o| o.reporter == key(1)));
    }

    #[test]
    fn heard_keys_are_bounded_and_a_regular_announcer_stays() {
        let mut book = Book::default();
        let genuine = key(1);
        let at = IpAddr::from([10, 0, 0, 2]);
        for n in 0..20_000u32 {
            let elapsed = std::time::Duration::from_millis(u64::from(n) * 5);
            // The genuine device every 500 ms; a forged key every 5 ms, announced twice.
            if n % 100 == 0 {
                book.heard_at(genuine, at, elapsed);
            }
            let mut fp = [7u8; 32];
            fp[..4].copy_from_slice(&n.to_be_bytes());
            let forged = Fingerprint::from_bytes(fp);
            book.heard_at(forged, IpAddr::from([10, 0, 0, 9]), elapsed);
            book.heard_at(forged, IpAddr::from([10, 0, 0, 9]), elapsed);
            // Spoofed sources under the genuine key churn through its source slots...
            if n < 100 {
                book.heard_at(genuine, IpAddr::from([10, 0, 1, n as u8]), elapsed);
            }
        }
        assert_eq!(book.heard.len(), MAX_HEARD_KEYS);
        // ...while its own address, heard again and again, stays.
        assert!(book.was_heard(&genuine, at));
        assert!(!book.was_heard(&genuine, IpAddr::from([10, 0, 0, 3])));
        assert!(book.heard[&genuine].sources.len() <= MAX_HEARD_SOURCES);
    }

    #[test]
    fn refused_reports_are_bounded() {
        let mut book = Book::default();
        for r in 0..50 {
            book.refused(seen(1, r));
            book.refused(seen(2, r));
        }
        let unheard = book.unheard();
        assert_eq!(unheard.len(), MAX_UNHEARD);
        assert_eq!(unheard.last().map(|o| o.reporter), Some(key(49)));
    }
}
