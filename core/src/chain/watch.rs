//! A discovery session that runs until stopped and keeps a live list of the peers around: what
//! an application shows as "devices nearby".
//!
//! The session publishes its list; each [`Subscription`] turns the difference between the list
//! and what it last delivered into [`DiscoveryEvent`]s. Nothing is queued per event, so a
//! subscriber that falls behind loses nothing and costs nothing: it gets the net change (a peer
//! found and lost again meanwhile is not reported at all; a peer updated five times is
//! reported once, as it is now). The list is bounded like every discovery session's
//! ([`MAX_PEERS`](super::MAX_PEERS)).
//!
//! A peer is *lost* once every discoverer that reported it has said it no longer sees it
//! ([`PeerSink::lost`](crate::discoverer::PeerSink::lost)) or has ended: udp-multicast says so
//! after three announcement intervals of silence, mDNS when the peer says goodbye or its
//! records expire.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::discover::{DiscoverReport, DiscovererChain, DiscoveryGoal};
use crate::context::Context;
use crate::identity::Fingerprint;
use crate::peer::Peer;

/// How long a watching session runs at most: until stopped, in practice.
pub const WATCH_FOR: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long [`Watch::stop`] waits for the session to close its sockets.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// What changed about a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Change {
    /// A peer not in the list before (or back after it was lost).
    Found,
    /// Something it shows changed: name, addresses, ports, session tag.
    Updated,
    /// No discoverer sees it any more.
    Lost,
}

/// One change to the live list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DiscoveryEvent {
    /// What changed.
    pub change: Change,
    /// The peer as it is now (for `Lost`: as it was last seen).
    pub peer: Peer,
}

/// The list a session publishes: each peer with the revision that last changed it.
type Table = Arc<Mutex<HashMap<Fingerprint, (u64, Peer)>>>;

fn lock(table: &Table) -> std::sync::MutexGuard<'_, HashMap<Fingerprint, (u64, Peer)>> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The session's side of the list: dropped when the session ends, which subscribers see.
#[derive(Debug)]
pub(super) struct Publisher {
    table: Table,
    revision: watch::Sender<u64>,
}

impl Publisher {
    fn new() -> (Self, Table, watch::Receiver<u64>) {
        let table = Table::default();
        let (revision, changes) = watch::channel(0);
        let publisher = Self {
            table: Arc::clone(&table),
            revision,
        };
        (publisher, table, changes)
    }

    fn bump(&self) -> u64 {
        let mut now = 0;
        self.revision.send_modify(|revision| {
            *revision += 1;
            now = *revision;
        });
        now
    }

    /// The peer is new or changed.
    pub(super) fn put(&self, peer: &Peer) {
        let revision = self.bump();
        lock(&self.table).insert(peer.fingerprint, (revision, peer.clone()));
    }

    /// The peer is gone from the list.
    pub(super) fn remove(&self, fingerprint: &Fingerprint) {
        if lock(&self.table).remove(fingerprint).is_some() {
            self.bump();
        }
    }
}

/// A running discovery session with a live list; stopped when dropped.
#[derive(Debug)]
pub struct Watch {
    table: Table,
    changes: watch::Receiver<u64>,
    stop: CancellationToken,
    task: Option<JoinHandle<DiscoverReport>>,
}

impl DiscovererChain {
    /// Starts a session that announces this device and keeps a live list of peers until the
    /// returned [`Watch`] is stopped or dropped. The chain's order and mode apply; its deadline
    /// and per-strategy limits do not (a watch runs until stopped). Must be called inside a
    /// tokio runtime.
    pub fn watch(&self, ctx: &Context) -> Watch {
        let mut plan = self.plan().with_deadline(WATCH_FOR);
        plan.strategy_timeout = None;
        let chain = self.clone().with_plan(plan);
        let (publisher, table, changes) = Publisher::new();
        let stop = CancellationToken::new();
        let goal = DiscoveryGoal {
            until: Some(stop.clone()),
            ..DiscoveryGoal::default()
        };
        let ctx = ctx.clone();
        let task =
            tokio::spawn(async move { chain.run_discovery(&ctx, goal, publisher.into()).await });
        Watch {
            table,
            changes,
            stop,
            task: Some(task),
        }
    }
}

impl Watch {
    /// A new subscriber: its first events are a `Found` for every peer in the list now.
    pub fn subscribe(&self) -> Subscription {
        let mut changes = self.changes.clone();
        changes.mark_changed();
        Subscription {
            table: Arc::clone(&self.table),
            changes,
            delivered: HashMap::new(),
            ready: VecDeque::new(),
        }
    }

    /// The peers in the list now, in the order they were first seen.
    pub fn peers(&self) -> Vec<Peer> {
        let mut peers: Vec<Peer> = lock(&self.table)
            .values()
            .map(|(_, peer)| peer.clone())
            .collect();
        peers.sort_by_key(|peer| peer.found_after);
        peers
    }

    /// Stops the session and returns its report, or `None` when it did not wind down within
    /// 2 s (it is aborted then, which closes its sockets all the same).
    pub async fn stop(mut self) -> Option<DiscoverReport> {
        self.stop.cancel();
        let task = self.task.take()?;
        let abort = task.abort_handle();
        match tokio::time::timeout(STOP_WAIT, task).await {
            Ok(Ok(report)) => Some(report),
            Ok(Err(_)) => None,
            Err(_) => {
                abort.abort();
                None
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One reader of a [`Watch`]'s live list.
#[derive(Debug)]
pub struct Subscription {
    table: Table,
    changes: watch::Receiver<u64>,
    /// What this subscriber was told last, by key: the revision and the peer.
    delivered: HashMap<Fingerprint, (u64, Peer)>,
    ready: VecDeque<DiscoveryEvent>,
}

impl Subscription {
    /// The next change, waiting for one; `None` once the session has ended and every change
    /// was delivered (the last ones say every peer was lost).
    pub async fn next(&mut self) -> Option<DiscoveryEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            let ended = self.changes.changed().await.is_err();
            self.changes.mark_unchanged();
            self.diff();
            if ended && self.ready.is_empty() {
                return None;
            }
        }
    }

    /// Queues the difference between the list and what was delivered (at most one event per
    /// peer in either list, both bounded).
    fn diff(&mut self) {
        let table = lock(&self.table);
        let mut found = Vec::new();
        for (fingerprint, (revision, peer)) in table.iter() {
            let change = match self.delivered.get(fingerprint) {
                Some((told, _)) if told == revision => continue,
                Some(_) => Change::Updated,
                None => Change::Found,
            };
            self.delivered
                .insert(*fingerprint, (*revision, peer.clone()));
            let event = DiscoveryEvent {
                change,
                peer: peer.clone(),
            };
            match change {
                Change::Found => found.push(event),
                _ => self.ready.push_back(event),
            }
        }
        found.sort_by_key(|event| event.peer.found_after);
        self.ready.extend(found);
        let gone: Vec<Fingerprint> = self
            .delivered
            .keys()
            .filter(|fingerprint| !table.contains_key(*fingerprint))
            .copied()
            .collect();
        for fingerprint in gone {
            if let Some((_, peer)) = self.delivered.remove(&fingerprint) {
                self.ready.push_back(DiscoveryEvent {
                    change: Change::Lost,
                    peer,
                });
            }
        }
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
