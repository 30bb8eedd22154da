//! The chain runner: runs strategies in the configured order and records every attempt.
//!
//! One engine serves both concerns. Modes: `sequential` (the next strategy starts when the
//! previous failed, found nothing or timed out), `staggered` (RFC 8305: the next starts after a
//! short delay without stopping the earlier ones; the first good answer wins and the rest are
//! cancelled) and `all` (everything at once, answers merged). Each strategy has its own timeout and
//! the chain has one overall deadline.

mod builder;
mod collect;
mod discover;
mod engine;
mod resolve;
mod watch;

use std::time::Duration;

use serde::Serialize;

use crate::error::{FailureKind, OnError, StrategyError};

pub use builder::Chain;
pub use collect::MAX_PEERS;
pub use discover::{DiscoverReport, DiscovererChain, DiscoveryGoal, PeerFilter};
pub use resolve::{ResolveReport, ResolverChain};
pub use watch::{Change, DiscoveryEvent, Subscription, WATCH_FOR, Watch};

/// How one strategy's attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Outcome {
    /// It produced results.
    Ok,
    /// It ran to the end and found nothing.
    Empty,
    /// It failed.
    Error,
    /// Its own timeout or the chain deadline expired first.
    Timeout,
    /// It was stopped because another strategy already answered.
    Cancelled,
    /// It never started (an earlier strategy answered, or the chain stopped or ran out of time).
    Skipped,
}

impl Outcome {
    /// The outcome as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Empty => "empty",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
        }
    }
}

/// The record of one strategy in one chain run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Attempt {
    /// Strategy name.
    pub strategy: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Start, from the start of the chain.
    pub started_ms: Option<u64>,
    /// Run time.
    pub elapsed_ms: u64,
    /// Number of results it produced.
    pub found: usize,
    /// The error, or why it was skipped or stopped.
    pub error: Option<String>,
    /// How specific the error is, for choosing which one to report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    /// A remark on an attempt that did not fail, e.g. why its answer did not end the chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Attempt {
    fn pending(strategy: String) -> Self {
        Self {
            strategy,
            outcome: Outcome::Skipped,
            started_ms: None,
            elapsed_ms: 0,
            found: 0,
            error: None,
            failure: None,
            note: None,
        }
    }
}

/// Timing and mode of one chain run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// How strategies are started.
    pub mode: crate::config::ChainMode,
    /// Delay between starts in staggered mode.
    pub stagger: Duration,
    /// Limit for one strategy.
    pub strategy_timeout: Option<Duration>,
    /// Limit for the chain.
    pub deadline: Duration,
}

impl Plan {
    /// A plan: `mode`, the stagger delay, the per-strategy limit (if any), the chain's deadline.
    pub fn new(
        mode: crate::config::ChainMode,
        stagger: Duration,
        strategy_timeout: Option<Duration>,
        deadline: Duration,
    ) -> Self {
        Self {
            mode,
            stagger,
            strategy_timeout,
            deadline,
        }
    }

    /// The plan a `[resolve]`/`[discover]` section describes.
    pub fn from_config(config: &crate::config::ChainConfig) -> Self {
        Self {
            mode: config.mode,
            stagger: config.stagger(),
            strategy_timeout: config.strategy_timeout(),
            deadline: config.deadline(),
        }
    }

    /// The same plan with another deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
}

/// The errors of a run, most specific first, with the attempts behind them.
#[derive(Debug, Default)]
pub struct Failures {
    errors: Vec<(String, StrategyError)>,
}

impl Failures {
    fn push(&mut self, strategy: String, error: StrategyError) {
        self.errors.push((strategy, error));
    }

    /// The most specific error: the highest [`FailureKind`], the earliest strategy on ties.
    pub fn most_specific(&self) -> Option<(&str, &StrategyError)> {
        self.errors
            .iter()
            .enumerate()
            .max_by_key(|(i, (_, e))| (e.kind(), std::cmp::Reverse(*i)))
            .map(|(_, (s, e))| (s.as_str(), e))
    }

    /// The error that stopped the chain, if one did.
    pub fn stopped_by(&self) -> Option<(&str, &StrategyError)> {
        self.errors
            .iter()
            .find(|(_, e)| e.on_error() == OnError::Stop)
            .map(|(s, e)| (s.as_str(), e))
    }

    /// All errors in the order they happened.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &StrategyError)> {
        self.errors.iter().map(|(s, e)| (s.as_str(), e))
    }

    /// Whether no strategy failed.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

/// One line summarising why a chain produced nothing, naming each attempt's outcome.
pub fn explain(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| {
            let mut line = format!("{}: {}", a.strategy, a.outcome.as_str());
            if let Some(error) = &a.error {
                line.push_str(&format!(" ({error})"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;
