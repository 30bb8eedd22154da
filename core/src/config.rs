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

/// The top-level sections [`Config`] reads.
pub const CORE_SECTIONS: [&str; 6] = [
    "device",
    "resolve",
    "discover",
    "interfaces",
    "confirm",
    "strategies",
];

/// A top-level section that a crate above the framework owns and reads itself with
/// [`Settings::section`]. Registered with [`register_section!`](crate::register_section), so a
/// config naming a section no linked crate reads is an error, as a typo should be.
#[derive(Debug, Clone, Copy)]
pub struct SectionName {
    /// The section, e.g. `pairing`.
    pub name: &'static str,
    /// The crate that reads it.
    pub crate_name: &'static str,
}

inventory::collect!(SectionName);

/// Registers a top-level config section that this crate reads with [`Settings::section`].
///
/// ```
/// localpair_core::register_section!("doc-example-section");
///
/// let settings = localpair_core::Settings::load(localpair_core::config::Source::Toml(
///     "[doc-example-section]\ncolour = \"blue\"\n".into(),
/// ))?;
/// # Ok::<(), localpair_core::Error>(())
/// ```
#[macro_export]
macro_rules! register_section {
    ($name:expr) => {
        $crate::__inventory::submit! {
            $crate::config::SectionName {
                name: $name,
                crate_name: ::core::env!("CARGO_PKG_NAME"),
            }
        }
    };
}

/// Every top-level section a linked crate reads: the framework's and the registered ones.
pub fn known_sections() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = CORE_SECTIONS.to_vec();
    for section in inventory::iter::<SectionName> {
        if !all.contains(&section.name) {
            all.push(section.name);
        }
    }
    all
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

/// Largest config file read; the example with every key documented is about 10 KiB.
const MAX_CONFIG_FILE: u64 = 1024 * 1024;

/// A config file, read once from the descriptor that was checked (so it cannot be swapped between
/// the check and the read), and named in errors like figment's own TOML file provider does.
struct ConfigFile {
    path: PathBuf,
    text: String,
}

impl ConfigFile {
    /// Reads `path`; `None` when it does not exist (or, as before, is not a file at all, like a
    /// directory of that name). Refuses what another user could have written.
    fn open(path: &Path) -> Result<Option<Self>, Error> {
        use std::io::Read as _;
        let refuse = |reason: String| Error::ConfigFile {
            path: path.to_path_buf(),
            reason,
        };
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(refuse(e.to_string())),
        };
        let meta = file.metadata().map_err(|e| refuse(e.to_string()))?;
        if meta.is_dir() {
            return Ok(None);
        }
        if !meta.is_file() {
            return Err(refuse("is not a regular file".to_owned()));
        }
        check_config_owner(path, &meta).map_err(refuse)?;
        let mut text = String::new();
        file.take(MAX_CONFIG_FILE + 1)
            .read_to_string(&mut text)
            .map_err(|e| refuse(e.to_string()))?;
        if text.len() as u64 > MAX_CONFIG_FILE {
            return Err(refuse(format!("is larger than {MAX_CONFIG_FILE} bytes")));
        }
        Ok(Some(Self {
            path: path.to_path_buf(),
            text,
        }))
    }
}

impl figment::Provider for ConfigFile {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::from("TOML file", self.path.as_path())
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Toml::string(&self.text).data()
    }
}

/// The rule ssh applies to its config: the file must belong to this user (or to root) and must not
/// be writable by group or others. A config decides which strategies run, what they send and where
/// the device key lives, so one that another local user can write (a `localpair.toml` planted in a
/// shared working directory, say) is refused rather than obeyed.
#[cfg(unix)]
fn check_config_owner(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let me = effective_uid();
    let owner = meta.uid();
    if owner != me && owner != 0 {
        return Err(format!(
            "is owned by another user (uid {owner}; this process runs as uid {me}): another user \
             could have written it; use a file of your own (or move it away: `mv {0} {0}.untrusted`)",
            path.display()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "is writable by other users (mode {mode:03o}); fix it with `chmod go-w {}`",
            path.display()
        ));
    }
    Ok(())
}

/// Elsewhere (Windows) file ownership and modes mean something else: no check.
#[cfg(not(unix))]
fn check_config_owner(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// `LOCALPAIR_*` variables, named in errors the way the user typed them
/// (`LOCALPAIR_RESOLVE__MODE`), not figment's dotted form.
struct Environment(Env);

impl figment::Provider for Environment {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("environment variable").interpolater(|_, keys| {
            format!(
                "{ENV_PREFIX}{}",
                keys.join("__").replace('-', "_").to_ascii_uppercase()
            )
        })
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        self.0.data()
    }
}

fn environment() -> Environment {
    let sections = known_sections();
    let canonical = move |first: &str| {
        sections
            .iter()
            .find(|s| s.replace('-', "_").eq_ignore_ascii_case(first))
            .copied()
    };
    let filter = canonical.clone();
    // Only keys under known sections: LOCALPAIR_BIN, LOCALPAIR_LOG and the like are not config.
    // A `-` in a section name is written `_` in a variable name; map it back.
    Environment(
        Env::prefixed(ENV_PREFIX)
            .split("__")
            .filter(move |key| filter(key.as_str().split('.').next().unwrap_or_default()).is_some())
            .map(move |key| {
                let (first, rest) = key.as_str().split_once('.').unwrap_or((key.as_str(), ""));
                match canonical(first) {
                    Some(section) if rest.is_empty() => section.to_owned().into(),
                    Some(section) => format!("{section}.{rest}").into(),
                    None => key.into(),
                }
            }),
    )
}

/// Refuses a top-level key that no linked crate reads, naming where it came from.
fn check_sections(figment: &Figment) -> Result<(), Error> {
    let top: BTreeMap<String, figment::value::Value> = figment.extract().map_err(Box::new)?;
    let known = known_sections();
    for key in top.keys() {
        if !known.iter().any(|k| k == key) {
            let origin = figment
                .find_metadata(key)
                .map(|m| match &m.source {
                    Some(source) => format!("{} {source}", m.name),
                    None => m.name.to_string(),
                })
                .unwrap_or_else(|| "the configuration".to_owned());
            let mut names = known.clone();
            names.sort_unstable();
            return Err(Error::UnknownSection {
                name: key.clone(),
                origin,
                known: names.join(", "),
            });
        }
    }
    Ok(())
}

impl Settings {
    /// Loads defaults, then the file, then the environment.
    pub fn load(source: Source) -> Result<Self, Error> {
        let figment = match source {
            Source::Discover => {
                let figment = match ConfigFile::open(Path::new(DEFAULT_FILE))? {
                    Some(file) => defaults().merge(file),
                    None => defaults(),
                };
                figment.merge(environment())
            }
            Source::File(path) => match ConfigFile::open(&path)? {
                Some(file) => defaults().merge(file).merge(environment()),
                None => return Err(Error::ConfigFileMissing { path }),
            },
            Source::Toml(text) => defaults().merge(Toml::string(&text)),
        };
        Self::from_figment(figment)
    }

    /// Settings from a figment the caller assembled.
    pub fn from_figment(figment: Figment) -> Result<Self, Error> {
        check_sections(&figment)?;
        let config = figment.extract::<Config>().map_err(Box::new)?;
        Ok(Self { config, figment })
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
        Self::from_figment(self.figment.merge(Serialized::default(key, value)))
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
mod tests {
    use super::*;
    use crate::error::{Classify as _, FailureKind};

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
    fn errors_name_the_key_as_written_once_without_internal_prefixes() {
        let err = Settings::load(Source::Toml("[resolve]\nordr = 3\n".into()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("invalid config: `resolve.ordr`: unknown key `ordr`; expected one of `order`, `mode`"), "{err}");
        assert!(!err.contains("default."), "{err}");
        assert!(!err.contains("``"), "{err}");
        assert_eq!(err.matches("resolve.ordr").count(), 1, "{err}");
        let err = Settings::load(Source::Toml("[discover]\nmode = \"fast\"\n".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`discover.mode`: unknown value `fast`; expected one of `sequential`, `staggered`, `all`"), "{err}");
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

    #[cfg(unix)]
    #[test]
    #[allow(
        clippy::result_large_err,
        reason = "figment's Jail API fixes the error type"
    )]
    fn a_config_file_others_can_write_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt as _;
        let path = std::env::temp_dir().join(format!("lp-cfg-w-{}.toml", std::process::id()));
        std::fs::write(&path, "[discover]\nstagger_ms = 20\n").unwrap();
        for mode in [0o664, 0o646, 0o666] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = Settings::load(Source::File(path.clone())).unwrap_err();
            assert_eq!(err.failure_kind(), FailureKind::Config);
            let err = err.to_string();
            assert!(
                err.contains(&format!("chmod go-w {}", path.display())),
                "{err}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let settings = Settings::load(Source::File(path.clone())).unwrap();
        assert_eq!(settings.config().discover.stagger_ms, 20);

        // Owned by another user: only root can make such a file here, so only root checks it.
        if effective_uid() == 0 {
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            let err = Settings::load(Source::File(path.clone()))
                .unwrap_err()
                .to_string();
            assert!(err.contains("owned by another user (uid 65534"), "{err}");
        }
        std::fs::remove_file(&path).unwrap();

        // The same rule for ./localpair.toml.
        figment::Jail::expect_with(|jail| {
            jail.create_file(DEFAULT_FILE, "[discover]\nstagger_ms = 21\n")?;
            let s = Settings::load(Source::Discover).map_err(|e| e.to_string())?;
            assert_eq!(s.config().discover.stagger_ms, 21);
            std::fs::set_permissions(DEFAULT_FILE, std::fs::Permissions::from_mode(0o666))
                .map_err(|e| e.to_string())?;
            let err = Settings::load(Source::Discover).unwrap_err().to_string();
            assert!(err.contains("chmod go-w localpair.toml"), "{err}");
            Ok(())
        });
    }

    crate::register_section!("test-section");

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct TestSection {
        value: u64,
    }

    #[test]
    fn a_registered_section_is_read_by_its_owner_and_an_unknown_one_is_refused() {
        let s = Settings::load(Source::Toml("[test-section]\nvalue = 3\n".into())).unwrap();
        assert_eq!(s.section::<TestSection>("test-section").unwrap().value, 3);
        let err = s.section::<Fake>("test-section").unwrap_err().to_string();
        assert!(err.contains("test-section.value"), "{err}");
        let err = Settings::load(Source::Toml("[pairng]\nport = 3\n".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown config section `pairng`"), "{err}");
        assert!(err.contains("test-section"), "{err}");
    }

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
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
            jail.set_env("LOCALPAIR_TEST_SECTION__VALUE", "1500");
            let s = Settings::load(Source::Discover).map_err(|e| e.to_string())?;
            assert_eq!(s.config().resolve.stagger_ms, 77);
            let section: TestSection = s.section("test-section").map_err(|e| e.to_string())?;
            assert_eq!(section.value, 1500);
            let fake: Fake = s
                .strategy_table("fake-one")
                .extract()
                .map_err(|e| e.to_string())?;
            assert_eq!(fake.retries, 3);
            Ok(())
        });
    }
}
