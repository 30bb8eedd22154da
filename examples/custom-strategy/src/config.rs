//! The two config tables.

use std::net::{IpAddr, SocketAddr};

use localpair_core::Fingerprint;
use serde::Deserialize;

/// `[strategies.static-peers]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PeersConfig {
    /// The peers, e.g. `[{ name = "desk", fingerprint = "ab12…", addrs = ["192.168.1.20:40000"] }]`.
    pub peers: Vec<PeerEntry>,
}

/// One configured peer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PeerEntry {
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Its key fingerprint (64 hex digits): the key it will have to present.
    pub fingerprint: Fingerprint,
    /// Where its confirmation listener is.
    pub addrs: Vec<SocketAddr>,
}

/// `[strategies.static-address]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AddressConfig {
    /// Addresses to report, best first.
    pub addresses: Vec<IpAddr>,
    /// Self-confirm each through the confirmation listener (default true); unconfirmed addresses
    /// are dropped. Off: reported as written, unconfirmed.
    pub confirm: bool,
}

impl Default for AddressConfig {
    fn default() -> Self {
        Self {
            addresses: Vec::new(),
            confirm: true,
        }
    }
}
