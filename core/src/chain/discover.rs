//! The discoverer chain.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::builder::Chain;
use super::collect::{Collector, Live};
use super::engine::{self, Step, Style};
use super::{Attempt, Failures};
use crate::context::Context;
use crate::discoverer::{PeerDiscoverer, PeerSink, Sighting};
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
    /// Distinct peers (by key fingerprint) in the order they were first seen, at most
    /// [`MAX_PEERS`](super::MAX_PEERS) of them.
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
        let live = live.map_or(Live::Nobody, Live::Sightings);
        self.run_discovery(ctx, goal, live).await
    }

    pub(super) async fn run_discovery(
        &self,
        ctx: &Context,
        goal: DiscoveryGoal,
        live: Live,
    ) -> DiscoverReport {
        let started = Instant::now();
        let steps: Vec<(String, Step<Sighting>)> = self
            .steps
            .iter()
            .map(|(name, discoverer)| {
                let discoverer = Arc::clone(discoverer);
                let ctx = ctx.clone();
                let step: Step<Sighting> = Box::new(move |tx, index, stop| {
                    Box::pin(async move {
                        discoverer
                            .discover(&ctx, PeerSink::new(index, tx, stop))
                            .await
                    })
                });
                (name.clone(), step)
            })
            .collect();
        let mut collector = Collector::new(
            self.steps.iter().map(|(n, _)| n.clone()).collect(),
            ctx.identity().fingerprint(),
            started,
            goal,
            live,
        );
        let style = Style {
            cooperative: true,
            window_ends_empty: true,
        };
        let run = engine::run(self.plan, style, steps, &mut collector).await;
        DiscoverReport {
            peers: collector.into_peers(),
            attempts: run.attempts,
            failures: run.failures,
            elapsed: started.elapsed(),
        }
    }
}
