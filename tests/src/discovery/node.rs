//! One discoverer's session on a lab host, watched from the test's thread.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use localpair_core::{Advert, Context, FailureKind, Fingerprint, Peer, PeerDiscoverer};
use tokio_util::sync::CancellationToken;

use super::{device, sink};
use crate::error::LabError;
use crate::host::Host;
use crate::netns::NsThread;
use crate::runtime::runtime;

/// How long a stopped node may take before the test gives up on it.
const STOP_LIMIT: Duration = Duration::from_secs(5);
/// How long setting up a node (key, listener, runtime) may take.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A log buffer shared with a node's tracing subscriber.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How a node's session ended badly: the discoverer's error, as a chain would rank and print it.
#[derive(Debug)]
pub struct NodeError {
    /// How specific the failure is.
    pub kind: FailureKind,
    /// The error's message.
    pub message: String,
}

/// How a stopped node's session ended, and how long it took to end.
#[derive(Debug)]
pub struct Stopped {
    /// What `discover` returned.
    pub result: Result<(), NodeError>,
    /// From the stop signal until `discover` returned.
    pub took: Duration,
}

/// What the node's thread hands back once it is set up.
type Ready = Result<(Context, u16), LabError>;

/// One discovery session of a discoverer, on its own thread (and runtime) inside a host, with its debug log kept.
///
/// The session runs until [`stop`](Self::stop); dropping the node stops it too (waiting a few seconds at most).
pub struct Node {
    /// The node's key (fresh for each node).
    pub fingerprint: Fingerprint,
    /// The confirmation listener's port: the port peers see in its announcements.
    pub port: u16,
    ctx: Context,
    stop: CancellationToken,
    go: Option<mpsc::Sender<()>>,
    peers: mpsc::Receiver<(Peer, Duration)>,
    seen: RefCell<Vec<(Peer, Duration)>>,
    thread: Option<NsThread<Result<(), NodeError>>>,
    logs: Logs,
}

impl Node {
    /// [`prepare`](Self::prepare)s a node and starts its session at once.
    pub fn start(
        host: &Host,
        name: &str,
        toml: &str,
        discoverer: impl PeerDiscoverer,
    ) -> Result<Self, LabError> {
        let mut node = Self::prepare(host, name, toml, discoverer)?;
        node.go();
        Ok(node)
    }

    /// Sets up a device called `name` in `host`, with settings from `toml` (key, confirmation listener, runtime),
    /// then waits for [`go`](Self::go) before calling `discover`, so that two nodes can start their sessions at the
    /// same moment.
    ///
    /// Only `discover` runs inside the host: build `discoverer` without opening sockets, as a registry factory does.
    pub fn prepare(
        host: &Host,
        name: &str,
        toml: &str,
        discoverer: impl PeerDiscoverer,
    ) -> Result<Self, LabError> {
        let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (peer_tx, peer_rx) = mpsc::channel();
        let stop = CancellationToken::new();
        let logs = Logs::default();
        let thread = {
            let (stop, logs, name, toml) =
                (stop.clone(), logs.clone(), name.to_owned(), toml.to_owned());
            host.spawn(move || -> Result<(), NodeError> {
                let subscriber = tracing_subscriber::fmt()
                    .with_writer(move || logs.clone())
                    .with_ansi(false)
                    .with_max_level(tracing::Level::DEBUG)
                    .finish();
                let _log = tracing::subscriber::set_default(subscriber);
                runtime().block_on(async move {
                    let ctx = match device(&name, &toml) {
                        Ok((ctx, port)) => {
                            let _ = ready_tx.send(Ok((ctx.clone(), port)));
                            ctx
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return Ok(());
                        }
                    };
                    if go_rx.recv().is_err() {
                        return Ok(());
                    }
                    let (sink, mut sightings) = sink(stop);
                    let started = Instant::now();
                    let forward = async {
                        while let Some(peer) = sightings.recv().await {
                            let _ = peer_tx.send((peer, started.elapsed()));
                        }
                    };
                    let (result, ()) = tokio::join!(discoverer.discover(&ctx, sink), forward);
                    result.map_err(|e| NodeError {
                        kind: e.kind(),
                        message: e.to_string(),
                    })
                })
            })?
        };
        let (ctx, port) = match ready_rx.recv_timeout(START_LIMIT) {
            Ok(ready) => ready?,
            Err(_) => {
                return Err(LabError::Timeout(format!(
                    "node {name:?} in {} not set up within {START_LIMIT:?}",
                    host.name()
                )));
            }
        };
        Ok(Self {
            fingerprint: ctx.identity().fingerprint(),
            port,
            ctx,
            stop,
            go: Some(go_tx),
            peers: peer_rx,
            seen: RefCell::new(Vec::new()),
            thread: Some(thread),
            logs,
        })
    }

    /// Starts the session (see [`prepare`](Self::prepare)).
    pub fn go(&mut self) {
        if let Some(go) = self.go.take() {
            // A thread that is gone has its outcome waiting for `stop`.
            let _ = go.send(());
        }
    }

    /// Changes what the node announces, as a pairing host does.
    pub fn set_advert(&self, advert: Advert) {
        self.ctx.set_advert(advert);
    }

    fn drain(&self, wait: Duration) -> bool {
        match self.peers.recv_timeout(wait) {
            Ok(sighting) => {
                self.seen.borrow_mut().push(sighting);
                true
            }
            Err(_) => false,
        }
    }

    /// The first sighting matching `pred` (already received or arriving within `timeout`).
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&Peer) -> bool) -> Option<Peer> {
        self.wait_until_timed(timeout, pred).map(|(p, _)| p)
    }

    /// The first sighting matching `pred`, and when it came (since `discover` was called).
    pub fn wait_until_timed(
        &self,
        timeout: Duration,
        pred: impl Fn(&Peer) -> bool,
    ) -> Option<(Peer, Duration)> {
        let deadline = Instant::now() + timeout;
        loop {
            while self.drain(Duration::ZERO) {}
            if let Some(hit) = self.seen.borrow().iter().find(|(p, _)| pred(p)) {
                return Some(hit.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.drain(left.min(Duration::from_millis(50)));
        }
    }

    /// The first sighting of the device with this key, and when (since `discover` was called).
    pub fn wait_for(
        &self,
        fingerprint: Fingerprint,
        timeout: Duration,
    ) -> Option<(Peer, Duration)> {
        self.wait_until_timed(timeout, |p| p.fingerprint == fingerprint)
    }

    /// Every device sighted so far, once each.
    pub fn seen(&self) -> Vec<Fingerprint> {
        while self.drain(Duration::ZERO) {}
        let mut out: Vec<Fingerprint> = Vec::new();
        for (p, _) in self.seen.borrow().iter() {
            if !out.contains(&p.fingerprint) {
                out.push(p.fingerprint);
            }
        }
        out
    }

    /// The session's log so far (tracing, debug level and up, of the node's thread).
    pub fn logs(&self) -> String {
        self.logs.text()
    }

    /// Stops the session and returns how `discover` ended.
    ///
    /// # Panics
    ///
    /// When `discover` has not returned a few seconds after the stop (the panic shows the node's log).
    pub fn stop(self) -> Result<(), NodeError> {
        self.stop_timed().result
    }

    /// Stops the session; also measures how long `discover` took to return.
    ///
    /// # Panics
    ///
    /// Like [`stop`](Self::stop).
    pub fn stop_timed(mut self) -> Stopped {
        let started = Instant::now();
        self.stop.cancel();
        drop(self.go.take());
        let Some(thread) = self.thread.take() else {
            unreachable!("only stopping or dropping a node takes its thread");
        };
        while !thread.is_finished() {
            assert!(
                started.elapsed() < STOP_LIMIT,
                "node did not stop within {STOP_LIMIT:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let took = started.elapsed();
        Stopped {
            result: thread.join(),
            took,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.cancel();
        drop(self.go.take());
        if let Some(thread) = self.thread.take() {
            let started = Instant::now();
            while !thread.is_finished() && started.elapsed() < STOP_LIMIT {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.try_join();
            }
        }
    }
}
