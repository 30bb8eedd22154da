//! The pairing crate's error type.

use std::net::SocketAddr;
use std::time::Duration;

use localpair_core::serve::Served;
use localpair_core::{Attempt, Classify, FailureKind};
use serde::Serialize;

use crate::race::DialRecord;
use crate::wire::Refusal;

/// Everything that can go wrong while hosting or joining a pairing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A framework failure: sockets, TLS, frames, interfaces, the device key, the settings.
    #[error(transparent)]
    Core(#[from] localpair_core::Error),
    /// A pairing code failed its checks: a typo, a truncated scan, or not a code at all.
    #[error("corrupted pairing code: {reason}")]
    CorruptedCode {
        /// What was wrong.
        reason: &'static str,
    },
    /// A pairing code from a newer release.
    #[error("this code needs a newer localpair (code version {version})")]
    NewerCode {
        /// The version byte found.
        version: u8,
    },
    /// A typed short code is not one (wrong number of digits, a letter, a channel under 10).
    #[error("not a short code: {reason} (it looks like 47-392-8150)")]
    BadShortCode {
        /// What was wrong.
        reason: &'static str,
    },
    /// A short code ended: too many exchanges failed (someone entered a wrong code).
    #[error("someone entered a wrong code {failures} times; the code has ended — start a new one")]
    CodeEnded {
        /// Failed exchanges (the limit).
        failures: u32,
    },
    /// A message of the pairing exchange did not parse, or came out of turn.
    #[error("malformed pairing message: {reason}")]
    Malformed {
        /// What was wrong.
        reason: &'static str,
    },
    /// The pairing code lived its whole lifetime without a pairing.
    #[error("the pairing code expired after {} s without a successful pairing", after.as_secs())]
    CodeExpired {
        /// The code's lifetime.
        after: Duration,
    },
    /// The host refused our proof or the code.
    #[error("{addr}: {}", refusal.explain())]
    Refused {
        /// The host's address.
        addr: SocketAddr,
        /// Why.
        refusal: Refusal,
    },
    /// The host holds the pinned key but not the code's secret (it runs another pairing).
    #[error("{addr}: the host's proof does not match this code")]
    HostProofInvalid {
        /// The host's address.
        addr: SocketAddr,
    },
    /// A device that offered the other direction was dialled, but did not prove it holds the
    /// code (it sent a wrong proof, or came too late).
    #[error("{addr}: the device that offered to be dialled did not prove it holds the code")]
    JoinerRefused {
        /// Where it was dialled.
        addr: SocketAddr,
    },
    /// Another connection to the same host paired first; this one was not used.
    #[error("{addr}: not needed, another address paired first")]
    Superseded {
        /// The address of the unused connection.
        addr: SocketAddr,
    },
    /// The trust store does not parse, or cannot take another peer. It is never rewritten
    /// while it does not parse.
    #[error("trust store {}: {reason}", path.display())]
    TrustStore {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, with the line when the text does not parse.
        reason: String,
    },
    /// No known peer matches the name, id or fingerprint given.
    #[error("no known peer is `{who}`; known: {known}")]
    UnknownPeer {
        /// What was given.
        who: String,
        /// The known peers.
        known: String,
    },
    /// Several known peers match what was given.
    #[error("`{who}` matches several known peers: {matching}; give more of the id or fingerprint")]
    AmbiguousPeer {
        /// What was given.
        who: String,
        /// The peers it matches.
        matching: String,
    },
    /// Hosting is impossible: no resolver found an address that a peer could use.
    #[error(
        "no usable address found; {}",
        localpair_core::chain::explain(attempts)
    )]
    NoAddress {
        /// Every resolver attempt and how it ended.
        attempts: Vec<Attempt>,
    },
    /// Reconnecting to a known peer failed (the likely cause says which side does not know
    /// whom, or which firewall drops what).
    #[error("connecting failed: {0}")]
    ConnectFailed(Box<Attempted>),
    /// No address paired before the deadline.
    #[error("pairing failed: {0}")]
    JoinFailed(Box<Attempted>),
}

/// What a failed join or reconnect tried, and the likely cause.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Attempted {
    /// What was tried, in a sentence ("tried 10.0.0.2:19537 (from direct): timed out; …").
    pub tried: String,
    /// The likely cause, and what to do about it.
    pub likely: String,
    /// Every dial, in either direction.
    pub dials: Vec<DialRecord>,
    /// How each discoverer's attempt ended.
    pub discovery: Vec<Attempt>,
}

impl std::fmt::Display for Attempted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}. Likely: {}", self.tried, self.likely)
    }
}

impl Error {
    /// An I/O failure of `op`.
    pub(crate) fn io(op: impl Into<String>, source: std::io::Error) -> Self {
        Self::Core(localpair_core::Error::io(op, source))
    }

    /// A wait that ran past its limit.
    pub(crate) fn timeout(what: String, after: Duration) -> Self {
        Self::Core(localpair_core::Error::Timeout { what, after })
    }
}

impl Classify for Error {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Self::Core(core) => core.failure_kind(),
            Self::CorruptedCode { .. } | Self::NewerCode { .. } | Self::BadShortCode { .. } => {
                FailureKind::Config
            }
            Self::Malformed { .. } => FailureKind::Protocol,
            Self::Refused { .. } | Self::HostProofInvalid { .. } | Self::JoinerRefused { .. } => {
                FailureKind::Security
            }
            Self::CodeExpired { .. } | Self::CodeEnded { .. } => FailureKind::Security,
            Self::Superseded { .. }
            | Self::JoinFailed { .. }
            | Self::ConnectFailed { .. }
            | Self::NoAddress { .. } => FailureKind::NothingFound,
            Self::TrustStore { .. } | Self::UnknownPeer { .. } | Self::AmbiguousPeer { .. } => {
                FailureKind::Config
            }
        }
    }
}

/// A failed read or write on a [`Link`](crate::Link), for applications using `?`.
impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Self::io("link stream", error)
    }
}

impl From<rustls::Error> for Error {
    fn from(error: rustls::Error) -> Self {
        Self::Core(error.into())
    }
}

impl Served for Error {
    fn closed_after_handshake(&self) -> bool {
        matches!(self, Self::Core(core) if core.closed_after_handshake())
    }
}
