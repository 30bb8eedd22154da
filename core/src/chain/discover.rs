//! The discoverer chain.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::builder::Chain;
use super::engine::{self, Goal, Step, Style};
use super::{Attempt, Failures};
use crate::context::Context;
use crate::discoverer::{PeerDiscoverer, PeerSink};
use crate::identity::DeviceId;
use crate::peer::Peer;

/// Discoverers in order, with the plan that runs them.
pub type DiscovererChain = Chain<dyn PeerDiscoverer>;

/// A predicate over peers.
pub type PeerFilter = Arc<dyn Fn(&Peer) -> bool + Send + Sync>;

/// When a discovery session has found enough.
#[derive(Clone, Default)]
pub struct DiscoveryGoal {
    /// Stop after this many distinct matching peers; `None` runs until the deadline.
    pub count: Option<usize>,
    /// Only peers for which this returns `true` count (e.g. the host whose session tag matches).
    pub matching: Option<PeerFilter>,
    /// Stop when this is cancelled (the caller got what it wanted some other way).
    pub until: Option<CancellationToken>,
}

impl fmt::Debug for DiscoveryGoal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveryGoal")
            .field("count", &self.count)
            .field("matching", &self.matching.is_some())
            .field("until", &self.until.is_some())
            .finish()
    }
}

/// What a discovery session produced.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct DiscoverReport {
    /// Distinct peers in the order they were first seen.
    pub peers: Vec<Peer>,
    /// One record per strategy in the order configured.
    pub attempts: Vec<Attempt>,
    /// The errors behind failed attempts.
    #[serde(skip)]
    pub failures: Failures,
    /// Run time of the whole session.
    #[serde(rename = "elapsed_ms", serialize_with = "super::super::serde_millis")]
    pub elapsed: Duration,
}

impl Chain<dyn PeerDiscoverer> {
    /// Runs a discovery session until the goal is met, `goal.until` is cancelled or the deadline
    /// passes. Each sighting that brings a new peer or new addresses is also offered to `live`,
    /// stamped with the strategy that made it (dropped if that channel is full: the report has
    /// them all).
    pub async fn discover(
        &self,
        ctx: &Context,
        goal: DiscoveryGoal,
        live: Option<mpsc::Sender<Peer>>,
    ) -> DiscoverReport {
        let started = Instant::now();
        let steps: Vec<(String, Step<Peer>)> = self
            .steps
            .iter()
            .map(|(name, discoverer)| {
                let discoverer = Arc::clone(discoverer);
                let ctx = ctx.clone();
                let step: Step<Peer> = Box::new(move |tx, index, stop| {
                    Box::pin(async move {
                        discoverer
                            .discover(&ctx, PeerSink::new(index, tx, stop))
                            .await
                    })
                });
                (name.clone(), step)
            })
            .collect();
        let mut collector = Collector {
            names: self.steps.iter().map(|(n, _)| n.clone()).collect(),
            own_id: ctx.identity().device_id(),
            started,
            goal,
            peers: Vec::new(),
            by_id: HashMap::new(),
            matched: HashSet::new(),
            live,
        };
        let style = Style {
            cooperative: true,
            window_ends_empty: true,
        };
        let run = engine::run(self.plan, style, steps, &mut collector).await;
        DiscoverReport {
            peers: collector.peers,
            attempts: run.attempts,
            failures: run.failures,
            elapsed: started.elapsed(),
        }
    }
}

struct Collector {
    names: Vec<String>,
    own_id: DeviceId,
    started: Instant,
    goal: DiscoveryGoal,
    peers: Vec<Peer>,
    by_id: HashMap<DeviceId, usize>,
    matched: HashSet<DeviceId>,
    live: Option<mpsc::Sender<Peer>>,
}

impl Goal<(usize, Peer)> for Collector {
    fn item(&mut self, (index, mut peer): (usize, Peer)) -> bool {
        if peer.id == self.own_id {
            return false;
        }
        peer.strategy.clone_from(&self.names[index]);
        peer.found_after = self.started.elapsed();
        if let Some(&slot) = self.by_id.get(&peer.id) {
            if peer
                .addrs
                .iter()
                .any(|a| !self.peers[slot].addrs.contains(a))
                && let Some(live) = &self.live
            {
                let _ = live.try_send(peer.clone());
            }
            self.peers[slot].absorb(peer);

            // A later sighting can complete a peer (its session tag, say) so that it now matches.
            let id = self.peers[slot].id;
            if !self.matched.contains(&id) && self.matches(&self.peers[slot]) {
                self.matched.insert(id);
            }
            return self.reached();
        }
        if self.matches(&peer) {
            self.matched.insert(peer.id);
        }
        if let Some(live) = &self.live {
            let _ = live.try_send(peer.clone());
        }
        self.by_id.insert(peer.id, self.peers.len());
        self.peers.push(peer);
        self.reached()
    }

    fn step_done(&mut self, _found: usize) -> bool {
        self.reached()
    }

    fn until(&self) -> Option<CancellationToken> {
        self.goal.until.clone()
    }
}

impl Collector {
    fn matches(&self, peer: &Peer) -> bool {
        self.goal.matching.as_ref().is_none_or(|m| m(peer))
    }

    fn reached(&self) -> bool {
        self.goal.count.is_some_and(|n| self.matched.len() >= n)
    }
}
