//! The accept loop every TLS listener shares (the confirmation listener here, the pairing and link
//! listeners of the pairing crate).
//!
//! A connection is *unauthenticated* until its handler says otherwise ([`Admission::authenticated`]):
//! until then it counts against the listener's limits and must finish within the handshake limit.
//! Unauthenticated connections are bounded per source (an IPv4 address, or an IPv6 /64, since one
//! host owns a whole /64) and in total; when the total is reached the *oldest* unauthenticated
//! connection is closed to make room, so that a flood of idle connections can delay a genuine peer
//! by its own round trip at most, never lock it out; a connection from this device to itself
//! (self-confirmation) is never the one closed. Every connection is aborted when the loop stops.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// Bounds on what a listener serves before its peers authenticate.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Limits {
    /// Unauthenticated connections at once; the oldest is closed to make room for a new one.
    pub total: usize,
    /// Unauthenticated connections from one source (address, or IPv6 /64) at once; more are
    /// closed at accept.
    pub per_source: usize,
    /// Time a connection has to authenticate (its TLS handshake and first messages).
    pub per_connection: Duration,
}

impl Limits {
    /// `total` unauthenticated connections at once, `per_source` from one source, each with
    /// `per_connection` to authenticate.
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

/// The unit limits are counted in: an IPv4 address, or the /64 of an IPv6 address (a single host
/// may use any address of its /64, so counting addresses would give it 2^64 slots).
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

#[derive(Default)]
struct Table {
    /// Unauthenticated connections by arrival order (the smallest id is the oldest).
    pending: BTreeMap<u64, Pending>,
    by_source: HashMap<IpAddr, usize>,
}

struct Pending {
    source: IpAddr,
    /// A connection from this device to itself (a self-confirmation) is never closed to make
    /// room: nobody else can open one, since the TCP handshake needs our own address.
    own: bool,
    abort: Option<AbortHandle>,
}

type Shared = Arc<Mutex<Table>>;

fn lock(table: &Shared) -> std::sync::MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Table {
    fn remove(&mut self, id: u64) {
        if let Some(entry) = self.pending.remove(&id)
            && let Some(count) = self.by_source.get_mut(&entry.source)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.by_source.remove(&entry.source);
            }
        }
    }
}

/// A connection's standing with the listener, given to its handler.
#[derive(Debug, Clone)]
pub struct Admission {
    id: u64,
    table: Shared,
    authenticated: Arc<AtomicBool>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// The peer proved who it is: the connection leaves the limits, can no longer be closed to
    /// make room, and may outlast the handshake limit.
    pub fn authenticated(&self) {
        self.authenticated.store(true, Ordering::Release);
        lock(&self.table).remove(self.id);
    }
}

/// Removes a connection from the table when its task ends, however it ends.
struct Leave {
    id: u64,
    table: Shared,
}

impl Drop for Leave {
    fn drop(&mut self) {
        lock(&self.table).remove(self.id);
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
/// addresses canonical: no IPv4-mapped IPv6), under `limits` until the handler calls
/// [`Admission::authenticated`]. `name` labels the log lines.
pub async fn accept_loop<H, F, E>(
    listeners: Vec<TcpListener>,
    limits: Limits,
    stop: CancellationToken,
    name: &'static str,
    handle: H,
) where
    H: Fn(TcpStream, SocketAddr, Admission) -> F + Send + Sync + 'static,
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: Served,
{
    let table: Shared = Arc::default();
    let mut next_id: u64 = 0;
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
                let source = source_key(remote.ip());
                {
                    let mut t = lock(&table);
                    if t.by_source.get(&source).copied().unwrap_or(0) >= limits.per_source.max(1) {
                        tracing::debug!(listener = name, %remote, "too many connections from this source; dropped");
                        continue;
                    }
                    if t.pending.len() >= limits.total.max(1)
                        && let Some((&oldest, _)) = t.pending.iter().find(|(_, p)| !p.own)
                    {
                        // Make room: the oldest connection has had the longest to authenticate.
                        if let Some(abort) = t.pending.get(&oldest).and_then(|p| p.abort.clone()) {
                            abort.abort();
                        }
                        t.remove(oldest);
                        tracing::debug!(listener = name, "full: closed the oldest unauthenticated connection");
                    }
                    next_id += 1;
                    let own = tcp
                        .local_addr()
                        .is_ok_and(|local| local.ip().to_canonical() == remote.ip());
                    t.pending.insert(next_id, Pending { source, own, abort: None });
                    *t.by_source.entry(source).or_insert(0) += 1;
                }
                let id = next_id;
                let authenticated = Arc::new(AtomicBool::new(false));
                let admission = Admission {
                    id,
                    table: Arc::clone(&table),
                    authenticated: Arc::clone(&authenticated),
                };
                let leave = Leave { id, table: Arc::clone(&table) };
                let served = handle(tcp, remote, admission);
                let limit = limits.per_connection;
                let abort = connections.spawn(async move {
                    let _leave = leave;
                    tokio::pin!(served);
                    let outcome = tokio::select! {
                        outcome = &mut served => Some(outcome),
                        () = tokio::time::sleep(limit) => None,
                    };
                    // A peer that authenticated in time may take as long as it needs after.
                    let outcome = match outcome {
                        None if authenticated.load(Ordering::Acquire) => Some(served.await),
                        other => other,
                    };
                    match outcome {
                        Some(Ok(())) => {}
                        Some(Err(error)) if error.closed_after_handshake() => {
                            tracing::debug!(listener = name, %remote, "closed after the handshake (a probe)");
                        }
                        Some(Err(error)) => tracing::info!(listener = name, %remote, %error, "connection failed"),
                        None => tracing::info!(listener = name, %remote, "did not authenticate in time; closed"),
                    }
                });
                if let Some(entry) = lock(&table).pending.get_mut(&id) {
                    entry.abort = Some(abort);
                }
            }
        }
    }
    tracing::debug!(listener = name, "stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_addresses_and_ipv6_slash_64s() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:bbbb::9"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(source_key(mapped), IpAddr::from([10, 0, 0, 7]));
        assert_ne!(
            source_key(IpAddr::from([10, 0, 0, 7])),
            source_key(IpAddr::from([10, 0, 0, 8]))
        );
    }

    /// A flood of idle connections from many sources fills the table; a genuine client that
    /// arrives last still gets served, because the oldest idle ones make room.
    #[tokio::test]
    async fn the_oldest_idle_connection_makes_room() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(
            vec![listener],
            Limits::new(4, 64, Duration::from_secs(30)),
            stop.clone(),
            "test",
            |mut tcp: TcpStream, _, admission: Admission| async move {
                let mut byte = [0u8; 1];
                tcp.read_exact(&mut byte)
                    .await
                    .map_err(|e| Error::io("read frame header", e))?;
                admission.authenticated();
                tcp.write_all(&byte)
                    .await
                    .map_err(|e| Error::io("write", e))?;
                Ok::<(), Error>(())
            },
        ));
        // From other loopback addresses than the listener's: not this device talking to itself.
        let from = |last: u8| async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
            socket
                .bind(SocketAddr::from(([127, 0, 0, last], 0)))
                .unwrap_or_else(|e| panic!("{e}"));
            socket.connect(addr).await.unwrap_or_else(|e| panic!("{e}"))
        };
        // Eight idle connections on a listener that keeps four.
        let mut idle = Vec::new();
        for _ in 0..8 {
            idle.push(from(2).await);
        }
        let mut genuine = from(3).await;
        genuine
            .write_all(b"x")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut back = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(5), genuine.read_exact(&mut back))
            .await
            .unwrap_or_else(|_| panic!("the genuine client was locked out"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&back, b"x");
        // The first idle ones were closed to make room.
        let mut closed = 0;
        for mut conn in idle {
            let mut buf = [0u8; 1];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(200), conn.read(&mut buf)).await
            {
                closed += 1;
            }
        }
        assert!(closed >= 4, "{closed} idle connections closed");
        stop.cancel();
    }
}
