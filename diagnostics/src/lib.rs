//! Diagnostics for localpair (`localpair diagnose`): a report that explains why pairing cannot
//! work here. Built on `localpair-core` alone: what it needs to know about strategies (their
//! UDP ports, whether they report observations, whether they have a self-check) it reads from
//! the [`Facts`](localpair_core::registry::Facts) they declare at registration, so a custom
//! strategy is treated like a built-in one.
//!
//! Ten checks run in series, each captured whatever happens — an error, a panic or a hang of one
//! check is recorded as its failure and the next one runs:
//!
//! | # | name | what it looks at |
//! |---|---|---|
//! | 1 | `interfaces` | every interface: index, flags, MTU, MAC, addresses, class, whether `[interfaces]` permits it |
//! | 2 | `routes` | default route(s) from the routing table, the outbound address per family |
//! | 3 | `listener` | the confirmation listener's address and port; does it answer on loopback |
//! | 4 | `self-reachability` | every address of every permitted interface through our own listener |
//! | 5 | `resolver-chain` | the `[resolve]` chain: every attempt and its candidates |
//! | 6 | `multicast` | each discoverer's [`self_check`](localpair_core::PeerDiscoverer::self_check) (skip when none has one) |
//! | 7 | `peer-discovery` | each `[discover]` strategy alone for `discovery_window_ms`, side by side; who heard us |
//! | 8 | `peer-reachability` | a pinned TLS handshake with every peer found, on every address |
//! | 9 | `resolver-checks` | the self-check of each `[resolve]` strategy that declares one (a UPnP gateway, its external address) |
//! | 10 | `environment` | VPN default route, several private subnets, no private address, link-local only |
//!
//! The result is a [`Report`]: the checks, the reachability [`matrix`](Report::matrix) (peer →
//! found by which strategies, whether it heard us, whether its listener answered), [`Hint`]s that
//! name a likely cause and its fix, and the log captured while the checks ran ([`LogCapture`]).
//!
//! ```
//! use localpair_core::config::{Settings, Source};
//! use localpair_core::Registry;
//! use localpair_diagnostics::{self as diagnostics, Options, Status};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), localpair_core::Error> {
//! // No strategy in either chain, so this report sends nothing but to itself (loopback); a real
//! // one uses `Source::Discover` and `Registry::linked()`.
//! let settings = Settings::load(Source::Toml(
//!     "[device]\nephemeral = true\n[resolve]\norder = []\n[discover]\norder = []\n\
//!      [diagnostics]\ndiscovery_window_ms = 100\n".into(),
//! ))?;
//! let report = diagnostics::run_with_settings(settings, &Registry::default(), Options::default()).await;
//! assert_eq!(report.check("listener").map(|c| c.status), Some(Status::Pass));
//! assert!(report.hint("no-address").is_some());
//! print!("{}", report.to_text());
//! # Ok(())
//! # }
//! ```
//!
//! Running the report sends packets onto the local network (multicast announcements, mDNS,
//! connections to the peers found): it is a user's command, not something for a test to run
//! outside a network namespace.

mod config;
mod environment;
pub mod firewall;
mod hints;
mod interfaces;
mod local;
mod log;
mod multicast;
mod peers;
mod reach;
mod redact;
mod report;
mod resolver_checks;
mod routes;
mod runner;
mod text;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use localpair_core::Context;
use localpair_core::config::Settings;
use localpair_core::registry::Registry;

pub use config::DiagnosticsConfig;
pub use hints::derive as derive_hints;
pub use log::{CaptureLayer, LogCapture, LogEntry};
pub use report::{Check, DeviceInfo, Hint, PeerRow, Report, SelfCheck, Status};

/// Check names, in the order they run.
pub const CHECKS: [&str; 10] = [
    "interfaces",
    "routes",
    "listener",
    "self-reachability",
    "resolver-chain",
    "multicast",
    "peer-discovery",
    "peer-reachability",
    "resolver-checks",
    "environment",
];

/// What the runner tells a progress display.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// A check starts.
    Started {
        /// Its name.
        name: &'static str,
        /// Its position, from 1.
        index: usize,
        /// How many checks there are.
        total: usize,
        /// How long it is expected to take, when that is known (the discovery window).
        expected: Option<Duration>,
    },
    /// A check ended.
    Finished {
        /// Its name.
        name: &'static str,
        /// How it ended.
        status: Status,
    },
}

/// A callback for progress; called from the runtime's threads, so keep it quick.
pub type Progress = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// How to run the report.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// Overrides `[diagnostics] discovery_window_ms`.
    pub window: Option<Duration>,
    /// The log capture whose layer the caller installed in its subscriber. Without one the
    /// runner captures the log of its own task only, and those lines do not reach the caller's
    /// subscriber (lines logged by tasks that strategies spawn are then missing).
    pub capture: Option<LogCapture>,
    /// Called when a check starts and ends.
    pub progress: Option<Progress>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("window", &self.window)
            .field("capture", &self.capture.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Options {
    /// Options with this log capture.
    #[must_use]
    pub fn with_capture(mut self, capture: LogCapture) -> Self {
        self.capture = Some(capture);
        self
    }

    /// Options with this progress callback.
    #[must_use]
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Options with this discovery window.
    #[must_use]
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = Some(window);
        self
    }
}

/// Runs every check with an existing context (its identity and confirmation listener).
pub async fn run(ctx: &Context, registry: &Registry, options: Options) -> Report {
    runner::run(ctx.clone(), registry.clone(), options, None).await
}

/// Starts a context from `settings` (identity, confirmation listener), runs every check, and
/// shuts the listener down. A context that cannot start does not stop the report: the checks run
/// without a listener, and the `listener` check says why it is missing.
pub async fn run_with_settings(
    settings: Settings,
    registry: &Registry,
    options: Options,
) -> Report {
    let (ctx, setup_error) = match Context::start(settings.clone()) {
        Ok(ctx) => (ctx, None),
        Err(error) => {
            tracing::error!(%error, "cannot start the confirmation listener; checking without it");
            match fallback_context(settings) {
                Ok(ctx) => (ctx, Some(error.to_string())),
                Err(again) => return Report::unavailable(&error, &again),
            }
        }
    };
    let report = runner::run(ctx.clone(), registry.clone(), options, setup_error).await;
    if let Ok(confirmer) = ctx.confirmer() {
        confirmer.shutdown();
    }
    report
}

fn fallback_context(settings: Settings) -> Result<Context, localpair_core::Error> {
    let identity = Arc::new(localpair_core::Identity::ephemeral(
        localpair_core::identity::host_name(),
    )?);
    Context::new(settings, identity, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use localpair_core::config::Source;

    /// A discoverer from outside the workspace: it announces nothing and finds nobody, but it
    /// declares a UDP port, as a real one would.
    struct Silent;

    #[localpair_core::async_trait]
    impl localpair_core::PeerDiscoverer for Silent {
        async fn discover(
            &self,
            _ctx: &Context,
            sink: localpair_core::PeerSink,
        ) -> Result<(), localpair_core::StrategyError> {
            sink.stopped().await;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_custom_strategys_declared_port_shows_up_in_the_firewall_hint() {
        let mut registry = Registry::default();
        registry
            .add_discoverer(localpair_core::registry::DiscovererFactory {
                name: "silent-custom",
                crate_name: "a-third-party-crate",
                summary: "finds nobody",
                facts: |_| {
                    Ok(localpair_core::registry::Facts::new().udp_port(4242, "silent protocol"))
                },
                build: |_| Ok(Arc::new(Silent)),
            })
            .unwrap();
        let settings = Settings::load(Source::Toml(
            "[device]\nephemeral = true\n[resolve]\norder = []\n[discover]\norder = [\"silent-custom\"]\n\
             [diagnostics]\ndiscovery_window_ms = 200\n"
                .into(),
        ))
        .unwrap();
        let report = run_with_settings(settings, &registry, Options::default()).await;
        let discovery = report.check("peer-discovery").unwrap();
        assert_eq!(discovery.details["udp_ports"]["silent protocol"], 4242);
        let hint = report
            .hint("multicast-blocked")
            .expect("the silence is explained");
        assert!(
            hint.cause.contains("UDP 4242 (silent protocol)"),
            "{}",
            hint.cause
        );
    }

    /// With empty `[resolve]` and `[discover]` orders the report sends nothing onto the
    /// network (its own addresses are reached through loopback), so it may run outside a lab.
    #[tokio::test]
    async fn without_strategies_every_check_still_reports_and_the_log_is_captured() {
        let settings = Settings::load(Source::Toml(
            "[device]\nephemeral = true\n[resolve]\norder = []\n[discover]\norder = []\n[diagnostics]\ndiscovery_window_ms = 200\n"
                .into(),
        ))
        .unwrap();
        let report = run_with_settings(settings, &Registry::default(), Options::default()).await;
        let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, CHECKS);
        let status = |name: &str| report.check(name).unwrap().status;
        assert_eq!(status("listener"), Status::Pass);
        assert_eq!(status("resolver-chain"), Status::Fail);
        assert_eq!(status("multicast"), Status::Skip);
        assert!(
            report
                .check("multicast")
                .unwrap()
                .summary
                .contains("[discover] order is empty")
        );
        assert_eq!(status("peer-discovery"), Status::Fail);
        assert_eq!(status("peer-reachability"), Status::Skip);
        assert_eq!(status("resolver-checks"), Status::Skip);
        assert!(report.matrix.is_empty());
        assert!(report.hint("no-address").is_some(), "{:?}", report.hints);
        // No capture was installed: the runner captured its own lines.
        assert!(report.log.iter().any(|e| e.message == "diagnostics start"));
        assert!(
            report
                .log
                .iter()
                .any(|e| e.fields.get("check") == Some(&serde_json::json!("environment")))
        );

        // The JSON shape DESIGN.md promises, and it reads back.
        let json = serde_json::to_value(&report).unwrap();
        for key in ["checks", "hints", "log", "matrix", "device", "elapsed_ms"] {
            assert!(json.get(key).is_some(), "{key}");
        }
        let first = &json["checks"][0];
        for key in [
            "name",
            "status",
            "elapsed_ms",
            "summary",
            "details",
            "errors",
        ] {
            assert!(first.get(key).is_some(), "{key} in {first}");
        }
        assert_eq!(first["status"], "pass");
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back.checks, report.checks);
        assert!(report.to_text().contains("✘ peer-discovery"));
    }
}
