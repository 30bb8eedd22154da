//! Telling peers where we saw them (the seed's "UDP discovery failure mitigation", first half).
//!
//! When we hear a peer at a new address we connect to its confirmation listener (TLS pinned to
//! the fingerprint it announced, so only the owner of that key hears us) and report the source
//! address of its packet. Its `peer-observed` resolver then self-confirms that address.
//!
//! The target comes from an unverified datagram, so reports are bounded: only sightings that
//! pass the [`gate`](crate::gate) (key heard twice from the source, one offer per target per
//! 30 s) are offered, and only private addresses on the receiving interface's subnet; then one
//! at a time, at most one started a second, from a short queue that drops the oldest, a few
//! attempts per address.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use localpair_core::confirm::{ScopedIp, report_observation};
use localpair_core::{Fingerprint, Identity};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Reports in flight at once: one. With one start a second and a 1.5 s time limit, a second
/// slot would only ever serve a target that does not answer — a forged one.
const CONCURRENT: usize = 1;
/// Reports waiting; the oldest is dropped beyond this (a real LAN needs one per peer address,
/// and a dropped one is offered again when its target's 30 s are over).
const QUEUE: usize = 32;
/// Attempts per (peer, listener address).
const ATTEMPTS: u8 = 3;
/// Wait before retrying a failed report (on the next packet heard after it): the gate's
/// per-target window, so a retry is never what breaks it.
const RETRY_AFTER: Duration = crate::gate::PER_TARGET;
/// Reports started per second at most, in total: every report is a TCP connection and a TLS
/// handshake to an address an unverified packet named, so whatever the network sends, this
/// device opens at most one such connection a second.
const PER_SECOND: usize = 1;
/// Most (peer, listener) report states kept. States of evicted peers are dropped with them;
/// this bounds the rest (256 peers with four addresses each).
const MAX_STATE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) peer: Fingerprint,
    pub(crate) listener: SocketAddr,
    pub(crate) seen: IpAddr,
}

#[derive(Debug, Clone, Copy)]
struct State {
    attempts: u8,
    ok: bool,
    busy: bool,
    last: Instant,
}

pub(crate) type Done = (Report, Result<(), localpair_core::Error>);

#[derive(Debug)]
pub(crate) struct Reporter {
    identity: Arc<Identity>,
    timeout: Duration,
    enabled: bool,
    queue: VecDeque<Report>,
    running: JoinSet<Done>,
    state: HashMap<(Fingerprint, SocketAddr), State>,
    recent: VecDeque<Instant>,
    pub(crate) ok: u64,
    pub(crate) failed: u64,
}

impl Reporter {
    pub(crate) fn new(identity: Arc<Identity>, timeout: Duration, enabled: bool) -> Self {
        Self {
            identity,
            timeout,
            enabled,
            queue: VecDeque::new(),
            running: JoinSet::new(),
            state: HashMap::new(),
            recent: VecDeque::new(),
            ok: 0,
            failed: 0,
        }
    }

    /// A packet of `report.peer` arrived from `report.seen`; queue a report if this address
    /// has not been reported yet, or its last report failed a while ago.
    pub(crate) fn offer(&mut self, report: Report, now: Instant) {
        if !self.enabled
            || report.listener.port() == 0
            || !localpair_core::interfaces::is_private(report.seen)
            || self.ipv4_covers(&report)
        {
            return;
        }
        let key = (report.peer, report.listener);
        match self.state.get_mut(&key) {
            Some(s)
                if s.ok
                    || s.busy
                    || s.attempts >= ATTEMPTS
                    || now.saturating_duration_since(s.last) < RETRY_AFTER => {}
            Some(s) => {
                s.busy = true;
                self.queue.push_back(report);
            }
            None => {
                if self.state.len() >= MAX_STATE {
                    self.drop_oldest_idle_state();
                }
                self.state.insert(
                    key,
                    State {
                        attempts: 0,
                        ok: false,
                        busy: true,
                        last: now,
                    },
                );
                self.queue.push_back(report);
            }
        }
        if self.queue.len() > QUEUE
            && let Some(dropped) = self.queue.pop_front()
        {
            tracing::debug!(listener = %dropped.listener, "observation report queue full; dropped the oldest");
            self.state.remove(&(dropped.peer, dropped.listener));
        }
    }

    /// Forgets the report state (not running, not queued) last touched longest ago.
    fn drop_oldest_idle_state(&mut self) {
        let oldest = self
            .state
            .iter()
            .filter(|(_, s)| !s.busy)
            .min_by_key(|(_, s)| s.last)
            .map(|(k, _)| *k);
        if let Some(key) = oldest {
            self.state.remove(&key);
        }
    }

    /// Starts queued reports while fewer than the limits are running or recently started.
    pub(crate) fn pump(&mut self, now: Instant) {
        while self.running.len() < CONCURRENT {
            while self
                .recent
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1))
            {
                self.recent.pop_front();
            }
            if self.recent.len() >= PER_SECOND {
                return;
            }
            let Some(report) = self.queue.pop_front() else {
                return;
            };
            if self.ipv4_covers(&report) {
                self.state.remove(&(report.peer, report.listener));
                continue;
            }
            self.recent.push_back(now);
            let identity = Arc::clone(&self.identity);
            let timeout = self.timeout;
            self.running.spawn(async move {
                // The receiver works out the scope of a link-local address itself: our
                // interface index means nothing on its side.
                let seen = ScopedIp {
                    ip: report.seen,
                    scope: 0,
                };
                let result =
                    report_observation(&identity, report.listener, report.peer, seen, timeout)
                        .await;
                (report, result)
            });
        }
    }

    /// Whether `report` is an IPv6 link-local observation of a peer whose IPv4 address is being or
    /// was reported: the peer-observed resolver wants the LAN address, and every report costs a
    /// TLS handshake (N² of them on a busy LAN), so link-local is reported only where there is no
    /// IPv4.
    fn ipv4_covers(&self, report: &Report) -> bool {
        let link_local_v6 = matches!(report.seen, IpAddr::V6(v6) if v6.is_unicast_link_local());
        link_local_v6
            && self.state.iter().any(|((peer, listener), state)| {
                *peer == report.peer && listener.is_ipv4() && (state.ok || state.busy)
            })
    }

    /// When queued reports held back by the rate limit may start.
    pub(crate) fn next_slot(&self) -> Option<Instant> {
        // With every slot busy, the end of a running report wakes the engine instead (a slot
        // in the past here would make it spin until then).
        if self.queue.is_empty()
            || self.recent.len() < PER_SECOND
            || self.running.len() >= CONCURRENT
        {
            return None;
        }
        self.recent.front().map(|t| *t + Duration::from_secs(1))
    }

    /// Whether reports are running (so `next_done` can make progress).
    pub(crate) fn is_running(&self) -> bool {
        !self.running.is_empty()
    }

    /// The next finished report; pending forever when none is running.
    pub(crate) async fn next_done(&mut self) -> Option<Done> {
        match self.running.join_next().await {
            Some(Ok(done)) => Some(done),
            // A report task cannot panic short of a bug in the TLS stack; count it as failed.
            Some(Err(error)) => {
                tracing::debug!(%error, "observation report task ended abnormally");
                self.failed += 1;
                None
            }
            None => None,
        }
    }

    pub(crate) fn finished(&mut self, (report, result): Done, now: Instant) {
        let ok = result.is_ok();
        match result {
            Ok(()) => {
                self.ok += 1;
                tracing::debug!(peer = %report.peer.short(), listener = %report.listener, seen = %report.seen, "told peer where we saw it");
            }
            Err(error) => {
                self.failed += 1;
                tracing::debug!(peer = %report.peer.short(), listener = %report.listener, %error, "observation report failed");
            }
        }
        if let Some(state) = self.state.get_mut(&(report.peer, report.listener)) {
            state.busy = false;
            state.ok = ok;
            state.attempts = state.attempts.saturating_add(1);
            state.last = now;
        }
    }

    /// A peer expired or was evicted: its addresses may be reported again when it comes back.
    pub(crate) fn forget(&mut self, peer: &Fingerprint) {
        self.state.retain(|(fp, _), s| fp != peer || s.busy);
    }

    /// Waits (bounded) for running reports, then aborts the rest.
    pub(crate) async fn shutdown(&mut self, grace: Duration) {
        self.queue.clear();
        let _ = tokio::time::timeout(grace, async {
            while self.running.join_next().await.is_some() {}
        })
        .await;
        self.running.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter() -> Reporter {
        let identity = Arc::new(Identity::ephemeral("t").unwrap());
        Reporter::new(identity, Duration::from_secs(1), true)
    }

    fn report(fp: u8, listener: &str) -> Report {
        let listener: SocketAddr = listener.parse().unwrap();
        Report {
            peer: Fingerprint::from_bytes([fp; 32]),
            listener,
            seen: listener.ip(),
        }
    }

    #[test]
    fn one_report_per_address_and_only_private_ones() {
        let now = Instant::now();
        let mut r = reporter();
        r.offer(report(1, "10.0.0.2:4000"), now);
        r.offer(report(1, "10.0.0.2:4000"), now);
        r.offer(report(1, "10.0.0.2:0"), now);
        r.offer(report(2, "8.8.8.8:4000"), now);
        assert_eq!(r.queue.len(), 1);
        // The peer moved: the new address is reported too.
        r.offer(report(1, "10.0.0.3:4000"), now);
        assert_eq!(r.queue.len(), 2);
        let mut off = Reporter::new(Arc::clone(&r.identity), Duration::from_secs(1), false);
        off.offer(report(1, "10.0.0.2:4000"), now);
        assert!(off.queue.is_empty());
    }

    #[test]
    fn link_local_is_reported_only_without_ipv4() {
        let now = Instant::now();
        let mut r = reporter();
        // IPv6 alone: reported.
        r.offer(report(1, "[fe80::1]:4000"), now);
        assert_eq!(r.queue.len(), 1);
        // IPv4 first: the link-local sighting of the same peer adds nothing.
        r.offer(report(2, "10.0.0.2:4000"), now);
        r.offer(report(2, "[fe80::2]:4000"), now);
        assert_eq!(r.queue.len(), 2);
        // A link-local report queued before the IPv4 one is dropped when its turn comes.
        r.offer(report(1, "10.0.0.1:4000"), now);
        let queued: Vec<String> = r.queue.iter().map(|q| q.listener.to_string()).collect();
        assert_eq!(queued, ["[fe80::1]:4000", "10.0.0.2:4000", "10.0.0.1:4000"]);
        assert!(r.ipv4_covers(&report(1, "[fe80::1]:4000")));
    }

    #[test]
    fn the_queue_is_bounded() {
        let now = Instant::now();
        let mut r = reporter();
        for i in 0..100u8 {
            r.offer(report(i, "10.0.0.2:4000"), now);
        }
        assert_eq!(r.queue.len(), QUEUE);
        // The dropped ones may be offered again.
        assert_eq!(r.state.len(), QUEUE);
    }

    #[tokio::test]
    async fn starts_are_rate_limited() {
        let now = Instant::now();
        let mut r = reporter();
        for i in 0..30u8 {
            // Unroutable documentation-range port on loopback: nothing listens, nothing leaves.
            r.offer(report(i, "127.0.0.1:9"), now);
        }
        // 127.0.0.1 is not a private LAN address: nothing is queued at all.
        assert!(r.queue.is_empty());
        for i in 0..30u8 {
            r.queue.push_back(report(i, "127.0.0.1:9"));
        }
        r.pump(now);
        assert_eq!(r.running.len(), CONCURRENT);
        r.running.shutdown().await;
        r.pump(now);
        r.running.shutdown().await;
        r.pump(now);
        r.running.shutdown().await;
        assert_eq!(r.recent.len(), PER_SECOND);
        r.pump(now);
        assert!(r.running.is_empty());
        assert_eq!(r.next_slot(), Some(now + Duration::from_secs(1)));
        r.pump(now + Duration::from_secs(1));
        assert_eq!(r.running.len(), CONCURRENT);
        r.running.shutdown().await;
    }
}
