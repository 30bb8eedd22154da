//! Errors of the UPnP resolver and port mapping.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use localpair_core::{Classify, FailureKind};

/// What can go wrong while finding the gateway, asking it, or mapping a port.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `[strategies.upnp]` value is out of range.
    #[error("invalid `{key}`: {reason}")]
    InvalidConfig {
        /// The full key, e.g. `strategies.upnp.searches`.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No permitted interface is up with an IPv4 address (UPnP IGD is searched over IPv4).
    #[error(
        "no interface to search for a UPnP gateway on: none of the permitted interfaces is up with an IPv4 address"
    )]
    NoInterface,
    /// The local address given for a port mapping is on no permitted interface.
    #[error("{ip} is not an address of a permitted interface")]
    UnknownLocalAddr {
        /// The address.
        ip: Ipv4Addr,
    },
    /// Every search ran out without an answer from a gateway on the local subnet.
    #[error("no UPnP gateway answered on {}", Searches(searched))]
    NoGateway {
        /// One report per searched interface address.
        searched: Vec<SearchReport>,
    },
    /// A gateway answered the search, but its description or control service could not be read.
    #[error(
        "UPnP gateway {gateway} answered the search, but its description could not be read: {reason}"
    )]
    Description {
        /// The gateway.
        gateway: Ipv4Addr,
        /// What igd-next reported, or that the time ran out.
        reason: String,
    },
    /// The gateway refused or failed to add a port mapping.
    #[error(
        "UPnP gateway {gateway} did not map external port {external_port} to {local}: {reason}"
    )]
    AddPort {
        /// The gateway.
        gateway: Ipv4Addr,
        /// The requested external port.
        external_port: u16,
        /// The local address and port the mapping was to forward to.
        local: SocketAddrV4,
        /// What the gateway answered (`PortInUse`, `ActionNotAuthorized`, an HTTP error, a timeout).
        reason: String,
    },
    /// The gateway failed to remove a port mapping.
    #[error(
        "UPnP gateway {gateway} did not remove the mapping of external port {external_port}: {reason}"
    )]
    RemovePort {
        /// The gateway.
        gateway: Ipv4Addr,
        /// The mapped external port.
        external_port: u16,
        /// What the gateway answered, or a timeout.
        reason: String,
    },
    /// The address facing the gateway did not pass self-confirmation.
    #[error("{ip} (facing UPnP gateway {gateway}) failed self-confirmation")]
    NotConfirmed {
        /// The local address.
        ip: Ipv4Addr,
        /// The gateway it faces.
        gateway: Ipv4Addr,
        /// Why.
        #[source]
        source: localpair_core::Error,
    },
    /// Listing interfaces failed.
    #[error(transparent)]
    Core(#[from] localpair_core::Error),
}

impl Classify for Error {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Error::InvalidConfig { .. } => FailureKind::Config,
            Error::NoInterface | Error::UnknownLocalAddr { .. } => FailureKind::NotApplicable,
            Error::NoGateway { .. } => FailureKind::NothingFound,
            Error::Description { .. } => FailureKind::Protocol,
            Error::AddPort { .. } | Error::RemovePort { .. } | Error::NotConfirmed { .. } => {
                FailureKind::Network
            }
            Error::Core(core) => core.failure_kind(),
        }
    }
}

/// What the search on one interface address did, for "no gateway answered" messages and
/// diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SearchReport {
    /// The interface searched on.
    pub interface: String,
    /// The local address the search was bound to.
    pub local_addr: Ipv4Addr,
    /// `M-SEARCH` rounds sent.
    pub searches: u32,
    /// How long the search ran.
    pub elapsed: Duration,
    /// Answers that were not used, each with the reason (another subnet, unreadable).
    pub ignored: Vec<String>,
    /// Why the search could not run or stopped (socket errors), if it did.
    pub error: Option<String>,
}

impl fmt::Display for SearchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} search{} in {:.1} s",
            self.interface,
            self.searches,
            if self.searches == 1 { "" } else { "es" },
            self.elapsed.as_secs_f64()
        )?;
        for ignored in &self.ignored {
            write!(f, "; ignored {ignored}")?;
        }
        if let Some(error) = &self.error {
            write!(f, "; {error}")?;
        }
        f.write_str(")")
    }
}

/// Lists search reports as "eth0 (...), wlan0 (...)".
struct Searches<'a>(&'a [SearchReport]);

impl fmt::Display for Searches<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, report) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            fmt::Display::fmt(report, f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use localpair_core::StrategyError;

    #[test]
    fn no_gateway_message_names_interface_searches_and_time() {
        let error = Error::NoGateway {
            searched: vec![SearchReport {
                interface: "eth0".into(),
                local_addr: Ipv4Addr::new(10, 77, 0, 11),
                searches: 3,
                elapsed: Duration::from_millis(2004),
                ignored: vec![],
                error: None,
            }],
        };
        assert_eq!(
            error.to_string(),
            "no UPnP gateway answered on eth0 (3 searches in 2.0 s)"
        );
        let strategy: StrategyError = error.into();
        assert_eq!(strategy.kind(), FailureKind::NothingFound);
    }

    #[test]
    fn ignored_answers_and_errors_are_listed() {
        let error = Error::NoGateway {
            searched: vec![
                SearchReport {
                    interface: "eth0".into(),
                    local_addr: Ipv4Addr::new(10, 77, 0, 11),
                    searches: 1,
                    elapsed: Duration::from_millis(500),
                    ignored: vec!["10.88.0.5 (not in eth0's subnet)".into()],
                    error: None,
                },
                SearchReport {
                    interface: "wlan0".into(),
                    local_addr: Ipv4Addr::new(192, 168, 1, 2),
                    searches: 0,
                    elapsed: Duration::ZERO,
                    ignored: vec![],
                    error: Some("bind 192.168.1.2:0: denied".into()),
                },
            ],
        };
        assert_eq!(
            error.to_string(),
            "no UPnP gateway answered on eth0 (1 search in 0.5 s; ignored 10.88.0.5 (not in eth0's subnet)), \
             wlan0 (0 searches in 0.0 s; bind 192.168.1.2:0: denied)"
        );
    }

    #[test]
    fn config_errors_stop_the_chain() {
        let strategy: StrategyError = Error::InvalidConfig {
            key: "strategies.upnp.searches".into(),
            reason: "must be at least 1",
        }
        .into();
        assert_eq!(strategy.kind(), FailureKind::Config);
        assert_eq!(strategy.on_error(), localpair_core::OnError::Stop);
    }
}
