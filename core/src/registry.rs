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

/// What a strategy declares about itself at registration, so that tools above the framework
/// (diagnostics) can treat a custom strategy exactly like a built-in one without naming it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Facts {
    /// UDP ports it sends to and listens on (a firewall must let them through).
    pub udp_ports: Vec<UdpPort>,
    /// Whether it tells the peers it finds where it saw them (observation reports to their
    /// confirmation listeners), so a peer it found also learns whether it heard us.
    pub reports_observations: bool,
    /// Whether it answers `self_check` (a quick test of the transport it relies on).
    pub self_check: bool,
}

impl Facts {
    /// Nothing declared.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a UDP port and the protocol spoken there, as a person would call it ("mDNS").
    #[must_use]
    pub fn udp_port(mut self, port: u16, protocol: &'static str) -> Self {
        let port = UdpPort { port, protocol };
        if !self.udp_ports.contains(&port) {
            self.udp_ports.push(port);
        }
        self
    }

    /// Declares that it sends observation reports.
    #[must_use]
    pub fn reports_observations(mut self) -> Self {
        self.reports_observations = true;
        self
    }

    /// Declares that it has a self-check.
    #[must_use]
    pub fn self_check(mut self) -> Self {
        self.self_check = true;
        self
    }
}

/// A UDP port a strategy uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UdpPort {
    /// The port.
    pub port: u16,
    /// The protocol spoken there ("mDNS", "udp-multicast").
    pub protocol: &'static str,
}

/// A registered strategy: how to build it from its config table, and what it declares.
pub struct Factory<S: ?Sized + 'static> {
    /// The name used in `order` lists and `[strategies.<name>]`.
    pub name: &'static str,
    /// The crate that registered it.
    pub crate_name: &'static str,
    /// One line for `localpair strategies`.
    pub summary: &'static str,
    /// Its [`Facts`], given its config table (a configurable port, say).
    pub facts: fn(&StrategyTable) -> Result<Facts, Error>,
    /// The constructor. The table also reaches the rest of the settings
    /// ([`StrategyTable::settings`]): read everything here, never while running.
    pub build: fn(&StrategyTable) -> Result<Arc<S>, Error>,
}

impl<S: ?Sized> Clone for Factory<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: ?Sized> Copy for Factory<S> {}

impl<S: ?Sized> fmt::Debug for Factory<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Factory")
            .field("name", &self.name)
            .field("crate_name", &self.crate_name)
            .finish_non_exhaustive()
    }
}

/// A registered resolver.
pub type ResolverFactory = Factory<dyn AddressResolver>;
/// A registered discoverer.
pub type DiscovererFactory = Factory<dyn PeerDiscoverer>;

/// For a factory that declares nothing.
pub fn no_facts(_: &StrategyTable) -> Result<Facts, Error> {
    Ok(Facts::default())
}

/// The two kinds of strategy, as trait objects: what the registry and the chain builder need to
/// treat them alike.
pub trait Strategy: Send + Sync + 'static {
    /// Which kind.
    const KIND: StrategyKind;
    /// The config section whose `order` lists this kind (`resolve`, `discover`).
    const SECTION: &'static str;
    /// The registered factories of this kind.
    fn factories(registry: &Registry) -> &BTreeMap<&'static str, Factory<Self>>;
    /// The same, to add to.
    fn factories_mut(registry: &mut Registry) -> &mut BTreeMap<&'static str, Factory<Self>>;
    /// The section of the framework's config that lists this kind.
    fn section(config: &crate::config::Config) -> &crate::config::ChainConfig;
}

impl Strategy for dyn AddressResolver {
    const KIND: StrategyKind = StrategyKind::Resolver;
    const SECTION: &'static str = "resolve";
    fn factories(registry: &Registry) -> &BTreeMap<&'static str, Factory<Self>> {
        &registry.resolvers
    }
    fn factories_mut(registry: &mut Registry) -> &mut BTreeMap<&'static str, Factory<Self>> {
        &mut registry.resolvers
    }
    fn section(config: &crate::config::Config) -> &crate::config::ChainConfig {
        &config.resolve
    }
}

impl Strategy for dyn PeerDiscoverer {
    const KIND: StrategyKind = StrategyKind::Discoverer;
    const SECTION: &'static str = "discover";
    fn factories(registry: &Registry) -> &BTreeMap<&'static str, Factory<Self>> {
        &registry.discoverers
    }
    fn factories_mut(registry: &mut Registry) -> &mut BTreeMap<&'static str, Factory<Self>> {
        &mut registry.discoverers
    }
    fn section(config: &crate::config::Config) -> &crate::config::ChainConfig {
        &config.discover
    }
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
///
/// An optional `facts: |table| ...` before `build` declares the strategy's [`Facts`] (its UDP
/// ports, whether it reports observations, whether it has a self-check).
#[macro_export]
macro_rules! register_resolver {
    (name: $name:expr, summary: $summary:expr, $(facts: $facts:expr,)? build: $build:expr $(,)?) => {
        $crate::__inventory::submit! {
            $crate::registry::ResolverFactory {
                name: $name,
                crate_name: ::core::env!("CARGO_PKG_NAME"),
                summary: $summary,
                facts: $crate::__facts!($($facts)?),
                build: $build,
            }
        }
    };
}

/// Registers a [`PeerDiscoverer`] factory under a name; same shape as
/// [`register_resolver!`](crate::register_resolver).
#[macro_export]
macro_rules! register_discoverer {
    (name: $name:expr, summary: $summary:expr, $(facts: $facts:expr,)? build: $build:expr $(,)?) => {
        $crate::__inventory::submit! {
            $crate::registry::DiscovererFactory {
                name: $name,
                crate_name: ::core::env!("CARGO_PKG_NAME"),
                summary: $summary,
                facts: $crate::__facts!($($facts)?),
                build: $build,
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __facts {
    () => {
        $crate::registry::no_facts
    };
    ($facts:expr) => {
        $facts
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

    /// Adds a strategy (for programs that build strategies without `inventory`).
    pub fn add<S: Strategy + ?Sized>(&mut self, factory: Factory<S>) -> Result<(), Error> {
        if let Some(first) = self.taken(factory.name) {
            return Err(duplicate(factory.name, first, factory.crate_name));
        }
        S::factories_mut(self).insert(factory.name, factory);
        Ok(())
    }

    /// Adds a resolver.
    pub fn add_resolver(&mut self, factory: ResolverFactory) -> Result<(), Error> {
        self.add(factory)
    }

    /// Adds a discoverer.
    pub fn add_discoverer(&mut self, factory: DiscovererFactory) -> Result<(), Error> {
        self.add(factory)
    }

    /// Every strategy, sorted by kind then name.
    pub fn list(&self) -> Vec<StrategyInfo> {
        let mut all = info(&self.resolvers);
        all.extend(info(&self.discoverers));
        all
    }

    fn factory<S: Strategy + ?Sized>(&self, name: &str, key: &str) -> Result<&Factory<S>, Error> {
        let factories = S::factories(self);
        factories.get(name).ok_or_else(|| Error::UnknownStrategy {
            kind: S::KIND,
            name: name.to_owned(),
            key: key.to_owned(),
            known: if factories.is_empty() {
                "(none linked)".to_owned()
            } else {
                factories.keys().copied().collect::<Vec<_>>().join(", ")
            },
        })
    }

    /// Builds the strategy of kind `S` named `name` from its table in `settings`; `key` is the
    /// config key that named it (`resolve.order[1]`), for the error when nobody registered it.
    pub fn build<S: Strategy + ?Sized>(
        &self,
        name: &str,
        key: &str,
        settings: &Settings,
    ) -> Result<Arc<S>, Error> {
        (self.factory::<S>(name, key)?.build)(&settings.strategy_table(name))
    }

    /// Builds the resolver named `name` from its table in `settings`.
    pub fn resolver(
        &self,
        name: &str,
        key: &str,
        settings: &Settings,
    ) -> Result<Arc<dyn AddressResolver>, Error> {
        self.build(name, key, settings)
    }

    /// Builds the discoverer named `name` from its table in `settings`.
    pub fn discoverer(
        &self,
        name: &str,
        key: &str,
        settings: &Settings,
    ) -> Result<Arc<dyn PeerDiscoverer>, Error> {
        self.build(name, key, settings)
    }

    /// What the strategy of kind `S` named `name` declares, given its table in `settings`.
    pub fn facts<S: Strategy + ?Sized>(
        &self,
        name: &str,
        settings: &Settings,
    ) -> Result<Facts, Error> {
        (self.factory::<S>(name, name)?.facts)(&settings.strategy_table(name))
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

fn info<S: Strategy + ?Sized>(factories: &BTreeMap<&'static str, Factory<S>>) -> Vec<StrategyInfo> {
    factories
        .values()
        .map(|f| StrategyInfo {
            name: f.name,
            kind: S::KIND,
            crate_name: f.crate_name,
            summary: f.summary,
        })
        .collect()
}

fn duplicate(name: &str, first: &str, second: &str) -> Error {
    Error::DuplicateStrategy {
        name: name.to_owned(),
        first: first.to_owned(),
        second: second.to_owned(),
    }
}
