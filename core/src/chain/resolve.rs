//! The resolver chain.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::builder::Chain;
use super::engine::{self, Goal, Step, Style};
use super::{Attempt, Failures, Outcome};
use crate::candidate::{Candidate, rank_candidates};
use crate::config::ChainMode;
use crate::context::Context;
use crate::resolver::AddressResolver;

/// Resolvers in order, with the plan that runs them.
pub type ResolverChain = Chain<dyn AddressResolver>;

/// What a resolver chain run produced.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct ResolveReport {
    /// Candidates, best first, duplicates merged.
    pub candidates: Vec<Candidate>,
    /// One record per strategy in the order configured.
    pub attempts: Vec<Attempt>,
    /// The errors behind failed attempts.
    #[serde(skip)]
    pub failures: Failures,
    /// Run time of the whole chain.
    #[serde(rename = "elapsed_ms", serialize_with = "super::super::serde_millis")]
    pub elapsed: Duration,
}

impl Chain<dyn AddressResolver> {
    /// Runs the chain.
    pub async fn resolve(&self, ctx: &Context) -> ResolveReport {
        let started = Instant::now();
        let names: Vec<String> = self.steps.iter().map(|(n, _)| n.clone()).collect();
        let steps: Vec<(String, Step<Candidate>)> = self
            .steps
            .iter()
            .map(|(name, resolver)| {
                let resolver = Arc::clone(resolver);
                let ctx = ctx.clone();
                let step: Step<Candidate> = Box::new(move |tx, index, _stop| {
                    Box::pin(async move {
                        for candidate in resolver.resolve(&ctx).await? {
                            if tx.send((index, candidate)).await.is_err() {
                                break;
                            }
                        }
                        Ok(())
                    })
                });
                (name.clone(), step)
            })
            .collect();
        let mut goal = FirstLanOrAll {
            names,
            merge_all: self.plan.mode == ChainMode::All,
            candidates: Vec::new(),
        };
        let style = Style {
            cooperative: false,
            window_ends_empty: false,
        };
        let mut run = engine::run(self.plan, style, steps, &mut goal).await;
        for attempt in &mut run.attempts {
            let own = goal
                .candidates
                .iter()
                .filter(|c| c.strategy == attempt.strategy);
            if attempt.outcome == Outcome::Ok && own.clone().all(|c| !c.is_lan()) {
                attempt.note = Some(WEAK_ANSWER.to_owned());
            }
        }
        ResolveReport {
            candidates: rank_candidates(goal.candidates),
            attempts: run.attempts,
            failures: run.failures,
            elapsed: started.elapsed(),
        }
    }
}

/// Why a strategy that answered did not end a sequential or staggered chain.
const WEAK_ANSWER: &str = "only VPN, virtual-bridge or loopback addresses, which LAN peers \
                           rarely reach: kept, ranked last, and the chain went on";

/// Ends the chain at the first answer holding a LAN-class address, or merges everything in mode
/// `all`. An answer made only of VPN tunnel or virtual-bridge addresses is weak: a full-tunnel
/// VPN holds the default route, so the outbound route names it although LAN peers cannot reach
/// it. Such an answer is kept and the chain goes on.
struct FirstLanOrAll {
    names: Vec<String>,
    merge_all: bool,
    candidates: Vec<Candidate>,
}

impl Goal<(usize, Candidate)> for FirstLanOrAll {
    fn item(&mut self, (index, mut candidate): (usize, Candidate)) -> bool {
        candidate.strategy.clone_from(&self.names[index]);
        self.candidates.push(candidate);
        false
    }

    fn step_done(&mut self, found: usize) -> bool {
        !self.merge_all && found > 0 && self.candidates.iter().any(Candidate::is_lan)
    }
}
