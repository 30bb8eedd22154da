//! The announcer: one socket per link, the send schedule, receiving and parsing, the peer table
//! and the observation reports. The discoverer and the `peer-observed` resolver both drive it.
//!
//! Everything runs in the future of [`Engine::next`] except the observation reports (tasks in a
//! `JoinSet`); dropping the engine closes every socket and aborts every task.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use localpair_core::interfaces::Interface;
use localpair_core::{Advert, Context, Fingerprint, Peer};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::Config;
use crate::error::Error;
use crate::gate::Gate;
use crate::link::{Link, poll_links};
use crate::peers::{MAX_PEERS, PeerTable};
use crate::report::{Report, Reporter};
use crate::schedule::{AnswerLimiter, Jitter, Schedule};
use crate::socket::{self, LinkSpec, listener_addr};
use crate::summary::{LinkStats, Summary, retire};
use crate::wire::{self, Kind, MAX_DATAGRAM, Packet};

/// How often interfaces are re-read (addresses change, Wi-Fi comes and goes) and silent peers
/// expire.
const HOUSEKEEPING: Duration = Duration::from_secs(2);
/// How long shutdown lets running observation reports finish.
const REPORT_GRACE: Duration = Duration::from_millis(100);

enum Wake {
    Datagram(usize, io::Result<(SocketAddr, usize)>),
    Report(Option<crate::report::Done>),
    Advert(bool),
    Timer,
}

pub(crate) struct Engine {
    ctx: Context,
    config: Config,
    own: Fingerprint,
    name: String,
    confirm_port: u16,
    advert: watch::Receiver<Advert>,
    current: Advert,
    advert_open: bool,
    /// Waits for the next advert change (on a clone of `advert`); `None` once it fired.
    advert_wait: Option<Pin<Box<dyn Future<Output = bool> + Send>>>,
    /// Wakes the loop for the next send, answer, report slot or housekeeping.
    timer: Pin<Box<tokio::time::Sleep>>,
    links: Vec<Link>,
    retired: Vec<(String, LinkStats)>,
    open_errors: HashMap<String, String>,
    buf: Vec<u8>,
    rotor: usize,
    peers: PeerTable,
    gate: Gate,
    reports: Reporter,
    /// Our listener, told of every key heard so that it believes only their observations.
    confirmer: Option<localpair_core::Confirmer>,
    events: VecDeque<Fingerprint>,
    /// Peers forgotten (silent too long, or evicted to make room) not yet said to be gone; at
    /// most [`MAX_PEERS`], the rest dropped (the chain then forgets them when the session ends).
    gone: VecDeque<Fingerprint>,
    jitter: Jitter,
    next_housekeeping: Instant,
    started: Instant,
}

/// What [`Engine::next`] learned.
#[derive(Debug)]
pub(crate) enum News {
    /// A peer is new, or something it announces changed.
    Seen(Peer),
    /// The peer with this key went silent for longer than the table allows, or was evicted.
    Gone(Fingerprint),
}

impl Engine {
    /// Opens a socket per usable link and schedules the start-up burst.
    pub(crate) fn start(ctx: &Context, config: Config) -> Result<Self, Error> {
        config.validate()?;
        let interfaces = ctx.interfaces()?;
        let (specs, skipped) = socket::select(&interfaces, config.ipv6);
        if specs.is_empty() {
            let detail = socket::no_link_detail(ctx, &skipped);
            return Err(Error::NoInterfaces { detail });
        }
        // Without a listener we still announce, with port 0: peers find us but cannot report.
        let confirm_port = ctx.confirmer().map_or(0, |c| c.port());
        let mut advert = ctx.advert();
        let current = *advert.borrow_and_update();
        let now = Instant::now();
        let identity = ctx.identity();
        let mut engine = Self {
            ctx: ctx.clone(),
            own: identity.fingerprint(),
            name: wire::clean_name(identity.name()),
            confirm_port,
            advert,
            current,
            advert_open: true,
            advert_wait: None,
            timer: Box::pin(tokio::time::sleep_until(now)),
            links: Vec::new(),
            retired: Vec::new(),
            open_errors: HashMap::new(),
            buf: vec![0; MAX_DATAGRAM + 1],
            rotor: 0,
            peers: PeerTable::new(config.expire_after()),
            gate: Gate::new(now),
            confirmer: ctx.confirmer().ok().cloned(),
            reports: Reporter::new(
                std::sync::Arc::clone(identity),
                config.report_timeout(),
                config.report_observations,
            ),
            events: VecDeque::new(),
            gone: VecDeque::new(),
            jitter: Jitter::new(),
            next_housekeeping: now + HOUSEKEEPING,
            started: now,
            config,
        };
        engine.reconcile(specs, now);
        if engine.links.is_empty() {
            let mut errors: Vec<String> = engine.open_errors.values().cloned().collect();
            errors.sort();
            return Err(Error::Sockets {
                detail: errors.join("; "),
            });
        }
        Ok(engine)
    }

    /// Runs the protocol until a peer is new, changed or gone, and says which. Cancel safe:
    /// dropping the future loses nothing, so callers `select!` it against their stop signal.
    pub(crate) async fn next(&mut self) -> News {
        loop {
            if !self.events.is_empty() {
                self.drain_ready();
            }
            if let Some(fp) = self.gone.pop_front() {
                return News::Gone(fp);
            }
            while let Some(fp) = self.events.pop_front() {
                if let Some(peer) = self.peers.peer(&fp) {
                    return News::Seen(peer);
                }
            }
            self.tick(Instant::now());
            if !self.gone.is_empty() {
                continue;
            }
            // The timer and the advert wait live across iterations: under a flood this loop runs
            // once per datagram, and re-arming them each time cost more than the datagram.
            let wake_at = self.wake_at();
            if self.timer.deadline() != wake_at {
                self.timer.as_mut().reset(wake_at);
            }
            if self.advert_open && self.advert_wait.is_none() {
                let mut advert = self.advert.clone();
                self.advert_wait = Some(Box::pin(async move { advert.changed().await.is_ok() }));
            }
            let reports_running = self.reports.is_running();
            let wake = {
                let links = &mut self.links;
                let buf = &mut self.buf;
                let rotor = &mut self.rotor;
                let reports = &mut self.reports;
                let timer = &mut self.timer;
                let advert_wait = &mut self.advert_wait;
                // Biased, cheapest and rarest first; `tick` runs on every wake, so a flood of
                // datagrams starves nothing that is due.
                tokio::select! {
                    biased;
                    done = reports.next_done(), if reports_running => Wake::Report(done),
                    changed = std::future::poll_fn(|cx| match advert_wait.as_mut() {
                        Some(wait) => wait.as_mut().poll(cx),
                        None => Poll::Pending,
                    }) => Wake::Advert(changed),
                    (index, got) = std::future::poll_fn(|cx| poll_links(links, buf, rotor, cx)) => {
                        Wake::Datagram(index, got)
                    }
                    () = timer.as_mut() => Wake::Timer,
                }
            };
            let now = Instant::now();
            match wake {
                Wake::Datagram(index, got) => self.datagram(index, got, now),
                Wake::Report(Some(done)) => self.reports.finished(done, now),
                Wake::Report(None) | Wake::Timer => {}
                Wake::Advert(true) => {
                    self.advert_wait = None;
                    self.current = *self.advert.borrow_and_update();
                    tracing::debug!(advert = ?self.current, "advert changed; announcing it");
                    for link in &mut self.links {
                        link.schedule.restart(now);
                    }
                }
                Wake::Advert(false) => {
                    self.advert_wait = None;
                    self.advert_open = false;
                }
            }
        }
    }

    /// Handles datagrams that are already waiting, without sleeping: a peer's IPv4 and IPv6
    /// announcements leave in the same instant, and both addresses belong in its first report
    /// (the chain keeps the order of the first).
    fn drain_ready(&mut self) {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        for _ in 0..16 {
            match poll_links(&mut self.links, &mut self.buf, &mut self.rotor, &mut cx) {
                Poll::Ready((index, got)) => self.datagram(index, got, Instant::now()),
                Poll::Pending => return,
            }
        }
    }

    fn datagram(&mut self, index: usize, got: io::Result<(SocketAddr, usize)>, now: Instant) {
        match got {
            Ok((src, len)) => self.received(index, src, len, now),
            Err(error) => {
                let link = &mut self.links[index];
                tracing::debug!(link = %link.label, %error, "receive failed; reopening the socket");
                link.broken = true;
            }
        }
    }

    /// Sends what is due and does the housekeeping.
    fn tick(&mut self, now: Instant) {
        for index in 0..self.links.len() {
            if self.links[index].schedule.due() <= now {
                let jitter = self.jitter.next();
                let starting = self.links[index].schedule.fire(now, jitter);
                self.send(index, Kind::Announce, starting);
                self.links[index].answers.covered();
            }
            if self.links[index].answers.take_due(now) {
                self.send(index, Kind::Answer, false);
            }
        }
        if now >= self.next_housekeeping {
            self.housekeeping(now);
        }
        self.reports.pump(now);
    }

    fn wake_at(&self) -> Instant {
        let mut at = self.next_housekeeping;
        for link in &self.links {
            at = at.min(link.schedule.due());
            if let Some(due) = link.answers.due() {
                at = at.min(due);
            }
        }
        if let Some(slot) = self.reports.next_slot() {
            at = at.min(slot);
        }
        at
    }

    fn send(&mut self, index: usize, kind: Kind, starting: bool) {
        let mut packet = Packet::new(kind, self.own, self.confirm_port, "");
        packet.name.clone_from(&self.name);
        packet.starting = starting;
        packet.pairing_port = self.current.pairing_port;
        packet.session_tag = self.current.session_tag;
        packet.link_port = self.current.link_port;
        packet.offer = self.current.offer;
        packet.short_channel = self.current.short_channel;
        let bytes = packet.encode();
        let link = &mut self.links[index];
        match link.socket.send_to(&bytes, link.dest) {
            Ok(_) => link.stats.sent += 1,
            Err(error) => {
                tracing::debug!(link = %link.label, %error, "send refused");
                link.stats.refused += 1;
                link.stats.last_error = Some(error.to_string());
            }
        }
    }

    fn received(&mut self, index: usize, src: SocketAddr, len: usize, now: Instant) {
        let link = &mut self.links[index];
        if len > MAX_DATAGRAM {
            link.stats.oversized += 1;
            tracing::debug!(link = %link.label, %src, "dropped a datagram over {MAX_DATAGRAM} bytes unread");
            return;
        }
        let packet = match wire::parse(&self.buf[..len]) {
            Ok(packet) => packet,
            Err(error) => {
                link.stats.malformed += 1;
                tracing::debug!(link = %link.label, %src, %error, "dropped a datagram");
                return;
            }
        };
        if packet.fingerprint == self.own {
            link.stats.echoes += 1;
            return;
        }
        if packet.kind == Kind::Probe {
            // Another device testing its own multicast: not an announcement.
            return;
        }
        let ip = src.ip().to_canonical();
        if !link.spec.iface.contains(ip) {
            link.stats.off_subnet += 1;
            tracing::debug!(link = %link.label, %src, "ignored a packet from outside the interface's subnet");
            return;
        }
        link.stats.heard += 1;
        let key = link.key.clone();
        let addr = listener_addr(ip, packet.confirm_port, link.spec.index);
        let fp = packet.fingerprint;
        let heard = self.peers.observe(&key, addr, &packet, now);
        for gone in self.peers.take_evicted() {
            self.reports.forget(&gone);
            self.say_gone(gone);
        }
        if let Some(confirmer) = &self.confirmer {
            confirmer.heard(fp, ip);
        }
        let tally = self.gate.heard(fp, ip, now);
        if heard.new_peer {
            tracing::debug!(peer = %fp.short(), name = %packet.name, %addr, link = %self.links[index].label, "heard a new peer");
        }
        if (heard.new_peer || packet.starting) && self.links[index].answers.request(now) {
            self.send(index, Kind::Answer, false);
        }
        if self.gate.may_report(addr, tally.times, now) {
            self.reports.offer(
                Report {
                    peer: fp,
                    listener: addr,
                    seen: ip,
                },
                now,
            );
        }
        // A peer is reported again, though nothing changed, when it has been heard from the same
        // source in 2, 4, 8... rounds: the chain keeps the peers it sighted most often when it is
        // full, so a device that keeps announcing outranks a flood of forged identities, at the
        // cost of a handful of extra sightings per peer and session.
        let repeated = tally.new_round && tally.rounds >= 2 && tally.rounds.is_power_of_two();
        if (heard.changed || repeated)
            && !self.events.contains(&fp)
            && self.events.len() < MAX_PEERS
        {
            self.events.push_back(fp);
        }
    }

    fn say_gone(&mut self, fp: Fingerprint) {
        self.events.retain(|queued| *queued != fp);
        if self.gone.len() < MAX_PEERS {
            self.gone.push_back(fp);
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        self.next_housekeeping = now + HOUSEKEEPING;
        for fp in self.peers.expire(now) {
            tracing::debug!(peer = %fp.short(), "peer went silent; forgotten");
            self.reports.forget(&fp);
            self.say_gone(fp);
        }
        match self.ctx.interfaces() {
            Ok(interfaces) => {
                let (specs, _) = socket::select(&interfaces, self.config.ipv6);
                self.reconcile(specs, now);
            }
            Err(error) => tracing::debug!(%error, "cannot re-read interfaces; keeping the sockets"),
        }
    }

    /// Closes links that are gone or changed address, opens the new ones.
    fn reconcile(&mut self, specs: Vec<LinkSpec>, now: Instant) {
        for mut link in std::mem::take(&mut self.links) {
            match specs.iter().find(|s| s.key() == link.key) {
                Some(spec) if !link.broken && spec.same_socket(&link.spec) => {
                    link.spec = spec.clone();
                    self.links.push(link);
                }
                _ => {
                    tracing::debug!(link = %link.label, "closing socket");
                    retire(&mut self.retired, link.label, &link.stats);
                }
            }
        }
        for spec in specs {
            let key = spec.key();
            if self.links.iter().any(|l| l.key == key) {
                continue;
            }
            let label = key.label();
            match socket::open(&spec, &self.config) {
                Ok(socket) => {
                    tracing::debug!(link = %label, local = %spec.local, "announcing");
                    self.open_errors.remove(&label);
                    self.links.push(Link {
                        dest: spec.group(&self.config),
                        schedule: Schedule::new(
                            now,
                            self.config.burst(),
                            self.config.steady_interval(),
                        ),
                        answers: AnswerLimiter::new(self.config.answer_interval()),
                        stats: LinkStats::default(),
                        broken: false,
                        socket,
                        key,
                        label,
                        spec,
                    });
                }
                Err(error) => {
                    tracing::debug!(link = %label, %error, "cannot open multicast socket");
                    self.open_errors
                        .insert(label.clone(), format!("{label}: {error}"));
                }
            }
        }
    }

    /// Counters so far, per link label.
    pub(crate) fn summary(&self) -> Summary {
        let mut links = self.retired.clone();
        for link in &self.links {
            retire(&mut links, link.label.clone(), &link.stats);
        }
        let mut open_errors: Vec<String> = self.open_errors.values().cloned().collect();
        open_errors.sort();
        Summary {
            links,
            open_errors,
            peers: self.peers.ever(),
            reports_ok: self.reports.ok,
            reports_failed: self.reports.failed,
            elapsed: self.started.elapsed(),
        }
    }

    /// The name a peer announces, while it is remembered.
    pub(crate) fn peer_name(&self, fingerprint: &Fingerprint) -> Option<&str> {
        self.peers.name(fingerprint)
    }

    /// The interfaces currently in use.
    pub(crate) fn interfaces(&self) -> Vec<Interface> {
        let mut out: Vec<Interface> = Vec::new();
        for link in &self.links {
            if !out.iter().any(|i| i.name == link.spec.iface.name) {
                out.push(link.spec.iface.clone());
            }
        }
        out
    }

    /// Lets running reports finish briefly, then closes everything; returns the counters.
    pub(crate) async fn shutdown(mut self) -> Summary {
        self.reports.shutdown(REPORT_GRACE).await;
        let summary = self.summary();
        tracing::debug!(summary = %summary.counts(), reports_ok = summary.reports_ok, reports_failed = summary.reports_failed, "multicast session ended");
        summary
    }
}
