//! `[strategies.direct]`.

use serde::Deserialize;

/// Options of the direct discoverer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Offer the code's IPv6 link-local addresses on every local interface (default true).
    pub link_local: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self { link_local: true }
    }
}
