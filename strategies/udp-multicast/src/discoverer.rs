//! The `udp-multicast` discoverer.

use std::sync::Arc;
use std::time::Duration;

use localpair_core::registry::Facts;
use localpair_core::{Context, PeerDiscoverer, PeerSink, SelfCheck, StrategyError, async_trait};

use crate::config::Config;
use crate::engine::{Engine, News};
use crate::error::Error;
use crate::probe::LinkTest;

/// Registry name of the discoverer.
pub const NAME: &str = "udp-multicast";

localpair_core::register_discoverer! {
    name: NAME,
    summary: "announces on a UDP multicast group (239.255.76.80 / ff12::4c50:1, port 19536) and lists the devices heard",
    facts: |table| {
        let config: Config = table.extract()?;
        Ok(Facts::new()
            .udp_port(config.port, "udp-multicast")
            .reports_observations()
            .self_check())
    },
    build: |table| Ok(Arc::new(UdpMulticast::new(table.extract()?))),
}

/// Announces this device on every usable interface and reports the peers it hears (see the
/// crate docs).
#[derive(Debug, Clone, Default)]
pub struct UdpMulticast {
    config: Config,
}

impl UdpMulticast {
    /// A discoverer with these options (checked when discovery starts).
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// Its options.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// On every link discovery would use: join the group, send one probe that other devices
    /// ignore, and wait at most `limit` for it to come back through multicast loopback. Closes
    /// everything before returning; announces nothing.
    pub async fn loopback_test(
        &self,
        ctx: &Context,
        limit: Duration,
    ) -> Result<Vec<LinkTest>, Error> {
        crate::probe::loopback_test(ctx, &self.config, limit).await
    }
}

#[async_trait]
impl PeerDiscoverer for UdpMulticast {
    async fn discover(&self, ctx: &Context, sink: PeerSink) -> Result<(), StrategyError> {
        let mut engine = Engine::start(ctx, self.config.clone())?;
        loop {
            tokio::select! {
                () = sink.stopped() => break,
                () = ctx.cancellation().cancelled() => break,
                news = engine.next() => {
                    let open = match news {
                        News::Seen(peer) => sink.found(peer).await,
                        News::Gone(fp) => sink.lost(fp).await,
                    };
                    if !open {
                        break;
                    }
                }
            }
        }
        let summary = engine.shutdown().await;
        if summary.peers > 0 {
            return Ok(());
        }
        Err(Error::NothingHeard {
            summary: format!("{}: {}", summary.counts(), summary.silence()),
        }
        .into())
    }

    async fn self_check(&self, ctx: &Context, limit: Duration) -> Option<SelfCheck> {
        Some(crate::probe::self_check(ctx, &self.config, limit).await)
    }
}

#[cfg(test)]
mod tests {
    use localpair_core::Registry;
    use localpair_core::config::{Settings, Source};
    use localpair_core::registry::StrategyKind;

    #[test]
    fn both_strategies_are_registered() {
        let registry = Registry::linked().unwrap();
        let list = registry.list();
        let find = |name: &str| list.iter().find(|s| s.name == name).unwrap();
        assert_eq!(find(super::NAME).kind, StrategyKind::Discoverer);
        assert_eq!(find(crate::RESOLVER_NAME).kind, StrategyKind::Resolver);
        assert_eq!(find(super::NAME).crate_name, "localpair-udp-multicast");
    }

    #[test]
    fn a_bad_table_fails_at_build_naming_the_key() {
        let settings = Settings::load(Source::Toml(
            "[strategies.udp-multicast]\nsteady_interval_ms = 10\n\
             [strategies.peer-observed]\nwait_ms = 5\n"
                .into(),
        ))
        .unwrap();
        let registry = Registry::linked().unwrap();
        let Err(err) = registry.discoverer(super::NAME, "discover.order[0]", &settings) else {
            panic!("built from a bad table");
        };
        let err = err.to_string();
        assert!(
            err.contains("strategies.udp-multicast.steady_interval_ms"),
            "{err}"
        );
        let Err(err) = registry.resolver(crate::RESOLVER_NAME, "resolve.order[0]", &settings)
        else {
            panic!("built from a bad table");
        };
        let err = err.to_string();
        assert!(err.contains("strategies.peer-observed.wait_ms"), "{err}");
    }
}
