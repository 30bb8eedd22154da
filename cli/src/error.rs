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
    /// The text does not fit a QR code (exit 1).
    #[error("QR code: {0}")]
    Qr(#[source] qrcode::types::QrError),
    /// The PNG encoder failed (exit 1).
    #[error("writing {}: {source}", path.display())]
    Png {
        /// The file.
        path: std::path::PathBuf,
        /// The encoder's error.
        #[source]
        source: png::EncodingError,
    },
    /// A file could not be written (exit 1).
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Bad input or state, found before anything was tried (exit 2): a code that does not
    /// parse, an unknown or ambiguous peer, a key or trust store that cannot be used.
    #[error("{0}")]
    Usage(#[source] localpair_pairing::Error),
    /// `join --code-file` names a file that cannot be read as a code (exit 2).
    #[error("code file {}: {reason}", path.display())]
    CodeFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Hosting or joining a pairing failed (exit 1).
    #[error("{0}")]
    Pairing(#[source] localpair_pairing::Error),
    /// Pairing or discovery failed (exit 1).
    #[error("{0}")]
    Failed(#[source] localpair_core::Error),
    /// Discovery found no peer (exit 1).
    #[error("no peer found within {seconds} s; {attempts}")]
    NoPeers {
        /// The window.
        seconds: f64,
        /// Every attempt and how it ended.
        attempts: String,
    },
    /// Ctrl-C (exit 1).
    #[error("interrupted")]
    Interrupted,
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
            Self::Config(_) | Self::Usage(_) | Self::CodeFile { .. } => 2,
            _ => 1,
        }
    }
}
