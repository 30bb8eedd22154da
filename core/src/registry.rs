//! The strategy registry: every strategy crate submits a factory with [`register_resolver!`] or
//! [`register_discoverer!`]; a binary that links the crate can then name the strategy in its
//! config.
//!
//! Linking is the catch: a crate nobody references is dropped by the linker with its
//! registrations, so binaries name every strategy crate (`use localpair_mdns as _;`).
//!
//! [`register_resolver!`]: crate::register_resolver
//! [`register_discoverer!`]: crate::register_discoverer

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Settings, StrategyTable};
use crate::discoverer::PeerDiscoverer;
use crate::error::Error;
use crate::resolver::AddressResolver;

/// Resolver or discoverer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StrategyKind {
    /// Implements [`AddressResolver`].
    Resolver,
    /// Implements [`PeerDiscoverer`].
    Discoverer,
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Resolver => "resolver",
            Self::Discoverer => "discoverer",
        })
    }
}

/// Builds a resolver from its config table.
pub type BuildResolver = fn(&StrategyTable) -> Result<Arc<dyn AddressResolver>, Error>;
/// Builds a discoverer from its config table.
pub type BuildDiscoverer = fn(&StrategyTable) -> Result<Arc<dyn PeerDiscoverer>, Error>;

/// A registered resolver.
#[derive(Debug, Clone, Copy)]
pub struct ResolverFactory {
    /// The name used in `resolve.order` and `[strategies.<name>]`.
    pub name: &'static str,
    /// The crate that registered it.
    pub crate_name: &'static str,
    /// One line for `localpair strategies`.
    pub summary: &'static str,
    /// The constructor.
    pub build: BuildResolver,
}

/// A registered discoverer.
#[derive(Debug, Clone, Copy)]
pub struct DiscovererFactory {
    /// The name used in `discover.order` and `[strategies.<name>]`.
    pub name: &'static str,
    /// The crate that registered it.
    pub crate_name: &'static str,
    /// One line for `localpair strategies`.
    pub summary: &'static str,
    /// The constructor.
    pub build: BuildDiscoverer,
}

inventory::collect!(ResolverFactory);
inventory::collect!(DiscovererFactory);

/// Registers an [`AddressResolver`] factory under a name.
///
/// ```
/// use std::sync::Arc;
/// use localpair_core::{async_trait, AddressResolver, Candidate, Context, StrategyError};
///
/// #[derive(Default, serde::Deserialize)]
/// #[serde(default, deny_unknown_fields)]
/// struct Config {
///     addresses: Vec<std::net::IpAddr>,
/// }
///
/// struct Fixed(Config);
///
/// #[async_trait]
/// impl AddressResolver for Fixed {
///     async fn resolve(&self, _ctx: &Context) -> Result<Vec<Candidate>, StrategyError> {
///         Ok(self.0.addresses.iter().map(|ip| Candidate::new(*ip)).collect())
///     }
/// }
///
/// localpair_core::register_resolver! {
///     name: "fixed-doc-example",
///     summary: "addresses written in the config",
///     build: |table| Ok(Arc::new(Fixed(table.extract()?))),
/// }
///
/// let registry = localpair_core::Registry::linked()?;
/// assert!(registry.list().iter().any(|s| s.name == "fixed-doc-example"));
/// # Ok::<(), localpair_core::Error>(())
/// ```
#[macro_export]
macro_rules! register_resolver {
    (name: $name:expr, summary: $summary:expr, build: $build:expr $(,)?) => {
        $crate::__inventory::submit! {
            $crate::registry::ResolverFactory {
                name: $name,
                crate_name: ::core::env!("CARGO_PKG_NAME"),
                summary: $summary,
                build: $build,
            }
        }
    };
}

/// Registers a [`PeerDiscoverer`] factory under a name; same shape as
/// [`register_resolver!`](crate::register_resolver).
#[macro_export]
macro_rules! register_discoverer {
    (name: $name:expr, summary: $summary:expr, build: $build:expr $(,)?) => {
        $crate::__inventory::submit! {
            $crate::registry::DiscovererFactory {
                name: $name,
                crate_name: ::core::env!("CARGO_PKG_NAME"),
                summary: $summary,
                build: $build,
            }
        }
    };
}

/// One line of `localpair strategies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StrategyInfo {
    /// Registered name.
    pub name: &'static str,
    /// Resolver or discoverer.
    pub kind: StrategyKind,
    /// Registering crate.
    #[serde(rename = "crate")]
    pub crate_name: &'static str,
    /// What it does.
    pub summary: &'static str,
}

/// The set of strategies a program can use: everything linked in, plus any added by hand.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    resolvers: BTreeMap<&'static str, ResolverFactory>,
    discoverers: BTreeMap<&'static str, DiscovererFactory>,
}

impl Registry {
    /// Every factory submitted by a linked crate; a name registered twice is an error.
    pub fn linked() -> Result<Self, Error> {
        let mut registry = Self::default();
        for factory in inventory::iter::<ResolverFactory> {
            registry.add_resolver(*factory)?;
        }
        for factory in inventory::iter::<DiscovererFactory> {
            registry.add_discoverer(*factory)?;
        }
        Ok(registry)
    }

    fn taken(&self, name: &str) -> Option<&'static str> {
        self.resolvers
            .get(name)
            .map(|f| f.crate_name)
            .or_else(|| self.discoverers.get(name).map(|f| f.crate_name))
    }

    /// Adds a resolver (for programs that build strategies without `inventory`).
    pub fn add_resolver(&mut self, factory: ResolverFactory) -> Result<(), Error> {
        if let Some(first) = self.taken(factory.name) {
            return Err(duplicate(factory.name, first, factory.crate_name));
        }
        self.resolvers.insert(factory.name, factory);
        Ok(())
    }

    /// Adds a discoverer.
    pub fn add_discoverer(&mut self, factory: DiscovererFactory) -> Result<(), Error> {
        if let Some(first) = self.taken(factory.name) {
            return Err(duplicate(factory.name, first, factory.crate_name));
        }
        self.discoverers.insert(factory.name, factory);
        Ok(())
    }

    /// Every strategy, sorted by kind then name.
    pub fn list(&self) -> Vec<StrategyInfo> {
        let resolvers = self.resolvers.values().map(|f| StrategyInfo {
            name: f.name,
            kind: StrategyKind::Resolver,
            crate_name: f.crate_name,
            summary: f.summary,
        });
        let discoverers = self.discoverers.values().map(|f| StrategyInfo {
            name: f.name,
            kind: StrategyKind::Discoverer,
            crate_name: f.crate_name,
            summary: f.summary,
        });
        resolvers.chain(discoverers).collect()
    }

    fn known(&self, kind: StrategyKind) -> String {
        let names: Vec<&str> = match kind {
            StrategyKind::Resolver => self.resolvers.keys().copied().collect(),
            StrategyKind::Discoverer => self.discoverers.keys().copied().collect(),
        };
        if names.is_empty() {
            "(none linked)".to_owned()
        } else {
            names.join(", ")
        }
    }

    /// Builds the resolver named `name` from its table in `settings`.
    pub fn resolver(
        &self,
        name: &str,
        key: &str,
        settings: &Settings,
    ) -> Result<Arc<dyn AddressResolver>, Error> {
        let factory = self
            .resolvers
            .get(name)
            .ok_or_else(|| Error::UnknownStrategy {
                kind: StrategyKind::Resolver,
                name: name.to_owned(),
                key: key.to_owned(),
                known: self.known(StrategyKind::Resolver),
            })?;
        (factory.build)(&settings.strategy_table(name))
    }

    /// Builds the discoverer named `name` from its table in `settings`.
    pub fn discoverer(
        &self,
        name: &str,
        key: &str,
        settings: &Settings,
    ) -> Result<Arc<dyn PeerDiscoverer>, Error> {
        let factory = self
            .discoverers
            .get(name)
            .ok_or_else(|| Error::UnknownStrategy {
                kind: StrategyKind::Discoverer,
                name: name.to_owned(),
                key: key.to_owned(),
                known: self.known(StrategyKind::Discoverer),
            })?;
        (factory.build)(&settings.strategy_table(name))
    }

    /// Checks that every `[strategies.<name>]` table names a registered strategy, so a misspelt
    /// table is not silently ignored.
    pub fn check_tables(&self, settings: &Settings) -> Result<(), Error> {
        for name in settings.strategy_table_names() {
            if self.taken(&name).is_none() {
                let mut all: Vec<&str> = self.resolvers.keys().copied().collect();
                all.extend(self.discoverers.keys().copied());
                all.sort_unstable();
                return Err(Error::UnknownStrategyTable {
                    name,
                    known: all.join(", "),
                });
            }
        }
        Ok(())
    }
}

fn duplicate(name: &str, first: &str, second: &str) -> Error {
    Error::DuplicateStrategy {
        name: name.to_owned(),
        first: first.to_owned(),
        second: second.to_owned(),
    }
}
