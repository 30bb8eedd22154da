//! Check 8: a TLS handshake pinned to each peer's key, on each of its addresses — made while
//! discovery runs, as soon as a peer is found, and for anything left over afterwards.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::peers::label;
use super::report::Status;
use super::runner::{BoxFuture, Env, Finding, State, millis};
use localpair_core::Context;
use localpair_core::Peer;
use localpair_core::identity::DeviceId;

/// Handshake results by peer and address.
pub(crate) type Dialed = HashMap<(DeviceId, SocketAddr), Result<Duration, String>>;

/// Sightings waiting to be dialled; the chains drop what does not fit (a repeat sighting).
pub(super) const LIVE_QUEUE: usize = 64;

/// Dials every peer address the moment discovery reports it, while the peer is surely still
/// announcing: a peer that runs its own report may be gone once both windows have ended.
pub(super) async fn dial_as_found(
    ctx: Context,
    mut live: mpsc::Receiver<Peer>,
    limit: Duration,
) -> Dialed {
    let mut dialed = Dialed::new();
    let mut tried = HashSet::new();
    let mut dials = JoinSet::new();
    let identity = Arc::clone(ctx.identity());
    loop {
        tokio::select! {
            sighting = live.recv() => {
                let Some(peer) = sighting else { break };
                for addr in peer.addrs {
                    if tried.insert((peer.id, addr)) {
                        let identity = Arc::clone(&identity);
                        let (id, key) = (peer.id, peer.fingerprint);
                        dials.spawn(async move {
                            (id, addr, localpair_core::confirm::reach(&identity, addr, key, limit).await)
                        });
                    }
                }
            }
            Some(done) = dials.join_next(), if !dials.is_empty() => {
                if let Ok((id, addr, result)) = done {
                    dialed.insert((id, addr), result.map_err(|e| e.to_string()));
                }
            }
        }
    }
    // Each dial gives up after `limit` by itself.
    while let Some(done) = dials.join_next().await {
        if let Ok((id, addr, result)) = done {
            dialed.insert((id, addr), result.map_err(|e| e.to_string()));
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
            .map(|(row, addr)| state.dialed.get(&(state.matrix[*row].id, *addr)).cloned())
            .collect();
        let early: Vec<bool> = results.iter().map(Option::is_some).collect();
        // Addresses discovery did not hand over live (a full queue) are dialled now.
        let mut dials = JoinSet::new();
        for (n, (row, addr)) in targets.iter().enumerate() {
            if early[n] {
                continue;
            }
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
        let mut per_peer: Vec<(usize, Vec<Value>)> = Vec::new();
        for (((row, addr), result), early) in targets.iter().zip(results).zip(early) {
            let result = result.unwrap_or_else(|| Err("the dial task died".to_owned()));
            let peer = &mut state.matrix[*row];
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
            let attempt = json!({
                "addr": addr,
                "when": if early { "as soon as discovery found it" } else { "after discovery" },
                "ok": result.is_ok(),
                "elapsed_ms": result.as_ref().ok().map(|d| millis(*d)),
                "error": result.err(),
            });
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
            if peer.reachable == Some(true) {
                reached.push(format!(
                    "{} at {} in {:.1} ms",
                    label(peer),
                    peer.reached.map(|a| a.to_string()).unwrap_or_default(),
                    peer.reach_ms.unwrap_or_default()
                ));
            } else {
                missed.push(label(peer));
            }
            rows.push(json!({
                "id": peer.id,
                "name": peer.name,
                "reachable": peer.reachable,
                "attempts": attempts,
            }));
        }
        let status = if missed.is_empty() {
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
        Finding::new(
            status,
            parts.join("; "),
            json!({ "timeout_ms": millis(limit), "peers": rows }),
        )
        .with_errors(errors)
    })
}
