//! Discovery on lab hosts, for the strategies' lab suites: a whole discover chain ([`discover`]), or one discoverer
//! driven directly ([`Node`], or [`context`] and [`sink`] for a test that drives it itself).
//!
//! Built on `localpair-core` alone: the discoverers come from the test (a [`Node`]) or from the strategies the test
//! binary links (the chain, through [`Registry::linked`]), so this crate never depends on a strategy crate.

mod node;

use std::sync::Arc;

use localpair_core::chain::Attempt;
use localpair_core::config::Source;
use localpair_core::{
    Confirmer, Context, DeviceId, DiscovererChain, DiscoveryGoal, Identity, Peer, PeerSink,
    Registry, Settings,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::LabError;
use crate::host::Host;
use crate::netns::NsThread;
use crate::runtime::runtime;

pub use node::{Node, NodeError, Stopped};

/// Sightings a discoverer may report before it waits for the test to take them.
const SINK_CAPACITY: usize = 64;

/// A context for a device called `name`, with settings from `toml`: a fresh key and a running confirmation listener.
///
/// Call it on the runtime (and so in the namespace) the session will run on: the listener binds there.
pub fn context(name: &str, toml: &str) -> Result<Context, LabError> {
    device(name, toml).map(|(ctx, _)| ctx)
}

/// [`context`], and the port of its confirmation listener.
fn device(name: &str, toml: &str) -> Result<(Context, u16), LabError> {
    let settings = Settings::load(Source::Toml(toml.to_owned()))
        .map_err(|e| LabError::core("loading the settings", e))?;
    let identity = Arc::new(
        Identity::ephemeral(name).map_err(|e| LabError::core("creating a device key", e))?,
    );
    let confirmer = Confirmer::start(Arc::clone(&identity), settings.config().confirm.clone())
        .map_err(|e| LabError::core("starting the confirmation listener", e))?;
    let port = confirmer.port();
    let ctx = Context::new(settings, identity, Some(confirmer))
        .map_err(|e| LabError::core("creating the context", e))?;
    Ok((ctx, port))
}

/// What a discoverer driven through a [`sink`] reports, in order.
#[derive(Debug)]
pub struct Sightings(mpsc::Receiver<Peer>);

impl Sightings {
    /// The next sighting; `None` once the discoverer has returned (and dropped its sink).
    pub async fn recv(&mut self) -> Option<Peer> {
        self.0.recv().await
    }
}

/// A sink for calling [`PeerDiscoverer::discover`](localpair_core::PeerDiscoverer::discover) without a chain: the
/// discoverer stops when `stop` is cancelled (or the [`Sightings`] are dropped), and its sightings arrive in order.
///
/// The lab's only use of `PeerSink::standalone`, so a change to what its channel carries is made here alone.
pub fn sink(stop: CancellationToken) -> (PeerSink, Sightings) {
    let (tx, rx) = mpsc::channel(SINK_CAPACITY);
    (PeerSink::standalone(tx, stop), Sightings(rx))
}

/// What one discover chain on a host produced.
#[derive(Debug)]
pub struct Session {
    /// The host's device ID (its key is fresh for each session).
    pub me: DeviceId,
    /// The chain's strategies in order, as the registry built them from `[discover] order`.
    pub strategies: Vec<String>,
    /// Distinct peers in the order they were first seen.
    pub peers: Vec<Peer>,
    /// One record per strategy, in the chain's order.
    pub attempts: Vec<Attempt>,
}

impl Session {
    /// The peer with this device ID, if the session found it.
    pub fn found(&self, id: DeviceId) -> Option<&Peer> {
        self.peers.iter().find(|p| p.id == id)
    }
}

/// Runs the discover chain of `settings` on `host` until it ends (its goal or deadline), on a thread of its own.
///
/// The chain is built through the registry, as the CLI builds it, from the strategies linked into the test binary.
/// `settings` name the device (`[device] name`) and the chain (`[discover]`).
pub fn discover(
    host: &Host,
    settings: Settings,
) -> Result<NsThread<Result<Session, LabError>>, LabError> {
    host.spawn(move || {
        runtime().block_on(async move {
            let ctx = Context::start(settings.clone())
                .map_err(|e| LabError::core("starting the context", e))?;
            let registry =
                Registry::linked().map_err(|e| LabError::core("collecting the strategies", e))?;
            let chain = DiscovererChain::from_settings(&registry, &settings)
                .map_err(|e| LabError::core("building the discover chain", e))?;
            let strategies = chain.names().into_iter().map(str::to_owned).collect();
            let report = chain.discover(&ctx, DiscoveryGoal::default(), None).await;
            Ok(Session {
                me: ctx.identity().device_id(),
                strategies,
                peers: report.peers,
                attempts: report.attempts,
            })
        })
    })
}
