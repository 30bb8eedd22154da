//! The resolver.

use std::sync::Arc;

use localpair_core::interfaces::preferred_source;
use localpair_core::{
    AddressResolver, Candidate, Confirmation, Context, StrategyError, async_trait,
};

use crate::config::Config;
use crate::error::Error;

/// Registry name.
pub const NAME: &str = "outbound-route";

localpair_core::register_resolver! {
    name: NAME,
    summary: "address of the default route's interface (route lookup, sends nothing), self-confirmed",
    build: |table| Ok(Arc::new(OutboundRoute::new(table.extract()?))),
}

/// See the crate docs.
#[derive(Debug, Clone)]
pub struct OutboundRoute {
    config: Config,
}

impl OutboundRoute {
    /// A resolver with these options.
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    async fn run(&self, ctx: &Context) -> Result<Vec<Candidate>, Error> {
        if self.config.targets.is_empty() {
            return Err(Error::NoTargets);
        }
        let interfaces = localpair_core::interfaces::list_all()?;
        let mut tried = Vec::new();
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut last_error = None;
        for &target in &self.config.targets {
            let ip = match preferred_source(target) {
                Ok(ip) if !ip.is_unspecified() && !ip.is_loopback() => ip,
                Ok(ip) => {
                    tried.push(format!("{target}: route leads to {ip}"));
                    continue;
                }
                Err(error) => {
                    tried.push(format!("{target}: {error}"));
                    continue;
                }
            };
            if candidates.iter().any(|c| c.ip == ip) {
                continue;
            }
            let mut candidate = match interfaces.iter().find(|i| i.has_addr(ip)) {
                Some(interface) => {
                    if !ctx.filter().permits(&interface.name, interface.class) {
                        last_error = Some(Error::Excluded {
                            ip,
                            interface: interface.name.clone(),
                        });
                        continue;
                    }
                    Candidate::on_interface(ip, interface)
                }
                None => Candidate::new(ip),
            };
            candidate.default_route = true;
            if self.config.confirm {
                let confirmer = ctx.confirmer().map_err(|_| Error::NotConfirmed {
                    ip,
                    target,
                    source: localpair_core::Error::ListenerClosed,
                })?;
                if let Err(source) = confirmer.confirm(ip, candidate.scope()).await {
                    tracing::debug!(%ip, %source, "outbound address not confirmed");
                    last_error = Some(Error::NotConfirmed { ip, target, source });
                    continue;
                }
                candidate.confirmed = Confirmation::Local;
            }
            candidate.reason = format!(
                "preferred outbound address (route to {target}){}, {}",
                if self.config.confirm {
                    ", reached our listener"
                } else {
                    ""
                },
                candidate.placement()
            );
            candidates.push(candidate);
        }
        if candidates.is_empty() {
            return Err(last_error.unwrap_or(Error::NoRoute {
                tried: tried.join("; "),
            }));
        }
        Ok(candidates)
    }
}

#[async_trait]
impl AddressResolver for OutboundRoute {
    async fn resolve(&self, ctx: &Context) -> Result<Vec<Candidate>, StrategyError> {
        Ok(self.run(ctx).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use localpair_core::config::{Settings, Source};
    use localpair_core::{Confirmer, Identity};

    fn ctx(with_listener: bool) -> Context {
        let identity = Arc::new(Identity::ephemeral("t").unwrap());
        let confirmer = with_listener
            .then(|| Confirmer::start(Arc::clone(&identity), Default::default()).unwrap());
        Context::new(
            Settings::load(Source::Toml(String::new())).unwrap(),
            identity,
            confirmer,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn loopback_route_is_not_an_answer() {
        // The route to a loopback target leads to loopback: not an address for peers.
        let resolver = OutboundRoute::new(Config {
            targets: vec!["127.0.0.1:9".parse().unwrap()],
            confirm: true,
        });
        let err = resolver.run(&ctx(true)).await.unwrap_err();
        assert!(matches!(err, Error::NoRoute { .. }), "{err}");
        assert!(
            err.to_string().contains("route leads to 127.0.0.1"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn no_targets_is_a_config_error() {
        let resolver = OutboundRoute::new(Config {
            targets: vec![],
            confirm: true,
        });
        let err: StrategyError = resolver.run(&ctx(false)).await.unwrap_err().into();
        assert_eq!(err.kind(), localpair_core::FailureKind::Config);
    }

    #[test]
    fn config_rejects_unknown_keys() {
        let settings = Settings::load(Source::Toml(
            "[strategies.outbound-route]\ntarget = []\n".into(),
        ))
        .unwrap();
        let err = settings
            .strategy_table(NAME)
            .extract::<Config>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("strategies.outbound-route"), "{err}");
    }
}
