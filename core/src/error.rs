//! The crate's error type and the error every strategy reports to the chain runner.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::registry::StrategyKind;

/// Everything that can go wrong inside `localpair-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `--config FILE` named a file that does not exist; an explicit path is never optional.
    #[error("config file {path} does not exist")]
    ConfigFileMissing {
        /// The path that was given.
        path: PathBuf,
    },
    /// A config file that cannot be used: unreadable, not a regular file, or one another user
    /// could have written (owned by someone else than this user or root, or writable by group or
    /// others), which is refused as ssh refuses such a config: it decides what runs and where the
    /// device key lives.
    #[error("config file {}: {reason}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, and the fix.
        reason: String,
    },
    /// A config value has the wrong type or shape; the message names the key as the user wrote
    /// it (the TOML key, or the environment variable) and where it came from.
    #[error("invalid config: {}", describe_config_error(.0))]
    Config(#[from] Box<figment::Error>),
    /// A chain's `order` names a strategy that no linked crate registered.
    #[error("unknown {kind} strategy `{name}` in `{key}`; known {kind}s: {known}")]
    UnknownStrategy {
        /// Resolver or discoverer.
        kind: StrategyKind,
        /// The name as written.
        name: String,
        /// The config key holding the name, e.g. `resolve.order`.
        key: String,
        /// Comma-separated names that are registered.
        known: String,
    },
    /// A top-level config section that no linked crate reads (a typo, or a section of an
    /// application this program does not include).
    #[error("unknown config section `{name}` (from {origin}); known sections: {known}")]
    UnknownSection {
        /// The section as written.
        name: String,
        /// Where it came from: the file or the environment variable.
        origin: String,
        /// Comma-separated known sections.
        known: String,
    },
    /// A `[strategies.<name>]` table names a strategy that no linked crate registered.
    #[error("config table `strategies.{name}` names no registered strategy; known: {known}")]
    UnknownStrategyTable {
        /// The table name as written.
        name: String,
        /// Comma-separated names that are registered.
        known: String,
    },
    /// Two linked crates registered the same strategy name.
    #[error("strategy `{name}` is registered twice (by {first} and by {second})")]
    DuplicateStrategy {
        /// The contested name.
        name: String,
        /// Crate of the first registration.
        first: String,
        /// Crate of the second registration.
        second: String,
    },
    /// An interface allow/deny glob does not parse.
    #[error("invalid glob `{pattern}` in `{key}`: {reason}")]
    InvalidPattern {
        /// The config key, e.g. `interfaces.deny`.
        key: String,
        /// The pattern as written.
        pattern: String,
        /// What the glob parser said.
        reason: String,
    },
    /// The OS refused to list network interfaces.
    #[error("cannot list network interfaces: {0}")]
    Interfaces(#[source] std::io::Error),
    /// The device key could not be read, written or generated.
    #[error("device identity at {path}: {reason}")]
    Identity {
        /// The key file, or `<ephemeral>`.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A state file or the state directory could not be read, written or locked.
    #[error("state {}: {reason}", path.display())]
    State {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A state file that group or others may read or write: refused, since it holds the device
    /// key or the list of trusted devices.
    #[error(
        "{} is accessible to other users (mode {mode:03o}); fix it with `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecureFile {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The OS random generator failed (no entropy source): nothing secret can be made.
    #[error("the OS random generator failed")]
    Random,
    /// A TLS configuration or session failed.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// A socket operation failed; `op` names the call (e.g. `bind 0.0.0.0:0`).
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A wait ran past its limit.
    #[error("{what} timed out after {} ms", after.as_millis())]
    Timeout {
        /// What was awaited.
        what: String,
        /// The limit.
        after: Duration,
    },
    /// A frame announced a length over the cap; it was not read.
    #[error("frame of {len} bytes exceeds the {cap}-byte cap")]
    FrameTooLarge {
        /// Announced length.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// A frame's bytes do not form a valid message.
    #[error("malformed frame: {reason}")]
    MalformedFrame {
        /// What was wrong.
        reason: &'static str,
    },
    /// The confirmation code came back through a different local address than the one probed,
    /// or never came back.
    #[error("address {ip} is not confirmed: {reason}")]
    NotConfirmed {
        /// The probed address.
        ip: IpAddr,
        /// Why.
        reason: String,
    },
    /// The device at the address presented another key than the pinned one.
    #[error(
        "{addr}: the device there presented key {got}, which does not match the pinned key {expected}"
    )]
    KeyMismatch {
        /// Where.
        addr: SocketAddr,
        /// The pinned fingerprint.
        expected: crate::identity::Fingerprint,
        /// What was presented.
        got: crate::identity::Fingerprint,
    },
    /// The confirmation listener has shut down.
    #[error("the confirmation listener is not running")]
    ListenerClosed,
}

impl Error {
    /// An I/O error with the operation that failed (`bind 0.0.0.0:0`, `connect 10.0.0.2:4000`).
    pub fn io(op: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            op: op.into(),
            source,
        }
    }
}

/// What the chain runner does after a strategy failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OnError {
    /// The failure is local to this strategy: run the next one.
    TryNext,
    /// Nothing later in the chain can succeed (bad config, an impostor): stop the chain.
    Stop,
}

/// How specific a failure is; when every strategy fails the chain reports the most specific one,
/// because "the key did not match" explains more than "nothing answered".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The strategy does not apply here (no IPv6, feature off).
    NotApplicable,
    /// The strategy ran and found nothing.
    NothingFound,
    /// A wait expired.
    Timeout,
    /// The network refused or dropped what we sent (no route, unreachable, filtered).
    Network,
    /// A local OS call failed (bind, interface listing).
    Io,
    /// A peer answered with something we could not understand.
    Protocol,
    /// The strategy's own configuration is unusable.
    Config,
    /// A peer failed authentication: wrong key, wrong proof.
    Security,
}

/// The error a strategy hands to the chain runner: its own error, plus how the chain should react
/// and how specific the failure is.
#[derive(Debug)]
pub struct StrategyError {
    on_error: OnError,
    kind: FailureKind,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl FailureKind {
    /// What the chain does after a failure of this kind — the one place that decides it. A
    /// broken configuration stops the chain: every later strategy reads the same file. Anything
    /// else, an impostor at one address included, is local to the strategy that met it: another
    /// strategy may still find the real device.
    pub fn on_error(self) -> OnError {
        match self {
            Self::Config => OnError::Stop,
            Self::NotApplicable
            | Self::NothingFound
            | Self::Timeout
            | Self::Network
            | Self::Io
            | Self::Protocol
            | Self::Security => OnError::TryNext,
        }
    }
}

impl StrategyError {
    /// A strategy's failure, classified; the chain decides from `kind` whether to go on.
    pub fn new(
        kind: FailureKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            on_error: kind.on_error(),
            kind,
            source: source.into(),
        }
    }

    /// What the chain does next.
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// How specific the failure is.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The strategy's own error, for downcasting.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }
}

impl fmt::Display for StrategyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)?;
        let mut cause = self.source.source();
        while let Some(inner) = cause {
            write!(f, ": {inner}")?;
            cause = inner.source();
        }
        Ok(())
    }
}

impl std::error::Error for StrategyError {}

/// How a strategy's own error type classifies its failures: the only decision a strategy makes.
/// The chain derives "try the next" or "stop" from the kind ([`FailureKind::on_error`]), and any
/// `Classify` error converts into a [`StrategyError`] with `?`.
pub trait Classify: std::error::Error + Send + Sync + 'static {
    /// How specific this failure is. Wrapped framework errors answer with
    /// [`Error::failure_kind`](Classify::failure_kind) of their own.
    fn failure_kind(&self) -> FailureKind;
}

impl<E: Classify> From<E> for StrategyError {
    fn from(error: E) -> Self {
        Self::new(error.failure_kind(), error)
    }
}

impl Classify for Error {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Self::ConfigFileMissing { .. }
            | Self::ConfigFile { .. }
            | Self::Config(_)
            | Self::UnknownStrategy { .. }
            | Self::UnknownStrategyTable { .. }
            | Self::UnknownSection { .. }
            | Self::DuplicateStrategy { .. }
            | Self::InvalidPattern { .. } => FailureKind::Config,
            Self::Timeout { .. } => FailureKind::Timeout,
            Self::FrameTooLarge { .. } | Self::MalformedFrame { .. } => FailureKind::Protocol,
            Self::KeyMismatch { .. } => FailureKind::Security,
            // Pin mismatches arrive as `KeyMismatch`; what is left is a handshake that failed.
            Self::Tls(_) => FailureKind::Protocol,
            Self::NotConfirmed { .. } => FailureKind::Network,
            Self::InsecureFile { .. } => FailureKind::Config,
            Self::Interfaces(_)
            | Self::State { .. }
            | Self::Identity { .. }
            | Self::Io { .. }
            | Self::Random
            | Self::ListenerClosed => FailureKind::Io,
        }
    }
}

/// A figment error in the user's terms: the key as written (`resolve.ordr` in a file, the
/// variable's name in the environment), where it came from, and what is wrong with it, each
/// once. Figment's own message prefixes the profile (`default.`) and quotes lists twice.
pub(crate) fn describe_config_error(error: &figment::Error) -> String {
    use figment::error::Kind;
    let one_of = |expected: &[&str]| -> String {
        let names: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
        match names.len() {
            0 => "nothing here".to_owned(),
            1 => names.concat(),
            _ => format!("one of {}", names.join(", ")),
        }
    };
    let what = match &error.kind {
        Kind::UnknownField(field, expected) => {
            format!("unknown key `{field}`; expected {}", one_of(expected))
        }
        Kind::UnknownVariant(value, expected) => {
            format!("unknown value `{value}`; expected {}", one_of(expected))
        }
        Kind::InvalidType(found, expected) => format!("expected {expected}, found {found}"),
        Kind::InvalidValue(found, expected) => format!("expected {expected}, found {found}"),
        Kind::MissingField(field) => format!("missing key `{field}`"),
        Kind::DuplicateField(field) => format!("`{field}` is given twice"),
        other => other.to_string(),
    };
    let key = error.path.join(".");
    let (key, source) = match &error.metadata {
        Some(metadata) => {
            let profile = error.profile.clone().unwrap_or_default();
            let written = metadata.interpolate(&profile, &error.path);
            let source = match &metadata.source {
                Some(source) => format!("{} {source}", metadata.name),
                None => metadata.name.to_string(),
            };
            // A file's interpolated key carries the profile; the environment's is the variable.
            let written = if written.contains('.') || written.is_empty() {
                key
            } else {
                written
            };
            (written, Some(source))
        }
        None => (key, None),
    };
    let mut out = if key.is_empty() {
        what
    } else {
        format!("`{key}`: {what}")
    };
    if let Some(source) = source {
        out.push_str(&format!(" (in {source})"));
    }
    let more = error.clone().count().saturating_sub(1);
    if more > 0 {
        out.push_str(&format!("; and {more} more"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impostor_outranks_a_failed_handshake() {
        let impostor: StrategyError = Error::KeyMismatch {
            addr: "10.0.0.2:4000".parse().unwrap(),
            expected: crate::Fingerprint::from_bytes([1; 32]),
            got: crate::Fingerprint::from_bytes([2; 32]),
        }
        .into();
        let handshake: StrategyError =
            Error::Tls(rustls::Error::General("handshake failed".to_owned())).into();
        assert_eq!(impostor.kind(), FailureKind::Security);
        assert_eq!(handshake.kind(), FailureKind::Protocol);
        assert!(impostor.kind() > handshake.kind());
    }
}
