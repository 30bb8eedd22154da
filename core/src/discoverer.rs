//! The peer-discovery concern: where are the other devices?

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::context::Context;
use crate::diagnostics::SelfCheck;
use crate::error::StrategyError;
use crate::peer::Peer;

/// Announces this device and reports the peers it finds until told to stop.
///
/// `discover` runs for as long as the session lasts: it reports each sighting through the sink and
/// returns once [`PeerSink::stopped`] fires, after closing its sockets and tasks. Returning
/// `Err` after a stop with nothing found is how a discoverer explains the silence ("sent 5
/// announcements, heard nothing back: multicast is filtered").
#[async_trait]
pub trait PeerDiscoverer: Send + Sync + 'static {
    /// Runs one discovery session.
    async fn discover(&self, ctx: &Context, sink: PeerSink) -> Result<(), StrategyError>;

    /// A quick test of the transport this discoverer relies on, for `localpair diagnose`: for a
    /// multicast discoverer, join the group on each permitted interface, send, and see our own
    /// packet come back. `None` (the default) means the discoverer has no such test.
    ///
    /// It should finish well inside `[diagnostics] self_check_timeout_ms` (the caller cuts it
    /// off there), close everything it opened, and not announce this device to peers.
    async fn self_check(&self, _ctx: &Context) -> Option<SelfCheck> {
        None
    }
}

/// Where a discoverer reports peers; a bounded channel to the chain runner plus the stop signal.
#[derive(Debug, Clone)]
pub struct PeerSink {
    step: usize,
    tx: mpsc::Sender<(usize, Peer)>,
    stop: CancellationToken,
}

impl PeerSink {
    pub(crate) fn new(
        step: usize,
        tx: mpsc::Sender<(usize, Peer)>,
        stop: CancellationToken,
    ) -> Self {
        Self { step, tx, stop }
    }

    /// A sink whose peers go to `tx` and which stops when `stop` is cancelled, for driving a
    /// discoverer without a chain (tests, embedding).
    pub fn standalone(tx: mpsc::Sender<(usize, Peer)>, stop: CancellationToken) -> Self {
        Self::new(0, tx, stop)
    }

    /// Reports a sighting (repeat sightings are fine; the chain merges them). Returns `false`
    /// when nobody listens any more, which means: stop.
    pub async fn found(&self, peer: Peer) -> bool {
        tokio::select! {
            sent = self.tx.send((self.step, peer)) => sent.is_ok(),
            () = self.stop.cancelled() => false,
        }
    }

    /// Resolves when the session should end.
    pub fn stopped(&self) -> WaitForCancellationFuture<'_> {
        self.stop.cancelled()
    }

    /// Whether the session should end.
    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// The stop token, for handing to tasks the discoverer spawns.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}
