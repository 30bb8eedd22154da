//! The accept loop every TLS listener shares (the confirmation listener here, the pairing
//! listener of the pairing crate): connections bounded in total and per source address, a time
//! limit on each, and every connection aborted when the loop stops.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// Bounds on what a listener serves at once.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Limits {
    /// Connections served at once; more are closed at accept.
    pub total: usize,
    /// Connections from one source address at once.
    pub per_source: usize,
    /// Limit for one connection, handshake included.
    pub per_connection: Duration,
}

impl Limits {
    /// `total` connections at once, `per_source` from one address, each for `per_connection`.
    pub fn new(total: usize, per_source: usize, per_connection: Duration) -> Self {
        Self {
            total,
            per_source,
            per_connection,
        }
    }
}

/// What the accept loop needs to know of a connection's failure, to log it right.
pub trait Served: std::fmt::Display + Send + 'static {
    /// The peer closed right after the TLS handshake, before its first frame: a reachability or
    /// key probe, not a failure.
    fn closed_after_handshake(&self) -> bool;
}

impl Served for Error {
    fn closed_after_handshake(&self) -> bool {
        matches!(self, Error::Io { op, source }
            if op == "read frame header" && source.kind() == std::io::ErrorKind::UnexpectedEof)
    }
}

type SourceCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Holds one of a source address's slots; gives it back on drop.
struct SourceSlot {
    counts: SourceCounts,
    source: IpAddr,
}

impl SourceSlot {
    fn take(counts: &SourceCounts, source: IpAddr, cap: usize) -> Option<Self> {
        let mut map = counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = map.entry(source).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Self {
            counts: Arc::clone(counts),
            source,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = map.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&self.source);
            }
        }
    }
}

/// The next connection on any of `listeners`.
async fn accept_any(listeners: &[TcpListener]) -> std::io::Result<(TcpStream, SocketAddr)> {
    std::future::poll_fn(|cx| {
        for listener in listeners {
            if let std::task::Poll::Ready(accepted) = listener.poll_accept(cx) {
                return std::task::Poll::Ready(accepted);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Accepts on every listener until `stop`, serving each connection with `handle` (remote
/// addresses canonical: no IPv4-mapped IPv6). The limits hold across all listeners. `name`
/// labels the log lines.
pub async fn accept_loop<H, F, E>(
    listeners: Vec<TcpListener>,
    limits: Limits,
    stop: CancellationToken,
    name: &'static str,
    handle: H,
) where
    H: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: Served,
{
    let slots = Arc::new(Semaphore::new(limits.total.max(1)));
    let per_source: SourceCounts = Arc::default();
    // Dropped when the loop ends: every connection still open is aborted with it.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = accept_any(&listeners) => {
                let (tcp, remote) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::debug!(listener = name, %error, "accept failed");
                        continue;
                    }
                };
                let remote = SocketAddr::new(remote.ip().to_canonical(), remote.port());
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::info!(listener = name, %remote, "too many connections at once; dropped");
                    continue;
                };
                let Some(source_slot) = SourceSlot::take(&per_source, remote.ip(), limits.per_source) else {
                    tracing::info!(listener = name, %remote, "too many connections from this address; dropped");
                    continue;
                };
                let served = handle(tcp, remote);
                connections.spawn(async move {
                    let outcome = tokio::time::timeout(limits.per_connection, served).await;
                    drop((slot, source_slot));
                    match outcome {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) if error.closed_after_handshake() => {
                            tracing::debug!(listener = name, %remote, "closed after the handshake (a probe)");
                        }
                        Ok(Err(error)) => tracing::info!(listener = name, %remote, %error, "connection failed"),
                        Err(_) => tracing::info!(listener = name, %remote, "connection timed out"),
                    }
                });
            }
        }
    }
    tracing::debug!(listener = name, "stopped");
}
