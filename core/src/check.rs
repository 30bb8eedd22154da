//! What a strategy's self-check reports: part of the plugin contract, so that a tool such as
//! `localpair diagnose` can show a custom strategy's findings like a built-in one's.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// Nothing wrong found.
    Pass,
    /// Something that may stop pairing, or works only partly.
    Warn,
    /// Something that stops pairing, or the check itself could not run.
    Fail,
    /// Not applicable here; the summary says why.
    Skip,
}

impl Status {
    /// The status as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }

    /// The mark in the text report.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Pass => "✔",
            Self::Warn => "⚠",
            Self::Fail => "✘",
            Self::Skip => "–",
        }
    }

    /// Orders by how bad it is: skip, pass, warn, fail.
    pub fn severity(self) -> u8 {
        match self {
            Self::Skip => 0,
            Self::Pass => 1,
            Self::Warn => 2,
            Self::Fail => 3,
        }
    }

    /// The worse of two.
    #[must_use]
    pub fn worst(self, other: Self) -> Self {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

/// What a discoverer's [`self_check`](localpair_core::PeerDiscoverer::self_check) found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SelfCheck {
    /// Pass when our own packets came back on every interface tried.
    pub status: Status,
    /// One line, e.g. "our own announcement came back after 4 ms on eth0".
    pub summary: String,
    /// Group, port, interfaces, counts: whatever explains the result.
    pub details: Value,
    /// Every error met.
    pub errors: Vec<String>,
}

impl SelfCheck {
    /// A result without errors.
    pub fn new(status: Status, summary: impl Into<String>, details: Value) -> Self {
        Self {
            status,
            summary: summary.into(),
            details,
            errors: Vec::new(),
        }
    }

    /// Adds an error.
    #[must_use]
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.errors.push(error.into());
        self
    }

    /// Adds errors.
    #[must_use]
    pub fn with_errors(mut self, errors: Vec<String>) -> Self {
        self.errors.extend(errors);
        self
    }
}
