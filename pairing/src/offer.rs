//! The other direction, for when a firewall drops connections to one side: the side that cannot
//! get through listens itself, says so in its announcements ([`Offer`], bound to a session tag
//! or a device id), and the other side dials it. Keys are pinned and proofs run exactly as in
//! the usual direction; only who opens the TCP connection changes.
//!
//! Here: [`OfferListener`], the listener a joiner (or a reconnecting device) offers, and
//! [`OfferDialer`], the host's side that dials the offers made for its pairing.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use localpair_core::identity::{Fingerprint, Identity};
use localpair_core::serve::{Admission, Limits, accept_loop};
use localpair_core::{Context, Offer, OfferTo, Peer, tls};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::EXPORTER_LABEL;
use crate::error::Error;
use crate::host::{Shared, deliver, prove_as_host};
use crate::join::{JoinerSide, finish_as_joiner};
use crate::link::Link;
use crate::trust::TrustStore;

/// Connections an offer listener serves before they prove who they are: the device it waits
/// for makes one or two, so a few more leave room while a flood closes its own.
const OFFER_UNAUTHENTICATED: usize = 8;
/// The same, per source address.
const OFFER_PER_SOURCE: usize = 2;
/// Time an inbound connection has for its TLS handshake (which pins the key) and the proofs.
const OFFER_HANDSHAKE: Duration = Duration::from_secs(3);
/// Outcomes of inbound attempts waiting to be read; more are dropped (logged).
const OFFER_OUTCOMES: usize = 4;

/// What one inbound connection to an offer listener came to, and from where.
pub(crate) type Inbound = (SocketAddr, Result<Link, Error>);

/// A listener offered to one device that cannot be reached the usual way: TLS with that
/// device's key pinned (a stranger fails the handshake), then the usual protocol with our
/// side's role. Announced through a context while it lives; dropping it withdraws the offer,
/// closes the listener and every connection.
pub(crate) struct OfferListener {
    port: u16,
    outcomes: mpsc::Receiver<Inbound>,
    announced: Option<(Context, Offer)>,
    _stop: DropGuard,
}

impl OfferListener {
    /// A joiner's listener for the host of the code it holds (the host's key pinned); the
    /// joiner proves first as always.
    pub(crate) fn for_host(
        identity: &Identity,
        side: Arc<JoinerSide>,
        port: u16,
    ) -> Result<Self, Error> {
        let acceptor = tls::server_config(identity, Some(side.code.fingerprint), crate::ALPN)?;
        Self::start(port, acceptor, move |stream, remote| {
            let side = Arc::clone(&side);
            async move {
                let exporter = server_exporter(&stream)?;
                finish_as_joiner(
                    stream,
                    &side,
                    &exporter,
                    remote,
                    tokio_rustls::TlsStream::Server,
                )
                .await
            }
        })
    }

    /// A reconnecting device's listener for the known peer it looks for (that peer's key
    /// pinned): the peer dials and speaks first, as on a link listener.
    pub(crate) fn for_peer(
        identity: &Identity,
        peer: Fingerprint,
        port: u16,
    ) -> Result<Self, Error> {
        let acceptor = tls::server_config(identity, Some(peer), crate::link::ALPN)?;
        let name = identity.name().to_owned();
        Self::start(port, acceptor, move |stream, remote| {
            let name = name.clone();
            async move { crate::link::greet_dialler(stream, peer, remote, &name).await }
        })
    }

    fn start<H, F>(port: u16, config: Arc<rustls::ServerConfig>, handle: H) -> Result<Self, Error>
    where
        H: Fn(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Link, Error>> + Send + 'static,
    {
        let bound = localpair_core::bind::listen("offer", &[], port)?;
        let acceptor = TlsAcceptor::from(config);
        let handle = Arc::new(handle);
        let (tx, outcomes) = mpsc::channel(OFFER_OUTCOMES);
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(
            bound.listeners,
            Limits::new(OFFER_UNAUTHENTICATED, OFFER_PER_SOURCE, OFFER_HANDSHAKE),
            stop.clone(),
            "offer",
            move |tcp: TcpStream, remote: SocketAddr, admission: Admission| {
                let acceptor = acceptor.clone();
                let handle = Arc::clone(&handle);
                let tx = tx.clone();
                async move {
                    let outcome = match acceptor.accept(tcp).await {
                        Ok(stream) => {
                            // The handshake pinned the key: this is the device we wait for.
                            admission.authenticated();
                            handle(stream, remote).await
                        }
                        Err(error) => Err(tls::handshake_error(error, remote).into()),
                    };
                    if tx.try_send((remote, outcome)).is_err() {
                        tracing::debug!(%remote, "offer: outcome dropped, nobody reads them");
                    }
                    Ok::<(), Error>(())
                }
            },
        ));
        Ok(Self {
            port: bound.port,
            outcomes,
            announced: None,
            _stop: stop.drop_guard(),
        })
    }

    /// Says in `ctx`'s announcements that this listener waits for `to`, until dropped.
    pub(crate) fn announce(&mut self, ctx: &Context, to: OfferTo) {
        let offer = Offer::new(self.port, to);
        ctx.update_advert(|advert| advert.offer = Some(offer));
        tracing::info!(
            port = self.port,
            "offering the other direction: waiting to be dialled"
        );
        self.announced = Some((ctx.clone(), offer));
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The next inbound attempt's outcome; `None` once the listener stopped.
    pub(crate) async fn next(&mut self) -> Option<Inbound> {
        self.outcomes.recv().await
    }
}

impl Drop for OfferListener {
    fn drop(&mut self) {
        if let Some((ctx, offer)) = self.announced.take() {
            ctx.update_advert(|advert| {
                if advert.offer == Some(offer) {
                    advert.offer = None;
                }
            });
        }
    }
}

fn server_exporter(stream: &tokio_rustls::server::TlsStream<TcpStream>) -> Result<[u8; 32], Error> {
    let mut exporter = [0u8; 32];
    stream
        .get_ref()
        .1
        .export_keying_material(&mut exporter, EXPORTER_LABEL, None)?;
    Ok(exporter)
}

/// Offers a device keeps (per pairing hosted, or per link listener); past it, the one whose
/// dials failed most goes (a genuine device is dialled once and connects; forged offers fail
/// again and again).
pub const MAX_OFFERS: usize = 32;
/// Dials of offers in flight at once.
pub const MAX_OFFER_DIALS: usize = 4;
/// First wait before an offer whose dial failed is dialled again; doubles up to 8 s.
const OFFER_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between two dials of one offer.
const OFFER_RETRY_MAX: Duration = Duration::from_secs(8);
/// Limit for one dial of an offer (connect, TLS, proofs or names).
const OFFER_DIAL_TIMEOUT: Duration = Duration::from_secs(3);
/// Sightings waiting for the dialer; more are dropped (the offering device keeps announcing).
pub(crate) const OFFER_INBOX: usize = 64;

/// Which offers a device answers, and how.
pub(crate) trait Answer: Send + Sync + 'static {
    /// Whether `peer` offers to be dialled by us.
    fn wants(&self, peer: &Peer, offer: &Offer) -> bool;
    /// Dials the offer of the device with `key` at `addrs` (the offered port on each of its
    /// addresses) and hands over what it opens.
    fn dial(
        self: Arc<Self>,
        key: Fingerprint,
        addrs: Vec<SocketAddr>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;
    /// Nothing is left to answer for (the pairing completed).
    fn done(&self) -> bool {
        false
    }
}

/// An offer being answered, and how its dials went.
struct Known {
    addrs: Vec<SocketAddr>,
    failures: u32,
    next_dial: Instant,
    dialing: bool,
}

/// Dials every offer `answer` wants, bounded in offers kept ([`MAX_OFFERS`]), dials at once
/// ([`MAX_OFFER_DIALS`]) and dials per offer (1 s after a failure, doubling to 8 s), until
/// stopped.
pub(crate) struct OfferDialer<A: Answer> {
    answer: Arc<A>,
    offers: HashMap<Fingerprint, Known>,
    dials: JoinSet<(Fingerprint, Result<(), Error>)>,
    slots: Arc<Semaphore>,
}

impl<A: Answer> OfferDialer<A> {
    pub(crate) fn new(answer: A) -> Self {
        Self {
            answer: Arc::new(answer),
            offers: HashMap::new(),
            dials: JoinSet::new(),
            slots: Arc::new(Semaphore::new(MAX_OFFER_DIALS)),
        }
    }

    /// Runs until `stop` or the inbox closes: takes sightings from `inbox`, keeps the offers
    /// wanted, dials them.
    pub(crate) async fn run(mut self, mut inbox: mpsc::Receiver<Peer>, stop: CancellationToken) {
        loop {
            let due = self
                .offers
                .values()
                .filter(|known| !known.dialing)
                .map(|known| known.next_dial)
                .min();
            tokio::select! {
                () = stop.cancelled() => break,
                sighting = inbox.recv() => match sighting {
                    Some(peer) => self.take(&peer),
                    None => break,
                },
                Some(joined) = self.dials.join_next(), if !self.dials.is_empty() => {
                    if let Ok((key, outcome)) = joined {
                        self.dialled(key, outcome);
                    }
                }
                () = sleep_until_opt(due) => {}
            }
            self.dial_due();
        }
        self.dials.abort_all();
    }

    fn take(&mut self, peer: &Peer) {
        let Some(offer) = peer.offer else { return };
        if peer.addrs.is_empty() || !self.answer.wants(peer, &offer) {
            return;
        }
        let addrs: Vec<SocketAddr> = peer
            .addrs
            .iter()
            .map(|a| SocketAddr::new(a.ip(), offer.port))
            .collect();
        if let Some(known) = self.offers.get_mut(&peer.fingerprint) {
            known.addrs = addrs;
            return;
        }
        if self.offers.len() >= MAX_OFFERS {
            let worst = self
                .offers
                .iter()
                .filter(|(_, known)| !known.dialing)
                .max_by_key(|(_, known)| known.failures)
                .map(|(key, _)| *key);
            match worst {
                Some(key) => {
                    self.offers.remove(&key);
                }
                None => return,
            }
        }
        tracing::info!(peer = %peer.fingerprint.short(), addrs = ?addrs, "a device offers the other direction; dialling it");
        self.offers.insert(
            peer.fingerprint,
            Known {
                addrs,
                failures: 0,
                next_dial: Instant::now(),
                dialing: false,
            },
        );
    }

    fn dial_due(&mut self) {
        if self.answer.done() {
            self.offers.clear();
            return;
        }
        let now = Instant::now();
        for (key, known) in &mut self.offers {
            if known.dialing || known.next_dial > now {
                continue;
            }
            let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
                return;
            };
            known.dialing = true;
            let dial = Arc::clone(&self.answer).dial(*key, known.addrs.clone());
            let key = *key;
            self.dials.spawn(async move {
                let _slot = slot;
                let outcome = tokio::time::timeout(OFFER_DIAL_TIMEOUT, dial)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::timeout(
                            "dialling an offer".to_owned(),
                            OFFER_DIAL_TIMEOUT,
                        ))
                    });
                (key, outcome)
            });
        }
    }

    fn dialled(&mut self, key: Fingerprint, outcome: Result<(), Error>) {
        let Some(known) = self.offers.get_mut(&key) else {
            return;
        };
        known.dialing = false;
        match outcome {
            Ok(()) => {
                self.offers.remove(&key);
            }
            Err(error) => {
                known.failures = known.failures.saturating_add(1);
                let wait = OFFER_RETRY
                    .saturating_mul(1 << known.failures.saturating_sub(1).min(3))
                    .min(OFFER_RETRY_MAX);
                known.next_dial = Instant::now() + wait;
                tracing::info!(peer = %key.short(), %error, "dialling an offer failed");
            }
        }
    }
}

/// A host answers the offers made for its pairing (its session tag).
pub(crate) struct HostAnswer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tag: [u8; 8],
}

impl Answer for HostAnswer {
    fn wants(&self, _peer: &Peer, offer: &Offer) -> bool {
        offer.to == OfferTo::Session(self.tag)
    }

    fn dial(
        self: Arc<Self>,
        key: Fingerprint,
        addrs: Vec<SocketAddr>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send>> {
        Box::pin(async move { dial_joiner(&self.shared, key, &addrs).await })
    }

    fn done(&self) -> bool {
        self.shared.is_used()
    }
}

/// A device accepting known peers answers the offers they make to it (a peer that wants to
/// reconnect but cannot get through): it dials them and queues the link as if accepted.
pub(crate) struct LinkAnswer {
    pub(crate) identity: Arc<Identity>,
    pub(crate) trust: TrustStore,
    pub(crate) inbox: mpsc::Sender<Link>,
}

impl Answer for LinkAnswer {
    fn wants(&self, peer: &Peer, offer: &Offer) -> bool {
        offer.to == OfferTo::Device(self.identity.fingerprint().device_id())
            && matches!(self.trust.get(&peer.fingerprint), Ok(Some(_)))
    }

    fn dial(
        self: Arc<Self>,
        key: Fingerprint,
        addrs: Vec<SocketAddr>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send>> {
        Box::pin(async move {
            let mut last = None;
            for addr in addrs {
                match crate::link::dial(&self.identity, key, addr).await {
                    Ok(link) => {
                        tracing::info!(peer = %key.short(), %addr, "link opened to a peer's offer");
                        if self.inbox.try_send(link).is_err() {
                            tracing::warn!(%addr, "link dropped: too many are waiting to be taken");
                        }
                        return Ok(());
                    }
                    Err(error) => last = Some(error),
                }
            }
            Err(last.unwrap_or(Error::Malformed {
                reason: "an offer without an address",
            }))
        })
    }
}

/// Dials a joiner's offer at each of its addresses in turn (the first that connects is the one):
/// TLS with the joiner's announced key pinned, then the usual proofs, joiner first.
async fn dial_joiner(shared: &Shared, key: Fingerprint, addrs: &[SocketAddr]) -> Result<(), Error> {
    let config = tls::client_config(shared.identity(), key, crate::ALPN)?;
    let mut last = None;
    for &addr in addrs {
        let mut stream = match tls::connect(Arc::clone(&config), addr).await {
            Ok(stream) => stream,
            Err(error) => {
                last = Some(error);
                continue;
            }
        };
        let mut exporter = [0u8; 32];
        stream
            .get_ref()
            .1
            .export_keying_material(&mut exporter, EXPORTER_LABEL, None)?;
        let proven = prove_as_host(shared, &mut stream, &exporter, addr, || {}).await?;
        return match proven {
            Some((name, link_port)) => {
                deliver(
                    shared,
                    key,
                    addr,
                    name,
                    link_port,
                    tokio_rustls::TlsStream::Client(stream),
                );
                Ok(())
            }
            None => Err(Error::JoinerRefused { addr }),
        };
    }
    Err(last
        .unwrap_or_else(|| {
            localpair_core::Error::io(
                "dial a joiner's offer",
                std::io::ErrorKind::AddrNotAvailable.into(),
            )
        })
        .into())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
