//! The host side: a TLS listener that takes exactly one joiner holding the code's secret.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::wire::{Message, Refusal};
use super::{EXPORTER_LABEL, Paired, PairedPeer, read_message, send};
use crate::code::{Flow, PairingCode, Role, Secret};
use crate::error::Error;
use crate::link::Link;
use localpair_core::Peer;
use localpair_core::bind::Fallback;
use localpair_core::identity::{Fingerprint, Identity};
use localpair_core::serve::{Admission, Limits, accept_loop};
use localpair_core::tls;

/// How a host listens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostOptions {
    /// Pre- or post-shared flow (recorded in the code).
    pub flow: Flow,
    /// Addresses to listen on, all on one port. `[0.0.0.0]` (the default) listens on every
    /// address, IPv4 and IPv6: the pre-shared flow. The post-shared flow lists the addresses peers
    /// can reach (see [`listen_addresses`](super::listen_addresses)).
    pub listen_on: Vec<IpAddr>,
    /// Port ([`DEFAULT_PORT`] unless set); when taken, one the OS picks (see
    /// [`PairingHost::port_fallback`]). 0 lets the OS choose.
    pub port: u16,
    /// Addresses put in the code, best first.
    pub candidates: Vec<IpAddr>,
    /// How long the code lives.
    pub ttl: Duration,
    /// Wait after a source's first wrong proof before its next is looked at; it doubles with each
    /// wrong proof (up to [`MAX_PROOF_BACKOFF`]). Wrong proofs never end the code.
    pub wrong_proof_backoff: Duration,
    /// TLS handshake plus proof exchange must finish within this.
    pub handshake_timeout: Duration,
    /// Connections not yet proven, in total.
    pub max_unauthenticated: usize,
    /// Connections not yet proven, per source address (its oldest is closed to make room).
    pub max_per_source: usize,
    /// This device's link port, told to the joiner so it can reconnect later.
    pub link_port: Option<u16>,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            flow: Flow::Pre,
            listen_on: vec![IpAddr::from([0, 0, 0, 0])],
            port: DEFAULT_PORT,
            candidates: Vec::new(),
            ttl: Duration::from_secs(300),
            wrong_proof_backoff: Duration::from_millis(250),
            handshake_timeout: Duration::from_secs(5),
            max_unauthenticated: 16,
            max_per_source: 4,
            link_port: None,
        }
    }
}

/// The pairing listener's port unless configured otherwise (TCP; beside the udp-multicast port
/// 19536 and the confirmation port 19538, below every OS's ephemeral range). A joiner offering
/// the other direction listens on it too.
pub const DEFAULT_PORT: u16 = 19537;

/// Sources whose wrong proofs are remembered; past it the one that erred longest ago is
/// forgotten (with a 128-bit secret, forgetting costs nothing: the back-off only spares CPU).
pub const MAX_PENALISED_SOURCES: usize = 1024;
/// Longest wait a source's wrong proofs can earn.
pub const MAX_PROOF_BACKOFF: Duration = Duration::from_secs(60);

struct State {
    /// A pairing completed: the code is spent.
    used: bool,
    /// A joiner proved the code and the names are being exchanged; others wait their turn.
    exchanging: bool,
    /// Wrong proofs per source address (not per /64: a LAN /64 is shared with genuine peers).
    penalties: HashMap<IpAddr, Penalty>,
    wrong_proofs: u32,
}

/// A source's wrong proofs: no proof of its is looked at before `until`.
struct Penalty {
    count: u32,
    until: Instant,
}

impl State {
    /// Counts a wrong proof from `source` and makes it wait, doubling with each one.
    fn penalise(&mut self, source: IpAddr, base: Duration, now: Instant) -> u32 {
        self.wrong_proofs = self.wrong_proofs.saturating_add(1);
        if !self.penalties.contains_key(&source)
            && self.penalties.len() >= MAX_PENALISED_SOURCES
            && let Some(oldest) = self
                .penalties
                .iter()
                .min_by_key(|(_, p)| p.until)
                .map(|(s, _)| *s)
        {
            self.penalties.remove(&oldest);
        }
        let penalty = self.penalties.entry(source).or_insert(Penalty {
            count: 0,
            until: now,
        });
        penalty.count = penalty.count.saturating_add(1);
        let wait = base
            .saturating_mul(1u32 << (penalty.count - 1).min(16))
            .min(MAX_PROOF_BACKOFF);
        penalty.until = now + wait;
        penalty.count
    }

    fn waiting(&self, source: IpAddr, now: Instant) -> bool {
        self.penalties.get(&source).is_some_and(|p| p.until > now)
    }
}

pub(crate) struct Shared {
    identity: Arc<Identity>,
    secret: Secret,
    options: HostOptions,
    expires_at: Instant,
    state: Mutex<State>,
    /// The one pairing, with its open stream; capacity 1, and only one exchange runs at a time.
    paired: mpsc::Sender<(Paired, Link)>,
    started: Instant,
}

/// A running pairing listener. Dropping it closes the listener and every connection.
pub struct PairingHost {
    code: PairingCode,
    local_addrs: Vec<SocketAddr>,
    fallback: Option<Fallback>,
    offers: mpsc::Sender<Peer>,
    shared: Arc<Shared>,
    paired: tokio::sync::Mutex<mpsc::Receiver<(Paired, Link)>>,
    _stop: DropGuard,
}

impl std::fmt::Debug for PairingHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairingHost")
            .field("local_addrs", &self.local_addrs)
            .finish_non_exhaustive()
    }
}

impl PairingHost {
    /// Binds the listener, makes the code, and starts taking connections.
    pub fn start(identity: Arc<Identity>, options: HostOptions) -> Result<Self, Error> {
        let bound = localpair_core::bind::listen("pairing", &options.listen_on, options.port)?;
        let local_addrs = bound
            .local_addrs()
            .map_err(|e| Error::io("pairing listener address", e))?;
        let listeners = bound.listeners;
        let local_addr = local_addrs[0];
        let secret = Secret::generate()?;
        let code = PairingCode::new(
            options.flow,
            local_addr.port(),
            identity.fingerprint(),
            secret.clone(),
            options.candidates.clone(),
        );
        let now = Instant::now();
        let (paired_tx, paired_rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            identity,
            secret,
            expires_at: now + options.ttl,
            state: Mutex::new(State {
                used: false,
                exchanging: false,
                penalties: HashMap::new(),
                wrong_proofs: 0,
            }),
            paired: paired_tx,
            started: now,
            options,
        });
        let acceptor = TlsAcceptor::from(tls::server_config(&shared.identity, None, crate::ALPN)?);
        let stop = CancellationToken::new();
        let limits = Limits::new(
            shared.options.max_unauthenticated,
            shared.options.max_per_source,
            shared.options.handshake_timeout,
        );
        let (offers, inbox) = mpsc::channel(crate::offer::OFFER_INBOX);
        let dialer = crate::offer::OfferDialer::new(crate::offer::HostAnswer {
            shared: Arc::clone(&shared),
            tag: code.session_tag(),
        });
        tokio::spawn(dialer.run(inbox, stop.clone()));
        let serving = Arc::clone(&shared);
        tokio::spawn(accept_loop(
            listeners,
            limits,
            stop.clone(),
            "pairing",
            move |tcp, remote, admission| {
                let shared = Arc::clone(&serving);
                let acceptor = acceptor.clone();
                async move { serve(&shared, &acceptor, tcp, remote, admission).await }
            },
        ));
        Ok(Self {
            code,
            local_addrs,
            fallback: bound.fallback,
            offers,
            shared,
            paired: tokio::sync::Mutex::new(paired_rx),
            _stop: stop.drop_guard(),
        })
    }

    /// The code to show.
    pub fn code(&self) -> &PairingCode {
        &self.code
    }

    /// Where the first listener is bound (the only one in the pre-shared flow).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs[0]
    }

    /// Every address the host listens on, one port.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Where to hand the devices discovery sees while hosting: a joiner that cannot reach this
    /// host offers to be dialled instead (an [`Offer`](localpair_core::Offer) for this code's
    /// session tag in its announcements), and the host dials it — keys pinned, proofs as
    /// usual. Other sightings are ignored; when the inbox is full, sightings are dropped (the
    /// joiner keeps announcing). At most [`MAX_OFFERS`](crate::MAX_OFFERS) offers are kept and
    /// [`MAX_OFFER_DIALS`](crate::MAX_OFFER_DIALS) dialled at once.
    pub fn offer_inbox(&self) -> mpsc::Sender<Peer> {
        self.offers.clone()
    }

    /// Set when the configured port was taken and the OS chose another.
    pub fn port_fallback(&self) -> Option<&Fallback> {
        self.fallback.as_ref()
    }

    /// Waits for the one pairing; fails when the code expires. Wrong proofs never end the code
    /// (they only slow their source down), so nobody on the network can stop a pairing. The
    /// pairing's TLS stream stays open: it is the [`Link`] to the device that joined.
    pub async fn wait(&self) -> Result<(Paired, Link), Error> {
        let mut paired = self.paired.lock().await;
        tokio::select! {
            won = paired.recv() => won.ok_or_else(|| localpair_core::Error::ListenerClosed.into()),
            () = tokio::time::sleep_until(self.shared.expires_at) => {
                Err(Error::CodeExpired { after: self.shared.options.ttl })
            }
        }
    }

    /// Wrong proofs received so far.
    pub fn wrong_proofs(&self) -> u32 {
        self.shared.lock().wrong_proofs
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The host's key and name.
    pub(crate) fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// Whether a pairing completed and spent the code.
    pub(crate) fn is_used(&self) -> bool {
        self.lock().used
    }
}

/// Accepts a joiner's TLS connection and reads what every exchange after it is bound to: the
/// joiner's key and 32 bytes of the TLS exporter under `label`.
pub(crate) async fn accept_joiner(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    label: &[u8],
) -> Result<
    (
        tokio_rustls::server::TlsStream<TcpStream>,
        Fingerprint,
        [u8; 32],
    ),
    Error,
> {
    let stream = acceptor
        .accept(tcp)
        .await
        .map_err(|e| tls::handshake_error(e, remote))?;
    let conn = stream.get_ref().1;
    let key = tls::peer_fingerprint(conn).ok_or(Error::Malformed {
        reason: "no client key",
    })?;
    let mut exporter = [0u8; 32];
    conn.export_keying_material(&mut exporter, label, None)?;
    Ok((stream, key, exporter))
}

async fn serve(
    shared: &Arc<Shared>,
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    admission: Admission,
) -> Result<(), Error> {
    let (mut stream, joiner_key, exporter) =
        accept_joiner(acceptor, tcp, remote, EXPORTER_LABEL).await?;
    let proven = prove_as_host(shared, &mut stream, &exporter, remote, || {
        admission.authenticated();
    })
    .await?;
    if let Some((name, link_port)) = proven {
        let stream = tokio_rustls::TlsStream::Server(stream);
        deliver(shared, joiner_key, remote, name, link_port, stream);
    }
    Ok(())
}

/// The host's side of a pairing on an open TLS stream, whichever side dialled: read the
/// joiner's proof, check it (a source that erred waits), prove ourselves, exchange names. The
/// joiner proves first in both directions. Returns the joiner's name and link port, or `None`
/// when the joiner was refused (and told why); `authenticated` runs once its proof is right.
pub(crate) async fn prove_as_host<S>(
    shared: &Shared,
    stream: &mut S,
    exporter: &[u8; 32],
    remote: SocketAddr,
    authenticated: impl FnOnce(),
) -> Result<Option<(String, Option<u16>)>, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Message::JoinerProof(proof) = read_message(stream).await? else {
        return Err(Error::Malformed {
            reason: "expected the joiner's proof",
        });
    };
    let source = remote.ip();
    let verdict = {
        let now = Instant::now();
        let mut state = shared.lock();
        if now >= shared.expires_at {
            Err(Refusal::Expired)
        } else if state.used || state.exchanging {
            Err(Refusal::Used)
        } else if state.waiting(source, now) {
            // Not even looked at: a source that keeps guessing costs us nothing but this.
            Err(Refusal::TooManyAttempts)
        } else if !shared.secret.verify(Role::Joiner, exporter, &proof) {
            let count = state.penalise(source, shared.options.wrong_proof_backoff, now);
            tracing::warn!(%remote, count, "wrong pairing proof; this source waits before its next");
            Err(Refusal::WrongProof)
        } else {
            state.exchanging = true;
            Ok(())
        }
    };
    if let Err(refusal) = verdict {
        send(stream, &Message::Refused(refusal)).await?;
        return Ok(None);
    }
    authenticated();
    // The code is spent only when the exchange completes: a joiner whose connection breaks
    // after the proofs may try again with the same code.
    let exchanged = exchange_names(shared, stream, exporter).await;
    let mut state = shared.lock();
    state.exchanging = false;
    match exchanged {
        Ok(info) => {
            state.used = true;
            Ok(Some(info))
        }
        Err(error) => {
            drop(state);
            tracing::warn!(%remote, %error, "the pairing exchange failed after both proofs; the code stays valid");
            Err(error)
        }
    }
}

/// Hands the one pairing to [`PairingHost::wait`].
pub(crate) fn deliver(
    shared: &Shared,
    joiner_key: Fingerprint,
    remote: SocketAddr,
    name: String,
    link_port: Option<u16>,
    stream: tokio_rustls::TlsStream<TcpStream>,
) {
    let pairing = pairing_of(
        joiner_key,
        remote,
        (name, link_port),
        shared.started,
        stream,
    );
    // Capacity 1 and one exchange at a time: this never waits.
    let _ = shared.paired.try_send(pairing);
}

/// The finished pairing a host hands to its application: who joined (its key as presented in
/// TLS, its name and link port as it said) and the open stream.
pub(crate) fn pairing_of(
    joiner_key: Fingerprint,
    remote: SocketAddr,
    (name, link_port): (String, Option<u16>),
    started: Instant,
    stream: tokio_rustls::TlsStream<TcpStream>,
) -> (Paired, Link) {
    let peer = PairedPeer {
        id: joiner_key.device_id(),
        name,
        fingerprint: joiner_key,
        addr: remote,
        link_port,
    };
    let paired = Paired {
        peer: peer.clone(),
        elapsed: started.elapsed(),
    };
    tracing::info!(peer = %paired.peer.id, %remote, "paired");
    (paired, Link::new(peer, stream))
}

/// The last step of every pairing, once both sides are authenticated: the joiner sends its name
/// and link port, the host answers with its own.
pub(crate) async fn swap_names_as_host<S>(
    stream: &mut S,
    name: &str,
    link_port: Option<u16>,
) -> Result<(String, Option<u16>), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Message::Info {
        name: theirs,
        link_port: their_port,
    } = read_message(stream).await?
    else {
        return Err(Error::Malformed {
            reason: "expected the joiner's info",
        });
    };
    send(
        stream,
        &Message::Info {
            name: name.to_owned(),
            link_port,
        },
    )
    .await?;
    Ok((theirs, their_port))
}

/// After both proofs: the host proves itself, then both send their names and link ports.
async fn exchange_names<S>(
    shared: &Shared,
    stream: &mut S,
    exporter: &[u8; 32],
) -> Result<(String, Option<u16>), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    send(
        stream,
        &Message::HostProof(shared.secret.proof(Role::Host, exporter)),
    )
    .await?;
    swap_names_as_host(stream, shared.identity.name(), shared.options.link_port).await
}
