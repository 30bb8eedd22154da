//! The peer-discovery concern: where are the other devices?

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::check::SelfCheck;
use crate::context::Context;
use crate::error::StrategyError;
use crate::identity::Fingerprint;
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
    /// It must finish within `limit` (the caller cuts it off there), close everything it
    /// opened, and not announce this device to peers. Declare it in the registration's
    /// [`Facts`](crate::registry::Facts) so tools know to ask.
    async fn self_check(&self, _ctx: &Context, _limit: std::time::Duration) -> Option<SelfCheck> {
        None
    }
}

/// Where a discoverer reports peers; a bounded channel to the chain runner plus the stop signal.
#[derive(Debug, Clone)]
pub struct PeerSink {
    out: Out,
    stop: CancellationToken,
}

/// What a discoverer tells the chain runner.
#[derive(Debug, Clone)]
pub(crate) enum Sighting {
    /// It saw this peer (again).
    Found(Peer),
    /// It no longer sees the peer with this key (gone silent, said goodbye, or forgotten).
    Lost(Fingerprint),
}

/// Where sightings go: the chain runner tags each with the step that made it.
#[derive(Debug, Clone)]
enum Out {
    Chain {
        step: usize,
        tx: mpsc::Sender<(usize, Sighting)>,
    },
    Plain(mpsc::Sender<Peer>),
}

impl PeerSink {
    pub(crate) fn new(
        step: usize,
        tx: mpsc::Sender<(usize, Sighting)>,
        stop: CancellationToken,
    ) -> Self {
        Self {
            out: Out::Chain { step, tx },
            stop,
        }
    }

    /// A sink whose peers go to `tx` and which stops when `stop` is cancelled, for driving a
    /// discoverer without a chain (tests, embedding). Losses ([`PeerSink::lost`]) are not
    /// passed on.
    pub fn standalone(tx: mpsc::Sender<Peer>, stop: CancellationToken) -> Self {
        Self {
            out: Out::Plain(tx),
            stop,
        }
    }

    /// Reports a sighting (repeat sightings are fine; the chain merges them). Returns `false`
    /// when nobody listens any more, which means: stop.
    pub async fn found(&self, peer: Peer) -> bool {
        let sent = async {
            match &self.out {
                Out::Chain { step, tx } => tx.send((*step, Sighting::Found(peer))).await.is_ok(),
                Out::Plain(tx) => tx.send(peer).await.is_ok(),
            }
        };
        tokio::select! {
            sent = sent => sent,
            () = self.stop.cancelled() => false,
        }
    }

    /// Reports that this discoverer no longer sees the peer with `fingerprint` (it went silent
    /// for longer than the discoverer allows, or said goodbye). A peer counts as lost once every
    /// discoverer that reported it has said so, or has ended. Returns `false` when nobody
    /// listens any more, which means: stop.
    pub async fn lost(&self, fingerprint: Fingerprint) -> bool {
        let sent = async {
            match &self.out {
                Out::Chain { step, tx } => {
                    tx.send((*step, Sighting::Lost(fingerprint))).await.is_ok()
                }
                Out::Plain(tx) => !tx.is_closed(),
            }
        };
        tokio::select! {
            sent = sent => sent,
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
