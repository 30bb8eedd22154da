//! Check 8: a TLS handshake pinned to each peer's key, on each of its addresses — made while
//! discovery runs, as soon as a peer is found, and for anything left over afterwards.
//!
//! Every address comes from an unverified announcement, so dials are bounded like the
//! udp-multicast observation reports: one started a second in total, one per address and port
//! per 30 s whatever key named it, and at most [`MAX_DIALS`] per report. Addresses left over are
//! listed as not dialled; they are no evidence against the peer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::peers::label;
use super::report::Status;
use super::runner::{BoxFuture, Env, Finding, State, millis};
use localpair_core::Context;
use localpair_core::Peer;
use localpair_core::identity::Fingerprint;

/// Least time between two dials: one a second in total, as the udp-multicast reports, so a
/// flood of forged sightings cannot turn `diagnose` into a connection generator.
const DIAL_INTERVAL: Duration = Duration::from_secs(1);
/// Least time between two dials of the same address and port, whatever key named it.
const PER_TARGET: Duration = Duration::from_secs(30);
/// Most addresses dialled in one report: a home or office LAN's devices have a few addresses
/// each; at one a second this is also the longest a report may spend dialling.
pub(super) const MAX_DIALS: usize = 32;
/// Dials left for after discovery: at one a second they fit, with their 1 s time limit, in the
/// 5 s margin the runner gives this check.
const AFTER_DISCOVERY: usize = 3;

/// Sightings waiting to be dialled; the chains drop what does not fit (a repeat sighting).
pub(super) const LIVE_QUEUE: usize = 64;

/// When dials may start.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    last: Option<Instant>,
    targets: HashMap<SocketAddr, Instant>,
    started: usize,
}

impl Budget {
    /// When the next dial may start.
    fn next_start(&self) -> Instant {
        self.last
            .map_or_else(Instant::now, |last| last + DIAL_INTERVAL)
    }

    /// Takes a dial slot for `addr` now, or says why not.
    fn take(&mut self, addr: SocketAddr, now: Instant) -> Result<(), &'static str> {
        if self.started >= MAX_DIALS {
            return Err("not dialled: this report already dialled its 32 addresses");
        }
        if let Some(at) = self.targets.get(&addr)
            && now.saturating_duration_since(*at) < PER_TARGET
        {
            return Err("not dialled: this address was dialled for another key in the last 30 s");
        }
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < DIAL_INTERVAL)
        {
            return Err("not dialled: at most one new address a second is dialled");
        }
        self.last = Some(now);
        self.targets.insert(addr, now);
        self.started += 1;
        Ok(())
    }
}

/// Handshake results by peer key and address, and the budget they were made under.
#[derive(Debug, Default)]
pub(crate) struct Dialed {
    results: HashMap<(Fingerprint, SocketAddr), Result<Duration, String>>,
    budget: Budget,
}

/// Dials every peer address the moment discovery reports it (within the [`Budget`]), while the
/// peer is surely still announcing: a peer that runs its own report may be gone once both
/// windows have ended. Returns when discovery has ended and the dials it started are done.
pub(super) async fn dial_as_found(
    ctx: Context,
    mut live: mpsc::Receiver<Peer>,
    limit: Duration,
) -> Dialed {
    let mut dialed = Dialed::default();
    let mut waiting: VecDeque<(Fingerprint, SocketAddr)> = VecDeque::new();
    let mut seen = HashSet::new();
    let mut dials = JoinSet::new();
    let identity = Arc::clone(ctx.identity());
    let mut open = true;
    while open || !dials.is_empty() {
        let next = dialed.budget.next_start();
        tokio::select! {
            sighting = live.recv(), if open => match sighting {
                None => open = false,
                Some(peer) => {
                    for addr in peer.addrs {
                        if seen.len() < MAX_DIALS && seen.insert((peer.fingerprint, addr)) {
                            waiting.push_back((peer.fingerprint, addr));
                        }
                    }
                }
            },
            () = tokio::time::sleep_until(next), if open && !waiting.is_empty() => {
                // One that may not start now is left for after discovery (or listed as not
                // dialled there).
                while let Some((key, addr)) = waiting.pop_front() {
                    if dialed.budget.take(addr, Instant::now()).is_ok() {
                        let identity = Arc::clone(&identity);
                        dials.spawn(async move {
                            (key, addr, localpair_core::confirm::reach(&identity, addr, key, limit).await)
                        });
                        break;
                    }
                }
            }
            Some(done) = dials.join_next(), if !dials.is_empty() => {
                if let Ok((key, addr, result)) = done {
                    dialed.results.insert((key, addr), result.map_err(|e| e.to_string()));
                }
            }
        }
    }
    dialed
}

pub(crate) fn check_reachability<'a>(env: &'a Env, state: &'a mut State) -> BoxFuture<'a, Finding> {
    Box::pin(async move {
        let limit = env.config.reach_timeout();
        let targets: Vec<(usize, SocketAddr)> = state
            .matrix
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.found_by.is_empty())
            .flat_map(|(i, r)| r.addrs.iter().map(move |a| (i, *a)))
            .collect();
        if targets.is_empty() {
            return Finding::new(
                Status::Skip,
                "no peer to try: discovery found nobody",
                json!({ "timeout_ms": millis(limit), "peers": [] }),
            );
        }
        let mut results: Vec<Option<Result<Duration, String>>> = targets
            .iter()
            .map(|(row, addr)| {
                let key = state.matrix[*row].fingerprint;
                state.dialed.results.get(&(key, *addr)).cloned()
            })
            .collect();
        let early: Vec<bool> = results.iter().map(Option::is_some).collect();
        // Addresses not dialled while discovery ran are dialled now, within the budget.
        let mut skipped: Vec<Option<&'static str>> = vec![None; targets.len()];
        let mut after = 0;
        let mut dials = JoinSet::new();
        for (n, (row, addr)) in targets.iter().enumerate() {
            if early[n] {
                continue;
            }
            if after >= AFTER_DISCOVERY {
                skipped[n] = Some("not dialled: at most 3 addresses are dialled after discovery");
                continue;
            }
            tokio::time::sleep_until(state.dialed.budget.next_start()).await;
            if let Err(why) = state.dialed.budget.take(*addr, Instant::now()) {
                skipped[n] = Some(why);
                continue;
            }
            after += 1;
            let identity = Arc::clone(env.ctx.identity());
            let key = state.matrix[*row].fingerprint;
            let addr = *addr;
            dials.spawn(async move {
                (
                    n,
                    localpair_core::confirm::reach(&identity, addr, key, limit).await,
                )
            });
        }
        // `reach` times out by itself after `limit`.
        while let Some(joined) = dials.join_next().await {
            if let Ok((n, result)) = joined {
                results[n] = Some(result.map_err(|e| e.to_string()));
            }
        }
        let mut errors = Vec::new();
        let mut not_dialled = 0;
        let mut per_peer: Vec<(usize, Vec<Value>)> = Vec::new();
        for (n, (((row, addr), result), early)) in
            targets.iter().zip(results).zip(early).enumerate()
        {
            let peer = &mut state.matrix[*row];
            let attempt = if let Some(why) = skipped[n] {
                not_dialled += 1;
                tracing::debug!(peer = %label(peer), %addr, why, "handshake with peer skipped");
                json!({ "addr": addr, "when": "not dialled", "ok": false, "elapsed_ms": null, "error": why })
            } else {
                let result = result.unwrap_or_else(|| Err("the dial task died".to_owned()));
                match &result {
                    Ok(took) => {
                        let ms = millis(*took);
                        peer.reachable = Some(true);
                        // The first address in the row's order (IPv4 first), as a dial would pick.
                        if peer.reached.is_none() {
                            peer.reach_ms = Some(ms);
                            peer.reached = Some(*addr);
                        }
                    }
                    Err(error) => {
                        if peer.reachable.is_none() {
                            peer.reachable = Some(false);
                        }
                        errors.push(format!("{} at {addr}: {error}", label(peer)));
                    }
                }
                tracing::debug!(peer = %label(peer), %addr, ok = result.is_ok(), "handshake with peer");
                json!({
                    "addr": addr,
                    "when": if early { "as soon as discovery found it" } else { "after discovery" },
                    "ok": result.is_ok(),
                    "elapsed_ms": result.as_ref().ok().map(|d| millis(*d)),
                    "error": result.err(),
                })
            };
            match per_peer.iter_mut().find(|(r, _)| r == row) {
                Some((_, attempts)) => attempts.push(attempt),
                None => per_peer.push((*row, vec![attempt])),
            }
        }
        let mut reached = Vec::new();
        let mut missed = Vec::new();
        let mut rows = Vec::new();
        for (row, attempts) in per_peer {
            let peer = &state.matrix[row];
            match peer.reachable {
                Some(true) => reached.push(format!(
                    "{} at {} in {:.1} ms",
                    label(peer),
                    peer.reached.map(|a| a.to_string()).unwrap_or_default(),
                    peer.reach_ms.unwrap_or_default()
                )),
                Some(false) => missed.push(label(peer)),
                // Nothing dialled: no evidence either way.
                None => {}
            }
            rows.push(json!({
                "id": peer.id,
                "name": peer.name,
                "reachable": peer.reachable,
                "attempts": attempts,
            }));
        }
        let status = if reached.is_empty() && missed.is_empty() {
            Status::Warn
        } else if missed.is_empty() {
            Status::Pass
        } else if reached.is_empty() {
            Status::Fail
        } else {
            Status::Warn
        };
        let mut parts = Vec::new();
        if !reached.is_empty() {
            parts.push(format!("answered: {}", reached.join("; ")));
        }
        if !missed.is_empty() {
            parts.push(format!(
                "no TLS handshake with {} (limit {} ms per address)",
                missed.join(", "),
                limit.as_millis()
            ));
        }
        if not_dialled > 0 {
            parts.push(format!(
                "{not_dialled} address{} not dialled (at most one a second, {MAX_DIALS} a report)",
                if not_dialled == 1 { "" } else { "es" }
            ));
        }
        Finding::new(
            status,
            parts.join("; "),
            json!({ "timeout_ms": millis(limit), "not_dialled": not_dialled, "peers": rows }),
        )
        .with_errors(errors)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dials_are_one_a_second_one_per_target_and_capped() {
        let t0 = Instant::now();
        let mut budget = Budget::default();
        let target = SocketAddr::from(([10, 0, 0, 50], 7777));
        assert!(budget.take(target, t0).is_ok());
        let other = SocketAddr::from(([10, 0, 0, 51], 7777));
        assert!(
            budget.take(other, t0).is_err(),
            "a second dial within the second"
        );
        let t1 = t0 + DIAL_INTERVAL;
        assert!(
            budget.take(target, t1).is_err(),
            "the same target within 30 s"
        );
        assert!(budget.take(other, t1).is_ok());
        assert!(budget.take(target, t0 + PER_TARGET).is_ok());
        let mut at = t0 + PER_TARGET;
        for n in 0..100u16 {
            at += DIAL_INTERVAL;
            let _ = budget.take(SocketAddr::from(([10, 0, 1, 1], n)), at);
        }
        assert_eq!(budget.started, MAX_DIALS);
    }
}
