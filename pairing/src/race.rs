//! The dial race both joining and reconnecting run: discovery starts at once; every address found
//! for the device sought is dialled in parallel as soon as the device is known; a dial that was
//! accepted and then dropped (a listener under load) is tried again with back-off; when the
//! device was sighted but no dial got through within [`OFFER_DELAY`], this device also offers
//! the other direction (it listens, announces an [`Offer`](localpair_core::Offer), and the
//! device sought dials it); the first connection that succeeds, either way, wins and everything
//! else stops.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use localpair_core::chain::{DiscoverReport, DiscovererChain, DiscoveryGoal};
use localpair_core::{Context, JoinTarget, Peer};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::link::Link;
use crate::offer::{Inbound, OfferListener};

mod dial;
use dial::{Dialer, definitive, millis, worth_retrying};

/// How long a race that has nothing left to try waits for discovery to report another address
/// before it gives up.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);
/// First wait before a dropped dial is tried again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two dials of one address.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Sightings kept while the device sought is not known yet (a code still being typed); older
/// ones are dropped first.
pub(crate) const MAX_SIGHTINGS: usize = 256;
/// Capacity of the channel from discovery; discovery waits when the race falls behind.
const LIVE_QUEUE: usize = 256;
/// How long after the first sighting of the device sought this device offers the other
/// direction if no dial has got through: on a LAN a dial takes a few milliseconds, so waiting
/// longer only delays the case where a firewall drops them.
pub(crate) const OFFER_DELAY: Duration = Duration::from_millis(300);
/// How long an offer waits to be dialled before a race whose dials all went unanswered gives
/// up (the device sought was heard, so nothing else will change).
pub(crate) const OFFER_WAIT: Duration = Duration::from_secs(3);
/// The `via` of a connection the device sought opened to our offer.
pub(crate) const OTHER_DIRECTION: &str = "other direction (it dialled this device)";

/// One dial and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DialRecord {
    /// Where.
    pub addr: SocketAddr,
    /// The strategy that supplied the address.
    pub via: String,
    /// Start, from the start of the race.
    pub started_ms: u64,
    /// Duration.
    pub elapsed_ms: u64,
    /// `None` for the dial that won.
    pub error: Option<String>,
}

/// `addr (from via): error`, or `: ok` for the dial that won: one entry of a failure's "tried".
impl std::fmt::Display for DialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let outcome = self.error.as_deref().unwrap_or("ok");
        write!(f, "{} (from {}): {outcome}", self.addr, self.via)
    }
}

/// What is dialled, and how.
pub(crate) trait Target: Send + Sync + 'static {
    /// Whether a sighting is of the device sought.
    fn matches(&self, peer: &Peer) -> bool;
    /// The address to dial for one of a matching peer's addresses, if any.
    fn dial_addr(&self, peer: &Peer, addr: SocketAddr) -> Option<SocketAddr>;
    /// One dial.
    fn dial(
        self: Arc<Self>,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<Link, Error>> + Send>>;
    /// The device itself said no: no other address can help.
    fn is_final(&self, error: &Error) -> bool;
    /// For the discoverers that wait for one (known addresses, subnet scan).
    /// `None` when the device is known by its announcements only (a short code's channel).
    fn join_target(&self) -> Option<JoinTarget>;
    /// The other direction: a listener the device sought may dial, announced through `ctx`.
    /// `None` when this target never offers the other direction.
    fn offer(&self, ctx: &Context) -> Result<Option<OfferListener>, Error>;
}

/// Limits of one race.
#[derive(Debug, Clone)]
pub(crate) struct RaceOptions {
    pub(crate) dial_timeout: Duration,
    pub(crate) deadline: Duration,
    pub(crate) max_parallel: usize,
    pub(crate) sightings: Option<mpsc::Sender<Peer>>,
}

/// A won race.
pub(crate) struct Won {
    pub(crate) won: Link,
    pub(crate) via: String,
    pub(crate) elapsed: Duration,
    pub(crate) dials: Vec<DialRecord>,
}

/// A lost race: the final error if the device said no, else what was tried.
pub(crate) struct Lost {
    pub(crate) refusal: Option<Error>,
    pub(crate) had_target: bool,
    pub(crate) dials: Vec<DialRecord>,
    pub(crate) sightings: Vec<Peer>,
    pub(crate) report: Option<DiscoverReport>,
    /// The port this device offered the other direction on, if it did.
    pub(crate) offered: Option<u16>,
}

/// Whether discovery reported the device at an address none of its known addresses names: it
/// is alive and discovery works, so waiting longer would only repeat what failed.
fn found_elsewhere<T: Target>(target: &T, sightings: &[Peer]) -> bool {
    let named = target
        .join_target()
        .map(|t| t.candidates)
        .unwrap_or_default();
    sightings
        .iter()
        .filter(|p| target.matches(p))
        .flat_map(|p| &p.addrs)
        .any(|a| !named.contains(&a.ip()))
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs the race. `target` resolves once the device sought is known (a code typed, or at once);
/// an error from it ends the race with that error.
pub(crate) async fn race<T: Target>(
    ctx: &Context,
    chain: &DiscovererChain,
    target: impl Future<Output = Result<Arc<T>, Error>> + Send,
    options: RaceOptions,
) -> Result<Result<Won, Lost>, Error> {
    let started = Instant::now();
    let deadline = started + options.deadline;
    let stop = CancellationToken::new();
    let _stop_discovery = stop.clone().drop_guard();
    let (live_tx, mut live_rx) = mpsc::channel::<Peer>(LIVE_QUEUE);
    let discovery = {
        let ctx = ctx.clone();
        let chain = chain
            .clone()
            .with_plan(chain.plan().with_deadline(options.deadline));
        let goal = DiscoveryGoal {
            until: Some(stop.clone()),
            ..DiscoveryGoal::default()
        };
        tokio::spawn(async move { chain.discover(&ctx, goal, Some(live_tx)).await })
    };
    let mut dialer = Dialer {
        slots: Arc::new(Semaphore::new(options.max_parallel.max(1))),
        options,
        started,
        addrs: Vec::new(),
        index: HashMap::new(),
        retries: Vec::new(),
        dials: JoinSet::new(),
        records: Vec::new(),
        all_definitive: true,
        all_unanswered: true,
    };
    let mut sightings: Vec<Peer> = Vec::new();
    let mut sought: Option<Arc<T>> = None;
    let mut live_open = true;
    let mut give_up_at: Option<Instant> = None;
    // The other direction: when the device sought was first sighted, and the listener offered.
    let mut first_sighted: Option<Instant> = None;
    let mut offer_tried = false;
    let mut offering: Option<(OfferListener, Instant)> = None;
    tokio::pin!(target);
    let refusal = loop {
        // Nothing in flight and nothing due: discovery is over, so nothing more can be tried.
        if sought.is_some() && !live_open && dialer.dials.is_empty() && dialer.retries.is_empty() {
            break None;
        }
        // Every address failed, and either discovery reported the device somewhere its known
        // addresses do not name (it is alive, and that failed too) or every failure was final
        // (refused, unreachable, another key): give discovery a moment for another address, then
        // end instead of waiting out the deadline.
        give_up_at = match &sought {
            Some(t)
                if dialer.idle_and_failed()
                    && (dialer.all_definitive || found_elsewhere(t.as_ref(), &sightings)) =>
            {
                Some(give_up_at.unwrap_or_else(|| Instant::now() + SETTLE))
            }
            _ => None,
        };
        // An offer gets its time to be dialled; once it had it, dials that never reached a
        // listener will not start to (the device was heard, so it is there: a firewall drops
        // them).
        if let Some((_, since)) = &offering {
            let waited = *since + OFFER_WAIT;
            give_up_at = match give_up_at {
                Some(at) => Some(at.max(waited)),
                None if dialer.all_unanswered && !dialer.records.is_empty() => Some(waited),
                None => None,
            };
        }
        let offer_at = first_sighted
            .filter(|_| !offer_tried && sought.is_some())
            .map(|at| at + OFFER_DELAY);
        let retry_at = dialer.next_retry();
        tokio::select! {
            known = &mut target, if sought.is_none() => {
                let known = known?;
                if let Some(join_target) = known.join_target() {
                    ctx.set_join_target(join_target);
                }
                for peer in &sightings {
                    dialer.offer(&known, peer);
                }
                if sightings.iter().any(|p| known.matches(p) && announced(p)) {
                    first_sighted.get_or_insert_with(Instant::now);
                }
                sought = Some(known);
            }
            sighting = live_rx.recv(), if live_open => match sighting {
                Some(peer) => {
                    if let Some(out) = &dialer.options.sightings {
                        let _ = out.try_send(peer.clone());
                    }
                    if let Some(t) = &sought {
                        dialer.offer(t, &peer);
                        if t.matches(&peer) && announced(&peer) {
                            first_sighted.get_or_insert_with(Instant::now);
                        }
                    }
                    if sightings.len() >= MAX_SIGHTINGS {
                        sightings.remove(0);
                    }
                    sightings.push(peer);
                }
                None => live_open = false,
            },
            Some(joined) = dialer.dials.join_next(), if !dialer.dials.is_empty() => {
                let Ok((index, record, result)) = joined else { continue };
                dialer.records.push(record);
                match (result, &sought) {
                    (Ok(won), _) => {
                        stop.cancel();
                        dialer.dials.abort_all();
                        let via = dialer.records.last().map(|r| r.via.clone()).unwrap_or_default();
                        return Ok(Ok(Won {
                            won,
                            via,
                            elapsed: started.elapsed(),
                            dials: dialer.records,
                        }));
                    }
                    (Err(error), Some(t)) if t.is_final(&error) => break Some(error),
                    (Err(error), _) => {
                        dialer.all_definitive &= definitive(&error);
                        dialer.all_unanswered &= definitive(&error) || unanswered(&error);
                        if worth_retrying(&error) {
                            dialer.schedule_retry(index);
                        }
                    }
                }
            }
            () = sleep_until_opt(retry_at) => {
                if let Some(t) = sought.clone() {
                    dialer.due_retries(&t);
                }
            }
            () = sleep_until_opt(offer_at) => {
                offer_tried = true;
                if let Some(t) = &sought {
                    match t.offer(ctx) {
                        Ok(Some(listener)) => offering = Some((listener, Instant::now())),
                        Ok(None) => {}
                        Err(error) => tracing::warn!(%error, "cannot offer the other direction"),
                    }
                }
            }
            inbound = next_inbound(&mut offering) => match inbound {
                Some((addr, Ok(won))) => {
                    stop.cancel();
                    dialer.dials.abort_all();
                    dialer.records.push(DialRecord {
                        addr,
                        via: OTHER_DIRECTION.to_owned(),
                        started_ms: millis(started.elapsed()),
                        elapsed_ms: 0,
                        error: None,
                    });
                    return Ok(Ok(Won {
                        won,
                        via: OTHER_DIRECTION.to_owned(),
                        elapsed: started.elapsed(),
                        dials: dialer.records,
                    }));
                }
                Some((addr, Err(error))) => {
                    tracing::info!(%addr, %error, "a connection to our offer failed");
                    dialer.records.push(DialRecord {
                        addr,
                        via: OTHER_DIRECTION.to_owned(),
                        started_ms: millis(started.elapsed()),
                        elapsed_ms: 0,
                        error: Some(error.to_string()),
                    });
                    if sought.as_ref().is_some_and(|t| t.is_final(&error)) {
                        break Some(error);
                    }
                }
                None => offering = None,
            },
            () = tokio::time::sleep_until(deadline) => break None,
            () = sleep_until_opt(give_up_at) => break None,
        }
    };
    let offered = offering.as_ref().map(|(listener, _)| listener.port());
    drop(offering);
    stop.cancel();
    dialer.dials.abort_all();
    let report = tokio::time::timeout(Duration::from_secs(2), discovery)
        .await
        .ok()
        .and_then(Result::ok);
    Ok(Err(Lost {
        refusal,
        had_target: sought.is_some(),
        dials: dialer.records,
        sightings,
        report,
        offered,
    }))
}

/// The next connection to our offer, if one is open; never resolves otherwise.
async fn next_inbound(offering: &mut Option<(OfferListener, Instant)>) -> Option<Inbound> {
    match offering {
        Some((listener, _)) => listener.next().await,
        None => std::future::pending().await,
    }
}

/// Whether a sighting comes from the device's own announcements (it is alive and discovery
/// reaches it), not from a discoverer that only echoes known addresses or finds an open port:
/// those do not know the device's name, announcements always carry it.
pub(crate) fn announced(peer: &Peer) -> bool {
    !peer.name.is_empty()
}

/// Whether a failed dial never reached a listener: it timed out (packets dropped on the way or
/// by a firewall) rather than being refused or answered.
fn unanswered(error: &Error) -> bool {
    matches!(error, Error::Core(localpair_core::Error::Timeout { .. }))
}

/// The addresses, comma-separated.
pub(crate) fn list_addresses(addrs: &[IpAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
