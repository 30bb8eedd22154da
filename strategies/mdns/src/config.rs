//! `[strategies.mdns]`.

use serde::Deserialize;

/// Options of the mDNS discoverer. The interfaces it runs on come from the global
/// `[interfaces]` allow/deny lists; the service type is fixed (`_localpair._tcp.local.`) so that
/// every localpair device finds every other.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Also announce and browse over IPv6, and report peers' IPv6 addresses (link-local ones with
    /// their interface as scope). Default: `true`.
    pub ipv6: bool,
    /// Probe for name conflicts before announcing (RFC 6762 §8.1), which delays the first
    /// announcement by about 750 ms. Our instance and host names contain the device id, so a
    /// conflict means another process uses the same key. It only matters when peers start
    /// together (lab: median 0.9 s with probing, a few ms without; p95 about 1 s either way); a
    /// peer that is already running is found in about 25 ms regardless. Default: `true`.
    pub probe: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ipv6: true,
            probe: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use localpair_core::config::{Settings, Source};

    fn load(toml: &str) -> Result<Config, localpair_core::Error> {
        Settings::load(Source::Toml(toml.to_owned()))?
            .strategy_table(crate::NAME)
            .extract()
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(load("").unwrap(), Config::default());
        let c = load("[strategies.mdns]\nipv6 = false\nprobe = false\n").unwrap();
        assert!(!c.ipv6 && !c.probe);
    }

    #[test]
    fn unknown_keys_name_the_key() {
        let err = load("[strategies.mdns]\nipv7 = true\n").unwrap_err();
        assert!(err.to_string().contains("strategies.mdns"), "{err}");
    }
}
