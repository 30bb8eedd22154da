//! Errors of the interface-sweep resolver.

use localpair_core::{FailureKind, StrategyError};

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

impl From<Error> for StrategyError {
    fn from(error: Error) -> Self {
        let kind = match &error {
            Error::NoPrivateAddress { .. } => FailureKind::NothingFound,
            Error::NoneConfirmed { .. } => FailureKind::Network,
            Error::Core(_) => FailureKind::Io,
        };
        StrategyError::try_next(kind, error)
    }
}
