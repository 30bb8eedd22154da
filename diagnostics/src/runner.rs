//! Runs the checks in series, each one captured whatever happens: an error, a panic or a hang
//! ends that check as `fail`, and the next one runs.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use tracing::instrument::WithSubscriber as _;
use tracing_subscriber::layer::SubscriberExt as _;

use super::report::{Check, DeviceInfo, PeerRow, Report, SelfCheck, Status};
use super::{
    LogCapture, Options, Progress, ProgressEvent, environment, interfaces, local, multicast, peers,
    reach, resolver_checks, routes,
};
use crate::config::DiagnosticsConfig;
use localpair_core::Context;
use localpair_core::registry::Registry;

/// What one check found, before the runner adds its name and time: the same shape a strategy's
/// self-check returns, so a hook's answer is a finding as it is.
pub(crate) type Finding = SelfCheck;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A check: borrows what every check shares and the state earlier checks left.
pub(crate) type CheckFn<E, S> = for<'a> fn(&'a E, &'a mut S) -> BoxFuture<'a, Finding>;

/// A check with its name and the time after which it counts as hung.
pub(crate) struct Step<E, S> {
    pub(crate) name: &'static str,
    pub(crate) run: CheckFn<E, S>,
    pub(crate) limit: Duration,
    pub(crate) expected: Option<Duration>,
}

/// What every check may read.
pub(crate) struct Env {
    pub(crate) ctx: Context,
    pub(crate) registry: Registry,
    pub(crate) config: DiagnosticsConfig,
    pub(crate) window: Duration,
    /// Why the context has no listener, when it could not start one.
    pub(crate) setup_error: Option<String>,
}

/// What checks leave for later ones.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) links: Option<Vec<interfaces::Link>>,
    pub(crate) routes: Option<routes::Routes>,
    pub(crate) discoverers: Option<peers::Built>,
    pub(crate) matrix: Vec<PeerRow>,
    /// Handshakes made while discovery ran, by peer and address.
    pub(crate) dialed: reach::Dialed,
}

/// Runs the steps in order; nothing a check does stops the next one.
pub(crate) async fn run_series<E: Sync, S: Send>(
    steps: &[Step<E, S>],
    env: &E,
    state: &mut S,
    progress: Option<&Progress>,
) -> Vec<Check> {
    let mut checks = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        if let Some(progress) = progress {
            progress(&ProgressEvent::Started {
                name: step.name,
                index: i + 1,
                total: steps.len(),
                expected: step.expected,
            });
        }
        tracing::info!(check = step.name, "check {}/{} starts", i + 1, steps.len());
        let started = Instant::now();
        let outcome = tokio::time::timeout(step.limit, CatchUnwind((step.run)(env, state))).await;
        let finding = match outcome {
            Ok(Ok(finding)) => finding,
            Ok(Err(panic)) => {
                let message = panic_message(&*panic);
                tracing::error!(check = step.name, panic = %message, "check panicked");
                Finding::new(
                    Status::Fail,
                    format!("the check panicked: {message}"),
                    Value::Null,
                )
                .with_errors(vec![format!("panic: {message}")])
            }
            Err(_) => {
                let ms = step.limit.as_millis();
                tracing::error!(
                    check = step.name,
                    limit_ms = ms,
                    "check did not finish in time"
                );
                Finding::new(
                    Status::Fail,
                    format!("the check did not finish within {ms} ms"),
                    Value::Null,
                )
                .with_errors(vec![format!("timed out after {ms} ms")])
            }
        };
        let elapsed = started.elapsed();
        for error in &finding.errors {
            tracing::debug!(check = step.name, %error, "error met");
        }
        tracing::info!(
            check = step.name,
            status = finding.status.as_str(),
            elapsed_ms = millis(elapsed),
            "{}",
            finding.summary
        );
        if let Some(progress) = progress {
            progress(&ProgressEvent::Finished {
                name: step.name,
                status: finding.status,
            });
        }
        checks.push(Check {
            name: step.name.to_owned(),
            status: finding.status,
            elapsed_ms: millis(elapsed),
            summary: finding.summary,
            details: finding.details,
            errors: finding.errors,
        });
    }
    checks
}

/// Milliseconds with two decimals.
pub(crate) fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 100_000.0).round() / 100.0
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// Turns a panic while polling the future into an `Err`, like `FutureExt::catch_unwind`.
struct CatchUnwind<'a, T>(BoxFuture<'a, T>);

impl<T> Future for CatchUnwind<'_, T> {
    type Output = Result<T, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// The ten checks with their limits.
fn steps(env: &Env) -> Vec<Step<Env, State>> {
    let quick = Duration::from_secs(5);
    let confirm = Duration::from_millis(env.ctx.config().confirm.confirm_timeout_ms);
    let resolve = env.ctx.config().resolve.deadline();
    let step = |name, run: CheckFn<Env, State>, limit| Step {
        name,
        run,
        limit,
        expected: None,
    };
    vec![
        step("interfaces", interfaces::check_interfaces, quick),
        step("routes", routes::check_routes, quick),
        step("listener", local::check_listener, quick + confirm),
        step("self-reachability", local::check_self, quick + confirm),
        step("resolver-chain", local::check_resolvers, quick + resolve),
        step(
            "multicast",
            multicast::check_multicast,
            quick + env.config.self_check_timeout(),
        ),
        Step {
            expected: Some(env.window),
            ..step("peer-discovery", peers::check_discovery, quick + env.window)
        },
        step(
            "peer-reachability",
            reach::check_reachability,
            quick + env.config.reach_timeout(),
        ),
        step(
            "resolver-checks",
            resolver_checks::check_resolver_checks,
            quick + resolve,
        ),
        step("environment", environment::check_environment, quick),
    ]
}

pub(crate) async fn run(
    ctx: Context,
    registry: Registry,
    options: Options,
    setup_error: Option<String>,
) -> Report {
    // A broken [diagnostics] section does not stop the report: the CLI refuses it before, and a
    // program embedding the report gets the defaults and a log line naming the key.
    let config = DiagnosticsConfig::from_settings(ctx.settings()).unwrap_or_else(|error| {
        tracing::error!(%error, "using the default [diagnostics] settings");
        DiagnosticsConfig::default()
    });
    match options.capture.clone() {
        Some(capture) => run_captured(ctx, registry, options, setup_error, config, capture).await,
        None => {
            // Nobody installed a capture layer: capture this task's own lines at least.
            let capture = LogCapture::new(config.log_capacity);
            let dispatch =
                tracing::Dispatch::new(tracing_subscriber::registry().with(capture.layer()));
            run_captured(ctx, registry, options, setup_error, config, capture)
                .with_subscriber(dispatch)
                .await
        }
    }
}

async fn run_captured(
    ctx: Context,
    registry: Registry,
    options: Options,
    setup_error: Option<String>,
    config: DiagnosticsConfig,
    capture: LogCapture,
) -> Report {
    let started = Instant::now();
    let identity = ctx.identity();
    let device = DeviceInfo {
        name: identity.name().to_owned(),
        id: identity.device_id(),
        fingerprint: identity.fingerprint(),
        listener_port: ctx.confirmer().ok().map(localpair_core::Confirmer::port),
    };
    let window = options.window.unwrap_or_else(|| config.discovery_window());
    tracing::info!(
        device = %device.id,
        window_ms = millis(window),
        "diagnostics start"
    );
    let env = Env {
        ctx,
        registry,
        config,
        window,
        setup_error,
    };
    let mut state = State::default();
    let steps = steps(&env);
    let checks = run_series(&steps, &env, &mut state, options.progress.as_ref()).await;
    // Reports of peers that heard us may still have arrived during the last checks.
    peers::refresh_heard_us(&env.ctx, &peers::facts(&env), &mut state.matrix);
    let hints = super::hints::derive(&checks);
    let elapsed = started.elapsed();
    tracing::info!(
        elapsed_ms = millis(elapsed),
        hints = hints.len(),
        "diagnostics done"
    );
    let (log, log_dropped) = capture.entries();
    Report {
        device: Some(device),
        elapsed_ms: millis(elapsed),
        checks,
        matrix: state.matrix,
        hints,
        log,
        log_dropped,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    struct Counter {
        ran: Vec<&'static str>,
    }

    fn ok<'a>(_: &'a (), state: &'a mut Counter) -> BoxFuture<'a, Finding> {
        Box::pin(async move {
            state.ran.push("ok");
            Finding::new(Status::Pass, "fine", Value::Null)
        })
    }

    #[allow(clippy::panic, reason = "the test is about a check that panics")]
    fn panics<'a>(_: &'a (), state: &'a mut Counter) -> BoxFuture<'a, Finding> {
        Box::pin(async move {
            state.ran.push("panics");
            tokio::task::yield_now().await;
            panic!("interface table exploded");
        })
    }

    fn hangs<'a>(_: &'a (), state: &'a mut Counter) -> BoxFuture<'a, Finding> {
        Box::pin(async move {
            state.ran.push("hangs");
            std::future::pending::<()>().await;
            Finding::new(Status::Pass, "never", Value::Null)
        })
    }

    #[tokio::test]
    async fn a_panicking_or_hanging_check_fails_and_the_next_still_runs() {
        let limit = Duration::from_millis(200);
        let step = |name, run: CheckFn<(), Counter>| Step {
            name,
            run,
            limit,
            expected: None,
        };
        let steps = [
            step("first", ok),
            step("boom", panics),
            step("stuck", hangs),
            step("last", ok),
        ];
        let mut state = Counter { ran: Vec::new() };
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let progress: Progress = Arc::new(move |e: &ProgressEvent| {
            if let ProgressEvent::Finished { name, status } = e
                && let Ok(mut v) = sink.lock()
            {
                v.push((*name, *status));
            }
        });
        let checks = run_series(&steps, &(), &mut state, Some(&progress)).await;
        assert_eq!(state.ran, ["ok", "panics", "hangs", "ok"]);
        let statuses: Vec<(&str, Status)> =
            checks.iter().map(|c| (c.name.as_str(), c.status)).collect();
        assert_eq!(
            statuses,
            [
                ("first", Status::Pass),
                ("boom", Status::Fail),
                ("stuck", Status::Fail),
                ("last", Status::Pass)
            ]
        );
        assert!(checks[1].summary.contains("interface table exploded"));
        assert_eq!(checks[1].errors, ["panic: interface table exploded"]);
        assert!(checks[2].summary.contains("did not finish within 200 ms"));
        assert!(checks[2].elapsed_ms >= 200.0);
        assert_eq!(events.lock().unwrap().len(), 4);
    }
}
