//! `[strategies.subnet-scan]`.

use serde::Deserialize;

/// Options of the subnet scan.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Wait this long after the code is known before scanning (default 3000), so multicast, mDNS
    /// and the code's own addresses get their chance first.
    pub grace_ms: u64,
    /// Connections in flight at once (default 64).
    pub parallel: usize,
    /// Limit for one TCP connect (default 300).
    pub connect_timeout_ms: u64,
    /// Largest subnet scanned, as a prefix length (default 24: 254 addresses). A wider subnet is
    /// scanned only in the /24 around our own address.
    pub min_prefix: u8,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            grace_ms: 3_000,
            parallel: 64,
            connect_timeout_ms: 300,
            min_prefix: 24,
        }
    }
}
