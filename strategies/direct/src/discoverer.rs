//! The discoverer.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::Arc;

use localpair_core::candidate::is_link_local;
use localpair_core::{
    Context, JoinTarget, Peer, PeerDiscoverer, PeerSink, StrategyError, async_trait,
};

use crate::config::Config;
use crate::error::Error;

/// Registry name.
pub const NAME: &str = "direct";

localpair_core::register_discoverer! {
    name: NAME,
    summary: "the addresses written in the pairing code (joining only)",
    build: |table| Ok(Arc::new(Direct::new(table.extract()?))),
}

/// See the crate docs.
#[derive(Debug, Clone)]
pub struct Direct {
    config: Config,
}

impl Direct {
    /// A discoverer with these options.
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// The socket addresses to offer for a target; link-local IPv6 once per local scope.
    fn addresses(&self, target: &JoinTarget, scopes: &[u32]) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for ip in &target.candidates {
            match ip {
                IpAddr::V6(v6) if is_link_local(*ip) => {
                    if self.config.link_local {
                        out.extend(scopes.iter().map(|&scope| {
                            SocketAddr::V6(SocketAddrV6::new(*v6, target.port, 0, scope))
                        }));
                    }
                }
                _ => out.push(SocketAddr::new(*ip, target.port)),
            }
        }
        out
    }
}

#[async_trait]
impl PeerDiscoverer for Direct {
    async fn discover(&self, ctx: &Context, sink: PeerSink) -> Result<(), StrategyError> {
        let Some(target) = ctx.wait_join_target(&sink).await else {
            return Err(Error::NoCode.into());
        };
        let scopes: Vec<u32> = ctx
            .interfaces()
            .unwrap_or_default()
            .iter()
            .filter(|i| {
                i.addrs
                    .iter()
                    .any(|a| is_link_local(a.ip) && a.ip.is_ipv6())
            })
            .filter_map(|i| i.index)
            .collect();
        let addrs = self.addresses(&target, &scopes);
        if addrs.is_empty() {
            return Err(Error::NoAddress.into());
        }
        let mut peer = Peer::new(target.fingerprint, String::new(), addrs);
        peer.pairing_port = Some(target.port);
        peer.session_tag = Some(target.session_tag);
        sink.found(peer).await;
        sink.stopped().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use localpair_core::Fingerprint;

    use super::*;

    #[test]
    fn link_local_is_offered_per_scope() {
        let target = JoinTarget::new(
            Fingerprint::from_bytes([1; 32]),
            4000,
            vec!["10.0.0.2".parse().unwrap(), "fe80::2".parse().unwrap()],
            [3; 8],
            b"test/1",
        );
        let addrs = Direct::new(Config::default()).addresses(&target, &[2, 5]);
        let text: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            ["10.0.0.2:4000", "[fe80::2%2]:4000", "[fe80::2%5]:4000"]
        );
        let none = Direct::new(Config { link_local: false }).addresses(&target, &[2]);
        assert_eq!(none.len(), 1);
    }
}
