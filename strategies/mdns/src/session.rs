//! One discovery session: a daemon announcing this device and browsing for the others, and what
//! each of its events means for the chain.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::pin::pin;
use std::time::{Duration, Instant};

use localpair_core::interfaces::Interface;
use localpair_core::{Advert, Context, Fingerprint, Peer, PeerSink};
use mdns_sd::{DaemonEvent, ResolvedService, ScopedIp, ServiceEvent, ServiceInfo};

use crate::addrs;
use crate::config::Config;
use crate::daemon::Daemon;
use crate::discoverer::SERVICE_TYPE;
use crate::error::{Error, Silence};
use crate::txt::{self, Txt};

/// How often in a row the browse subscription may be lost and renewed before we give up.
const MAX_REBROWSE: u32 = 3;

/// Most service names remembered in each of the session's tallies (seen, rejected, unusable):
/// they only feed counts in the "nothing found" explanation, and 256 names of at most 255 bytes
/// keep a flood of forged services to under 200 KiB; past it the counts stop growing.
const MAX_TALLY: usize = 256;

/// Inserts `name` unless `set` is full; `true` when it was not there before.
fn remember(set: &mut HashSet<String>, name: String) -> bool {
    if set.len() >= MAX_TALLY && !set.contains(&name) {
        return false;
    }
    set.insert(name)
}

/// What the session saw, for the "nothing found" explanation.
#[derive(Debug, Default)]
struct Tally {
    reported: usize,
    seen: HashSet<String>,
    rejected: HashSet<String>,
    unusable: HashSet<String>,
    own_heard: bool,
}

pub(crate) struct Session<'a> {
    config: &'a Config,
    ctx: &'a Context,
    names: Vec<String>,
    interfaces: Vec<Interface>,
    port: u16,
    own: Fingerprint,
    tally: Tally,
    /// The key behind each instance reported, so that its removal can be told; at most
    /// [`MAX_TALLY`] (an instance past that is released when the session ends).
    instances: HashMap<String, Fingerprint>,
}

/// What an mDNS event means for the chain.
enum News {
    Seen(Peer),
    Gone(Fingerprint),
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        config: &'a Config,
        ctx: &'a Context,
        interfaces: Vec<Interface>,
        port: u16,
    ) -> Self {
        Self {
            config,
            ctx,
            names: interfaces.iter().map(|i| i.name.clone()).collect(),
            interfaces,
            port,
            own: ctx.identity().fingerprint(),
            tally: Tally::default(),
            instances: HashMap::new(),
        }
    }

    pub(crate) async fn run(mut self, sink: &PeerSink) -> Result<(), Error> {
        let started = Instant::now();
        tracing::debug!("mdns: session starting");
        let mut daemon = Daemon::start(&self.names, self.config.ipv6)?;
        // lab-bench's mdns-timeline reads these two lines to split the time to the first peer.
        tracing::debug!(took = ?started.elapsed(), "mdns: daemon started");
        let served = self.serve(&mut daemon, sink).await;
        let queries = daemon.queries_sent().await;
        daemon.close().await;
        served?;
        if self.tally.reported > 0 {
            return Ok(());
        }
        Err(self.silence(started.elapsed(), queries))
    }

    /// Announces and browses until the session stops; the caller closes the daemon whatever
    /// this returns.
    async fn serve(&mut self, daemon: &mut Daemon, sink: &PeerSink) -> Result<(), Error> {
        let mut advert = self.ctx.advert();
        let monitor = daemon.monitor()?;
        let info = self.service_info(*advert.borrow_and_update())?;
        let own_fullname = info.get_fullname().to_owned();
        daemon.register(info)?;
        let mut events = daemon.browse(SERVICE_TYPE)?;
        tracing::debug!(interfaces = ?self.names, port = self.port, "mdns: announcing {own_fullname}");

        let mut next_event = pin!(events.clone().into_recv_async());
        let mut next_notice = pin!(monitor.clone().into_recv_async());
        let mut advert_open = true;
        let mut monitor_open = true;
        let mut rebrowsed = 0u32;
        loop {
            tokio::select! {
                biased;
                () = sink.stopped() => return Ok(()),
                () = self.ctx.cancellation().cancelled() => return Ok(()),
                changed = advert.changed(), if advert_open => {
                    if changed.is_err() {
                        advert_open = false;
                        continue;
                    }
                    let now = *advert.borrow_and_update();
                    tracing::debug!(?now, "mdns: advert changed, re-announcing");
                    daemon.register(self.service_info(now)?)?;
                }
                event = &mut next_event => {
                    match event {
                        Ok(event) => {
                            rebrowsed = 0;
                            let open = match self.on_event(event, &own_fullname) {
                                Some(News::Seen(peer)) => {
                                    self.tally.reported += 1;
                                    sink.found(peer).await
                                }
                                Some(News::Gone(fp)) => sink.lost(fp).await,
                                None => true,
                            };
                            if !open {
                                return Ok(());
                            }
                        }
                        // mdns-sd ends a subscription whose channel is full (we were blocked on a
                        // slow sink): browse again, which also replays its cache. A dead daemon
                        // refuses the browse instead.
                        Err(_) if rebrowsed < MAX_REBROWSE => {
                            rebrowsed += 1;
                            tracing::info!("mdns: browse subscription lost; browsing again");
                            events = daemon.browse(SERVICE_TYPE)?;
                        }
                        Err(_) => {
                            return Err(Error::Daemon {
                                op: "keep the browse subscription open",
                                source: mdns_sd::Error::Msg(format!(
                                    "it closed {MAX_REBROWSE} times in a row"
                                )),
                            });
                        }
                    }
                    next_event.set(events.clone().into_recv_async());
                }
                notice = &mut next_notice, if monitor_open => {
                    match notice {
                        Ok(notice) => on_notice(&notice),
                        Err(_) => monitor_open = false,
                    }
                    next_notice.set(monitor.clone().into_recv_async());
                }
            }
        }
    }

    fn service_info(&self, advert: Advert) -> Result<ServiceInfo, Error> {
        let identity = self.ctx.identity();
        let txt = Txt::new(self.own, identity.name(), advert);
        let id = txt.device_id();
        // The id keeps the instance name unique per key; the name makes it readable in browsers.
        let mut label = txt::clean_name(identity.name(), txt::NAME_MAX - 17);
        if label.is_empty() {
            label = "localpair".to_owned();
        }
        let entries = txt.entries();
        let mut info = ServiceInfo::new(
            SERVICE_TYPE,
            &format!("{label} {id}"),
            &format!("lp-{id}.local."),
            (),
            self.port,
            &entries[..],
        )
        .map_err(Error::daemon("describe our service"))?
        .enable_addr_auto();
        info.set_interfaces(self.names.iter().map(mdns_sd::IfKind::from).collect());
        info.set_requires_probe(self.config.probe);
        Ok(info)
    }

    fn on_event(&mut self, event: ServiceEvent, own_fullname: &str) -> Option<News> {
        match event {
            ServiceEvent::SearchStarted(what) => {
                tracing::debug!("mdns: query for {what}");
                None
            }
            ServiceEvent::ServiceFound(_, fullname) => {
                if !fullname.eq_ignore_ascii_case(own_fullname) {
                    remember(&mut self.tally.seen, fullname);
                }
                None
            }
            ServiceEvent::ServiceResolved(service) => {
                self.on_resolved(&service, own_fullname).map(News::Seen)
            }
            ServiceEvent::ServiceRemoved(_, fullname) => {
                tracing::debug!(service = ?fullname, "mdns: said goodbye or expired");
                let fp = self.instances.remove(&fullname)?;
                // The same key may still be announced under another instance name.
                let elsewhere = self.instances.values().any(|other| *other == fp);
                (!elsewhere).then_some(News::Gone(fp))
            }
            other => {
                tracing::trace!(?other, "mdns: event");
                None
            }
        }
    }

    fn on_resolved(&mut self, service: &ResolvedService, own_fullname: &str) -> Option<Peer> {
        let fullname = &service.fullname;
        if fullname.eq_ignore_ascii_case(own_fullname) {
            self.tally.own_heard = true;
            return None;
        }
        remember(&mut self.tally.seen, fullname.clone());
        let parsed = Txt::parse(service.txt_properties.iter().map(|p| (p.key(), p.val())))
            .and_then(|txt| {
                if service.port == 0 {
                    Err(Error::ZeroPort)
                } else {
                    Ok(txt)
                }
            });
        let txt = match parsed {
            Ok(txt) => txt,
            Err(error) => {
                // Once per instance at info level: a foreign responder must not flood the log.
                // Names are the sender's text: logged escaped (`?`), never raw to a terminal.
                if remember(&mut self.tally.rejected, fullname.clone()) {
                    tracing::info!(service = ?fullname, %error, "mdns: ignoring a service of our type");
                } else {
                    tracing::debug!(service = ?fullname, %error, "mdns: still ignoring");
                }
                return None;
            }
        };
        self.tally.rejected.remove(fullname);
        if txt.fingerprint == self.own {
            // Our key under another instance name (a renamed duplicate, or another process
            // sharing our state directory).
            self.tally.own_heard = true;
            return None;
        }
        // Re-read the subnets each time: a long session outlives a DHCP renumbering.
        let interfaces = match self.ctx.interfaces() {
            Ok(now) => now
                .into_iter()
                .filter(|i| self.names.contains(&i.name))
                .collect(),
            Err(_) => self.interfaces.clone(),
        };
        let found: Vec<(IpAddr, u32)> = service.addresses.iter().map(scoped).collect();
        let addrs = addrs::permitted(
            found.iter().copied(),
            service.port,
            &interfaces,
            self.config.ipv6,
        );
        if addrs.is_empty() {
            if remember(&mut self.tally.unusable, fullname.clone()) {
                tracing::info!(
                    service = ?fullname,
                    addresses = ?found,
                    "mdns: peer has no address on a permitted interface's subnet; ignored"
                );
            }
            return None;
        }
        self.tally.unusable.remove(fullname);
        tracing::debug!(service = ?fullname, ?addrs, "mdns: peer resolved");
        if self.instances.len() < MAX_TALLY || self.instances.contains_key(fullname) {
            self.instances.insert(fullname.clone(), txt.fingerprint);
        }
        Some(txt.into_peer(addrs))
    }

    fn silence(&self, elapsed: Duration, queries: Option<i64>) -> Error {
        let t = &self.tally;
        Error::NothingFound(Box::new(Silence {
            service_type: SERVICE_TYPE,
            interfaces: self.names.join(", "),
            elapsed,
            queries,
            seen: t.seen.len(),
            rejected: t.rejected.len(),
            unusable: t.unusable.len(),
            own_heard: t.own_heard,
        }))
    }
}

fn scoped(ip: &ScopedIp) -> (IpAddr, u32) {
    match ip {
        ScopedIp::V6(v6) => (IpAddr::V6(*v6.addr()), v6.scope_id().index),
        other => (other.to_ip_addr(), 0),
    }
}

fn on_notice(notice: &DaemonEvent) {
    match notice {
        DaemonEvent::Error(e) => tracing::warn!(error = %e, "mdns: daemon error"),
        DaemonEvent::NameChange(change) => tracing::warn!(
            from = %change.original,
            to = %change.new_name,
            "mdns: name conflict; another responder uses our name (same device key?)"
        ),
        other => tracing::trace!(?other, "mdns: daemon"),
    }
}
