//! The engine behind both chains: starts steps per the plan, collects their items through one
//! bounded channel, stops them on timeout, deadline or goal, and records an [`Attempt`] each.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Attempt, Failures, Outcome, Plan};
use crate::config::ChainMode;
use crate::error::{OnError, StrategyError};

/// How long a stopped step may take to wind down (close sockets, report) before it is aborted.
const STOP_GRACE: Duration = Duration::from_millis(300);
/// Capacity of the item channel; strategies wait when the chain falls behind.
const ITEM_QUEUE: usize = 64;

pub(super) type StepFuture = Pin<Box<dyn Future<Output = Result<(), StrategyError>> + Send>>;

/// A step: given the item sender, its index and its stop token, the future that runs it.
pub(super) type Step<T> =
    Box<dyn FnOnce(mpsc::Sender<(usize, T)>, usize, CancellationToken) -> StepFuture + Send>;

/// What the caller wants out of the run.
pub(super) trait Goal<T> {
    /// Takes one item; `true` when the chain has what it needs.
    fn item(&mut self, item: T) -> bool;
    /// Whether `item` counts as something its step found (a discoverer's loss notice does not).
    fn counts(&self, _item: &T) -> bool {
        true
    }
    /// A step ended without error after producing `found` items; `true` when that is enough.
    fn step_done(&mut self, found: usize) -> bool;
    /// Step `index` ended, however it ended (what it reported no longer holds).
    fn step_ended(&mut self, _index: usize) {}
    /// A token whose cancellation ends the run as if the goal were met.
    fn until(&self) -> Option<CancellationToken> {
        None
    }
}

/// Behaviour that differs between resolvers and discoverers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Style {
    /// Discoverers wind down on their stop token; resolvers are simply dropped.
    pub(super) cooperative: bool,
    /// A discoverer stopped at the end of its window with nothing found is "empty", not "timeout".
    pub(super) window_ends_empty: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopCause {
    Timeout,
    Deadline,
    Superseded,
    ChainStopped,
}

struct Running {
    token: CancellationToken,
    task: AbortHandle,
    started: Instant,
    timeout_at: Option<Instant>,
    stopping: Option<(StopCause, Instant)>,
}

/// A step result: `None` when a non-cooperative step was stopped before it answered.
type Joined = (usize, Option<Result<(), StrategyError>>);

pub(super) struct Run {
    pub(super) attempts: Vec<Attempt>,
    pub(super) failures: Failures,
}

struct Engine<'g, T> {
    plan: Plan,
    style: Style,
    origin: Instant,
    goal: &'g mut (dyn Goal<(usize, T)> + Send),
    attempts: Vec<Attempt>,
    failures: Failures,
    pending: VecDeque<(usize, Step<T>)>,
    running: Vec<Option<Running>>,
    tasks: JoinSet<Joined>,
    tx: mpsc::Sender<(usize, T)>,
    rx: mpsc::Receiver<(usize, T)>,
    next_start: Option<Instant>,
    finished: bool,
}

pub(super) async fn run<T: Send + 'static>(
    plan: Plan,
    style: Style,
    steps: Vec<(String, Step<T>)>,
    goal: &mut (dyn Goal<(usize, T)> + Send),
) -> Run {
    let (tx, rx) = mpsc::channel(ITEM_QUEUE);
    let mut attempts = Vec::with_capacity(steps.len());
    let mut pending = VecDeque::with_capacity(steps.len());
    for (index, (name, step)) in steps.into_iter().enumerate() {
        attempts.push(Attempt::pending(name));
        pending.push_back((index, step));
    }
    let running = (0..attempts.len()).map(|_| None).collect();
    let mut engine = Engine {
        plan,
        style,
        origin: Instant::now(),
        goal,
        attempts,
        failures: Failures::default(),
        pending,
        running,
        tasks: JoinSet::new(),
        tx,
        rx,
        next_start: None,
        finished: false,
    };
    engine.drive().await;
    Run {
        attempts: engine.attempts,
        failures: engine.failures,
    }
}

impl<T: Send + 'static> Engine<'_, T> {
    async fn drive(&mut self) {
        let deadline = self.origin + self.plan.deadline;
        let until = self.goal.until().unwrap_or_default();
        if self.plan.mode == ChainMode::All {
            while !self.pending.is_empty() {
                self.start_next();
            }
        } else {
            self.start_next();
        }
        loop {
            if self.tasks.is_empty() {
                if self.finished || self.pending.is_empty() {
                    break;
                }
                self.start_next();
                continue;
            }
            let step_timer = self.next_step_timer();
            let stagger_due = self
                .next_start
                .filter(|_| !self.finished && !self.pending.is_empty());
            tokio::select! {
                biased;
                Some((index, item)) = self.rx.recv() => {
                    self.take_item(index, item);
                }
                Some(joined) = self.tasks.join_next() => {
                    self.drain();
                    match joined {
                        Ok((index, result)) => self.step_ended(index, result),
                        Err(join_error) => self.step_panicked(&join_error),
                    }
                }
                () = sleep_until_opt(step_timer) => self.expire_steps(),
                () = sleep_until_opt(stagger_due) => self.start_next(),
                () = tokio::time::sleep_until(deadline), if !self.finished => {
                    self.finished = true;
                    self.stop_all(StopCause::Deadline);
                }
                () = until.cancelled(), if !self.finished => {
                    self.finished = true;
                    self.stop_all(StopCause::Superseded);
                }
            }
        }
        self.drain();
        self.skip_pending();
    }

    fn take_item(&mut self, index: usize, item: T) {
        let item = (index, item);
        if self.goal.counts(&item) {
            self.attempts[index].found += 1;
        }
        let reached = self.goal.item(item);
        if reached && !self.finished {
            self.finished = true;
            self.stop_all(StopCause::Superseded);
        }
    }

    /// Items sent before a step ended are still queued when its end is seen; they count first.
    fn drain(&mut self) {
        while let Ok((index, item)) = self.rx.try_recv() {
            self.take_item(index, item);
        }
    }

    fn start_next(&mut self) {
        let Some((index, step)) = self.pending.pop_front() else {
            return;
        };
        let now = Instant::now();
        let token = CancellationToken::new();
        let future = step(self.tx.clone(), index, token.clone());
        let task = if self.style.cooperative {
            self.tasks.spawn(async move { (index, Some(future.await)) })
        } else {
            let stop = token.clone();
            self.tasks.spawn(async move {
                tokio::select! {
                    result = future => (index, Some(result)),
                    () = stop.cancelled() => (index, None),
                }
            })
        };
        self.attempts[index].started_ms = Some(millis(now - self.origin));
        self.running[index] = Some(Running {
            token,
            task,
            started: now,
            timeout_at: self.plan.strategy_timeout.map(|t| now + t),
            stopping: None,
        });
        self.next_start = (self.plan.mode == ChainMode::Staggered).then(|| now + self.plan.stagger);
    }

    fn next_step_timer(&self) -> Option<Instant> {
        self.running
            .iter()
            .flatten()
            .filter_map(|r| match r.stopping {
                Some((_, abort_at)) => Some(abort_at),
                None => r.timeout_at,
            })
            .min()
    }

    fn expire_steps(&mut self) {
        let now = Instant::now();
        for index in 0..self.running.len() {
            let Some(running) = &self.running[index] else {
                continue;
            };
            match running.stopping {
                Some((cause, abort_at)) if abort_at <= now => self.abort(index, cause),
                None if running.timeout_at.is_some_and(|t| t <= now) => {
                    self.stop(index, StopCause::Timeout);
                    if self.plan.mode == ChainMode::Staggered {
                        self.next_start = Some(now);
                    }
                }
                _ => {}
            }
        }
    }

    fn stop(&mut self, index: usize, cause: StopCause) {
        if let Some(running) = &mut self.running[index]
            && running.stopping.is_none()
        {
            running.token.cancel();
            running.stopping = Some((cause, Instant::now() + STOP_GRACE));
        }
    }

    fn stop_all(&mut self, cause: StopCause) {
        for index in 0..self.running.len() {
            self.stop(index, cause);
        }
    }

    /// A step that ignored its stop token past the grace period: its task is aborted, which drops
    /// its future and with it every socket it held.
    fn abort(&mut self, index: usize, cause: StopCause) {
        if let Some(running) = self.running[index].take() {
            running.task.abort();
            self.goal.step_ended(index);
            let outcome = self.stopped_outcome(cause, self.attempts[index].found);
            let attempt = &mut self.attempts[index];
            attempt.elapsed_ms = millis(running.started.elapsed());
            attempt.outcome = outcome;
            attempt.error = Some(format!(
                "did not stop within {} ms; aborted",
                STOP_GRACE.as_millis()
            ));
        }
    }

    fn stopped_outcome(&self, cause: StopCause, found: usize) -> Outcome {
        if found > 0 {
            return Outcome::Ok;
        }
        match cause {
            StopCause::Timeout | StopCause::Deadline if self.style.window_ends_empty => {
                Outcome::Empty
            }
            StopCause::Timeout | StopCause::Deadline => Outcome::Timeout,
            StopCause::Superseded | StopCause::ChainStopped => Outcome::Cancelled,
        }
    }

    fn step_ended(&mut self, index: usize, result: Option<Result<(), StrategyError>>) {
        let Some(running) = self.running[index].take() else {
            return;
        };
        self.goal.step_ended(index);
        let cause = running.stopping.map(|(cause, _)| cause);
        let found = self.attempts[index].found;
        let outcome = match (&result, cause) {
            (_, _) if found > 0 => Outcome::Ok,
            (Some(Ok(())), None) => Outcome::Empty,
            (Some(Err(_)), None) => Outcome::Error,
            (_, Some(cause)) => self.stopped_outcome(cause, found),
            (None, None) => Outcome::Cancelled,
        };
        let attempt = &mut self.attempts[index];
        attempt.elapsed_ms = millis(running.started.elapsed());
        attempt.outcome = outcome;
        match (result, cause) {
            (Some(Err(error)), _) => {
                attempt.error = Some(error.to_string());
                attempt.failure = Some(error.kind());
                let stop_chain = error.on_error() == OnError::Stop;
                self.failures.push(attempt.strategy.clone(), error);
                if stop_chain && !self.finished {
                    self.finished = true;
                    self.stop_all(StopCause::ChainStopped);
                }
            }
            (_, Some(StopCause::Timeout)) if outcome != Outcome::Ok => {
                if let Some(limit) = self.plan.strategy_timeout {
                    attempt.error = Some(format!("no answer within {} ms", limit.as_millis()));
                }
            }
            (_, Some(StopCause::Deadline)) if outcome != Outcome::Ok => {
                attempt.error = Some(format!(
                    "chain deadline of {} ms reached",
                    self.plan.deadline.as_millis()
                ));
            }
            _ => {}
        }
        let succeeded = outcome == Outcome::Ok;
        if succeeded && !self.finished && self.goal.step_done(found) {
            self.finished = true;
            self.stop_all(StopCause::Superseded);
        }
        if !self.finished && self.plan.mode == ChainMode::Staggered {
            // Happy eyeballs: a failure, or an answer that is not enough, starts the next
            // attempt at once instead of waiting.
            self.next_start = Some(Instant::now());
        }
    }

    fn step_panicked(&mut self, join_error: &tokio::task::JoinError) {
        if join_error.is_cancelled() {
            return;
        }
        let id = join_error.id();
        let Some(index) = self
            .running
            .iter()
            .position(|r| r.as_ref().is_some_and(|r| r.task.id() == id))
        else {
            return;
        };
        if let Some(running) = self.running[index].take() {
            self.goal.step_ended(index);
            let attempt = &mut self.attempts[index];
            attempt.elapsed_ms = millis(running.started.elapsed());
            attempt.outcome = Outcome::Error;
            attempt.error = Some("strategy panicked".to_owned());
        }
    }

    fn skip_pending(&mut self) {
        let reason = if self.failures.stopped_by().is_some() {
            "chain stopped by an earlier error"
        } else if self.attempts.iter().any(|a| a.outcome == Outcome::Ok) {
            "an earlier strategy answered"
        } else {
            "chain deadline reached"
        };
        for (index, _) in self.pending.drain(..) {
            self.attempts[index].error = Some(reason.to_owned());
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
