//! `[strategies.upnp]`.

use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

/// Options of the UPnP resolver and of its port mapping.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// SSDP searches (one `M-SEARCH` round each) per interface address, spread evenly over
    /// `search_timeout_ms`: a lost datagram costs one interval, not the whole search. Default 3.
    pub searches: u32,
    /// How long each interface waits for a gateway to answer; interfaces are searched in
    /// parallel. Default 1500, below the chain's default `strategy_timeout_ms` (2000) so that "no
    /// gateway answered" is reported instead of a timeout.
    pub search_timeout_ms: u64,
    /// Limit for each exchange with the gateway once it answered: its description (fetched
    /// by igd-next), `GetExternalIPAddress`, `AddPortMapping`, `DeletePortMapping`. Default 1000.
    pub request_timeout_ms: u64,
    /// Self-confirm the address facing the gateway through the listener (default true); false
    /// reports it unconfirmed.
    pub confirm: bool,
    /// Ask the gateway to forward the pairing port (TCP) while hosting (default false). Only
    /// programs that host a pairing read it (see `localpair_upnp::map_pairing_port`).
    pub map_port: bool,
    /// Lease requested for a port mapping, in seconds; renewed at half. A gateway that only
    /// supports permanent mappings gets 0 instead (removed on shutdown all the same). 0 asks
    /// for a permanent mapping from the start. Default 3600.
    pub lease_secs: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            searches: 3,
            search_timeout_ms: 1500,
            request_timeout_ms: 1000,
            confirm: true,
            map_port: false,
            lease_secs: 3600,
        }
    }
}

impl Config {
    /// How long each interface waits for a gateway.
    pub fn search_timeout(&self) -> Duration {
        Duration::from_millis(self.search_timeout_ms)
    }

    /// Limit for one exchange with the gateway.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Checks values serde cannot: zero counts and timeouts.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |key: &'static str, reason: &'static str| {
            Err(Error::InvalidConfig {
                key: format!("strategies.upnp.{key}"),
                reason,
            })
        };
        if self.searches == 0 {
            return invalid("searches", "must be at least 1");
        }
        if self.search_timeout_ms == 0 {
            return invalid("search_timeout_ms", "must be more than 0");
        }
        if self.request_timeout_ms == 0 {
            return invalid("request_timeout_ms", "must be more than 0");
        }
        Ok(())
    }
}
