//! Errors of the example strategies.

use std::net::IpAddr;

use localpair_core::{Classify, FailureKind};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The table lists nothing.
    #[error("[strategies.{0}] lists nothing")]
    Empty(&'static str),
    /// No configured address passed self-confirmation.
    #[error("none of the configured addresses is ours: {}", failures.iter().map(|(ip, e)| format!("{ip}: {e}")).collect::<Vec<_>>().join("; "))]
    NoneConfirmed {
        /// Each address and why it failed.
        failures: Vec<(IpAddr, localpair_core::Error)>,
    },
}

impl Classify for Error {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Error::Empty(_) => FailureKind::NothingFound,
            Error::NoneConfirmed { .. } => FailureKind::Network,
        }
    }
}
