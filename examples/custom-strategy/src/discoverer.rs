//! `static-peers`.

use std::sync::Arc;

use localpair_core::{Context, Peer, PeerDiscoverer, PeerSink, StrategyError, async_trait};

use crate::config::PeersConfig;
use crate::error::Error;

localpair_core::register_discoverer! {
    name: "static-peers",
    summary: "peers written in [strategies.static-peers] (example crate)",
    build: |table| Ok(Arc::new(StaticPeers::new(table.extract()?))),
}

/// Reports the configured peers at once, then waits for the session to end.
#[derive(Debug, Clone)]
pub struct StaticPeers {
    config: PeersConfig,
}

impl StaticPeers {
    /// A discoverer for these peers.
    pub fn new(config: PeersConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl PeerDiscoverer for StaticPeers {
    async fn discover(&self, _ctx: &Context, sink: PeerSink) -> Result<(), StrategyError> {
        if self.config.peers.is_empty() {
            return Err(Error::Empty("static-peers").into());
        }
        for entry in &self.config.peers {
            let peer = Peer::new(entry.fingerprint, entry.name.clone(), entry.addrs.clone());
            if !sink.found(peer).await {
                return Ok(());
            }
        }
        // A discoverer runs until told to stop; the chain decides when the session is over.
        sink.stopped().await;
        Ok(())
    }
}
