//! The `[diagnostics]` section, which this crate owns.

use std::time::Duration;

use localpair_core::Settings;
use serde::{Deserialize, Serialize};

localpair_core::register_section!("diagnostics", DiagnosticsConfig);

/// The `[diagnostics]` section: `localpair diagnose`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct DiagnosticsConfig {
    /// How long each discoverer announces and listens (they run side by side).
    pub discovery_window_ms: u64,
    /// Limit for one TLS handshake with a peer's listener.
    pub reach_timeout_ms: u64,
    /// Limit for one discoverer's multicast self-test.
    pub self_check_timeout_ms: u64,
    /// Log entries kept in the report; past it the middle of the log is dropped and counted.
    pub log_capacity: usize,
}

impl Default for DiagnosticsConfig {
    fn default() -> Self {
        Self {
            discovery_window_ms: 3_000,
            reach_timeout_ms: 1_000,
            self_check_timeout_ms: 1_500,
            log_capacity: 2_000,
        }
    }
}

impl DiagnosticsConfig {
    /// The `[diagnostics]` section of `settings`, defaults for what is not set.
    pub fn from_settings(settings: &Settings) -> Result<Self, localpair_core::Error> {
        settings.section("diagnostics")
    }

    /// The discovery window; at least 100 ms, because a shorter one cannot hear a single answer.
    pub fn discovery_window(&self) -> Duration {
        Duration::from_millis(self.discovery_window_ms.max(100))
    }

    /// The reachability limit (at least 1 ms).
    pub fn reach_timeout(&self) -> Duration {
        Duration::from_millis(self.reach_timeout_ms.max(1))
    }

    /// The self-test limit (at least 1 ms).
    pub fn self_check_timeout(&self) -> Duration {
        Duration::from_millis(self.self_check_timeout_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use localpair_core::config::Source;

    #[test]
    #[allow(
        clippy::result_large_err,
        reason = "figment's Jail API fixes the error type"
    )]
    fn the_environment_overrides_the_section() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LOCALPAIR_DIAGNOSTICS__DISCOVERY_WINDOW_MS", "1500");
            let settings = Settings::load(Source::Discover).map_err(|e| e.to_string())?;
            let config = DiagnosticsConfig::from_settings(&settings).map_err(|e| e.to_string())?;
            assert_eq!(config.discovery_window(), Duration::from_millis(1500));
            assert_eq!(
                config.log_capacity,
                DiagnosticsConfig::default().log_capacity
            );
            Ok(())
        });
    }

    #[test]
    fn a_typo_names_the_key() {
        let settings = Settings::load(Source::Toml("[diagnostics]\nwindow_ms = 3\n".into()))
            .unwrap_or_else(|e| panic!("{e}"));
        let error = DiagnosticsConfig::from_settings(&settings)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("window_ms"), "{error}");
        assert!(error.contains("diagnostics"), "{error}");
    }
}
