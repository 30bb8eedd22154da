//! Links: the open, pinned TLS stream between two paired devices, and the listener that accepts
//! the devices this one knows (ALPN `localpair-link/1`).
//!
//! Both sides check the other's key: the dialling device pins the key it saved when pairing; the
//! listening one accepts the handshake from any key, then looks the key up in its trust store and
//! answers with its name, or with a refusal saying it does not know the dialling device (and logs
//! the stranger). Nothing but the two names crosses before the application's bytes.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use localpair_core::identity::Identity;
use localpair_core::serve::{Admission, Limits, accept_loop};
use localpair_core::{Fingerprint, tls};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsStream};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::trust::TrustStore;
use crate::wire::{Message, Refusal};
use crate::{Error, PairedPeer, read_message, send};

/// ALPN of the link listener.
pub const ALPN: &[u8] = b"localpair-link/1";
/// The link listener's port unless configured otherwise (TCP; beside the pairing port 19537
/// and the confirmation port 19538).
pub const DEFAULT_PORT: u16 = 19539;
/// The file in the state directory that keeps the link port when `[pairing] link_port = 0`, so
/// peers (and a subnet scan) find the listener where it was.
pub const PORT_FILE: &str = "link-port";
/// Connections that have not yet said who they are, at once; when full, the oldest is closed.
pub const MAX_UNAUTHENTICATED: usize = 64;
/// The same, from one source address.
pub const MAX_PER_SOURCE: usize = 8;
/// Time a connection has for its TLS handshake and its name.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// Accepted links waiting for the application to take them; more are refused as busy.
pub const ACCEPT_QUEUE: usize = 16;

/// An open TLS connection to a paired device, authenticated both ways: read and write the
/// application's bytes. Dropping it closes the connection; `shutdown` (from
/// `tokio::io::AsyncWriteExt`) sends TLS `close_notify`, after which the other side's bytes can
/// still be read.
pub struct Link {
    peer: PairedPeer,
    stream: TlsStream<TcpStream>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Link {
    pub(crate) fn new(peer: PairedPeer, stream: TlsStream<TcpStream>) -> Self {
        Self { peer, stream }
    }

    /// The device at the other end.
    pub fn peer(&self) -> &PairedPeer {
        &self.peer
    }

    /// The device and the TLS stream, for code that wants the stream's own API.
    pub fn into_parts(self) -> (PairedPeer, TlsStream<TcpStream>) {
        (self.peer, self.stream)
    }
}

impl AsyncRead for Link {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Link {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Dials the link listener of the device with key `peer_key` at `addr`: mutual pinned TLS, then
/// the names. A device that does not know us answers with a refusal.
pub async fn dial(
    identity: &Identity,
    peer_key: Fingerprint,
    addr: SocketAddr,
) -> Result<Link, Error> {
    let config = tls::client_config(identity, peer_key, ALPN)?;
    let mut stream = tls::connect(config, addr).await?;
    send_info(&mut stream, identity.name()).await?;
    let name = match read_message(&mut stream).await? {
        Message::Info { name, .. } => name,
        Message::Refused(refusal) => return Err(Error::Refused { addr, refusal }),
        _ => {
            return Err(Error::Malformed {
                reason: "expected the listener's info",
            });
        }
    };
    let peer = PairedPeer {
        id: peer_key.device_id(),
        name,
        fingerprint: peer_key,
        addr,
        link_port: Some(addr.port()),
    };
    Ok(Link::new(peer, TlsStream::Client(stream)))
}

/// A running link listener: accepts the devices in the trust store. Dropping it closes the
/// listener and the links not yet taken.
pub struct LinkListener {
    local_addr: SocketAddr,
    /// Where links opened the other way (this device dialled a peer's offer) join the ones
    /// accepted.
    inbox: mpsc::Sender<Link>,
    accepted: tokio::sync::Mutex<mpsc::Receiver<Link>>,
    _stop: DropGuard,
}

impl std::fmt::Debug for LinkListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkListener")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl LinkListener {
    /// Listens on every address, on `port` when it is free (the port peers last saw), else on
    /// one the OS picks (with a warning).
    pub fn start(identity: Arc<Identity>, trust: TrustStore, port: u16) -> Result<Self, Error> {
        let bound = localpair_core::bind::listen("link", &[], port)?;
        let local_addr = bound
            .listeners
            .first()
            .map(TcpListener::local_addr)
            .transpose()
            .map_err(|e| Error::io("link listener address", e))?
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], bound.port)));
        let acceptor = TlsAcceptor::from(tls::server_config(&identity, None, ALPN)?);
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        let inbox = tx.clone();
        let stop = CancellationToken::new();
        let served = Arc::new(Served {
            identity,
            trust,
            acceptor,
            accepted: tx,
        });
        tokio::spawn(accept_loop(
            bound.listeners,
            Limits::new(MAX_UNAUTHENTICATED, MAX_PER_SOURCE, HANDSHAKE_TIMEOUT),
            stop.clone(),
            "link",
            move |tcp, remote, admission| {
                let served = Arc::clone(&served);
                async move { served.serve(tcp, remote, admission).await }
            },
        ));
        tracing::debug!(%local_addr, "link listener started");
        Ok(Self {
            local_addr,
            inbox,
            accepted: tokio::sync::Mutex::new(rx),
            _stop: stop.drop_guard(),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// Queues a link this device opened to a peer's offer, as if the peer had dialled in.
    pub(crate) fn inbox(&self) -> mpsc::Sender<Link> {
        self.inbox.clone()
    }

    /// The next link from a known device.
    pub async fn accept(&self) -> Result<Link, Error> {
        self.accepted
            .lock()
            .await
            .recv()
            .await
            .ok_or_else(|| localpair_core::Error::ListenerClosed.into())
    }
}

struct Served {
    identity: Arc<Identity>,
    trust: TrustStore,
    acceptor: TlsAcceptor,
    accepted: mpsc::Sender<Link>,
}

impl Served {
    async fn serve(
        &self,
        tcp: TcpStream,
        remote: SocketAddr,
        admission: Admission,
    ) -> Result<(), Error> {
        let mut stream = self
            .acceptor
            .accept(tcp)
            .await
            .map_err(|e| tls::handshake_error(e, remote))?;
        let key = tls::peer_fingerprint(stream.get_ref().1).ok_or(Error::Malformed {
            reason: "no client key",
        })?;
        let name = read_info(&mut stream).await?;
        let known = self.trust.touch(&key, Some(remote), Some(&name), None)?;
        if !known {
            tracing::warn!(
                %remote,
                key = %key.short(),
                name = %name,
                "refused a device that is not in the trust store"
            );
            send(&mut stream, &Message::Refused(Refusal::UnknownPeer)).await?;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
            return Ok(());
        }
        admission.authenticated();
        let link = answer_known(stream, key, remote, name, self.identity.name()).await?;
        tracing::info!(peer = %link.peer().id, %remote, "link accepted");
        if self.accepted.try_send(link).is_err() {
            tracing::warn!(%remote, "link dropped: {ACCEPT_QUEUE} links are waiting to be taken");
        }
        Ok(())
    }
}

/// The listening side of a link to the known peer with `key` (pinned by the TLS handshake) that
/// dialled us: its name, then ours.
pub(crate) async fn greet_dialler(
    mut stream: tokio_rustls::server::TlsStream<TcpStream>,
    key: Fingerprint,
    remote: SocketAddr,
    own_name: &str,
) -> Result<Link, Error> {
    let name = read_info(&mut stream).await?;
    answer_known(stream, key, remote, name, own_name).await
}

/// The listening side's last step once the dialler (`key`, calling itself `name`) is known: our
/// name, then the open link.
async fn answer_known(
    mut stream: tokio_rustls::server::TlsStream<TcpStream>,
    key: Fingerprint,
    remote: SocketAddr,
    name: String,
    own_name: &str,
) -> Result<Link, Error> {
    send_info(&mut stream, own_name).await?;
    let peer = PairedPeer {
        id: key.device_id(),
        name,
        fingerprint: key,
        addr: remote,
        link_port: None,
    };
    Ok(Link::new(peer, TlsStream::Server(stream)))
}

async fn send_info<S: AsyncWrite + Unpin>(stream: &mut S, name: &str) -> Result<(), Error> {
    let info = Message::Info {
        name: name.to_owned(),
        link_port: None,
    };
    send(stream, &info).await
}

/// The dialling device's name, its first message.
async fn read_info<S: AsyncRead + Unpin>(stream: &mut S) -> Result<String, Error> {
    match read_message(stream).await? {
        Message::Info { name, .. } => Ok(name),
        _ => Err(Error::Malformed {
            reason: "expected the dialling device's info",
        }),
    }
}
