//! The confirmation listener: a TLS listener on a stable port (TCP 19538 unless taken or
//! configured otherwise) that proves which of our
//! addresses work.
//!
//! *Self-confirmation*: [`Confirmer::confirm`] connects to one of our own addresses, sends a random
//! code, and succeeds when that code arrives at the listener through exactly that local address.
//! This proves the address is ours and the listener answers there; it goes through loopback, so it
//! does not prove a peer can reach it ([`Confirmation::Local`](crate::Confirmation::Local)).
//!
//! *Peer observation*: a peer that heard our announcement tells the listener "I see you at ip"
//! ([`report_observation`]); the report is a hint, believed only from a key a discoverer heard
//! announcing from the report's source address ([`Confirmer::heard`]) and kept in a small list
//! bounded per reporter, which the `peer-observed` resolver self-confirms before using.

mod observed;
pub(crate) mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::config::ConfirmConfig;
use crate::error::Error;
use crate::frame::{MAX_FRAME, read_frame, write_frame};
use crate::identity::{Fingerprint, Identity};
use crate::serve::{Limits, accept_loop};
use crate::tls;
pub use wire::ScopedIp;
use wire::{CODE_LEN, Message, Status};

/// Most probes in flight at once; more is a caller bug or abuse.
const MAX_PENDING: usize = 256;
/// The confirmation listener's port unless configured otherwise: like the udp-multicast port
/// (19536) and the pairing ports beside it (19537, 19539), not a well-known port and below every
/// OS's ephemeral range (Linux 32768-60999, IANA/Windows/macOS 49152-65535), so no outgoing
/// connection holds it.
pub const DEFAULT_PORT: u16 = 19538;
pub use observed::{
    MAX_HEARD_KEYS, MAX_HEARD_SOURCES, MAX_OBSERVATIONS, MAX_PER_REPORTER, MAX_UNHEARD, Observation,
};

struct Arrival {
    target: ScopedIp,
    local: IpAddr,
}

type Pending = Arc<Mutex<HashMap<[u8; CODE_LEN], oneshot::Sender<Arrival>>>>;
type Book = Arc<Mutex<observed::Book>>;

/// A handle to the running listener; cheap to clone. The listener stops when the last handle is
/// dropped (or on [`Confirmer::shutdown`]), closing every connection it serves.
#[derive(Clone)]
pub struct Confirmer {
    shared: Arc<Shared>,
}

struct Shared {
    identity: Arc<Identity>,
    local_addr: SocketAddr,
    pending: Pending,
    observations: watch::Receiver<Vec<Observation>>,
    book: Book,
    client: Arc<rustls::ClientConfig>,
    config: ConfirmConfig,
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
}

impl std::fmt::Debug for Confirmer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirmer")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl Confirmer {
    /// Binds the listener on every address, on `config.port` when it is free (else on one the
    /// OS picks, with a warning), and starts serving.
    pub fn start(identity: Arc<Identity>, config: ConfirmConfig) -> Result<Self, Error> {
        let bound = crate::bind::listen("confirmation", &[], config.port)?;
        let local_addr = bound
            .listeners
            .first()
            .and_then(|l| l.local_addr().ok())
            .ok_or_else(|| Error::io("listener address", std::io::ErrorKind::NotFound.into()))?;
        let server = tls::server_config(&identity, None, tls::ALPN_CONFIRM)?;
        let client = tls::client_config(&identity, identity.fingerprint(), tls::ALPN_CONFIRM)?;
        let pending: Pending = Arc::default();
        let (observed_tx, observed_rx) = watch::channel(Vec::new());
        let stop = CancellationToken::new();
        let book = Book::default();
        let serve = Arc::new(Serve {
            acceptor: TlsAcceptor::from(server),
            pending: Arc::clone(&pending),
            observed: observed_tx,
            book: Arc::clone(&book),
        });
        let limits = Limits::new(
            config.max_connections,
            config.max_per_source,
            Duration::from_millis(config.handshake_timeout_ms),
        );
        tokio::spawn(accept_loop(
            bound.listeners,
            limits,
            stop.clone(),
            "confirmation",
            // Confirmation connections are one request and one reply: they never leave the limits.
            move |tcp, remote, _admission| {
                let serve = Arc::clone(&serve);
                async move { serve.serve(tcp, remote).await }
            },
        ));
        tracing::debug!(%local_addr, "confirmation listener started");
        Ok(Self {
            shared: Arc::new(Shared {
                identity,
                local_addr,
                pending,
                observations: observed_rx,
                book,
                client,
                config,
                _stop_on_drop: stop.clone().drop_guard(),
                stop,
            }),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.shared.local_addr.port()
    }

    /// The bound address (the unspecified address and the port).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(&self) {
        self.shared.stop.cancel();
    }

    /// Proves `ip` is ours: connects to it with a random code and waits for the code to arrive
    /// through that same local address. `scope` is the interface index for IPv6 link-local.
    pub async fn confirm(&self, ip: IpAddr, scope: u32) -> Result<(), Error> {
        let code = crate::identity::random_bytes::<CODE_LEN>()?;
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if pending.len() >= MAX_PENDING {
                return Err(Error::NotConfirmed {
                    ip,
                    reason: "too many confirmations in flight".to_owned(),
                });
            }
            pending.insert(code, tx);
        }
        let _forget = ForgetCode {
            pending: &self.shared.pending,
            code,
        };
        let limit = Duration::from_millis(self.shared.config.confirm_timeout_ms);
        let target = ScopedIp { ip, scope };
        let exchange = async {
            let reply = exchange(
                &self.shared.client,
                socket_addr(target, self.port()),
                &Message::Probe { code, target },
            )
            .await?;
            if reply != Message::Reply(Status::Accepted) {
                return Err(Error::NotConfirmed {
                    ip,
                    reason: "the listener at this address did not know our code (another device holds this address?)".to_owned(),
                });
            }
            rx.await.map_err(|_| Error::ListenerClosed)
        };
        let arrival =
            tokio::time::timeout(limit, exchange)
                .await
                .map_err(|_| Error::Timeout {
                    what: format!("self-confirmation of {ip}"),
                    after: limit,
                })??;
        if arrival.local != ip || arrival.target.ip != ip {
            return Err(Error::NotConfirmed {
                ip,
                reason: format!("the code arrived through {} instead", arrival.local),
            });
        }
        Ok(())
    }

    /// Peer observations received so far (newest last), and a receiver to wait for more.
    pub fn observations(&self) -> watch::Receiver<Vec<Observation>> {
        self.shared.observations.clone()
    }

    /// Tells the listener that `key` was heard announcing from `from`: from then on it believes
    /// observations that `key` reports from that address (and no others). Discoverers call it
    /// for every announcement they accept.
    pub fn heard(&self, key: Fingerprint, from: IpAddr) {
        self.shared
            .book
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .heard(key, from);
    }

    /// The last reports refused because nobody heard their key announcing from their address
    /// (at most [`MAX_UNHEARD`], one per key, newest last). Unverified claims: diagnostics show
    /// them as "this device says it hears us", nothing acts on them.
    pub fn unheard_reports(&self) -> Vec<Observation> {
        self.shared
            .book
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unheard()
    }

    /// This device's identity.
    pub fn identity(&self) -> &Arc<Identity> {
        &self.shared.identity
    }
}

struct ForgetCode<'a> {
    pending: &'a Pending,
    code: [u8; CODE_LEN],
}

impl Drop for ForgetCode<'_> {
    fn drop(&mut self) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.code);
    }
}

fn socket_addr(ip: ScopedIp, port: u16) -> SocketAddr {
    match ip.ip {
        IpAddr::V4(v4) => SocketAddr::from((v4, port)),
        IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, ip.scope)),
    }
}

/// Tells a peer's confirmation listener where we saw it. `peer_key` is pinned, so the report goes
/// only to the device that announced that key.
pub async fn report_observation(
    identity: &Identity,
    listener: SocketAddr,
    peer_key: Fingerprint,
    seen_at: ScopedIp,
    limit: Duration,
) -> Result<(), Error> {
    let client = tls::client_config(identity, peer_key, tls::ALPN_CONFIRM)?;
    let reply = tokio::time::timeout(
        limit,
        exchange(&client, listener, &Message::Observed { ip: seen_at }),
    )
    .await
    .map_err(|_| Error::Timeout {
        what: format!("observation report to {listener}"),
        after: limit,
    })??;
    match reply {
        Message::Reply(Status::Accepted) => Ok(()),
        _ => Err(Error::MalformedFrame {
            reason: "observation was not accepted",
        }),
    }
}

/// Checks that a peer's confirmation listener answers at `addr` with the key `peer_key`: a TCP
/// connection and a TLS handshake pinned to that key, then a clean close (nothing is asked of
/// the listener). Returns the time the handshake took.
///
/// Succeeding proves that this device can open a connection to the peer at that address, which
/// is what pairing needs; a [`Error::KeyMismatch`] means another device holds the address.
pub async fn reach(
    identity: &Identity,
    addr: SocketAddr,
    peer_key: Fingerprint,
    limit: Duration,
) -> Result<Duration, Error> {
    let client = tls::client_config(identity, peer_key, tls::ALPN_CONFIRM)?;
    let started = Instant::now();
    let handshake = async {
        tls::probe(client, addr).await?;
        Ok::<_, Error>(started.elapsed())
    };
    tokio::time::timeout(limit, handshake)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("TLS handshake with {addr}"),
            after: limit,
        })?
}

async fn exchange(
    client: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    message: &Message,
) -> Result<Message, Error> {
    let mut stream = tls::connect(Arc::clone(client), addr).await?;
    write_frame(&mut stream, &wire::encode(message)).await?;
    let reply = read_frame(&mut stream, MAX_FRAME).await?;
    wire::parse(&reply)
}

struct Serve {
    acceptor: TlsAcceptor,
    pending: Pending,
    observed: watch::Sender<Vec<Observation>>,
    book: Book,
}

impl Serve {
    async fn serve(&self, tcp: TcpStream, remote: SocketAddr) -> Result<(), Error> {
        let local = tcp
            .local_addr()
            .map_err(|e| Error::io("local address", e))?
            .ip()
            .to_canonical();
        let mut stream = self
            .acceptor
            .accept(tcp)
            .await
            .map_err(|e| tls::handshake_error(e, remote))?;
        let reporter = tls::peer_fingerprint(stream.get_ref().1);
        let request = wire::parse(&read_frame(&mut stream, MAX_FRAME).await?)?;
        let status = match request {
            Message::Probe { code, target } => self.arrived(code, target, local),
            Message::Observed { ip } => match reporter {
                Some(reporter) => self.observed(Observation {
                    ip,
                    reporter,
                    reporter_addr: SocketAddr::new(remote.ip().to_canonical(), remote.port()),
                    at: Instant::now(),
                }),
                None => Status::Refused,
            },
            Message::Reply(_) => Status::Refused,
        };
        write_frame(&mut stream, &wire::encode(&Message::Reply(status))).await?;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
        Ok(())
    }

    fn arrived(&self, code: [u8; CODE_LEN], target: ScopedIp, local: IpAddr) -> Status {
        let waiter = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&code);
        match waiter {
            Some(waiter) => {
                let _ = waiter.send(Arrival { target, local });
                Status::Accepted
            }
            None => Status::UnknownCode,
        }
    }

    fn observed(&self, observation: Observation) -> Status {
        if !crate::interfaces::is_private(observation.ip.ip) {
            return Status::Refused;
        }
        {
            let mut book = self.book.lock().unwrap_or_else(PoisonError::into_inner);
            if !book.was_heard(&observation.reporter, observation.reporter_addr.ip()) {
                tracing::debug!(ip = %observation.ip.ip, reporter = %observation.reporter.short(), from = %observation.reporter_addr, "refused an observation from a key not heard announcing from there");
                book.refused(observation);
                return Status::Refused;
            }
        }
        tracing::debug!(ip = %observation.ip.ip, reporter = %observation.reporter.short(), "peer observed us");
        self.observed
            .send_modify(|list| observed::admit(list, observation));
        Status::Accepted
    }
}

#[cfg(test)]
mod tests;
