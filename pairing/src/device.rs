//! [`Device`]: the one type an application embeds — identity, trust store, settings, listeners
//! and announcer — with host, join, connect, listen, peers and forget.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use localpair_core::chain::{Change, Subscription, Watch};
use localpair_core::config::Settings;
use localpair_core::identity::Identity;
use localpair_core::{Advert, ChainMode, Context, DiscovererChain, Peer, Registry, ResolverChain};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::code::{Flow, PairingCode};
use crate::config::{ConnectConfig, JoinConfig, PairingConfig};
use crate::connect::{Connected, Reconnect, explain_failure};
use crate::link::{Link, LinkListener, PORT_FILE};
use crate::nearby::Watching;
use crate::offer::{LinkAnswer, OfferDialer};
use crate::race::{OTHER_DIRECTION, RaceOptions, race};
use crate::trust::{KnownPeer, PairedHow, TrustStore};
use crate::{Error, HostOptions, JoinOptions, Joined, PairingHost, listen_addresses};

mod handles;
mod short;
pub use handles::{Hosting, Listening};
pub use short::ShortHosting;

/// This device: who it is, whom it trusts, and how it finds and is found by them.
///
/// Open it inside a tokio runtime (it starts the confirmation listener). Everything it starts
/// stops when it is dropped.
pub struct Device {
    ctx: Context,
    registry: Registry,
    trust: TrustStore,
    pairing: PairingConfig,
    join: JoinConfig,
    connect: ConnectConfig,
    save: bool,
    /// The link port, once chosen (kept in the state directory).
    link_port: Mutex<Option<u16>>,
    announcer: Mutex<Announcer>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("identity", self.ctx.identity())
            .field("trust", &self.trust.path())
            .finish_non_exhaustive()
    }
}

/// The background discovery session that keeps this device announced and the list of devices
/// nearby, shared by everything that needs it (hosting, listening, watching) and stopped when
/// the last of them ends.
#[derive(Default)]
struct Announcer {
    users: usize,
    running: Option<Watch>,
    /// The last session, winding down (it says goodbye where its discoverers can).
    stopping: Option<tokio::task::JoinHandle<()>>,
}

/// How long [`Device::close`] waits for the announcer to say goodbye.
const GOODBYE_WAIT: Duration = Duration::from_secs(3);

/// Keeps this device announced while it lives.
#[derive(Debug)]
pub(crate) struct Announcing<'a> {
    device: &'a Device,
}

impl Drop for Announcing<'_> {
    fn drop(&mut self) {
        let mut announcer = self.device.lock_announcer();
        announcer.users = announcer.users.saturating_sub(1);
        if announcer.users == 0
            && let Some(watch) = announcer.running.take()
        {
            // The session closes its sockets within its stop grace; do not wait for it here
            // ([`Device::close`] does).
            announcer.stopping = Some(tokio::spawn(async move {
                watch.stop().await;
            }));
        }
    }
}

impl Device {
    /// Opens the device the settings describe: its key from the state directory (`[device]`,
    /// or a throwaway one when `ephemeral`), its trust store beside it (in memory when
    /// ephemeral), and the pairing crate's sections. Fails on a broken setting, key or store.
    pub fn open(settings: Settings, registry: Registry) -> Result<Self, Error> {
        let pairing = PairingConfig::from_settings(&settings)?;
        let join = JoinConfig::from_settings(&settings)?;
        let connect = ConnectConfig::from_settings(&settings)?;
        let ctx = Context::start(settings)?;
        let trust = match ctx.state_dir() {
            Some(dir) => TrustStore::in_dir(dir.clone()),
            None => TrustStore::in_memory(),
        };
        // A trust store that does not parse is reported now, not at the first pairing.
        trust.peers()?;
        Ok(Self {
            ctx,
            registry,
            trust,
            pairing,
            join,
            connect,
            save: true,
            link_port: Mutex::new(None),
            announcer: Mutex::new(Announcer::default()),
        })
    }

    /// Waits (at most 3 s) for the announcements to end cleanly — mDNS says goodbye, so peers
    /// drop this device from their lists at once instead of when its records expire. Dropping
    /// the device without this stops everything too, without waiting.
    pub async fn close(self) {
        let stopping = self.lock_announcer().stopping.take();
        if let Some(task) = stopping {
            let _ = tokio::time::timeout(GOODBYE_WAIT, task).await;
        }
    }

    /// Whether pairings are saved in the trust store (default: yes).
    #[must_use]
    pub fn saving(mut self, save: bool) -> Self {
        self.save = save;
        self
    }

    /// The context strategies run with.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// This device's key and name.
    pub fn identity(&self) -> &Identity {
        self.ctx.identity()
    }

    /// The trust store.
    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    /// The devices this one paired with.
    pub fn peers(&self) -> Result<Vec<KnownPeer>, Error> {
        self.trust.peers()
    }

    /// Forgets the known peer `who` names (alias, name, device id or fingerprint prefix).
    pub fn forget(&self, who: &str) -> Result<KnownPeer, Error> {
        self.trust.forget(who)
    }

    fn lock_announcer(&self) -> std::sync::MutexGuard<'_, Announcer> {
        self.announcer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_advert(&self, change: impl FnOnce(&mut Advert)) {
        self.ctx.update_advert(change);
    }

    /// Announces this device through the `[discover]` chain until the guard is dropped; the
    /// same session keeps the list of devices nearby.
    pub(crate) fn announce(&self) -> Result<(Announcing<'_>, Subscription), Error> {
        let mut announcer = self.lock_announcer();
        let watch = match &mut announcer.running {
            Some(watch) => watch,
            running => {
                let chain = DiscovererChain::from_settings(&self.registry, self.ctx.settings())?;
                running.insert(chain.watch(&self.ctx))
            }
        };
        let subscription = watch.subscribe();
        announcer.users += 1;
        Ok((Announcing { device: self }, subscription))
    }

    /// Announces this device and reports the devices nearby as they come, change and go (see
    /// [`Nearby`](crate::Nearby)), until the returned [`Watching`] is dropped. Its first events are one
    /// `Found` for each device already in view.
    pub fn watch(&self) -> Result<Watching<'_>, Error> {
        let (announcing, subscription) = self.announce()?;
        Ok(Watching {
            device: self,
            subscription,
            _announcing: announcing,
            trusted: None,
        })
    }

    /// This device's link port: `[pairing] link_port` (19539 unless set), so that a peer can
    /// reconnect later even when discovery cannot tell it and one firewall rule covers it; with
    /// `link_port = 0`, the one in the state directory, else a free one, chosen now and kept.
    pub fn link_port(&self) -> Result<u16, Error> {
        let mut chosen = self
            .link_port
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(port) = *chosen {
            return Ok(port);
        }
        if self.pairing.link_port != 0 {
            *chosen = Some(self.pairing.link_port);
            return Ok(self.pairing.link_port);
        }
        let saved = self
            .ctx
            .state_dir()
            .and_then(|dir| {
                dir.read(PORT_FILE, 16)
                    .inspect_err(|error| tracing::warn!(%error, "choosing a new link port"))
                    .ok()
                    .flatten()
            })
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.trim().parse::<u16>().ok())
            .filter(|port| *port != 0);
        let port = match saved {
            Some(port) => port,
            None => {
                let port = free_port()?;
                self.keep_link_port(port)?;
                port
            }
        };
        *chosen = Some(port);
        Ok(port)
    }

    fn keep_link_port(&self, port: u16) -> Result<(), Error> {
        if let Some(dir) = self.ctx.state_dir() {
            dir.write(PORT_FILE, format!("{port}\n").as_bytes())?;
        }
        Ok(())
    }

    fn save_pairing(&self, peer: &crate::PairedPeer, how: PairedHow, others: &[SocketAddr]) {
        if !self.save {
            return;
        }
        let mut known = KnownPeer::new(peer.fingerprint, &peer.name, None, how);
        for addr in others.iter().rev().chain([&peer.addr]) {
            known.seen(Some(*addr), None);
        }
        known.link_port = peer.link_port;
        if let Err(error) = self.trust.save(known) {
            tracing::error!(%error, peer = %peer.id, "the pairing worked but could not be saved");
        }
    }

    /// Starts hosting a pairing: resolves this device's addresses, listens where peers can reach
    /// it (see [`listen_addresses`]), makes the code, and announces the pairing until the
    /// returned [`Hosting`] is dropped.
    pub async fn host(&self, flow: Flow) -> Result<Hosting<'_>, Error> {
        let mut resolver = ResolverChain::from_settings(&self.registry, self.ctx.settings())?;
        // Every resolver runs: the pre-shared code lists every usable address, and the
        // post-shared host listens wherever peers can reach it, which peer-observed tells.
        let mut plan = resolver.plan();
        plan.mode = ChainMode::All;
        resolver = resolver.with_plan(plan);
        let resolved = resolver.resolve(&self.ctx).await;
        let listen = listen_addresses(flow, &resolved.candidates, self.pairing.code_candidates)
            .ok_or_else(|| Error::NoAddress {
                attempts: resolved.attempts.clone(),
            })?;
        // A code with loopback addresses only still pairs two programs on this machine; for
        // anything else the warning must say why nothing better was found.
        let warning = match listen.warning {
            Some(warning) if listen.code.iter().all(IpAddr::is_loopback) => {
                Some(format!("{warning}: {}", self.ctx.why_no_interfaces()))
            }
            Some(warning) => Some(warning),
            None => localpair_core::interfaces::list_all()
                .ok()
                .and_then(|all| crate::listen::down_warning(&listen.code, &all)),
        };
        let options = HostOptions {
            flow,
            listen_on: listen.listen_on,
            port: self.pairing.port,
            candidates: listen.code,
            ttl: Duration::from_millis(self.pairing.code_ttl_ms),
            wrong_proof_backoff: Duration::from_millis(self.pairing.wrong_proof_backoff_ms),
            handshake_timeout: Duration::from_millis(self.pairing.handshake_timeout_ms),
            max_unauthenticated: self.pairing.max_unauthenticated,
            max_per_source: self.pairing.max_per_source,
            link_port: Some(self.link_port()?),
        };
        let host = PairingHost::start(Arc::clone(self.ctx.identity()), options)?;
        let code = host.code();
        let (port, tag) = (code.port, code.session_tag());
        self.set_advert(|a| {
            a.pairing_port = Some(port);
            a.session_tag = Some(tag);
        });
        let (announcing, nearby) = self.announce()?;
        let offers = Forwarding::offers(nearby, host.offer_inbox());
        Ok(Hosting {
            device: self,
            host,
            flow,
            warning,
            _offers: offers,
            _announcing: announcing,
        })
    }

    /// The discoverer chain and options every join runs with (a QR code's or a short code's).
    fn join_setup(
        &self,
        sightings: Option<mpsc::Sender<Peer>>,
    ) -> Result<(DiscovererChain, JoinOptions), Error> {
        let chain = self.join.chain(&self.registry, self.ctx.settings())?;
        let options = JoinOptions {
            dial_timeout: Duration::from_millis(self.pairing.dial_timeout_ms),
            deadline: self.join.0.deadline(),
            sightings,
            link_port: Some(self.link_port()?),
            offer_port: self.pairing.port,
            ..JoinOptions::default()
        };
        Ok((chain, options))
    }

    /// Joins the host whose code `code` yields; discovery starts at once, so a code typed later
    /// is dialled the moment it arrives. Sightings are also offered to `sightings`, for a list of
    /// the devices found while the code is typed. Saves the host in the trust store.
    pub async fn join(
        &self,
        code: impl Future<Output = Result<PairingCode, Error>> + Send,
        sightings: Option<mpsc::Sender<Peer>>,
    ) -> Result<(Joined, Link), Error> {
        let (chain, options) = self.join_setup(sightings)?;
        let (codes_tx, codes_rx) = std::sync::mpsc::channel();
        let code = async move {
            let code = code.await?;
            let _ = codes_tx.send(code.clone());
            Ok(code)
        };
        let (joined, link) = crate::join(&self.ctx, &chain, code, options).await?;
        let code = codes_rx.try_recv().ok();
        let how = match code.as_ref().map(|c| c.flow) {
            Some(Flow::Post) => PairedHow::QrPost,
            _ => PairedHow::QrPre,
        };
        // The code's addresses are the host's best ones: remember them beside the one that paired.
        let others = code
            .iter()
            .flat_map(|c| {
                c.candidates
                    .iter()
                    .map(move |ip| SocketAddr::new(*ip, c.port))
            })
            .collect::<Vec<_>>();
        self.save_pairing(&joined.peer, how, &others);
        Ok((joined, link))
    }

    /// Reconnects to the known peer `who` names: finds it by its key through the `[connect]`
    /// chain (its announcements, its last known addresses, a scan for its link port) and opens a
    /// link with both keys pinned.
    pub async fn connect(&self, who: &str) -> Result<(Connected, Link), Error> {
        let peer = self.trust.find(who)?;
        let chain = self.connect.chain(&self.registry, self.ctx.settings())?;
        let target = Arc::new(Reconnect {
            identity: Arc::clone(self.ctx.identity()),
            peer: peer.clone(),
            offer_port: self.link_port()?,
        });
        let options = RaceOptions {
            dial_timeout: Duration::from_millis(self.pairing.dial_timeout_ms),
            deadline: self.connect.0.deadline(),
            max_parallel: JoinOptions::default().max_parallel,
            sightings: None,
        };
        match race(&self.ctx, &chain, async { Ok(target) }, options).await? {
            Ok(won) => {
                let addr = won.won.peer().addr;
                let name = won.won.peer().name.clone();
                // A peer that dialled our offer came from one of its own ephemeral ports.
                let link_port = (won.via != OTHER_DIRECTION).then_some(addr.port());
                if let Err(error) =
                    self.trust
                        .touch(&peer.fingerprint, Some(addr), Some(&name), link_port)
                {
                    tracing::warn!(%error, "could not record the contact in the trust store");
                }
                let connected = Connected {
                    via: won.via,
                    elapsed: won.elapsed,
                    dials: won.dials,
                };
                Ok((connected, won.won))
            }
            Err(lost) => Err(explain_failure(&peer, lost)),
        }
    }

    /// Starts accepting links from known peers (on [`Device::link_port`] when it is free, else
    /// on one the OS picks, with a warning) and announces that this device does, until the
    /// returned [`Listening`] is dropped. A stranger's connection is refused and logged.
    pub async fn listen(&self) -> Result<Listening<'_>, Error> {
        let wanted = self.link_port()?;
        let listener =
            LinkListener::start(Arc::clone(self.ctx.identity()), self.trust.clone(), wanted)?;
        let port = listener.port();
        if port != wanted {
            // Taken: peers learn the new one from the announcements. A port chosen once and
            // kept is replaced; a configured one is tried again next time.
            if self.pairing.link_port == 0 {
                self.keep_link_port(port)?;
            }
            *self
                .link_port
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(port);
        }
        self.set_advert(|a| a.link_port = Some(port));
        let (announcing, nearby) = self.announce()?;
        // Known peers that cannot get through offer to be dialled instead.
        let (inbox, sightings) = mpsc::channel(crate::offer::OFFER_INBOX);
        let dialer = OfferDialer::new(LinkAnswer {
            identity: Arc::clone(self.ctx.identity()),
            trust: self.trust.clone(),
            inbox: listener.inbox(),
        });
        let stop = CancellationToken::new();
        tokio::spawn(dialer.run(sightings, stop.clone()));
        Ok(Listening {
            device: self,
            listener,
            _offers: (Forwarding::offers(nearby, inbox), stop.drop_guard()),
            _announcing: announcing,
        })
    }
}

/// Hands the offers discovery sees to a dialer, until dropped.
struct Forwarding(tokio::task::JoinHandle<()>);

impl Forwarding {
    fn offers(mut nearby: Subscription, inbox: mpsc::Sender<Peer>) -> Self {
        Self(tokio::spawn(async move {
            while let Some(event) = nearby.next().await {
                if event.change != Change::Lost && event.peer.offer.is_some() {
                    // Full: dropped; the offering device keeps announcing.
                    let _ = inbox.try_send(event.peer);
                }
            }
        }))
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A port that is free right now, chosen by the OS.
fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind((std::net::Ipv6Addr::UNSPECIFIED, 0))
        .or_else(|_| std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, 0)))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io("choose a link port", e))
}
