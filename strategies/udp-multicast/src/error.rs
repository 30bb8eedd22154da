//! Errors of the udp-multicast discoverer and the peer-observed resolver.

use localpair_core::{Classify, FailureKind};

/// What can go wrong; each message says what was tried, with numbers, because it ends up in the
/// attempt record people read when discovery fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config value is out of range; `key` is the full key.
    #[error("invalid config `{key}`: {reason}")]
    Config {
        /// The full key, e.g. `strategies.udp-multicast.port`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading the config or listing interfaces failed.
    #[error(transparent)]
    Core(#[from] localpair_core::Error),
    /// No interface qualifies for multicast.
    #[error("no interface to announce on: {detail}")]
    NoInterfaces {
        /// Each interface and why it was passed over.
        detail: String,
    },
    /// Every socket failed to open.
    #[error("cannot open any multicast socket: {detail}")]
    Sockets {
        /// Each interface and the OS error.
        detail: String,
    },
    /// A datagram over the size cap; it was not parsed.
    #[error(
        "datagram of {len} bytes exceeds the {}-byte cap",
        crate::wire::MAX_DATAGRAM
    )]
    Oversized {
        /// Its length (the cap plus one when it was longer than the receive buffer).
        len: usize,
    },
    /// A datagram that is not a valid packet.
    #[error("malformed packet: {reason}")]
    Malformed {
        /// What was wrong.
        reason: &'static str,
    },
    /// The discoverer was stopped without having heard a peer; the summary gives the counts and
    /// the likely cause.
    #[error("{summary}")]
    NothingHeard {
        /// Packets sent and heard per interface, and a diagnosis.
        summary: String,
    },
    /// The peer-observed resolver's wait ended without any peer reporting where it saw us.
    #[error("no peer reported seeing us within {waited_ms} ms: {summary}")]
    NotObserved {
        /// How long it waited.
        waited_ms: u64,
        /// Packets sent and heard per interface, and a diagnosis.
        summary: String,
    },
    /// Peers reported addresses, but none passed self-confirmation.
    #[error("peers reported {count} address(es), none confirmed: {detail}")]
    NotConfirmed {
        /// How many distinct addresses were reported.
        count: usize,
        /// Each address and why it failed.
        detail: String,
    },
}

impl Error {
    pub(crate) fn config(key: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

impl Classify for Error {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Error::Config { .. } => FailureKind::Config,
            Error::Core(core) => core.failure_kind(),
            Error::Sockets { .. } => FailureKind::Io,
            Error::NoInterfaces { .. } => FailureKind::NotApplicable,
            Error::Oversized { .. } | Error::Malformed { .. } => FailureKind::Protocol,
            Error::NothingHeard { .. } | Error::NotObserved { .. } => FailureKind::NothingFound,
            Error::NotConfirmed { .. } => FailureKind::Network,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use localpair_core::OnError;
    use localpair_core::StrategyError;

    #[test]
    fn kinds_and_reactions() {
        let e = StrategyError::from(Error::config("strategies.udp-multicast.port", "0"));
        assert_eq!(
            (e.kind(), e.on_error()),
            (FailureKind::Config, OnError::Stop)
        );
        let e = StrategyError::from(Error::NothingHeard {
            summary: "sent 5".into(),
        });
        assert_eq!(
            (e.kind(), e.on_error()),
            (FailureKind::NothingFound, OnError::TryNext)
        );
        assert_eq!(e.to_string(), "sent 5");
        let e = StrategyError::from(Error::NoInterfaces {
            detail: "lo: loopback".into(),
        });
        assert_eq!(e.kind(), FailureKind::NotApplicable);
    }
}
