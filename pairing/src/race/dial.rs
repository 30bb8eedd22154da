//! The dials of a race: one per address found for the device sought, a few at a time, each
//! failed one repeated with back-off while repeating can help.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use localpair_core::Peer;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{DialRecord, FIRST_BACKOFF, MAX_BACKOFF, RaceOptions, Target};
use crate::error::Error;
use crate::link::Link;

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whether a failed dial is worth repeating: the listener took the connection and then dropped
/// it, or it did not answer in time (a full listener, a lost packet). A refused or unreachable
/// address, or another key, will not change by asking again.
pub(super) fn worth_retrying(error: &Error) -> bool {
    use localpair_core::Error as Core;
    match error {
        Error::Core(Core::Timeout { .. }) => true,
        Error::Core(Core::Io { op, .. }) => !op.starts_with("connect"),
        // The host makes a source that erred wait; a genuine joiner after a typo waits too.
        Error::Refused {
            refusal: crate::Refusal::TooManyAttempts,
            ..
        } => true,
        _ => false,
    }
}

/// Whether a failed dial says something that asking again will not change: nothing listens
/// there, no route leads there, or another key answered. "No host at that address" (no ARP
/// answer) is not final: the device may have moved within the subnet, where a scan finds it.
pub(super) fn definitive(error: &Error) -> bool {
    use localpair_core::Error as Core;
    use std::io::ErrorKind;
    match error {
        Error::Core(Core::Io { op, source }) if op.starts_with("connect") => matches!(
            source.kind(),
            ErrorKind::ConnectionRefused | ErrorKind::NetworkUnreachable
        ),
        Error::Core(Core::KeyMismatch { .. }) => true,
        _ => false,
    }
}

pub(super) type Dialed = (usize, DialRecord, Result<Link, Error>);

pub(super) struct Dialer {
    pub(super) options: RaceOptions,
    pub(super) started: Instant,
    pub(super) slots: Arc<Semaphore>,
    /// Per address: where it came from and how many dials it had.
    pub(super) addrs: Vec<(SocketAddr, String, u32)>,
    pub(super) index: HashMap<SocketAddr, usize>,
    /// Dials waiting for their back-off, by address index.
    pub(super) retries: Vec<(Instant, usize)>,
    pub(super) dials: JoinSet<Dialed>,
    pub(super) records: Vec<DialRecord>,
    /// Whether every failed dial so far failed definitively.
    pub(super) all_definitive: bool,
    /// Whether no dial so far reached a listener (each timed out or failed definitively).
    pub(super) all_unanswered: bool,
}

impl Dialer {
    pub(super) fn offer<T: Target>(&mut self, target: &Arc<T>, peer: &Peer) {
        if !target.matches(peer) {
            return;
        }
        for addr in &peer.addrs {
            let Some(dial) = target.dial_addr(peer, *addr) else {
                continue;
            };
            if self.index.contains_key(&dial) {
                continue;
            }
            self.index.insert(dial, self.addrs.len());
            self.addrs.push((dial, peer.strategy.clone(), 0));
            self.spawn(target, self.addrs.len() - 1);
        }
    }

    pub(super) fn spawn<T: Target>(&mut self, target: &Arc<T>, index: usize) {
        let (addr, via, tries) = &mut self.addrs[index];
        *tries += 1;
        let (addr, via) = (*addr, via.clone());
        let target = Arc::clone(target);
        let slots = Arc::clone(&self.slots);
        let limit = self.options.dial_timeout;
        let started = self.started;
        self.dials.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let began = Instant::now();
            let result = tokio::time::timeout(limit, target.dial(addr))
                .await
                .unwrap_or_else(|_| Err(Error::timeout(format!("dialling {addr}"), limit)));
            let record = DialRecord {
                addr,
                via,
                started_ms: millis(began - started),
                elapsed_ms: millis(began.elapsed()),
                error: result.as_ref().err().map(ToString::to_string),
            };
            (index, record, result)
        });
    }

    pub(super) fn schedule_retry(&mut self, index: usize) {
        let tries = self.addrs[index].2;
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << tries.saturating_sub(1).min(5))
            .min(MAX_BACKOFF);
        self.retries.push((Instant::now() + backoff, index));
    }

    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.retries.iter().map(|(at, _)| *at).min()
    }

    pub(super) fn due_retries<T: Target>(&mut self, target: &Arc<T>) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.retries.drain(..).partition(|(at, _)| *at <= now);
        self.retries = later;
        for (_, index) in due {
            self.spawn(target, index);
        }
    }

    /// Nothing in flight or scheduled, and every address failed.
    pub(super) fn idle_and_failed(&self) -> bool {
        self.dials.is_empty() && self.retries.is_empty() && !self.records.is_empty()
    }
}
