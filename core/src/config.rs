//! Configuration: compiled-in defaults, then `localpair.toml` (or `--config FILE`), then
//! `LOCALPAIR_*` environment variables with `__` between key segments.
//!
//! Every strategy reads its own `[strategies.<name>]` table through [`StrategyTable::extract`],
//! with `deny_unknown_fields`, so a typo in a strategy option is an error that names the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The file read from the working directory when no `--config` is given.
pub const DEFAULT_FILE: &str = "localpair.toml";
/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "LOCALPAIR_";

/// How a chain runs its strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ChainMode {
    /// One at a time; the next starts only when the previous failed, found nothing or timed out.
    Sequential,
    /// RFC 8305 style: the next starts after `stagger_ms` (or at once when the running ones
    /// failed) without stopping the earlier ones; the first good answer wins.
    Staggered,
    /// All at once; every answer is merged.
    All,
}

/// A `[resolve]` or `[discover]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ChainConfig {
    /// Strategy names, in the order they are tried.
    pub order: Vec<String>,
    /// How they run.
    pub mode: ChainMode,
    /// Delay between starts in `staggered` mode.
    pub stagger_ms: u64,
    /// Limit for one strategy; 0 means only the deadline applies.
    pub strategy_timeout_ms: u64,
    /// Limit for the whole chain.
    pub deadline_ms: u64,
}

impl ChainConfig {
    /// The stagger delay.
    pub fn stagger(&self) -> Duration {
        Duration::from_millis(self.stagger_ms)
    }

    /// The per-strategy limit, if any.
    pub fn strategy_timeout(&self) -> Option<Duration> {
        (self.strategy_timeout_ms > 0).then(|| Duration::from_millis(self.strategy_timeout_ms))
    }

    /// The chain's overall limit.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
}

/// The `[interfaces]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct InterfacesConfig {
    /// Globs of interface names to use; empty means all.
    pub allow: Vec<String>,
    /// Globs of interface names never to use; applied after `allow`.
    pub deny: Vec<String>,
    /// Use loopback even when `allow` is empty (tests on a single machine).
    pub include_loopback: bool,
}

/// The `[device]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct DeviceConfig {
    /// Name announced to peers; empty means the host name.
    pub name: String,
    /// Directory holding the device key; empty means a new key every run.
    pub state_dir: Option<PathBuf>,
}

/// The `[confirm]` section: the confirmation listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ConfirmConfig {
    /// TLS handshake plus first frame must finish within this.
    pub handshake_timeout_ms: u64,
    /// How long `confirm(ip)` waits for its code to arrive.
    pub confirm_timeout_ms: u64,
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        Self {
            handshake_timeout_ms: 2_000,
            confirm_timeout_ms: 1_000,
            max_connections: 32,
        }
    }
}

/// The `[pairing]` section: hosting and joining.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PairingConfig {
    /// Pairing listener port; 0 lets the OS choose.
    pub port: u16,
    /// How long a code lives.
    pub code_ttl_ms: u64,
    /// Wrong proofs that end a code.
    pub max_wrong_proofs: u32,
    /// TLS handshake plus proof exchange must finish within this.
    pub handshake_timeout_ms: u64,
    /// Unproven connections at once, in total.
    pub max_unauthenticated: usize,
    /// Unproven connections at once, per source address.
    pub max_per_source: usize,
    /// Addresses written into a code (best first).
    pub code_candidates: usize,
    /// Limit for one dial by the joiner (connect, TLS, proofs).
    pub dial_timeout_ms: u64,
}

impl Default for PairingConfig {
    fn default() -> Self {
        Self {
            port: 0,
            code_ttl_ms: 300_000,
            max_wrong_proofs: 5,
            handshake_timeout_ms: 5_000,
            max_unauthenticated: 16,
            max_per_source: 4,
            code_candidates: 4,
            dial_timeout_ms: 2_000,
        }
    }
}

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

/// The whole configuration, minus the strategy tables (see [`Settings::strategy_table`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Config {
    /// This device.
    pub device: DeviceConfig,
    /// The address resolver chain.
    pub resolve: ChainConfig,
    /// The peer discoverer chain.
    pub discover: ChainConfig,
    /// The discoverer chain a joiner runs to find its host.
    pub join: ChainConfig,
    /// Hosting and joining.
    pub pairing: PairingConfig,
    /// Which interfaces strategies may use.
    pub interfaces: InterfacesConfig,
    /// The confirmation listener.
    pub confirm: ConfirmConfig,
    /// `localpair diagnose`.
    pub diagnostics: DiagnosticsConfig,
    /// Per-strategy tables, checked by each strategy.
    #[serde(skip_serializing)]
    pub strategies: BTreeMap<String, figment::value::Value>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            device: DeviceConfig::default(),
            resolve: ChainConfig {
                order: vec![
                    "outbound-route".into(),
                    "interface-sweep".into(),
                    "peer-observed".into(),
                ],
                mode: ChainMode::Sequential,
                stagger_ms: 250,
                strategy_timeout_ms: 2_000,
                deadline_ms: 5_000,
            },
            discover: ChainConfig {
                order: vec!["udp-multicast".into(), "mdns".into()],
                mode: ChainMode::Staggered,
                stagger_ms: 250,
                strategy_timeout_ms: 0,
                deadline_ms: 5_000,
            },
            join: ChainConfig {
                order: vec![
                    "direct".into(),
                    "udp-multicast".into(),
                    "mdns".into(),
                    "subnet-scan".into(),
                ],
                mode: ChainMode::All,
                stagger_ms: 0,
                strategy_timeout_ms: 0,
                deadline_ms: 30_000,
            },
            pairing: PairingConfig::default(),
            interfaces: InterfacesConfig::default(),
            confirm: ConfirmConfig::default(),
            diagnostics: DiagnosticsConfig::default(),
            strategies: BTreeMap::new(),
        }
    }
}

/// Where the configuration file comes from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Source {
    /// `localpair.toml` in the working directory when it exists, plus the environment.
    Discover,
    /// Exactly this file (it must exist), plus the environment.
    File(PathBuf),
    /// This TOML text and nothing else: no file, no environment (for embedding and tests).
    Toml(String),
}

/// The loaded configuration, with the figment kept so strategy tables are read with their
/// sources named in errors.
#[derive(Debug, Clone)]
pub struct Settings {
    config: Config,
    figment: Figment,
}

impl Default for Settings {
    fn default() -> Self {
        Self::from_figment(defaults()).unwrap_or_else(|_| Self {
            config: Config::default(),
            figment: defaults(),
        })
    }
}

fn defaults() -> Figment {
    Figment::from(Serialized::defaults(Config::default()))
}

/// `LOCALPAIR_*` variables, named in errors the way the user typed them
/// (`LOCALPAIR_RESOLVE__MODE`), not figment's dotted form.
struct Environment(Env);

impl figment::Provider for Environment {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("environment variable")
            .interpolater(|_, keys| format!("{ENV_PREFIX}{}", keys.join("__").to_ascii_uppercase()))
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        self.0.data()
    }
}

fn environment() -> Environment {
    const SECTIONS: [&str; 9] = [
        "device",
        "resolve",
        "discover",
        "join",
        "pairing",
        "interfaces",
        "confirm",
        "diagnostics",
        "strategies",
    ];
    // Only keys under our sections: LOCALPAIR_BIN, LOCALPAIR_LOG and the like are not config.
    Environment(Env::prefixed(ENV_PREFIX).split("__").filter(|key| {
        let first = key.as_str().split('.').next().unwrap_or_default();
        SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(first))
    }))
}

impl Settings {
    /// Loads defaults, then the file, then the environment.
    pub fn load(source: Source) -> Result<Self, Error> {
        let figment = match source {
            Source::Discover => {
                let local = Path::new(DEFAULT_FILE);
                let figment = defaults();
                let figment = if local.is_file() {
                    figment.merge(Toml::file_exact(local))
                } else {
                    figment
                };
                figment.merge(environment())
            }
            Source::File(path) => {
                if !path.is_file() {
                    return Err(Error::ConfigFileMissing { path });
                }
                defaults()
                    .merge(Toml::file_exact(path))
                    .merge(environment())
            }
            Source::Toml(text) => defaults().merge(Toml::string(&text)),
        };
        Self::from_figment(figment)
    }

    /// Settings from a figment the caller assembled.
    pub fn from_figment(figment: Figment) -> Result<Self, Error> {
        let config = figment.extract::<Config>().map_err(Box::new)?;
        Ok(Self { config, figment })
    }

    /// The typed configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The `[strategies.<name>]` table (also reachable as `strategies.<name_with_underscores>`,
    /// the form environment variables can spell).
    pub fn strategy_table(&self, name: &str) -> StrategyTable {
        let canonical = self.figment.focus(&format!("strategies.{name}"));
        let underscored = name.replace('-', "_");
        let figment = if underscored == name {
            canonical
        } else {
            canonical.merge(self.figment.focus(&format!("strategies.{underscored}")))
        };
        StrategyTable {
            name: name.to_owned(),
            figment,
        }
    }

    /// Names of the `[strategies.*]` tables present, normalised to `-`.
    pub fn strategy_table_names(&self) -> Vec<String> {
        self.config
            .strategies
            .keys()
            .map(|k| k.replace('_', "-"))
            .collect()
    }
}

/// One strategy's config table.
#[derive(Debug, Clone)]
pub struct StrategyTable {
    name: String,
    figment: Figment,
}

impl StrategyTable {
    /// Deserializes the table; a missing table gives `T::default()` (use `#[serde(default)]`).
    /// Errors carry the full key path (`strategies.<name>.<key>`) and the source.
    pub fn extract<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.figment.extract::<T>().map_err(|mut error| {
            // The focused figment reports paths relative to the table; readers need the full key.
            error
                .path
                .splice(0..0, ["strategies".to_owned(), self.name.clone()]);
            Error::Config(Box::new(error))
        })
    }

    /// The strategy name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load() {
        let s = Settings::load(Source::Toml(String::new())).unwrap();
        assert_eq!(s.config(), &Config::default());
    }

    #[test]
    fn bad_value_names_key() {
        let err = Settings::load(Source::Toml("[resolve]\nmode = \"sideways\"\n".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("resolve.mode"), "{err}");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = Settings::load(Source::Toml("[resolve]\nstager_ms = 3\n".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("stager_ms"), "{err}");
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = Settings::load(Source::File("/nonexistent/localpair.toml".into())).unwrap_err();
        assert!(matches!(err, Error::ConfigFileMissing { .. }));
    }

    #[test]
    fn file_error_names_the_file() {
        let path = std::env::temp_dir().join(format!("lp-cfg-{}.toml", std::process::id()));
        std::fs::write(&path, "[discover]\nstagger_ms = \"soon\"\n").unwrap();
        let err = Settings::load(Source::File(path.clone()))
            .unwrap_err()
            .to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("discover.stagger_ms"), "{err}");
        // By file name: figment shows the path relative to the working directory, which
        // figment::Jail in another test may change at any moment.
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(err.contains(name.as_ref()), "{err}");
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Fake {
        targets: Vec<String>,
        retries: u32,
    }

    #[test]
    fn strategy_table_extracts_with_full_path_in_errors() {
        let s = Settings::load(Source::Toml(
            "[strategies.fake-one]\ntargets = [\"a\"]\n[strategies.fake-two]\nretries = \"x\"\n"
                .into(),
        ))
        .unwrap();
        let one: Fake = s.strategy_table("fake-one").extract().unwrap();
        assert_eq!(one.targets, ["a"]);
        let missing: Fake = s.strategy_table("absent").extract().unwrap();
        assert_eq!(missing, Fake::default());
        let err = s
            .strategy_table("fake-two")
            .extract::<Fake>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("strategies.fake-two.retries"), "{err}");
        assert_eq!(s.strategy_table_names(), ["fake-one", "fake-two"]);
    }

    #[test]
    #[allow(
        clippy::result_large_err,
        reason = "figment's Jail API fixes the error type"
    )]
    fn environment_overrides_with_double_underscore() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LOCALPAIR_RESOLVE__STAGGER_MS", "77");
            jail.set_env("LOCALPAIR_STRATEGIES__FAKE_ONE__RETRIES", "3");
            jail.set_env("LOCALPAIR_BIN", "/not/config");
            jail.set_env("LOCALPAIR_DIAGNOSTICS__DISCOVERY_WINDOW_MS", "1500");
            let s = Settings::load(Source::Discover).map_err(|e| e.to_string())?;
            assert_eq!(s.config().resolve.stagger_ms, 77);
            assert_eq!(
                s.config().diagnostics.discovery_window(),
                Duration::from_millis(1500)
            );
            let fake: Fake = s
                .strategy_table("fake-one")
                .extract()
                .map_err(|e| e.to_string())?;
            assert_eq!(fake.retries, 3);
            Ok(())
        });
    }
}
