//! Configuration: compiled-in defaults, then one config file, then `LOCALPAIR_*` environment
//! variables with `__` between key segments, then command-line flags.
//!
//! The file is the one `--config FILE` or `LOCALPAIR_CONFIG` names (it must exist), else the
//! first that exists of [`search_places`]: `./localpair.toml`, the platform's config directory
//! (`$XDG_CONFIG_HOME/localpair/config.toml` on Linux), `/etc/localpair/config.toml`.
//! [`Settings::effective`] lists every value with where it came from.
//!
//! Every strategy reads its own `[strategies.<name>]` table through [`StrategyTable::extract`],
//! with `deny_unknown_fields`, so a typo in a strategy option is an error that names the key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format as _, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;

mod effective;
mod sections;
mod sources;

pub use effective::{Effective, Origin};
use sections::check_sections;
pub use sections::{CORE_SECTIONS, SectionName, known_sections, section_defaults};
use sources::{APP_NAME, DEFAULT_NAME, FLAG_NAME, Named};
pub use sources::{CONFIG_VAR, search_places};

/// The file looked for first in the working directory when no file is named.
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
    /// A section running `order` in `mode`, with the stagger, per-strategy timeout (0: none) and
    /// deadline in milliseconds.
    pub fn new(
        order: &[&str],
        mode: ChainMode,
        stagger_ms: u64,
        strategy_timeout_ms: u64,
        deadline_ms: u64,
    ) -> Self {
        Self {
            order: order.iter().map(|s| (*s).to_owned()).collect(),
            mode,
            stagger_ms,
            strategy_timeout_ms,
            deadline_ms,
        }
    }

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
    /// Directory holding the device key and the trust store; unset means the platform's state
    /// directory (`$XDG_STATE_HOME/localpair`, else `~/.local/state/localpair` on Linux).
    pub state_dir: Option<PathBuf>,
    /// A throwaway identity: a new key for this run, nothing read or written on disk.
    pub ephemeral: bool,
}

/// The `[confirm]` section: the confirmation listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ConfirmConfig {
    /// Port of the listener on every address; when taken, one the OS picks (with a warning).
    /// 0 lets the OS choose. Default 19538.
    pub port: u16,
    /// TLS handshake plus first frame must finish within this.
    pub handshake_timeout_ms: u64,
    /// How long `confirm(ip)` waits for its code to arrive.
    pub confirm_timeout_ms: u64,
    /// Connections served at once; when full, the oldest is closed to make room.
    pub max_connections: usize,
    /// Connections from one address at once; its oldest is closed to make room.
    pub max_per_source: usize,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        Self {
            port: crate::confirm::DEFAULT_PORT,
            handshake_timeout_ms: 2_000,
            confirm_timeout_ms: 1_000,
            max_connections: 64,
            max_per_source: 8,
        }
    }
}

/// The sections the framework itself reads; the sections of applications built on it (pairing,
/// diagnostics) are registered with [`register_section!`](crate::register_section) and read with
/// [`Settings::section`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Config {
    /// This device.
    pub device: DeviceConfig,
    /// The address resolver chain.
    pub resolve: ChainConfig,
    /// The peer discoverer chain.
    pub discover: ChainConfig,
    /// Which interfaces strategies may use.
    pub interfaces: InterfacesConfig,
    /// The confirmation listener.
    pub confirm: ConfirmConfig,
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
            interfaces: InterfacesConfig::default(),
            confirm: ConfirmConfig::default(),
            strategies: BTreeMap::new(),
        }
    }
}

/// Where the configuration file comes from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Source {
    /// The file `LOCALPAIR_CONFIG` names (it must exist), else the first of [`search_places`]
    /// that exists (none: defaults only), plus the environment.
    Discover,
    /// The first of these files that exists (none: defaults only), plus the environment: an
    /// application's own search list.
    FirstOf(Vec<PathBuf>),
    /// Exactly this file (`--config`; it must exist), plus the environment.
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
    file: Option<PathBuf>,
    looked_in: Vec<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self::from_figment(defaults()).unwrap_or_else(|_| Self {
            config: Config::default(),
            figment: defaults(),
            file: None,
            looked_in: Vec::new(),
        })
    }
}

fn defaults() -> Figment {
    Figment::from(Named {
        name: DEFAULT_NAME,
        source: None,
        inner: Serialized::defaults(Config::default()),
    })
}

impl Settings {
    /// Loads defaults, then the file, then the environment.
    pub fn load(source: Source) -> Result<Self, Error> {
        let (file, looked_in) = match source {
            Source::Toml(text) => return Self::from_figment(defaults().merge(Toml::string(&text))),
            Source::File(path) => (Some(sources::named(path, "--config")?), Vec::new()),
            Source::FirstOf(places) => (sources::first_existing(&places)?, places),
            Source::Discover => match std::env::var_os(CONFIG_VAR).filter(|v| !v.is_empty()) {
                Some(path) => (Some(sources::named(path.into(), CONFIG_VAR)?), Vec::new()),
                None => {
                    let places = search_places();
                    (sources::first_existing(&places)?, places)
                }
            },
        };
        let path = file.as_ref().map(|f| f.path.clone());
        let figment = match file {
            Some(file) => defaults().merge(file),
            None => defaults(),
        };
        let mut settings = Self::from_figment(figment.merge(sources::environment()))?;
        settings.file = path;
        settings.looked_in = looked_in;
        Ok(settings)
    }

    /// The config file read, if any.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    /// Where a config file was looked for (empty when one was named or none is read at all).
    pub fn looked_in(&self) -> &[PathBuf] {
        &self.looked_in
    }

    /// Settings from a figment the caller assembled.
    pub fn from_figment(figment: Figment) -> Result<Self, Error> {
        check_sections(&figment)?;
        let config = figment.extract::<Config>().map_err(Box::new)?;
        Ok(Self {
            config,
            figment,
            file: None,
            looked_in: Vec::new(),
        })
    }

    /// A section a crate above the framework owns (`[pairing]`, `[diagnostics]`): what is not
    /// set comes from `T::default()`; use `#[serde(deny_unknown_fields)]` so a typo is an error.
    /// Errors name the key as written (`pairing.code_ttl_ms`) and where the value came from.
    pub fn section<T: Serialize + DeserializeOwned + Default>(
        &self,
        name: &str,
    ) -> Result<T, Error> {
        let figment = self
            .figment
            .clone()
            .join(Serialized::default(name, T::default()));
        extract_at(&figment, &[name])
    }

    /// The typed configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The same settings with `key` (dotted: `device.state_dir`) set to `value`, winning over the
    /// file and the environment, as a command-line flag does.
    pub fn with_value<T: Serialize>(self, key: &str, value: T) -> Result<Self, Error> {
        self.with_named(key, value, APP_NAME, None)
    }

    /// [`with_value`](Self::with_value) for a command-line flag: [`effective`](Self::effective)
    /// and errors name `flag` (`--state-dir`) as the value's source.
    pub fn with_flag<T: Serialize>(self, key: &str, value: T, flag: &str) -> Result<Self, Error> {
        self.with_named(key, value, FLAG_NAME, Some(flag.to_owned()))
    }

    fn with_named<T: Serialize>(
        self,
        key: &str,
        value: T,
        name: &'static str,
        source: Option<String>,
    ) -> Result<Self, Error> {
        let flagged = Named {
            name,
            source,
            inner: Serialized::default(key, value),
        };
        let (file, looked_in) = (self.file, self.looked_in);
        let mut settings = Self::from_figment(self.figment.merge(flagged))?;
        settings.file = file;
        settings.looked_in = looked_in;
        Ok(settings)
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
            settings: self.clone(),
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

/// Extracts the table at `path` with errors naming the full key.
fn extract_at<T: DeserializeOwned>(figment: &Figment, path: &[&str]) -> Result<T, Error> {
    figment
        .focus(&path.join("."))
        .extract::<T>()
        .map_err(|error| with_prefix(error, path))
}

/// A focused figment reports paths relative to its table; readers need the full key.
fn with_prefix(mut error: figment::Error, prefix: &[&str]) -> Error {
    error
        .path
        .splice(0..0, prefix.iter().map(|p| (*p).to_owned()));
    Error::Config(Box::new(error))
}

/// One strategy's config table.
#[derive(Debug, Clone)]
pub struct StrategyTable {
    name: String,
    figment: Figment,
    settings: Settings,
}

impl StrategyTable {
    /// Deserializes the table; a missing table gives `T::default()` (use `#[serde(default)]`).
    /// Errors carry the full key path (`strategies.<name>.<key>`) and the source.
    pub fn extract<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.figment
            .extract::<T>()
            .map_err(|error| with_prefix(error, &["strategies", &self.name]))
    }

    /// The strategy name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All the settings, for a factory that needs more than its own table (another strategy's
    /// table, `[interfaces]`): read at build time, so nothing reads settings while running.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

#[cfg(test)]
mod tests;
