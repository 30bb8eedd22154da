//! Check 9: the self-checks of the `[resolve]` strategies that declare one (a UPnP resolver
//! reports its gateway, external address and double NAT), side by side.

use localpair_core::AddressResolver;
use localpair_core::chain::{Plan, ResolverChain, explain};
use serde_json::{Value, json};

use super::local::report_parts;
use super::report::{SelfCheck, Status};
use super::runner::{BoxFuture, Env, Finding, State};

pub(crate) fn check_resolver_checks<'a>(
    env: &'a Env,
    _state: &'a mut State,
) -> BoxFuture<'a, Finding> {
    Box::pin(async move {
        let settings = env.ctx.settings();
        let section = &settings.config().resolve;
        let declaring: Vec<(usize, &String)> = section
            .order
            .iter()
            .enumerate()
            .filter(|(_, name)| {
                env.registry
                    .facts::<dyn AddressResolver>(name, settings)
                    .is_ok_and(|f| f.self_check)
            })
            .collect();
        if declaring.is_empty() {
            return Finding::new(
                Status::Skip,
                "no strategy in [resolve] order has a self-check",
                json!({ "strategies": [] }),
            );
        }
        let limit = section.strategy_timeout().unwrap_or(section.deadline());
        let mut findings = Vec::new();
        for (position, name) in declaring {
            let key = format!("resolve.order[{position}]");
            let finding = match env.registry.resolver(name, &key, settings) {
                Err(error) => SelfCheck::new(
                    Status::Fail,
                    format!("cannot be built: {error}"),
                    Value::Null,
                )
                .with_error(error.to_string()),
                Ok(resolver) => {
                    match tokio::time::timeout(limit, resolver.self_check(&env.ctx, limit)).await {
                        Ok(Some(check)) => check,
                        // No answer from the hook: what the resolver finds says the most.
                        _ => resolve_alone(env, name, resolver).await,
                    }
                }
            };
            findings.push((name.clone(), finding));
        }
        combine(findings)
    })
}

/// Runs one resolver as a chain of its own and reports its candidates.
async fn resolve_alone(
    env: &Env,
    name: &str,
    resolver: std::sync::Arc<dyn AddressResolver>,
) -> SelfCheck {
    let section = &env.ctx.settings().config().resolve;
    let report = ResolverChain::new(Plan::from_config(section))
        .with(name, resolver)
        .resolve(&env.ctx)
        .await;
    let (errors, details) = report_parts(&report);
    if report.candidates.is_empty() {
        SelfCheck::new(
            Status::Warn,
            format!("no answer: {}", explain(&report.attempts)),
            details,
        )
        .with_errors(errors)
    } else {
        let list: Vec<String> = report.candidates.iter().map(|c| c.ip.to_string()).collect();
        SelfCheck::new(
            Status::Pass,
            format!("answered: {}", list.join(", ")),
            details,
        )
        .with_errors(errors)
    }
}

/// One strategy's finding as it is; several side by side, the worst status first.
fn combine(findings: Vec<(String, SelfCheck)>) -> Finding {
    if let [(_, only)] = findings.as_slice() {
        return only.clone();
    }
    let mut status = Status::Skip;
    let mut parts = Vec::new();
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for (name, finding) in findings {
        status = status.worst(finding.status);
        parts.push(format!("{name}: {}", finding.summary));
        errors.extend(finding.errors.iter().map(|e| format!("{name}: {e}")));
        rows.push(json!({
            "strategy": name,
            "status": finding.status,
            "summary": finding.summary,
            "details": finding.details,
        }));
    }
    Finding::new(status, parts.join("; "), json!({ "by_strategy": rows })).with_errors(errors)
}
