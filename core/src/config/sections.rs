//! The top-level sections: the framework's own, and those crates above it register with
//! [`register_section!`](crate::register_section) so that a section no linked crate reads is an
//! error, as a typo should be.

use std::collections::BTreeMap;

use figment::Figment;
use serde::Serialize;

use crate::error::Error;

/// The top-level sections [`Config`](super::Config) reads.
pub const CORE_SECTIONS: [&str; 6] = [
    "device",
    "resolve",
    "discover",
    "interfaces",
    "confirm",
    "strategies",
];

/// A top-level section that a crate above the framework owns and reads itself with
/// [`Settings::section`](super::Settings::section). Registered with
/// [`register_section!`](crate::register_section), so a config naming a section no linked crate
/// reads is an error, as a typo should be.
#[derive(Debug, Clone, Copy)]
pub struct SectionName {
    /// The section, e.g. `pairing`.
    pub name: &'static str,
    /// The crate that reads it.
    pub crate_name: &'static str,
    /// The section's defaults, for [`Settings::effective`](super::Settings::effective) (`None`:
    /// only what is set is listed).
    pub defaults: Option<fn() -> figment::value::Value>,
}

/// `T::default()` as a config value: what [`register_section!`](crate::register_section) with a
/// type records as the section's defaults.
pub fn section_defaults<T: Serialize + Default>() -> figment::value::Value {
    figment::value::Value::serialize(T::default())
        .unwrap_or_else(|_| figment::value::Dict::new().into())
}

inventory::collect!(SectionName);

/// Registers a top-level config section that this crate reads with
/// [`Settings::section`](super::Settings::section). With a type
/// (`register_section!("pairing", Config)`), its `Default` is what
/// [`Settings::effective`](super::Settings::effective) lists for keys nobody set.
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
                defaults: ::core::option::Option::None,
            }
        }
    };
    ($name:expr, $config:ty) => {
        $crate::__inventory::submit! {
            $crate::config::SectionName {
                name: $name,
                crate_name: ::core::env!("CARGO_PKG_NAME"),
                defaults: ::core::option::Option::Some($crate::config::section_defaults::<$config>),
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

/// Refuses a top-level key that no linked crate reads, naming where it came from.
pub(super) fn check_sections(figment: &Figment) -> Result<(), Error> {
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
