//! The sections this crate owns: `[pairing]` (hosting, and the dials of joining and
//! reconnecting), `[join]` (the discoverer chain a joiner runs to find its host) and `[connect]`
//! (the chain that finds a known peer to reconnect to).

use localpair_core::config::{ChainConfig, ChainMode};
use localpair_core::{DiscovererChain, Registry, Settings};
use serde::{Deserialize, Serialize};

localpair_core::register_section!("pairing", PairingConfig);
localpair_core::register_section!("join", JoinConfig);
localpair_core::register_section!("connect", ConnectConfig);

/// The `[pairing]` section: hosting and joining.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PairingConfig {
    /// Pairing listener port (TCP; default 19537); when taken, one the OS picks, with a warning.
    /// 0 lets the OS choose.
    pub port: u16,
    /// Link listener port (`listen`; TCP, default 19539); when taken, one the OS picks, with a
    /// warning. 0: chosen once and kept in the state directory.
    pub link_port: u16,
    /// How long a code lives.
    pub code_ttl_ms: u64,
    /// How long a short code (`host --short`) lives; 3 failed exchanges end it sooner.
    pub short_code_ttl_ms: u64,
    /// Wait after a source's first wrong proof before its next is looked at; doubles with each
    /// wrong proof, up to 60 s. Wrong proofs never end a code.
    pub wrong_proof_backoff_ms: u64,
    /// TLS handshake plus proof exchange must finish within this.
    pub handshake_timeout_ms: u64,
    /// Unproven connections at once, in total; when full, the oldest is closed to make room.
    pub max_unauthenticated: usize,
    /// Unproven connections at once from one address; its oldest is closed to make room.
    pub max_per_source: usize,
    /// Addresses written into a code (best first).
    pub code_candidates: usize,
    /// Limit for one dial by the joiner (connect, TLS, proofs).
    pub dial_timeout_ms: u64,
}

impl Default for PairingConfig {
    fn default() -> Self {
        Self {
            port: crate::host::DEFAULT_PORT,
            link_port: crate::link::DEFAULT_PORT,
            code_ttl_ms: 300_000,
            short_code_ttl_ms: 120_000,
            wrong_proof_backoff_ms: 250,
            handshake_timeout_ms: 3_000,
            max_unauthenticated: 64,
            max_per_source: 4,
            code_candidates: 4,
            dial_timeout_ms: 2_000,
        }
    }
}

impl PairingConfig {
    /// The `[pairing]` section of `settings`, defaults for what is not set.
    pub fn from_settings(settings: &Settings) -> Result<Self, localpair_core::Error> {
        settings.section("pairing")
    }
}

/// The `[join]` section: the discoverer chain a joiner runs to find its host (the same shape as
/// `[discover]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
#[non_exhaustive]
pub struct JoinConfig(pub ChainConfig);

impl Default for JoinConfig {
    fn default() -> Self {
        Self(ChainConfig::new(
            &["direct", "udp-multicast", "mdns", "subnet-scan"],
            ChainMode::All,
            0,
            0,
            30_000,
        ))
    }
}

impl JoinConfig {
    /// The `[join]` section of `settings`, defaults for what is not set.
    pub fn from_settings(settings: &Settings) -> Result<Self, localpair_core::Error> {
        settings.section("join")
    }

    /// The discoverer chain this section describes, built from the registry.
    pub fn chain(
        &self,
        registry: &Registry,
        settings: &Settings,
    ) -> Result<DiscovererChain, localpair_core::Error> {
        DiscovererChain::from_section(registry, settings, "join", &self.0)
    }
}

/// The `[connect]` section: the discoverer chain that finds a known peer to reconnect to (the
/// same shape as `[discover]`; `direct` offers the peer's last known addresses, `subnet-scan`
/// looks for its link port when it moved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
#[non_exhaustive]
pub struct ConnectConfig(pub ChainConfig);

impl Default for ConnectConfig {
    fn default() -> Self {
        Self(ChainConfig::new(
            &["direct", "udp-multicast", "mdns", "subnet-scan"],
            ChainMode::All,
            0,
            0,
            10_000,
        ))
    }
}

impl ConnectConfig {
    /// The `[connect]` section of `settings`, defaults for what is not set.
    pub fn from_settings(settings: &Settings) -> Result<Self, localpair_core::Error> {
        settings.section("connect")
    }

    /// The discoverer chain this section describes, built from the registry.
    pub fn chain(
        &self,
        registry: &Registry,
        settings: &Settings,
    ) -> Result<DiscovererChain, localpair_core::Error> {
        DiscovererChain::from_section(registry, settings, "connect", &self.0)
    }
}
