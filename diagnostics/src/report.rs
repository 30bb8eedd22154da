//! The report and its parts, as they appear in JSON.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::log::LogEntry;
pub use localpair_core::check::{SelfCheck, Status};
use localpair_core::identity::{DeviceId, Fingerprint};

/// One check's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Check {
    /// Its name (see [`CHECKS`](super::CHECKS)).
    pub name: String,
    /// How it ended.
    pub status: Status,
    /// Its run time in milliseconds.
    pub elapsed_ms: f64,
    /// One line a person can read.
    pub summary: String,
    /// Structured findings; each check documents its own keys.
    pub details: Value,
    /// Every error met, including those the check got past.
    pub errors: Vec<String>,
}

impl Check {
    /// A record (for building reports by hand, e.g. to test hints).
    pub fn new(name: &str, status: Status, summary: impl Into<String>, details: Value) -> Self {
        Self {
            name: name.to_owned(),
            status,
            elapsed_ms: 0.0,
            summary: summary.into(),
            details,
            errors: Vec::new(),
        }
    }
}

/// One row of the reachability matrix: another device, and how far we got with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PeerRow {
    /// Its device id.
    pub id: DeviceId,
    /// The name it announces (empty when it only reported hearing us).
    pub name: String,
    /// Its key fingerprint.
    pub fingerprint: Fingerprint,
    /// Its listener's addresses, as discovered.
    pub addrs: Vec<SocketAddr>,
    /// The discoverers that found it, in `[discover]` order; empty when it only heard us.
    pub found_by: Vec<String>,
    /// Whether it told our listener it heard our announcement; `None` when no discoverer that
    /// found it sends such reports (mDNS does not), so silence means nothing.
    pub heard_us: Option<bool>,
    /// Whether a pinned TLS handshake with its listener succeeded; `None` when not tried.
    pub reachable: Option<bool>,
    /// The first address (in `addrs` order: IPv4 first) the handshake succeeded on.
    pub reached: Option<SocketAddr>,
    /// That handshake's time in milliseconds.
    pub reach_ms: Option<f64>,
}

/// A likely cause of trouble and what to do about it, derived from the checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hint {
    /// Stable identifier, e.g. `multicast-blocked`.
    pub id: String,
    /// What is probably wrong, with the evidence.
    pub cause: String,
    /// What to do.
    pub fix: String,
    /// The checks it comes from.
    pub checks: Vec<String>,
}

impl Hint {
    /// A hint.
    pub fn new(
        id: &str,
        cause: impl Into<String>,
        fix: impl Into<String>,
        checks: &[&str],
    ) -> Self {
        Self {
            id: id.to_owned(),
            cause: cause.into(),
            fix: fix.into(),
            checks: checks.iter().map(|c| (*c).to_owned()).collect(),
        }
    }
}

/// The device the report is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// Its name.
    pub name: String,
    /// Its device id.
    pub id: DeviceId,
    /// Its key fingerprint.
    pub fingerprint: Fingerprint,
    /// The confirmation listener's port, when it runs.
    pub listener_port: Option<u16>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// This device.
    pub device: Option<DeviceInfo>,
    /// Run time of the whole report in milliseconds.
    pub elapsed_ms: f64,
    /// Every check, in the order run.
    pub checks: Vec<Check>,
    /// Every other device met: found by discovery, or reporting that it heard us.
    pub matrix: Vec<PeerRow>,
    /// Likely causes and fixes, most basic first.
    pub hints: Vec<Hint>,
    /// The log captured while the checks ran.
    pub log: Vec<LogEntry>,
    /// Log entries dropped from the middle of the log to keep it within its capacity.
    pub log_dropped: u64,
}

impl Report {
    /// A report from checks alone, with hints derived from them.
    pub fn from_checks(checks: Vec<Check>) -> Self {
        let hints = super::hints::derive(&checks);
        Self {
            device: None,
            elapsed_ms: checks.iter().map(|c| c.elapsed_ms).sum(),
            checks,
            matrix: Vec::new(),
            hints,
            log: Vec::new(),
            log_dropped: 0,
        }
    }

    /// The check named `name`.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The hint with this id.
    pub fn hint(&self, id: &str) -> Option<&Hint> {
        self.hints.iter().find(|h| h.id == id)
    }

    /// The worst status of all checks.
    pub fn status(&self) -> Status {
        self.checks
            .iter()
            .fold(Status::Skip, |worst, c| worst.worst(c.status))
    }

    /// The report for people: a table of checks, the peers, the hints.
    pub fn to_text(&self) -> String {
        super::text::render(self)
    }

    /// A copy with MAC addresses, host and device names and public IP addresses replaced by
    /// placeholders (`<mac-1>`, `<name-1>`, `<public-ip-1>`), everywhere including the log.
    /// Private, link-local, loopback, multicast and documentation addresses stay, because they
    /// say where the trouble is without saying who the user is. `extra_names` adds names to mask.
    #[must_use]
    pub fn redacted(&self, extra_names: &[String]) -> Self {
        super::redact::report(self, extra_names)
    }

    /// A report for when not even a context could be set up: every check fails with the reason.
    pub(crate) fn unavailable(
        error: &localpair_core::Error,
        again: &localpair_core::Error,
    ) -> Self {
        let summary = format!("not run: cannot set up ({error}; without a listener: {again})");
        let checks = super::CHECKS
            .iter()
            .map(|name| {
                let mut check = Check::new(name, Status::Fail, summary.clone(), Value::Null);
                check.errors.push(error.to_string());
                check
            })
            .collect();
        Self::from_checks(checks)
    }
}
