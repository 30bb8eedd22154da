//! Errors of the interface-sweep resolver.

use localpair_core::{Classify, FailureKind};

/// What can go wrong while sweeping interfaces.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No permitted interface holds a private address.
    #[error("no private address on any permitted interface ({seen})")]
    NoPrivateAddress {
        /// What was seen, e.g. `eth0: 203.0.113.5; lo skipped`.
        seen: String,
    },
    /// Private addresses exist but none passed self-confirmation.
    #[error("no address passed self-confirmation: {failures}")]
    NoneConfirmed {
        /// Each address and why it failed.
        failures: String,
    },
    /// Listing interfaces failed, or the listener is missing.
    #[error(transparent)]
    Core(#[from] localpair_core::Error),
}

impl Classify for Error {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Error::NoPrivateAddress { .. } => FailureKind::NothingFound,
            Error::NoneConfirmed { .. } => FailureKind::Network,
            Error::Core(core) => core.failure_kind(),
        }
    }
}
