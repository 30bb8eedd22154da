//! The one error type of the lab.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while building, changing or tearing down a lab.
///
/// Failed commands carry the exact command line and its stderr, so a failing test says what the lab tried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// The lab cannot run here (not root, `ip`/`nft` missing, namespaces not permitted, tool missing).
    #[error("network lab unavailable: {0}")]
    Unavailable(String),

    /// A command ran but exited unsuccessfully.
    #[error("command `{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line as it was run, including `ip netns exec <ns>` when it ran in a namespace.
        command: String,
        /// The exit status, as printed by the OS.
        status: String,
        /// What the command wrote on stderr (trimmed).
        stderr: String,
    },

    /// A command could not be started at all (usually: the program is not installed).
    #[error("could not start `{command}`: {source}")]
    Spawn {
        /// The command line that was to be run.
        command: String,
        /// The error from the OS.
        source: io::Error,
    },

    /// Entering a network namespace failed (opening `/run/netns/<name>` or `setns`).
    #[error("could not enter network namespace `{netns}`: {source}")]
    Setns {
        /// The namespace name.
        netns: String,
        /// The error from the OS.
        source: io::Error,
    },

    /// Some other I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the lab was doing.
        context: String,
        /// The error from the OS.
        source: io::Error,
    },

    /// A [`HostSpec`](crate::HostSpec) or argument is invalid (bad CIDR, interface name too long, ...).
    #[error("invalid lab spec: {0}")]
    InvalidSpec(String),

    /// A workspace binary could not be found.
    #[error("binary `{name}` not found (looked at: {searched:?}); {hint}")]
    BinaryNotFound {
        /// The binary name.
        name: String,
        /// Every path that was checked.
        searched: Vec<PathBuf>,
        /// How to fix it (which `cargo build` to run, which env var to set).
        hint: String,
    },

    /// Something did not happen in time (e.g. `tcpdump` never said it was listening).
    #[error("timed out: {0}")]
    Timeout(String),

    /// `localpair-core` refused to set up a discovery session on a host (settings, key, listener, chain).
    #[error("{context}: {source}")]
    Core {
        /// What the lab was setting up.
        context: String,
        /// The error from `localpair-core`.
        source: localpair_core::Error,
    },
}

impl LabError {
    pub(crate) fn core(context: impl Into<String>, source: localpair_core::Error) -> Self {
        Self::Core {
            context: context.into(),
            source,
        }
    }

    /// An I/O failure while doing `context`.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
