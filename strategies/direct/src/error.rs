//! Errors of the direct discoverer.

use localpair_core::{Classify, FailureKind};

/// Why `direct` offered nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not joining: there is no code whose addresses could be offered.
    #[error("no pairing code: direct only offers the addresses written in a code")]
    NoCode,
    /// The code lists no address this device can use.
    #[error("the pairing code lists no usable address")]
    NoAddress,
}

impl Classify for Error {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Error::NoCode => FailureKind::NotApplicable,
            Error::NoAddress => FailureKind::NothingFound,
        }
    }
}
