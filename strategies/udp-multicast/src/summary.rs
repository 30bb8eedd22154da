//! Counters of a session and the sentence that explains a silence.

use std::fmt::Write as _;
use std::time::Duration;

/// What happened on one link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkStats {
    /// Datagrams the OS accepted.
    pub(crate) sent: u64,
    /// Datagrams the OS refused.
    pub(crate) refused: u64,
    /// The last refusal.
    pub(crate) last_error: Option<String>,
    /// Our own packets that came back through multicast loopback.
    pub(crate) echoes: u64,
    /// Valid packets from other devices.
    pub(crate) heard: u64,
    /// Datagrams that did not parse.
    pub(crate) malformed: u64,
    /// Datagrams over the size cap.
    pub(crate) oversized: u64,
    /// Valid packets whose source is not on the interface's subnet.
    pub(crate) off_subnet: u64,
}

impl LinkStats {
    pub(crate) fn add(&mut self, other: &Self) {
        self.sent += other.sent;
        self.refused += other.refused;
        if other.last_error.is_some() {
            self.last_error.clone_from(&other.last_error);
        }
        self.echoes += other.echoes;
        self.heard += other.heard;
        self.malformed += other.malformed;
        self.oversized += other.oversized;
        self.off_subnet += other.off_subnet;
    }
}

/// A session's counters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    /// Label (`eth0 (IPv4)`) and counters of every link used.
    pub(crate) links: Vec<(String, LinkStats)>,
    /// Links that could not be opened, with the OS error.
    pub(crate) open_errors: Vec<String>,
    /// Distinct peers heard.
    pub(crate) peers: usize,
    /// Observation reports accepted by peers / failed.
    pub(crate) reports_ok: u64,
    pub(crate) reports_failed: u64,
    /// Session length.
    pub(crate) elapsed: Duration,
}

impl Summary {
    pub(crate) fn total(&self) -> LinkStats {
        let mut total = LinkStats::default();
        for (_, stats) in &self.links {
            total.add(stats);
        }
        total
    }

    /// The counts, e.g. "sent 6 announcements on eth0 (IPv4), 6 on eth0 (IPv6) in 5.0 s; heard
    /// 0 packets from peers and 0 of our own (multicast loopback)".
    pub(crate) fn counts(&self) -> String {
        let total = self.total();
        let mut out = String::new();
        for (i, (label, stats)) in self.links.iter().enumerate() {
            if i == 0 {
                let _ = write!(out, "sent {} announcements on {label}", stats.sent);
            } else {
                let _ = write!(out, ", {} on {label}", stats.sent);
            }
        }
        if self.links.is_empty() {
            out.push_str("sent nothing (no link open)");
        }
        let _ = write!(out, " in {:.1} s", self.elapsed.as_secs_f64());
        for (label, stats) in &self.links {
            if stats.refused > 0 {
                let _ = write!(
                    out,
                    "; {} sends refused on {label} ({})",
                    stats.refused,
                    stats.last_error.as_deref().unwrap_or("unknown error")
                );
            }
        }
        for error in &self.open_errors {
            let _ = write!(out, "; could not open {error}");
        }
        let _ = write!(
            out,
            "; heard {} packets from {} peer{} and {} of our own (multicast loopback)",
            total.heard,
            self.peers,
            if self.peers == 1 { "" } else { "s" },
            total.echoes
        );
        let ignored = [
            (total.malformed, "malformed"),
            (total.oversized, "oversized"),
            (total.off_subnet, "from outside the interface's subnet"),
        ];
        let ignored: Vec<String> = ignored
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        if !ignored.is_empty() {
            let _ = write!(out, "; ignored {}", ignored.join(", "));
        }
        out
    }

    /// The likely cause when no peer was heard.
    pub(crate) fn silence(&self) -> &'static str {
        let total = self.total();
        if total.sent == 0 && total.refused > 0 {
            "every send was refused: a firewall on this device blocks multicast, or the interface cannot send it"
        } else if total.sent == 0 {
            "nothing could be sent"
        } else if total.echoes == 0 {
            "not even our own packets came back: multicast looks filtered on this device or network"
        } else if total.off_subnet > 0 {
            "the only announcements heard came from outside our subnet: the other devices are on a different network"
        } else if total.malformed + total.oversized > 0 {
            "only unreadable packets arrived: another program may use this group and port (change [strategies.udp-multicast] port)"
        } else {
            "our packets go out, but no peer answered: no other device is discovering right now, or the network does not pass multicast between devices (Wi-Fi client isolation, IGMP snooping)"
        }
    }
}

/// Adds a link's counters to the entry of its label.
pub(crate) fn retire(list: &mut Vec<(String, LinkStats)>, label: String, stats: &LinkStats) {
    match list.iter_mut().find(|(l, _)| *l == label) {
        Some((_, existing)) => existing.add(stats),
        None => list.push((label, stats.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(stats: LinkStats, peers: usize) -> Summary {
        Summary {
            links: vec![("eth0 (IPv4)".into(), stats)],
            peers,
            elapsed: Duration::from_millis(5000),
            ..Summary::default()
        }
    }

    #[test]
    fn counts_read_as_a_sentence() {
        let s = summary(
            LinkStats {
                sent: 5,
                echoes: 5,
                malformed: 2,
                ..LinkStats::default()
            },
            0,
        );
        assert_eq!(
            s.counts(),
            "sent 5 announcements on eth0 (IPv4) in 5.0 s; heard 0 packets from 0 peers and 5 \
             of our own (multicast loopback); ignored 2 malformed"
        );
    }

    #[test]
    fn refusals_are_explained() {
        let s = summary(
            LinkStats {
                refused: 4,
                last_error: Some("Operation not permitted (os error 1)".into()),
                ..LinkStats::default()
            },
            0,
        );
        assert!(
            s.counts()
                .contains("4 sends refused on eth0 (IPv4) (Operation not permitted")
        );
        assert!(s.silence().contains("firewall"));
    }

    #[test]
    fn silence_diagnoses() {
        let sent = |echoes, off_subnet| {
            summary(
                LinkStats {
                    sent: 5,
                    echoes,
                    off_subnet,
                    ..LinkStats::default()
                },
                0,
            )
            .silence()
        };
        assert!(sent(0, 0).contains("filtered"));
        assert!(sent(5, 1).contains("different network"));
        assert!(sent(5, 0).contains("no peer answered"));
    }
}
