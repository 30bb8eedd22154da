//! Errors of the CLI, each with its exit status and its JSON shape.

use localpair_core::Attempt;
use localpair_core::chain::explain;
use localpair_pairing::Refusal;
use serde_json::{Value, json};

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
    #[error("no peer found within {seconds} s; {}", explain(attempts))]
    NoPeers {
        /// The window.
        seconds: f64,
        /// Every attempt and how it ended.
        attempts: Vec<Attempt>,
    },
    /// Ctrl-C (exit 1).
    #[error("interrupted")]
    Interrupted,
    /// The resolver chain found no address (exit 1).
    #[error("no usable address found; {}", explain(attempts))]
    NoCandidates {
        /// Every attempt and how it ended.
        attempts: Vec<Attempt>,
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

    /// A stable name for the kind of failure, for programs (`error.kind` in JSON).
    pub fn kind(&self) -> &'static str {
        use localpair_pairing::Error as Pairing;
        match self {
            Self::Config(_) => "config",
            Self::Setup(_) => "setup",
            Self::Runtime(_) => "runtime",
            Self::Output(_) => "output",
            Self::Qr(_) | Self::Png { .. } | Self::File { .. } => "file",
            Self::CodeFile { .. } => "bad-code",
            Self::Usage(Pairing::UnknownPeer { .. }) => "unknown-peer",
            Self::Usage(Pairing::AmbiguousPeer { .. }) => "ambiguous-peer",
            Self::Usage(
                Pairing::CorruptedCode { .. }
                | Pairing::NewerCode { .. }
                | Pairing::BadShortCode { .. },
            ) => "bad-code",
            Self::Usage(_) => "usage",
            Self::Pairing(Pairing::JoinFailed(_)) => "join-failed",
            Self::Pairing(Pairing::ConnectFailed(_)) => "connect-failed",
            Self::Pairing(Pairing::CodeExpired { .. }) => "code-expired",
            Self::Pairing(Pairing::Refused {
                refusal: Refusal::WrongCode,
                ..
            }) => "wrong-code",
            Self::Pairing(
                Pairing::Refused {
                    refusal: Refusal::CodeEnded,
                    ..
                }
                | Pairing::CodeEnded { .. },
            ) => "code-ended",
            Self::Pairing(Pairing::Refused { .. }) => "refused",
            Self::Pairing(Pairing::NoAddress { .. }) | Self::NoCandidates { .. } => "no-address",
            Self::Pairing(_) | Self::Failed(_) => "failed",
            Self::NoPeers { .. } => "no-peers",
            Self::Interrupted => "interrupted",
        }
    }

    /// What to do about it, when the error knows more than its message says.
    pub fn hint(&self) -> Option<String> {
        use localpair_pairing::Error as Pairing;
        match self {
            Self::Pairing(Pairing::JoinFailed(attempted) | Pairing::ConnectFailed(attempted)) => {
                Some(attempted.likely.clone())
            }
            Self::Config(_) => Some(
                "fix the setting named; `localpair config` shows every value and where it came \
                 from"
                    .to_owned(),
            ),
            Self::NoPeers { .. } => Some(
                "`localpair diagnose` tells whether multicast works here and what blocks it"
                    .to_owned(),
            ),
            Self::Usage(Pairing::UnknownPeer { .. } | Pairing::AmbiguousPeer { .. }) => {
                Some("`localpair peers` lists the known peers".to_owned())
            }
            Self::Pairing(Pairing::Refused {
                refusal: Refusal::WrongCode,
                ..
            }) => Some(
                "check the code with the host and run the join again; the host ends the code \
                 after 3 wrong tries"
                    .to_owned(),
            ),
            Self::Pairing(
                Pairing::Refused {
                    refusal: Refusal::CodeEnded,
                    ..
                }
                | Pairing::CodeEnded { .. },
            ) => Some("start a new code on the host: `localpair host --short`".to_owned()),
            _ => None,
        }
    }

    /// The `error` object of `--json` output: kind, message, hint, exit code, and what the
    /// command knows (the attempts and dials behind a failed join, say).
    pub fn to_json(&self) -> Value {
        use localpair_pairing::Error as Pairing;
        let mut error = json!({
            "kind": self.kind(),
            "message": self.to_string(),
            "hint": self.hint(),
            "exit_code": self.exit_code(),
        });
        let details = match self {
            Self::Pairing(Pairing::JoinFailed(attempted) | Pairing::ConnectFailed(attempted)) => {
                json!({
                    "tried": attempted.tried,
                    "dials": attempted.dials,
                    "attempts": attempted.discovery,
                })
            }
            Self::Pairing(Pairing::NoAddress { attempts })
            | Self::NoCandidates { attempts }
            | Self::NoPeers { attempts, .. } => json!({ "attempts": attempts }),
            Self::Pairing(Pairing::Refused { addr, refusal }) => {
                json!({ "addr": addr, "refusal": refusal })
            }
            _ => Value::Null,
        };
        if let (Value::Object(error), Value::Object(details)) = (&mut error, details) {
            error.extend(details);
        }
        error
    }
}
