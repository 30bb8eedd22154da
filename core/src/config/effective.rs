//! The effective settings, each value with where it came from (`localpair config`).

use figment::value::{Dict, Value};
use figment::{Figment, Metadata, Profile};
use serde::Serialize;

use super::sources::{APP_NAME, DEFAULT_NAME, ENV_NAME, FILE_NAME, FLAG_NAME, Named};
use super::{SectionName, Settings};
use crate::error::Error;

/// Where an effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Origin {
    /// Compiled in: nobody set it.
    Default,
    /// The config file.
    File,
    /// A `LOCALPAIR_*` environment variable.
    Environment,
    /// A command-line flag.
    Flag,
    /// The embedding application ([`Settings::with_value`], or TOML text it passed).
    Application,
}

/// One effective setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Effective {
    /// The dotted key as a TOML file spells it (`resolve.mode`).
    pub key: String,
    /// Its value.
    pub value: Value,
    /// Where it came from.
    #[serde(rename = "from")]
    pub origin: Origin,
    /// Which file, variable or flag, when that is known (`LOCALPAIR_RESOLVE__MODE`).
    pub source: Option<String>,
}

impl Settings {
    /// Every effective setting (arrays count as one value), with where it came from; keys sorted
    /// by section as TOML orders them. The defaults of sections registered with a type are
    /// included; a strategy table lists only what is set.
    pub fn effective(&self) -> Result<Vec<Effective>, Error> {
        let mut figment = self.figment.clone();
        for section in inventory::iter::<SectionName> {
            if let Some(defaults) = section.defaults {
                figment = figment.join(Named {
                    name: DEFAULT_NAME,
                    source: None,
                    inner: figment::providers::Serialized::default(section.name, defaults()),
                });
            }
        }
        let top: Dict = figment.extract().map_err(Box::new)?;
        let mut found = Vec::new();
        collect(&figment, &mut Vec::new(), &top, &mut found);
        Ok(found)
    }
}

fn collect(figment: &Figment, path: &mut Vec<String>, dict: &Dict, found: &mut Vec<Effective>) {
    for (key, value) in dict {
        path.push(key.clone());
        match value {
            Value::Dict(_, inner) => collect(figment, path, inner, found),
            leaf => {
                let key = path.join(".");
                let (origin, source) = figment
                    .find_metadata(&key)
                    .map_or((Origin::Default, None), |m| origin(m, path));
                found.push(Effective {
                    key,
                    value: leaf.clone(),
                    origin,
                    source,
                });
            }
        }
        path.pop();
    }
}

/// Reads a provider's metadata back as an origin: every provider settings are built from is
/// named by one of the `sources` constants.
fn origin(metadata: &Metadata, path: &[String]) -> (Origin, Option<String>) {
    // The path as read, not figment's display of it (relative to the working directory).
    let source = metadata.source.as_ref().map(|source| match source {
        figment::Source::File(path) => path.display().to_string(),
        other => other.to_string(),
    });
    match metadata.name.as_ref() {
        DEFAULT_NAME => (Origin::Default, None),
        FILE_NAME => (Origin::File, source),
        ENV_NAME => {
            let keys: Vec<&str> = path.iter().map(String::as_str).collect();
            (
                Origin::Environment,
                Some(metadata.interpolate(&Profile::Default, &keys)),
            )
        }
        FLAG_NAME => (Origin::Flag, source),
        APP_NAME => (Origin::Application, None),
        _ => (Origin::Application, source),
    }
}
