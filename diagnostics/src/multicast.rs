//! Check 6: each discoverer's multicast self-test
//! ([`PeerDiscoverer::self_check`](localpair_core::PeerDiscoverer::self_check)), side by side.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::peers::{discoverers, facts, ports};
use super::report::{SelfCheck, Status};
use super::runner::{BoxFuture, Env, Finding, State, millis};

enum HookResult {
    None,
    Done(SelfCheck),
    TimedOut,
    Panicked(String),
}

pub(crate) fn check_multicast<'a>(env: &'a Env, state: &'a mut State) -> BoxFuture<'a, Finding> {
    Box::pin(async move {
        let built = discoverers(env, state);
        let limit = env.config.self_check_timeout();
        let mut errors = Vec::new();
        let mut hooks = JoinSet::new();
        let mut index_of = HashMap::new();
        for (i, (name, discoverer)) in built.iter().enumerate() {
            match discoverer {
                Err(error) => errors.push(format!("{name}: {error}")),
                Ok(discoverer) => {
                    let discoverer = Arc::clone(discoverer);
                    let ctx = env.ctx.clone();
                    let handle = hooks.spawn(async move {
                        let started = Instant::now();
                        let result =
                            tokio::time::timeout(limit, discoverer.self_check(&ctx, limit)).await;
                        (result, started.elapsed())
                    });
                    index_of.insert(handle.id(), i);
                }
            }
        }
        let mut results: Vec<Option<(HookResult, Duration)>> = built.iter().map(|_| None).collect();
        while let Some(joined) = hooks.join_next_with_id().await {
            match joined {
                Ok((id, (result, took))) => {
                    let result = match result {
                        Ok(Some(check)) => HookResult::Done(check),
                        Ok(None) => HookResult::None,
                        Err(_) => HookResult::TimedOut,
                    };
                    if let Some(&i) = index_of.get(&id) {
                        results[i] = Some((result, took));
                    }
                }
                Err(error) => {
                    if let Some(&i) = index_of.get(&error.id()) {
                        let why = if error.is_panic() {
                            "panicked"
                        } else {
                            "was cancelled"
                        };
                        results[i] = Some((HookResult::Panicked(why.to_owned()), Duration::ZERO));
                    }
                }
            }
        }
        let mut status = Status::Skip;
        let mut rows = Vec::new();
        let mut parts = Vec::new();
        let mut without = Vec::new();
        for ((name, _), result) in built.iter().zip(results) {
            let Some((result, took)) = result else {
                continue;
            };
            let check = match result {
                HookResult::None => {
                    without.push(name.clone());
                    rows.push(json!({ "strategy": name, "status": Value::Null, "summary": "no self-test" }));
                    continue;
                }
                HookResult::Done(check) => check,
                HookResult::TimedOut => SelfCheck::new(
                    Status::Fail,
                    format!(
                        "the self-test did not finish within {} ms",
                        limit.as_millis()
                    ),
                    Value::Null,
                )
                .with_error(format!("timed out after {} ms", limit.as_millis())),
                HookResult::Panicked(why) => {
                    SelfCheck::new(Status::Fail, format!("the self-test {why}"), Value::Null)
                        .with_error(format!("self-test {why}"))
                }
            };
            status = status.worst(check.status);
            parts.push(format!("{name}: {}", check.summary));
            errors.extend(check.errors.iter().map(|e| format!("{name}: {e}")));
            tracing::debug!(strategy = %name, status = check.status.as_str(), "{}", check.summary);
            rows.push(json!({
                "strategy": name,
                "status": check.status,
                "summary": check.summary,
                "details": check.details,
                "errors": check.errors,
                "elapsed_ms": millis(took),
            }));
        }
        let names: Vec<String> = built.iter().map(|(n, _)| n.clone()).collect();
        let details = json!({
            "by_strategy": rows,
            "udp_ports": ports(&facts(env)),
        });
        if parts.is_empty() {
            let asked = if names.is_empty() {
                "[discover] order is empty".to_owned()
            } else {
                format!("asked: {}", names.join(", "))
            };
            return Finding::new(
                Status::Skip,
                format!("no discoverer offers a multicast self-test ({asked})"),
                details,
            )
            .with_errors(errors);
        }
        if !without.is_empty() {
            parts.push(format!("no self-test in {}", without.join(", ")));
        }
        Finding::new(status, parts.join("; "), details).with_errors(errors)
    })
}
