//! `static-address`.

use std::sync::Arc;

use localpair_core::{
    AddressResolver, Candidate, Confirmation, Context, StrategyError, async_trait,
};

use crate::config::AddressConfig;
use crate::error::Error;

localpair_core::register_resolver! {
    name: "static-address",
    summary: "addresses written in [strategies.static-address], self-confirmed (example crate)",
    build: |table| Ok(Arc::new(StaticAddress::new(table.extract()?))),
}

/// Reports the configured addresses that are really ours.
#[derive(Debug, Clone)]
pub struct StaticAddress {
    config: AddressConfig,
}

impl StaticAddress {
    /// A resolver for these addresses.
    pub fn new(config: AddressConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl AddressResolver for StaticAddress {
    async fn resolve(&self, ctx: &Context) -> Result<Vec<Candidate>, StrategyError> {
        if self.config.addresses.is_empty() {
            return Err(Error::Empty("static-address").into());
        }
        let interfaces = localpair_core::interfaces::list_all()?;
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for &ip in &self.config.addresses {
            let mut candidate = match interfaces.iter().find(|i| i.has_addr(ip)) {
                Some(interface) => Candidate::on_interface(ip, interface),
                None => Candidate::new(ip),
            };
            if self.config.confirm {
                if let Err(error) = ctx.confirmer()?.confirm(ip, candidate.scope()).await {
                    failures.push((ip, error));
                    continue;
                }
                candidate.confirmed = Confirmation::Local;
            }
            candidate.reason = format!(
                "configured in [strategies.static-address]; {}",
                candidate.placement()
            );
            found.push(candidate);
        }
        if found.is_empty() {
            return Err(Error::NoneConfirmed { failures }.into());
        }
        Ok(found)
    }
}
