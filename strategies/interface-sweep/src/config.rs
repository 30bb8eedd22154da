//! `[strategies.interface-sweep]`.

use std::net::SocketAddr;

use serde::Deserialize;

/// Options of the interface-sweep resolver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Include link-local addresses (169.254/16, fe80::/10). Default true: two devices joined by a
    /// cable with no DHCP only have these.
    pub link_local: bool,
    /// Include IPv6 addresses (ULA and link-local). Default true.
    pub ipv6: bool,
    /// Route lookups that tell which interface holds the default route (nothing is sent).
    /// Default: `["192.0.2.1:9", "[2001:db8::1]:9"]`.
    pub route_probes: Vec<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            link_local: true,
            ipv6: true,
            route_probes: localpair_core::interfaces::DEFAULT_ROUTE_PROBES
                .iter()
                .filter_map(|t| t.parse().ok())
                .collect(),
        }
    }
}
