//! Check 7: discovery with each `[discover]` strategy alone, side by side, and the reachability
//! matrix it starts (who was found by what, who reported hearing us).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::report::{PeerRow, Status};
use super::runner::{BoxFuture, Env, Finding, State, millis};
use localpair_core::Context;
use localpair_core::Peer;
use localpair_core::PeerDiscoverer;
use localpair_core::chain::{DiscoverReport, DiscovererChain, DiscoveryGoal, Plan};
use localpair_core::config::ChainMode;
use localpair_core::registry::Facts;

/// The UDP ports the `[discover]` strategies declared ([`Facts`]), by protocol, for hints
/// ("allow UDP …"); a custom strategy that declares a port shows up like a built-in one.
pub(super) fn ports(facts: &[(String, Facts)]) -> serde_json::Map<String, Value> {
    facts
        .iter()
        .flat_map(|(_, f)| &f.udp_ports)
        .map(|p| (p.protocol.to_owned(), Value::from(p.port)))
        .collect()
}

/// The `[discover]` strategies' declared [`Facts`], in order; a strategy that cannot say
/// (not linked, a broken table) declares nothing.
pub(crate) fn facts(env: &Env) -> Vec<(String, Facts)> {
    let settings = env.ctx.settings();
    settings
        .config()
        .discover
        .order
        .iter()
        .map(|name| {
            let facts = env
                .registry
                .facts::<dyn PeerDiscoverer>(name, settings)
                .unwrap_or_default();
            (name.clone(), facts)
        })
        .collect()
}

/// The `[discover]` discoverers by name, or why one could not be built.
pub(crate) type Built = Vec<(String, Result<Arc<dyn PeerDiscoverer>, String>)>;

/// The `[discover]` discoverers, built once and shared by checks 6 and 7.
pub(super) fn discoverers(env: &Env, state: &mut State) -> Built {
    if let Some(built) = &state.discoverers {
        return built.clone();
    }
    let settings = env.ctx.settings();
    let built: Built = settings
        .config()
        .discover
        .order
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let key = format!("discover.order[{i}]");
            let discoverer = env
                .registry
                .discoverer(name, &key, settings)
                .map_err(|e| e.to_string());
            (name.clone(), discoverer)
        })
        .collect();
    state.discoverers = Some(built.clone());
    built
}

/// Merges one strategy's peers into the matrix, by key fingerprint (two keys that share a device
/// id are two devices: one of them forged).
fn merge(rows: &mut Vec<PeerRow>, strategy: &str, peers: &[Peer]) {
    for peer in peers {
        let row = match rows
            .iter_mut()
            .position(|r| r.fingerprint == peer.fingerprint)
        {
            Some(i) => &mut rows[i],
            None => {
                rows.push(PeerRow {
                    id: peer.id,
                    name: peer.name.clone(),
                    fingerprint: peer.fingerprint,
                    addrs: Vec::new(),
                    found_by: Vec::new(),
                    heard_us: None,
                    reachable: None,
                    reached: None,
                    reach_ms: None,
                });
                let last = rows.len() - 1;
                &mut rows[last]
            }
        };
        if !row.found_by.iter().any(|s| s == strategy) {
            row.found_by.push(strategy.to_owned());
        }
        if row.name.is_empty() {
            row.name.clone_from(&peer.name);
        }
        for addr in &peer.addrs {
            if !row.addrs.contains(addr) {
                row.addrs.push(*addr);
            }
        }
        // IPv4 first, link-local IPv6 last: the order a person reads best and a dial tries.
        row.addrs.sort_by_key(|a| match a {
            SocketAddr::V4(_) => 0,
            SocketAddr::V6(v6) if v6.ip().is_unicast_link_local() => 2,
            SocketAddr::V6(_) => 1,
        });
    }
}

/// Marks the rows whose peer reported hearing us, and adds a row for every reporter we did not
/// find ourselves (it hears us, we do not hear it).
pub(crate) fn refresh_heard_us(ctx: &Context, facts: &[(String, Facts)], rows: &mut Vec<PeerRow>) {
    // Only for peers found by a strategy that reports observations does a missing report mean
    // the peer did not hear us.
    let reporters: Vec<&str> = facts
        .iter()
        .filter(|(_, f)| f.reports_observations)
        .map(|(n, _)| n.as_str())
        .collect();
    // Reports from keys we never heard announcing are not believed by the listener, but they
    // are what tells "it hears us, we do not hear it" (incoming multicast dropped here).
    let observations = match ctx.confirmer() {
        Ok(confirmer) => {
            let mut all = confirmer.observations().borrow().clone();
            all.extend(confirmer.unheard_reports());
            all
        }
        Err(_) => return,
    };
    for row in rows.iter_mut() {
        let heard = observations.iter().any(|o| o.reporter == row.fingerprint);
        let can_tell = row.found_by.iter().any(|s| reporters.contains(&s.as_str()));
        row.heard_us = if heard {
            Some(true)
        } else if can_tell {
            Some(false)
        } else {
            None
        };
    }
    for o in &observations {
        if rows.iter().any(|r| r.fingerprint == o.reporter) {
            continue;
        }
        rows.push(PeerRow {
            id: o.reporter.device_id(),
            name: String::new(),
            fingerprint: o.reporter,
            addrs: vec![o.reporter_addr],
            found_by: Vec::new(),
            heard_us: Some(true),
            reachable: None,
            reached: None,
            reach_ms: None,
        });
    }
}

pub(super) fn label(row: &PeerRow) -> String {
    if row.name.is_empty() {
        format!("[{}]", row.id)
    } else {
        row.name.clone()
    }
}

pub(crate) fn check_discovery<'a>(env: &'a Env, state: &'a mut State) -> BoxFuture<'a, Finding> {
    Box::pin(async move {
        let built = discoverers(env, state);
        let settings = env.ctx.settings();
        let mut plan = Plan::from_config(&settings.config().discover).with_deadline(env.window);
        plan.mode = ChainMode::All;
        plan.strategy_timeout = None;
        let mut errors = Vec::new();
        let mut unavailable = Vec::new();
        let mut sessions = JoinSet::new();
        let mut index_of = HashMap::new();
        let (live, sightings) = mpsc::channel(super::reach::LIVE_QUEUE);
        let dialer = tokio::spawn(super::reach::dial_as_found(
            env.ctx.clone(),
            sightings,
            env.config.reach_timeout(),
        ));
        for (i, (name, discoverer)) in built.iter().enumerate() {
            match discoverer {
                Err(error) => {
                    errors.push(format!("{name}: {error}"));
                    unavailable.push(json!({ "strategy": name, "error": error }));
                }
                Ok(discoverer) => {
                    let chain =
                        DiscovererChain::new(plan).with(name.clone(), Arc::clone(discoverer));
                    let ctx = env.ctx.clone();
                    let live = live.clone();
                    let handle = sessions.spawn(async move {
                        chain
                            .discover(&ctx, DiscoveryGoal::default(), Some(live))
                            .await
                    });
                    index_of.insert(handle.id(), i);
                }
            }
        }
        tracing::info!(
            window_ms = millis(env.window),
            strategies = ?built.iter().filter(|(_, d)| d.is_ok()).map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            "announcing and listening, each strategy on its own"
        );
        let mut reports: Vec<Option<DiscoverReport>> = built.iter().map(|_| None).collect();
        // Each chain ends at its deadline (the window) plus a short wind-down; the runner's
        // limit on this check covers a discoverer that ignores its stop signal.
        while let Some(joined) = sessions.join_next_with_id().await {
            match joined {
                Ok((id, report)) => {
                    if let Some(&i) = index_of.get(&id) {
                        reports[i] = Some(report);
                    }
                }
                Err(error) => {
                    if let Some(&i) = index_of.get(&error.id()) {
                        errors.push(format!("{}: the session task failed: {error}", built[i].0));
                    }
                }
            }
        }
        // The chains have ended and dropped their senders; ours closes the channel.
        drop(live);
        match dialer.await {
            Ok(dialed) => state.dialed = dialed,
            Err(error) => errors.push(format!("dialling the peers found: {error}")),
        }
        let mut rows: Vec<PeerRow> = Vec::new();
        let mut strategies = Vec::new();
        let mut silent = Vec::new();
        for ((name, _), report) in built.iter().zip(&reports) {
            let Some(report) = report else {
                continue;
            };
            merge(&mut rows, name, &report.peers);
            for (strategy, error) in report.failures.iter() {
                errors.push(format!("{strategy}: {error}"));
            }
            let attempt = report.attempts.first();
            for peer in &report.peers {
                tracing::info!(
                    strategy = %name,
                    peer = %peer.name,
                    id = %peer.id,
                    addrs = ?peer.addrs,
                    after_ms = millis(peer.found_after),
                    "peer found"
                );
            }
            if report.peers.is_empty() {
                silent.push(name.clone());
            }
            strategies.push(json!({
                "strategy": name,
                "outcome": attempt.map(|a| a.outcome),
                "elapsed_ms": millis(report.elapsed),
                "found": report.peers.len(),
                "peers": report.peers.iter().map(|p| p.id).collect::<Vec<_>>(),
                "error": attempt.and_then(|a| a.error.clone()),
            }));
        }
        let facts = facts(env);
        refresh_heard_us(&env.ctx, &facts, &mut rows);
        let ran: Vec<&str> = built
            .iter()
            .zip(&reports)
            .filter(|(_, r)| r.is_some())
            .map(|((n, _), _)| n.as_str())
            .collect();
        let found: Vec<&PeerRow> = rows.iter().filter(|r| !r.found_by.is_empty()).collect();
        let unseen: Vec<&PeerRow> = rows.iter().filter(|r| r.found_by.is_empty()).collect();
        let deaf: Vec<String> = found
            .iter()
            .filter(|r| r.heard_us == Some(false))
            .map(|r| label(r))
            .collect();
        let seconds = env.window.as_secs_f64();
        let (status, mut summary) = if ran.is_empty() {
            (Status::Fail, "no discoverer could run".to_owned())
        } else if found.is_empty() {
            (
                Status::Fail,
                format!("nobody found in {seconds:.1} s by {}", ran.join(" or ")),
            )
        } else {
            let list: Vec<String> = found
                .iter()
                .map(|r| {
                    let heard = match r.heard_us {
                        Some(true) => ", heard us",
                        Some(false) => ", did not report hearing us",
                        None => "",
                    };
                    format!("{} (by {}{heard})", label(r), r.found_by.join(", "))
                })
                .collect();
            let mut status = Status::Pass;
            let mut summary = format!("found {}", list.join("; "));
            if !silent.is_empty() {
                status = Status::Warn;
                summary.push_str(&format!("; {} found nobody", silent.join(", ")));
            }
            if !deaf.is_empty() {
                status = Status::Warn;
            }
            (status, summary)
        };
        if !unseen.is_empty() {
            let list: Vec<String> = unseen
                .iter()
                .map(|r| {
                    format!(
                        "{} at {}",
                        label(r),
                        r.addrs.first().map(ToString::to_string).unwrap_or_default()
                    )
                })
                .collect();
            summary.push_str(&format!(
                "; heard by {} although we did not hear it",
                list.join(", ")
            ));
        }
        let details = json!({
            "window_ms": millis(env.window),
            "strategies": strategies,
            "unavailable": unavailable,
            "peers": rows,
            "found": found.len(),
            "heard_by_unseen": unseen.len(),
            "udp_ports": ports(&facts),
            "listener_port": env.ctx.confirmer().ok().map(localpair_core::Confirmer::port),
        });
        state.matrix = rows;
        Finding::new(status, summary, details).with_errors(errors)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use localpair_core::Fingerprint;

    #[test]
    fn rows_are_merged_by_key_not_by_device_id() {
        let real = Fingerprint::from_bytes([1; 32]);
        let mut forged = [1; 32];
        forged[31] = 2;
        let forged = Fingerprint::from_bytes(forged);
        assert_eq!(real.device_id(), forged.device_id());
        let at = |ip: [u8; 4]| vec![SocketAddr::from((ip, 4000))];
        let mut rows = Vec::new();
        merge(
            &mut rows,
            "mdns",
            &[Peer::new(forged, "fake".into(), at([10, 0, 0, 66]))],
        );
        merge(
            &mut rows,
            "udp-multicast",
            &[Peer::new(real, "desk".into(), at([10, 0, 0, 2]))],
        );
        assert_eq!(rows.len(), 2);
        let desk = rows.iter().find(|r| r.fingerprint == real).unwrap();
        assert_eq!(desk.addrs, at([10, 0, 0, 2]));
        assert_eq!(desk.name, "desk");
    }
}
