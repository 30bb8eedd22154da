//! Errors of the CLI, each with its exit status.

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable (exit 2).
    #[error("{0}")]
    Config(#[source] localpair_core::Error),
    /// Setting up identity or the listener failed (exit 1).
    #[error("{0}")]
    Setup(#[source] localpair_core::Error),
    /// The async runtime could not start (exit 1).
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Writing the output failed (exit 1).
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    /// The resolver chain found no address (exit 1).
    #[error("no usable address found; {attempts}")]
    NoCandidates {
        /// Every attempt and how it ended.
        attempts: String,
    },
}

impl Error {
    /// 2 for bad usage or configuration, 1 for a failed operation.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 2,
            _ => 1,
        }
    }
}
