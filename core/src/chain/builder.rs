//! The one builder behind [`ResolverChain`](super::ResolverChain) and
//! [`DiscovererChain`](super::DiscovererChain): strategies in order, and the plan that runs them.

use std::fmt;
use std::sync::Arc;

use super::Plan;
use crate::config::{ChainConfig, Settings};
use crate::error::Error;
use crate::registry::{Registry, Strategy};

/// Strategies of one kind in order, with the plan that runs them. Cheap to clone.
pub struct Chain<S: ?Sized> {
    pub(super) plan: Plan,
    pub(super) steps: Vec<(String, Arc<S>)>,
}

impl<S: ?Sized> Clone for Chain<S> {
    fn clone(&self) -> Self {
        Self {
            plan: self.plan,
            steps: self.steps.clone(),
        }
    }
}

impl<S: ?Sized> fmt::Debug for Chain<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("plan", &self.plan)
            .field("steps", &self.names())
            .finish()
    }
}

impl<S: ?Sized> Chain<S> {
    /// An empty chain.
    pub fn new(plan: Plan) -> Self {
        Self {
            plan,
            steps: Vec::new(),
        }
    }

    /// Appends a strategy.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, strategy: Arc<S>) -> Self {
        self.steps.push((name.into(), strategy));
        self
    }

    /// The plan.
    pub fn plan(&self) -> Plan {
        self.plan
    }

    /// Replaces the plan (e.g. `--timeout` sets the deadline).
    #[must_use]
    pub fn with_plan(mut self, plan: Plan) -> Self {
        self.plan = plan;
        self
    }

    /// Strategy names in order.
    pub fn names(&self) -> Vec<&str> {
        self.steps.iter().map(|(n, _)| n.as_str()).collect()
    }
}

impl<S: Strategy + ?Sized> Chain<S> {
    /// The chain the framework's own section describes (`[resolve]` for resolvers, `[discover]`
    /// for discoverers), built from the registry.
    pub fn from_settings(registry: &Registry, settings: &Settings) -> Result<Self, Error> {
        Self::from_section(
            registry,
            settings,
            S::SECTION,
            S::section(settings.config()),
        )
    }

    /// The chain any section of that shape describes (an application's own, such as pairing's
    /// `[join]`); `key` is the section's name, for errors (`join.order[2]`).
    pub fn from_section(
        registry: &Registry,
        settings: &Settings,
        key: &str,
        section: &ChainConfig,
    ) -> Result<Self, Error> {
        let mut chain = Self::new(Plan::from_config(section));
        for (i, name) in section.order.iter().enumerate() {
            let strategy = registry.build::<S>(name, &format!("{key}.order[{i}]"), settings)?;
            chain = chain.with(name.clone(), strategy);
        }
        Ok(chain)
    }
}
