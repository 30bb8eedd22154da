//! Checks 3 to 5: the confirmation listener, our own addresses through it, the resolver chain.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::interfaces::{Link, list_links};
use super::report::Status;
use super::runner::{BoxFuture, Env, Finding, State, millis};
use localpair_core::Error;
use localpair_core::candidate::{Confirmation, InterfaceClass, is_link_local};
use localpair_core::chain::{ResolveReport, ResolverChain, explain};
use localpair_core::interfaces::Dad;

/// A self-connection goes through loopback on every OS, so it cannot vouch for more than this.
const LOCAL_ONLY: &str = "a connection to one's own address goes through loopback: this proves \
                          the address is ours and the listener answers there, not that a peer \
                          can reach it";

pub(crate) fn check_listener<'a>(env: &'a Env, _state: &'a mut State) -> BoxFuture<'a, Finding> {
    Box::pin(async move {
        let confirmer = match env.ctx.confirmer() {
            Ok(confirmer) => confirmer,
            Err(error) => {
                let why = env.setup_error.clone().unwrap_or_else(|| error.to_string());
                return Finding::new(
                    Status::Fail,
                    format!("no confirmation listener: {why}"),
                    json!({ "running": false }),
                )
                .with_errors(vec![why]);
            }
        };
        let bound = confirmer.local_addr();
        let identity = env.ctx.identity();
        let started = Instant::now();
        let loopback = confirmer.confirm(IpAddr::V4(Ipv4Addr::LOCALHOST), 0).await;
        let took = millis(started.elapsed());
        let details = json!({
            "running": true,
            "bound": bound,
            "port": bound.port(),
            "dual_stack": bound.is_ipv6(),
            "fingerprint": identity.fingerprint(),
            "device_id": identity.device_id(),
            "loopback_ms": loopback.is_ok().then_some(took),
        });
        let family = if bound.is_ipv6() {
            "IPv4 and IPv6"
        } else {
            "IPv4 only"
        };
        match loopback {
            Ok(()) => Finding::new(
                Status::Pass,
                format!(
                    "TLS listener on {bound} (every address, {family}); answers on loopback in {took:.1} ms"
                ),
                details,
            ),
            Err(error) => Finding::new(
                Status::Fail,
                format!(
                    "TLS listener bound to {bound} but it does not answer on 127.0.0.1: {error}"
                ),
                details,
            )
            .with_errors(vec![format!("127.0.0.1: {error}")]),
        }
    })
}

/// One of our addresses to self-test.
struct OwnAddr {
    ip: IpAddr,
    scope: u32,
    interface: String,
    class: InterfaceClass,
    dad: Dad,
}

/// Every non-loopback address of every permitted interface, with its interface.
fn own_addresses(links: &[Link]) -> Vec<OwnAddr> {
    links
        .iter()
        .filter(|l| l.permitted && l.class != InterfaceClass::Loopback)
        .flat_map(|l| {
            l.addrs.iter().filter(|a| !a.ip.is_loopback()).map(|a| {
                let scope = if a.ip.is_ipv6() && is_link_local(a.ip) {
                    l.index.unwrap_or(0)
                } else {
                    0
                };
                OwnAddr {
                    ip: a.ip,
                    scope,
                    interface: l.name.clone(),
                    class: l.class,
                    dad: a.dad,
                }
            })
        })
        .collect()
}

/// Why an address failed its self-test when the cause is IPv6 duplicate address detection, not
/// a firewall: the OS flags it, or the connection failed with `EADDRNOTAVAIL` (the address is
/// not usable yet).
fn dad_cause(dad: Dad, error: &Error) -> Option<&'static str> {
    let unavailable = matches!(error, Error::Io { source, .. }
        if source.kind() == std::io::ErrorKind::AddrNotAvailable);
    match dad {
        Dad::Failed => {
            Some("duplicate address detection failed: another device on the link uses this address")
        }
        Dad::Tentative => Some(
            "still tentative: IPv6 duplicate address detection has not finished (about a \
             second after the link came up); not a firewall, try again in a moment",
        ),
        _ if unavailable => Some(
            "the address is not usable yet (EADDRNOTAVAIL: still tentative, or just removed); \
             not a firewall, try again in a moment",
        ),
        _ => None,
    }
}

pub(crate) fn check_self<'a>(env: &'a Env, state: &'a mut State) -> BoxFuture<'a, Finding> {
    Box::pin(async move {
        let Ok(confirmer) = env.ctx.confirmer() else {
            return Finding::new(
                Status::Fail,
                "not tested: no confirmation listener",
                Value::Null,
            );
        };
        let links = match &state.links {
            Some(links) => links.clone(),
            None => list_links(&env.ctx).0,
        };
        let addrs = own_addresses(&links);
        if addrs.is_empty() {
            return Finding::new(
                Status::Fail,
                "no address to test: no permitted interface has a non-loopback address",
                json!({ "addresses": [], "note": LOCAL_ONLY }),
            );
        }
        let mut probes = JoinSet::new();
        for (i, own) in addrs.iter().enumerate() {
            let confirmer = confirmer.clone();
            let (ip, scope) = (own.ip, own.scope);
            probes.spawn(async move {
                let started = Instant::now();
                let result = confirmer.confirm(ip, scope).await;
                (i, result, started.elapsed())
            });
        }
        let mut results: Vec<Option<(Result<(), Error>, Duration)>> =
            (0..addrs.len()).map(|_| None).collect();
        // Every confirmation carries its own timeout ([confirm] confirm_timeout_ms).
        while let Some(joined) = probes.join_next().await {
            if let Ok((i, result, took)) = joined {
                results[i] = Some((result, took));
            }
        }
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        let mut not_ready = Vec::new();
        let mut ok = Vec::new();
        for (own, result) in addrs.iter().zip(results) {
            let shown = if own.scope > 0 {
                format!("{}%{}", own.ip, own.interface)
            } else {
                own.ip.to_string()
            };
            let (result, took) = result.unwrap_or((Err(Error::ListenerClosed), Duration::ZERO));
            let dad = result.as_ref().err().and_then(|e| dad_cause(own.dad, e));
            match (&result, dad) {
                (Ok(()), _) => ok.push(shown.clone()),
                (Err(error), Some(cause)) => {
                    let line = format!("{shown}: {cause} ({error})");
                    not_ready.push(line.clone());
                    errors.push(line);
                }
                (Err(error), None) => errors.push(format!("{shown}: {error}")),
            }
            tracing::debug!(address = %shown, ok = result.is_ok(), "self-confirmation");
            rows.push(json!({
                "ip": own.ip,
                "interface": own.interface,
                "class": own.class,
                "dad": own.dad,
                "confirmed": if result.is_ok() { Confirmation::Local } else { Confirmation::None },
                "elapsed_ms": millis(took),
                "error": result.err().map(|e| e.to_string()),
            }));
        }
        let status = if ok.len() == addrs.len() {
            Status::Pass
        } else if ok.is_empty() {
            Status::Fail
        } else {
            Status::Warn
        };
        let summary = format!(
            "{} of {} addresses answered through our listener{} (local only: proves they are ours, not that peers reach them)",
            ok.len(),
            addrs.len(),
            if ok.is_empty() {
                String::new()
            } else {
                format!(" ({})", ok.join(", "))
            }
        );
        let port = confirmer.port();
        Finding::new(
            status,
            summary,
            json!({ "addresses": rows, "port": port, "note": LOCAL_ONLY, "not_ready": not_ready }),
        )
        .with_errors(errors)
    })
}

/// A resolve report's errors ("strategy: error") and the report itself as details.
pub(crate) fn report_parts(report: &ResolveReport) -> (Vec<String>, Value) {
    let errors = report
        .failures
        .iter()
        .map(|(strategy, error)| format!("{strategy}: {error}"))
        .collect();
    (errors, serde_json::to_value(report).unwrap_or(Value::Null))
}

pub(crate) fn check_resolvers<'a>(env: &'a Env, _state: &'a mut State) -> BoxFuture<'a, Finding> {
    Box::pin(async move {
        let settings = env.ctx.settings();
        let chain = match ResolverChain::from_settings(&env.registry, settings) {
            Ok(chain) => chain,
            Err(error) => {
                return Finding::new(
                    Status::Fail,
                    format!("the [resolve] chain cannot be built: {error}"),
                    json!({ "order": settings.config().resolve.order }),
                )
                .with_errors(vec![error.to_string()]);
            }
        };
        let report = chain.resolve(&env.ctx).await;
        let (errors, details) = report_parts(&report);
        let Some(best) = report.candidates.first() else {
            return Finding::new(
                Status::Fail,
                format!("no usable address: {}", explain(&report.attempts)),
                details,
            )
            .with_errors(errors);
        };
        let at = best
            .interface
            .as_deref()
            .map(|i| format!(" on {i}"))
            .unwrap_or_default();
        let confirmed = match best.confirmed {
            Confirmation::None => "unconfirmed",
            Confirmation::Local => "confirmed locally",
            Confirmation::Peer => "confirmed by a peer",
            _ => "confirmed",
        };
        let mut summary = format!(
            "best address {}{at} ({}, {confirmed}) via {}; {} candidate(s)",
            best.ip,
            best.class,
            best.strategy,
            report.candidates.len()
        );
        let status = if !best.is_lan() || is_link_local(best.ip) {
            summary.push_str(" — peers on the LAN are unlikely to reach it");
            Status::Warn
        } else {
            Status::Pass
        };
        Finding::new(status, summary, details).with_errors(errors)
    })
}
