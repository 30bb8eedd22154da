//! Errors of the outbound-route resolver.

use std::net::{IpAddr, SocketAddr};

use localpair_core::{Classify, FailureKind};

/// What can go wrong while finding the outbound address.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No target had a route (no default route, network down).
    #[error("no route to any target: {tried}")]
    NoRoute {
        /// Each target and the OS error, e.g. `192.0.2.1:9: Network is unreachable (os error 101)`.
        tried: String,
    },
    /// The config lists no target.
    #[error("no targets configured in [strategies.outbound-route]")]
    NoTargets,
    /// The route's source address sits on an interface the `[interfaces]` filter excludes.
    #[error("outbound address {ip} is on {interface}, which [interfaces] excludes")]
    Excluded {
        /// The address.
        ip: IpAddr,
        /// Its interface.
        interface: String,
    },
    /// Listing interfaces failed.
    #[error(transparent)]
    Core(#[from] localpair_core::Error),
    /// The address did not pass self-confirmation.
    #[error("outbound address {ip} (route to {target}) failed self-confirmation")]
    NotConfirmed {
        /// The address.
        ip: IpAddr,
        /// The target whose route gave it.
        target: SocketAddr,
        /// Why.
        #[source]
        source: localpair_core::Error,
    },
}

impl Classify for Error {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Error::NoRoute { .. } => FailureKind::Network,
            Error::NoTargets => FailureKind::Config,
            Error::Excluded { .. } => FailureKind::NotApplicable,
            Error::Core(core) => core.failure_kind(),
            Error::NotConfirmed { .. } => FailureKind::Network,
        }
    }
}
