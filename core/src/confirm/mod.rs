//! The confirmation listener: a TLS listener on an OS-chosen port that proves which of our
//! addresses work.
//!
//! *Self-confirmation*: [`Confirmer::confirm`] connects to one of our own addresses, sends a random
//! code, and succeeds when that code arrives at the listener through exactly that local address.
//! This proves the address is ours and the listener answers there; it goes through loopback, so it
//! does not prove a peer can reach it ([`Confirmation::Local`](crate::Confirmation::Local)).
//!
//! *Peer observation*: a peer that heard our announcement tells the listener "I see you at ip"
//! ([`report_observation`]); the report is a hint, kept in a small bounded list, which the
//! `peer-observed` resolver self-confirms before using.

pub(crate) mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
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
/// Most peer observations kept.
const MAX_OBSERVATIONS: usize = 32;

/// A peer's report of where it saw us. The scope in `ip` is the reporter's view and means nothing
/// here: resolve it against our own interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Observation {
    /// The address the peer saw our packets come from.
    pub ip: ScopedIp,
    /// The reporting peer's key.
    pub reporter: Fingerprint,
    /// Where the report came from.
    pub reporter_addr: SocketAddr,
    /// When it arrived.
    pub at: Instant,
}

impl Observation {
    /// An observation (for tests and for strategies that learn of one some other way).
    pub fn new(
        ip: ScopedIp,
        reporter: Fingerprint,
        reporter_addr: SocketAddr,
        at: Instant,
    ) -> Self {
        Self {
            ip,
            reporter,
            reporter_addr,
            at,
        }
    }
}

struct Arrival {
    target: ScopedIp,
    local: IpAddr,
}

type Pending = Arc<Mutex<HashMap<[u8; CODE_LEN], oneshot::Sender<Arrival>>>>;

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

fn bind_dual_stack() -> Result<std::net::TcpListener, Error> {
    use socket2::{Domain, Protocol, Socket, Type};
    let v6 = || -> std::io::Result<Socket> {
        let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
        // IPV6_V6ONLY off: one socket takes IPv4 (as mapped addresses) and IPv6.
        socket.set_only_v6(false)?;
        socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)).into())?;
        Ok(socket)
    };
    let v4 = || -> std::io::Result<Socket> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())?;
        Ok(socket)
    };
    let socket = v6()
        .or_else(|_| v4())
        .map_err(|e| Error::io("bind confirmation listener", e))?;
    socket
        .listen(128)
        .and_then(|()| socket.set_nonblocking(true))
        .map_err(|e| Error::io("listen", e))?;
    Ok(socket.into())
}

impl Confirmer {
    /// Binds the listener on every address (port chosen by the OS) and starts serving.
    pub fn start(identity: Arc<Identity>, config: ConfirmConfig) -> Result<Self, Error> {
        let listener = TcpListener::from_std(bind_dual_stack()?)
            .map_err(|e| Error::io("register listener", e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("listener address", e))?;
        let server = tls::server_config(&identity, None, tls::ALPN_CONFIRM)?;
        let client = tls::client_config(&identity, identity.fingerprint(), tls::ALPN_CONFIRM)?;
        let pending: Pending = Arc::default();
        let (observed_tx, observed_rx) = watch::channel(Vec::new());
        let stop = CancellationToken::new();
        let serve = Arc::new(Serve {
            acceptor: TlsAcceptor::from(server),
            pending: Arc::clone(&pending),
            observed: observed_tx,
        });
        let limits = Limits::new(
            config.max_connections,
            // A quarter of the slots per address: one chatty peer cannot starve the others.
            (config.max_connections / 4).max(4),
            Duration::from_millis(config.handshake_timeout_ms),
        );
        tokio::spawn(accept_loop(
            vec![listener],
            limits,
            stop.clone(),
            "confirmation",
            move |tcp, remote| {
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
                client,
                config,
                _stop_on_drop: stop.clone().drop_guard(),
                stop,
            }),
        })
    }

    /// The port the OS gave the listener.
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
        tracing::debug!(ip = %observation.ip.ip, reporter = %observation.reporter.short(), "peer observed us");
        self.observed.send_modify(|list| {
            list.retain(|o| o.ip != observation.ip);
            if list.len() >= MAX_OBSERVATIONS {
                list.remove(0);
            }
            list.push(observation);
        });
        Status::Accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confirmer() -> Confirmer {
        let identity = Arc::new(Identity::ephemeral("test").unwrap());
        Confirmer::start(identity, ConfirmConfig::default()).unwrap()
    }

    #[tokio::test]
    async fn loopback_confirms() {
        let c = confirmer();
        c.confirm(IpAddr::from([127, 0, 0, 1]), 0).await.unwrap();
        c.confirm(IpAddr::from(Ipv6Addr::LOCALHOST), 0)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn any_loopback_address_confirms_as_itself() {
        let c = confirmer();
        // 127.0.0.2 is ours too on Linux; the code must arrive through exactly that address.
        c.confirm(IpAddr::from([127, 0, 0, 2]), 0).await.unwrap();
    }

    #[tokio::test]
    async fn another_devices_listener_does_not_confirm() {
        let mine = confirmer();
        let theirs = confirmer();
        // Aim our probe at the other listener's port: the pin rejects its key.
        let probe = exchange(
            &mine.shared.client,
            SocketAddr::from(([127, 0, 0, 1], theirs.port())),
            &Message::Probe {
                code: [0; CODE_LEN],
                target: ScopedIp {
                    ip: IpAddr::from([127, 0, 0, 1]),
                    scope: 0,
                },
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(&probe, Error::KeyMismatch { .. }), "{probe}");
    }

    #[tokio::test]
    async fn observations_are_recorded_and_pinned() {
        let target = confirmer();
        let reporter = Identity::ephemeral("peer").unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], target.port()));
        let seen = ScopedIp {
            ip: IpAddr::from([10, 1, 2, 3]),
            scope: 0,
        };
        report_observation(
            &reporter,
            addr,
            target.identity().fingerprint(),
            seen,
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        let list = target.observations().borrow().clone();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].ip, seen);
        assert_eq!(list[0].reporter, reporter.fingerprint());

        // A public address is refused: observations only ever name LAN addresses.
        let public = ScopedIp {
            ip: IpAddr::from([8, 8, 8, 8]),
            scope: 0,
        };
        assert!(
            report_observation(
                &reporter,
                addr,
                target.identity().fingerprint(),
                public,
                Duration::from_secs(2)
            )
            .await
            .is_err()
        );

        // Reporting to the wrong key fails the pin.
        let other = Identity::ephemeral("x").unwrap().fingerprint();
        assert!(
            report_observation(&reporter, addr, other, seen, Duration::from_secs(2))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn reach_pins_the_peer_key() {
        let peer = confirmer();
        let me = Identity::ephemeral("me").unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], peer.port()));
        let limit = Duration::from_secs(2);
        let took = reach(&me, addr, peer.identity().fingerprint(), limit)
            .await
            .unwrap();
        assert!(took < limit);
        let other = Identity::ephemeral("other").unwrap().fingerprint();
        let err = reach(&me, addr, other, limit).await.unwrap_err();
        assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
        // The listener keeps serving after a handshake that asked nothing.
        peer.confirm(IpAddr::from([127, 0, 0, 1]), 0).await.unwrap();
        peer.shutdown();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = reach(&me, addr, peer.identity().fingerprint(), limit)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }

    #[tokio::test]
    async fn oversized_and_garbage_input_is_dropped() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let c = confirmer();
        let addr = SocketAddr::from(([127, 0, 0, 1], c.port()));
        // Not TLS at all: the listener closes the connection and keeps serving.
        let mut raw = TcpStream::connect(addr).await.unwrap();
        raw.write_all(&[0xff; 4096]).await.unwrap();
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), raw.read_to_end(&mut sink)).await;
        c.confirm(IpAddr::from([127, 0, 0, 1]), 0).await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_closes_the_port() {
        let c = confirmer();
        let addr = SocketAddr::from(([127, 0, 0, 1], c.port()));
        c.shutdown();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
