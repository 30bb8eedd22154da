//! Where settings come from, each a figment provider whose metadata names it the way the user
//! knows it: compiled-in defaults, the config file (found in the usual places and checked as ssh
//! checks its config), `LOCALPAIR_*` environment variables and command-line flags.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format as _, Toml};
use figment::{Metadata, Provider};

use super::{DEFAULT_FILE, ENV_PREFIX, known_sections};
use crate::error::Error;

/// Metadata name of compiled-in defaults.
pub(super) const DEFAULT_NAME: &str = "default";
/// Metadata name of a config file.
pub(super) const FILE_NAME: &str = "TOML file";
/// Metadata name of an environment variable.
pub(super) const ENV_NAME: &str = "environment variable";
/// Metadata name of a value the embedding application set
/// ([`Settings::with_value`](super::Settings::with_value)).
pub(super) const APP_NAME: &str = "application";
/// Metadata name of a command-line flag.
pub(super) const FLAG_NAME: &str = "command-line flag";

/// The environment variable naming the config file (which must then exist), like `--config`.
pub const CONFIG_VAR: &str = "LOCALPAIR_CONFIG";

/// Where a config file is looked for when none is named, in order; the first that exists is read
/// and the others are not (settings are not merged across files, so one file says it all):
/// `./localpair.toml`; then the platform's config directory: on Linux
/// `$XDG_CONFIG_HOME/localpair/config.toml` (else `~/.config/localpair/config.toml`), on macOS
/// `~/Library/Application Support/localpair/config.toml`, on Windows
/// `%APPDATA%\localpair\config\config.toml`; then `/etc/localpair/config.toml` on Unix.
pub fn search_places() -> Vec<PathBuf> {
    let mut places = vec![PathBuf::from(DEFAULT_FILE)];
    if let Some(dirs) = directories::ProjectDirs::from("", "", "localpair") {
        places.push(dirs.config_dir().join("config.toml"));
    }
    if cfg!(unix) {
        places.push(PathBuf::from("/etc/localpair/config.toml"));
    }
    places
}

/// The first of `places` that exists, read and checked; `None` when none does.
pub(super) fn first_existing(places: &[PathBuf]) -> Result<Option<ConfigFile>, Error> {
    for place in places {
        if let Some(file) = ConfigFile::open(place)? {
            return Ok(Some(file));
        }
    }
    Ok(None)
}

/// The file `named_by` (`--config`, [`CONFIG_VAR`]) names: it must exist.
pub(super) fn named(path: PathBuf, named_by: &str) -> Result<ConfigFile, Error> {
    ConfigFile::open(&path)?.ok_or_else(|| Error::ConfigFileMissing {
        path,
        named_by: named_by.to_owned(),
    })
}

/// A provider under another name (and, for a flag, the flag as its source), so that errors and
/// `localpair config` say "default" or "command-line flag --state-dir" rather than a Rust type.
pub(super) struct Named<P> {
    pub(super) name: &'static str,
    pub(super) source: Option<String>,
    pub(super) inner: P,
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        match &self.source {
            Some(source) => Metadata::from(self.name, figment::Source::Custom(source.clone())),
            None => Metadata::named(self.name),
        }
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        self.inner.data()
    }
}

/// Largest config file read; the example with every key documented is about 10 KiB.
const MAX_CONFIG_FILE: u64 = 1024 * 1024;

/// A config file, read once from the descriptor that was checked (so it cannot be swapped between
/// the check and the read), and named in errors like figment's own TOML file provider does.
pub(super) struct ConfigFile {
    pub(super) path: PathBuf,
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

impl Provider for ConfigFile {
    fn metadata(&self) -> Metadata {
        Metadata::from(FILE_NAME, self.path.as_path())
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
pub(super) fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// `LOCALPAIR_*` variables, named in errors the way the user typed them
/// (`LOCALPAIR_RESOLVE__MODE`), not figment's dotted form.
pub(super) struct Environment(Env);

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_NAME).interpolater(|_, keys| {
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

pub(super) fn environment() -> Environment {
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
