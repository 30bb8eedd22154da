//! The accept loop every TLS listener shares (the confirmation listener here, the pairing and link
//! listeners of the pairing crate).
//!
//! A connection is *unauthenticated* until its handler says otherwise ([`Admission::authenticated`]):
//! until then it counts against the listener's limits and must finish within the handshake limit.
//! Every limit makes room by closing the *oldest* unauthenticated connection it covers, never by
//! refusing the newcomer, so that a flood delays a genuine peer by its own round trip at most and
//! never locks it out:
//!
//! - per address ([`Limits::per_source`]): a peer that floods closes only its own connections;
//! - per IPv6 /64 ([`Limits::per_ipv6_network`], half the table): one host may use any address of
//!   its /64, so this keeps one network from taking the whole table, while a LAN /64 shared with
//!   genuine peers (or the link-local fe80::/64 every host on a link shares) still leaves room;
//! - in total ([`Limits::total`]).
//!
//! A connection from this device to itself (self-confirmation) is never the one closed. Every
//! connection is aborted when the loop stops.

use std::collections::BTreeMap;
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
    /// Unauthenticated connections from one address at once; its oldest is closed to make room.
    pub per_source: usize,
    /// Unauthenticated connections from one IPv6 /64 at once (half of `total` unless set);
    /// its oldest is closed to make room.
    pub per_ipv6_network: usize,
    /// Time a connection has to authenticate (its TLS handshake and first messages).
    pub per_connection: Duration,
}

impl Limits {
    /// `total` unauthenticated connections at once, `per_source` from one address, half of
    /// `total` from one IPv6 /64, each with `per_connection` to authenticate.
    pub fn new(total: usize, per_source: usize, per_connection: Duration) -> Self {
        Self {
            total,
            per_source,
            per_ipv6_network: (total / 2).max(per_source),
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

/// The IPv6 /64 an address belongs to (`None` for IPv4 and IPv4-mapped addresses): a single
/// host may use any address of its /64.
pub fn ipv6_network(ip: IpAddr) -> Option<Ipv6Addr> {
    match ip.to_canonical() {
        IpAddr::V6(v6) => Some(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        IpAddr::V4(_) => None,
    }
}

#[derive(Default)]
struct Table {
    /// Unauthenticated connections by arrival order (the smallest id is the oldest).
    pending: BTreeMap<u64, Pending>,
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
        self.pending.remove(&id);
    }

    /// Closes the oldest closable connection among those `covered` if they number `limit` or
    /// more. The table holds at most `total` entries, so the scan is bounded by it.
    fn make_room(&mut self, limit: usize, covered: impl Fn(&Pending) -> bool) -> bool {
        let mut count = 0;
        let mut oldest = None;
        for (&id, pending) in &self.pending {
            if covered(pending) {
                count += 1;
                if oldest.is_none() && !pending.own {
                    oldest = Some(id);
                }
            }
        }
        let Some(oldest) = oldest.filter(|_| count >= limit.max(1)) else {
            return false;
        };
        if let Some(abort) = self.pending.get(&oldest).and_then(|p| p.abort.clone()) {
            abort.abort();
        }
        self.remove(oldest);
        true
    }

    /// Makes room for a connection from `source` under every limit.
    fn admit(&mut self, source: IpAddr, limits: &Limits, name: &'static str) {
        if self.make_room(limits.per_source, |p| p.source == source) {
            tracing::debug!(listener = name, %source, "closed this address's oldest unauthenticated connection");
        }
        if let Some(network) = ipv6_network(source)
            && self.make_room(limits.per_ipv6_network, |p| {
                ipv6_network(p.source) == Some(network)
            })
        {
            tracing::debug!(listener = name, %network, "closed this /64's oldest unauthenticated connection");
        }
        if self.make_room(limits.total, |_| true) {
            tracing::debug!(
                listener = name,
                "full: closed the oldest unauthenticated connection"
            );
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
                let source = remote.ip();
                {
                    let mut t = lock(&table);
                    t.admit(source, &limits, name);
                    next_id += 1;
                    let own = tcp
                        .local_addr()
                        .is_ok_and(|local| local.ip().to_canonical() == remote.ip());
                    t.pending.insert(next_id, Pending { source, own, abort: None });
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

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn ipv6_addresses_are_grouped_by_slash_64() {
        let a = ipv6_network(ip("2001:db8:1:2:aaaa::1"));
        assert_eq!(a, ipv6_network(ip("2001:db8:1:2:bbbb::9")));
        assert_ne!(a, ipv6_network(ip("2001:db8:1:3::1")));
        assert_eq!(ipv6_network(ip("::ffff:10.0.0.7")), None);
        assert_eq!(ipv6_network(ip("10.0.0.7")), None);
    }

    /// Fills a table through [`Table::admit`] and returns the sources left in it.
    fn admit_all(limits: Limits, sources: &[IpAddr]) -> Vec<IpAddr> {
        let mut table = Table::default();
        for (id, &source) in (0u64..).zip(sources) {
            table.admit(source, &limits, "test");
            let pending = Pending {
                source,
                own: false,
                abort: None,
            };
            table.pending.insert(id, pending);
        }
        table.pending.values().map(|p| p.source).collect()
    }

    #[test]
    fn a_flooding_address_closes_only_its_own_connections() {
        let limits = Limits::new(8, 2, Duration::from_secs(1));
        let genuine = ip("10.0.0.2");
        let flood = ip("10.0.0.66");
        let mut sources = vec![genuine];
        sources.extend([flood; 20]);
        let left = admit_all(limits, &sources);
        assert_eq!(left, vec![genuine, flood, flood]);
    }

    #[test]
    fn one_ipv6_network_never_takes_more_than_half_the_table() {
        let limits = Limits::new(8, 2, Duration::from_secs(1));
        // A genuine peer on the same link-local /64 as the flooder, and one from elsewhere.
        let neighbour = ip("fe80::2");
        let elsewhere = ip("10.0.0.2");
        let mut sources = vec![neighbour, elsewhere];
        sources.extend((0..40u16).map(|i| IpAddr::from([0xfe80, 0, 0, 0, 0, 0, 1, i])));
        let left = admit_all(limits, &sources);
        assert_eq!(left.len(), 5, "{left:?}");
        assert_eq!(left[0], elsewhere, "{left:?}");
        // The flood closed the neighbour, but a newcomer from the /64 finds room all the same.
        let mut with_newcomer = sources.clone();
        with_newcomer.push(neighbour);
        let left = admit_all(limits, &with_newcomer);
        assert_eq!(left.last(), Some(&neighbour));
        assert!(left.contains(&elsewhere));
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
