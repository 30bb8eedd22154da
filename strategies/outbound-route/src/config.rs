//! `[strategies.outbound-route]`.

use std::net::SocketAddr;

use serde::Deserialize;

/// Options of the outbound-route resolver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Addresses whose route is looked up, one per family you care about. Nothing is sent to
    /// them. Default: `["192.0.2.1:9", "[2001:db8::1]:9"]`.
    pub targets: Vec<SocketAddr>,
    /// Self-confirm the address through the listener (default true). Without it the candidate
    /// is reported unconfirmed.
    pub confirm: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            targets: localpair_core::interfaces::DEFAULT_ROUTE_PROBES
                .iter()
                .filter_map(|t| t.parse().ok())
                .collect(),
            confirm: true,
        }
    }
}
