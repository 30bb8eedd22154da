//! Errors of the subnet scan.

use localpair_core::{Classify, FailureKind};

/// Why the scan found nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not joining: without a code there is no port or key to look for.
    #[error("no pairing code: subnet-scan looks for a code's pairing port")]
    NoCode,
    /// Stopped before the grace period ended.
    #[error("stopped before the scan started (grace period of {grace_ms} ms)")]
    NotStarted {
        /// The grace period.
        grace_ms: u64,
    },
    /// No permitted interface has a private IPv4 subnet.
    #[error("no private IPv4 subnet on any permitted interface")]
    NoSubnet,
    /// The whole range was tried.
    #[error(
        "scanned {scanned} addresses ({subnets}) for port {port}: {open} open, none with the host's key"
    )]
    NotFound {
        /// Addresses tried.
        scanned: usize,
        /// The subnets, e.g. `eth0 10.0.0.0/24`.
        subnets: String,
        /// The port.
        port: u16,
        /// Addresses where the port was open but the key was another.
        open: usize,
    },
}

impl Classify for Error {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Error::NoCode | Error::NotStarted { .. } => FailureKind::NotApplicable,
            Error::NoSubnet => FailureKind::NothingFound,
            Error::NotFound { .. } => FailureKind::NothingFound,
        }
    }
}
