//! Errors of the mDNS discoverer.

use std::fmt;
use std::time::Duration;

use localpair_core::{Classify, DeviceId, FailureKind};

/// What can go wrong while announcing and browsing over mDNS, or while reading a peer's TXT record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No interface is left to run on: only loopback is up, or the `[interfaces]` filter (or
    /// the `ipv6` option) left none with a usable address.
    #[error(
        "no interface to run mDNS on: {detail}{}",
        if *.ipv6 { "" } else { " (IPv4 only, ipv6 = false)" }
    )]
    NoInterfaces {
        /// What is true of the interfaces (from `Context::why_no_interfaces`).
        detail: String,
        /// Whether IPv6 addresses counted.
        ipv6: bool,
    },
    /// Listing the network interfaces failed.
    #[error(transparent)]
    Core(#[from] localpair_core::Error),
    /// The mdns-sd daemon refused a command or could not start; `op` says which.
    #[error("mDNS daemon: {op}: {source}")]
    Daemon {
        /// What was asked of the daemon, e.g. `start`, `register`.
        op: &'static str,
        /// What mdns-sd said.
        #[source]
        source: mdns_sd::Error,
    },
    /// The session ended without a single peer; the message carries the numbers that explain it.
    #[error("{0}")]
    NothingFound(Box<Silence>),
    /// A TXT entry is missing, has no value, or its value does not parse.
    #[error("malformed TXT record: `{key}` {reason}")]
    MalformedTxt {
        /// The key at fault.
        key: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The SRV record names port 0: there is no listener to reach.
    #[error("service record has port 0")]
    ZeroPort,
    /// The TXT record is over the size caps; it was not read further.
    #[error("TXT record too large: over {max_entries} entries or {max_bytes} bytes")]
    TxtTooLarge {
        /// Cap on the number of entries.
        max_entries: usize,
        /// Cap on the total size of keys and values.
        max_bytes: usize,
    },
    /// The TXT record announces a protocol version we do not speak.
    #[error("TXT record has protocol version `{version}`; this build speaks version 1")]
    UnsupportedVersion {
        /// The announced version (lossy UTF-8, at most 16 characters).
        version: String,
    },
    /// The announced device id is not the one its fingerprint implies: forged or corrupted.
    #[error("TXT record's id {announced} does not match its fingerprint (which implies {implied})")]
    IdMismatch {
        /// The `id` value.
        announced: DeviceId,
        /// The first 8 bytes of the `fp` value.
        implied: DeviceId,
    },
}

/// What a session that found nobody saw: the numbers behind [`Error::NothingFound`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Silence {
    /// The service type browsed.
    pub service_type: &'static str,
    /// The interfaces the daemon ran on, comma-separated.
    pub interfaces: String,
    /// How long the session lasted.
    pub elapsed: Duration,
    /// Queries sent, as mdns-sd counts them; `None` when the daemon did not say in time.
    pub queries: Option<i64>,
    /// Instances of our type other than ours that the daemon saw (found or resolved).
    pub seen: usize,
    /// Instances of our type whose TXT record was rejected (malformed, other version).
    pub rejected: usize,
    /// Peers whose addresses all lay outside the permitted interfaces' subnets.
    pub unusable: usize,
    /// Whether our own announcement came back to us, which shows that the daemon and this
    /// host's multicast work.
    pub own_heard: bool,
}

impl Silence {
    /// The likely cause, from the numbers.
    pub fn hint(&self) -> &'static str {
        if self.rejected > 0 {
            "services of our type answered, but their TXT records were rejected (see the log): \
             another localpair version, or not localpair"
        } else if self.unusable > 0 {
            "peers answered, but from addresses outside this device's permitted subnets: \
             check [interfaces] and the network's addressing"
        } else if self.own_heard {
            "no other device answered: none is announcing, or multicast is filtered between \
             devices (firewall, Wi-Fi client isolation)"
        } else {
            "multicast may be filtered on this host or network (firewall), or the session was \
             too short for the first announcement"
        }
    }
}

impl fmt::Display for Silence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "browsed {} on {} for {:.1} s (",
            self.service_type,
            self.interfaces,
            self.elapsed.as_secs_f64()
        )?;
        match self.queries {
            Some(n) => write!(f, "{n} queries sent")?,
            None => f.write_str("query count unknown")?,
        }
        write!(
            f,
            "): {} other services seen, {} rejected, {} without a usable address; {}: {}",
            self.seen,
            self.rejected,
            self.unusable,
            if self.own_heard {
                "our own announcement was heard back"
            } else {
                "our own announcement was not even heard back"
            },
            self.hint()
        )
    }
}

impl Error {
    pub(crate) fn daemon(op: &'static str) -> impl FnOnce(mdns_sd::Error) -> Self {
        move |source| Self::Daemon { op, source }
    }
}

impl Classify for Error {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Error::NoInterfaces { .. } => FailureKind::NotApplicable,
            Error::Core(core) => core.failure_kind(),
            Error::Daemon { .. } => FailureKind::Io,
            Error::NothingFound(_) => FailureKind::NothingFound,
            Error::MalformedTxt { .. }
            | Error::ZeroPort
            | Error::TxtTooLarge { .. }
            | Error::UnsupportedVersion { .. } => FailureKind::Protocol,
            Error::IdMismatch { .. } => FailureKind::Security,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use localpair_core::{OnError, StrategyError};

    fn silence() -> Silence {
        Silence {
            service_type: "_localpair._tcp.local.",
            interfaces: "eth0".to_owned(),
            elapsed: Duration::from_millis(3_040),
            queries: Some(3),
            seen: 0,
            rejected: 0,
            unusable: 0,
            own_heard: false,
        }
    }

    #[test]
    fn silence_explains_with_numbers() {
        let text = Error::NothingFound(Box::new(silence())).to_string();
        assert_eq!(
            text,
            "browsed _localpair._tcp.local. on eth0 for 3.0 s (3 queries sent): 0 other services \
             seen, 0 rejected, 0 without a usable address; our own announcement was not even \
             heard back: multicast may be filtered on this host or network (firewall), or the \
             session was too short for the first announcement"
        );
        let heard = Silence {
            own_heard: true,
            queries: None,
            ..silence()
        };
        assert!(heard.to_string().contains("query count unknown"));
        assert!(heard.hint().starts_with("no other device answered"));
        let rejected = Silence {
            rejected: 2,
            ..heard.clone()
        };
        assert!(rejected.to_string().contains("2 rejected"));
        assert!(rejected.hint().contains("TXT records were rejected"));
        let unusable = Silence {
            unusable: 1,
            ..heard
        };
        assert!(
            unusable
                .hint()
                .contains("outside this device's permitted subnets")
        );
    }

    #[test]
    fn kinds_for_the_chain() {
        let cases = [
            (
                Error::NothingFound(Box::new(silence())),
                FailureKind::NothingFound,
            ),
            (
                Error::NoInterfaces {
                    detail: "only loopback is up".to_owned(),
                    ipv6: true,
                },
                FailureKind::NotApplicable,
            ),
            (Error::ZeroPort, FailureKind::Protocol),
            (
                Error::IdMismatch {
                    announced: DeviceId::from_bytes([0; 8]),
                    implied: DeviceId::from_bytes([1; 8]),
                },
                FailureKind::Security,
            ),
            (
                Error::Daemon {
                    op: "start",
                    source: mdns_sd::Error::DaemonShutdown,
                },
                FailureKind::Io,
            ),
        ];
        for (error, kind) in cases {
            let text = error.to_string();
            let strategy = StrategyError::from(error);
            assert_eq!(strategy.kind(), kind, "{text}");
            // Nothing this crate reports makes the rest of the chain pointless.
            assert_eq!(strategy.on_error(), OnError::TryNext, "{text}");
        }
    }
}
