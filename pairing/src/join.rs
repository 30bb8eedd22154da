//! The joiner side: dial every address known for the host, in parallel, until one pairs.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::wire::Message;
use super::{EXPORTER_LABEL, PairedPeer, read_message, send};
use crate::code::{PairingCode, Role};
use crate::error::Error;
use localpair_core::chain::{DiscoverReport, DiscovererChain, DiscoveryGoal, explain};
use localpair_core::identity::Identity;
use localpair_core::tls;
use localpair_core::{Context, JoinTarget, Peer};

/// How a joiner dials.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JoinOptions {
    /// Limit for one dial (TCP connect, TLS, proofs).
    pub dial_timeout: Duration,
    /// Limit for the whole join, from start (waiting for the code included).
    pub deadline: Duration,
    /// Dials in flight at once.
    pub max_parallel: usize,
    /// Every sighting during the join is also offered here (dropped when full), so a UI can list
    /// the devices found while the code is still being typed.
    pub sightings: Option<mpsc::Sender<Peer>>,
}

impl Default for JoinOptions {
    fn default() -> Self {
        Self {
            dial_timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(30),
            max_parallel: 16,
            sightings: None,
        }
    }
}

/// One dial and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DialRecord {
    /// Where.
    pub addr: SocketAddr,
    /// The strategy that supplied the address.
    pub via: String,
    /// Start, from the start of the join.
    pub started_ms: u64,
    /// Duration.
    pub elapsed_ms: u64,
    /// `None` for the dial that paired.
    pub error: Option<String>,
}

/// A finished pairing, seen from the joiner.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Joined {
    /// The host.
    pub peer: PairedPeer,
    /// The strategy whose address paired.
    pub via: String,
    /// From start to pairing.
    #[serde(rename = "elapsed_ms", serialize_with = "localpair_core::serde_millis")]
    pub elapsed: Duration,
    /// Every dial.
    pub dials: Vec<DialRecord>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Serialises the proof step of parallel dials to one host: connections race, but only one at a
/// time may spend the code, and none after one succeeded (a second proof would only meet "used").
#[derive(Debug, Default)]
struct ProofTurn {
    done: tokio::sync::Mutex<bool>,
}

/// One pairing handshake with the host at `addr`.
pub async fn dial(
    identity: &Identity,
    code: &PairingCode,
    addr: SocketAddr,
) -> Result<PairedPeer, Error> {
    dial_in_turn(identity, code, addr, &ProofTurn::default()).await
}

async fn dial_in_turn(
    identity: &Identity,
    code: &PairingCode,
    addr: SocketAddr,
    turn: &ProofTurn,
) -> Result<PairedPeer, Error> {
    let config = tls::client_config(identity, code.fingerprint, crate::ALPN)?;
    let mut stream = tls::connect(config, addr).await?;
    let mut done = turn.done.lock().await;
    if *done {
        return Err(Error::Superseded { addr });
    }
    let mut exporter = [0u8; 32];
    stream
        .get_ref()
        .1
        .export_keying_material(&mut exporter, EXPORTER_LABEL, None)?;
    send(
        &mut stream,
        &Message::JoinerProof(code.secret.proof(Role::Joiner, &exporter)),
    )
    .await?;
    match read_message(&mut stream).await? {
        Message::HostProof(proof) if code.secret.verify(Role::Host, &exporter, &proof) => {}
        Message::HostProof(_) => return Err(Error::HostProofInvalid { addr }),
        Message::Refused(refusal) => return Err(Error::Refused { addr, refusal }),
        _ => {
            return Err(Error::Malformed {
                reason: "expected the host's proof",
            });
        }
    }
    // Both proofs checked: the code is spent, whatever happens to the rest of this exchange.
    *done = true;
    drop(done);
    send(
        &mut stream,
        &Message::Info {
            name: identity.name().to_owned(),
        },
    )
    .await?;
    let Message::Info { name } = read_message(&mut stream).await? else {
        return Err(Error::Malformed {
            reason: "expected the host's info",
        });
    };
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
    Ok(PairedPeer {
        id: code.device_id(),
        name,
        fingerprint: code.fingerprint,
        addr,
    })
}

/// What a joiner holding `code` looks for: discoverers that dial known addresses or scan for the
/// port (and confirm a hit with a TLS handshake pinned to the key) wait for it.
pub fn join_target(code: &PairingCode) -> JoinTarget {
    JoinTarget::new(
        code.fingerprint,
        code.port,
        code.candidates.clone(),
        code.session_tag(),
        crate::ALPN,
    )
}

/// Whether an error ends the join: the host itself said no, so other addresses cannot help.
fn is_final(error: &Error) -> bool {
    matches!(
        error,
        Error::Refused { .. } | Error::HostProofInvalid { .. }
    )
}

fn matches_code(peer: &Peer, code: &PairingCode) -> bool {
    peer.fingerprint == code.fingerprint || peer.session_tag == Some(code.session_tag())
}

struct Dialer {
    identity: Arc<Identity>,
    options: JoinOptions,
    started: Instant,
    slots: Arc<Semaphore>,
    dialed: HashSet<SocketAddr>,
    turn: Arc<ProofTurn>,
    dials: JoinSet<(DialRecord, Result<PairedPeer, Error>)>,
    records: Vec<DialRecord>,
}

impl Dialer {
    fn dial_peer(&mut self, peer: &Peer, code: &Arc<PairingCode>) {
        if !matches_code(peer, code) {
            return;
        }
        for addr in &peer.addrs {
            let mut target = *addr;
            target.set_port(code.port);
            if !self.dialed.insert(target) {
                continue;
            }
            let identity = Arc::clone(&self.identity);
            let code = Arc::clone(code);
            let slots = Arc::clone(&self.slots);
            let limit = self.options.dial_timeout;
            let started = self.started;
            let via = peer.strategy.clone();
            let turn = Arc::clone(&self.turn);
            self.dials.spawn(async move {
                let _slot = slots.acquire_owned().await;
                let began = Instant::now();
                let result =
                    tokio::time::timeout(limit, dial_in_turn(&identity, &code, target, &turn))
                        .await
                        .unwrap_or_else(|_| {
                            Err(Error::timeout(format!("pairing with {target}"), limit))
                        });
                let record = DialRecord {
                    addr: target,
                    via,
                    started_ms: millis(began - started),
                    elapsed_ms: millis(began.elapsed()),
                    error: result.as_ref().err().map(ToString::to_string),
                };
                (record, result)
            });
        }
    }
}

/// Joins the host the code describes.
///
/// Discovery (the chain) starts at once, before the code is known (the post-shared flow reads it
/// later); every address found for the host, and the code's own candidates through the `direct`
/// discoverer, is dialled in parallel as soon as both are known. The first successful handshake
/// wins and everything else is stopped. On failure the error lists what was tried and the likely
/// cause.
pub async fn join(
    ctx: &Context,
    chain: &DiscovererChain,
    code: impl Future<Output = Result<PairingCode, Error>> + Send,
    options: JoinOptions,
) -> Result<Joined, Error> {
    let started = Instant::now();
    let deadline = started + options.deadline;
    let stop = CancellationToken::new();
    let _stop_discovery = stop.clone().drop_guard();
    let (live_tx, mut live_rx) = mpsc::channel::<Peer>(256);
    let discovery = {
        let ctx = ctx.clone();
        let plan = chain.plan().with_deadline(options.deadline);
        let chain = chain.clone().with_plan(plan);
        let goal = DiscoveryGoal {
            until: Some(stop.clone()),
            ..DiscoveryGoal::default()
        };
        tokio::spawn(async move { chain.discover(&ctx, goal, Some(live_tx)).await })
    };
    let mut dialer = Dialer {
        identity: Arc::clone(ctx.identity()),
        slots: Arc::new(Semaphore::new(options.max_parallel.max(1))),
        options,
        started,
        dialed: HashSet::new(),
        turn: Arc::default(),
        dials: JoinSet::new(),
        records: Vec::new(),
    };
    let mut sightings: Vec<Peer> = Vec::new();
    let mut code_slot: Option<Arc<PairingCode>> = None;
    let mut live_open = true;
    // Set while nothing is left to try although discovery has told where the host is: the join
    // ends there instead of waiting out its deadline.
    let mut give_up_at: Option<Instant> = None;
    tokio::pin!(code);
    let failure = loop {
        give_up_at = match &code_slot {
            Some(code) if exhausted(code, &sightings, &dialer) => {
                Some(give_up_at.unwrap_or_else(|| Instant::now() + SETTLE))
            }
            _ => None,
        };
        tokio::select! {
            read = &mut code, if code_slot.is_none() => {
                let code = Arc::new(read?);
                ctx.set_join_target(join_target(&code));
                for peer in &sightings {
                    dialer.dial_peer(peer, &code);
                }
                code_slot = Some(code);
            }
            sighting = live_rx.recv(), if live_open => match sighting {
                Some(peer) => {
                    if let Some(out) = &dialer.options.sightings {
                        let _ = out.try_send(peer.clone());
                    }
                    if let Some(code) = &code_slot {
                        dialer.dial_peer(&peer, code);
                    }
                    sightings.push(peer);
                }
                None => live_open = false,
            },
            Some(joined) = dialer.dials.join_next(), if !dialer.dials.is_empty() => {
                let Ok((record, result)) = joined else { continue };
                dialer.records.push(record);
                match result {
                    Ok(peer) => {
                        stop.cancel();
                        dialer.dials.abort_all();
                        let via = dialer.records.last().map(|r| r.via.clone()).unwrap_or_default();
                        return Ok(Joined {
                            peer,
                            via,
                            elapsed: started.elapsed(),
                            dials: dialer.records,
                        });
                    }
                    Err(error) if is_final(&error) => break Some(error),
                    Err(_) => {}
                }
            }
            () = tokio::time::sleep_until(deadline) => break None,
            () = sleep_until_opt(give_up_at) => break None,
        }
    };
    stop.cancel();
    dialer.dials.abort_all();
    let report = tokio::time::timeout(Duration::from_secs(2), discovery)
        .await
        .ok()
        .and_then(Result::ok);
    if let Some(error) = failure {
        return Err(error);
    }
    Err(Error::JoinFailed {
        summary: summarize(code_slot.as_deref(), &dialer.records, report.as_ref()),
    })
}

/// How long a join that has nothing left to try waits for discovery to report another address
/// before it gives up.
const SETTLE: Duration = Duration::from_secs(1);

/// Whether nothing is left to try: every dial has ended in failure, and discovery has reported
/// the host at an address the code does not name (so the host is alive and discovery works:
/// waiting longer would only repeat what failed).
fn exhausted(code: &PairingCode, sightings: &[Peer], dialer: &Dialer) -> bool {
    dialer.dials.is_empty()
        && !dialer.records.is_empty()
        && dialer.records.iter().all(|r| r.error.is_some())
        && sightings
            .iter()
            .filter(|p| matches_code(p, code))
            .flat_map(|p| &p.addrs)
            .any(|a| !code.candidates.contains(&a.ip()))
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// "What was tried" and "what likely went wrong", in a sentence or three.
fn summarize(
    code: Option<&PairingCode>,
    dials: &[DialRecord],
    report: Option<&DiscoverReport>,
) -> String {
    let Some(code) = code else {
        return "no pairing code arrived before the deadline".to_owned();
    };
    let mut out = String::new();
    if dials.is_empty() {
        out.push_str("no address for the host was found");
    } else {
        let tried: Vec<String> = dials
            .iter()
            .map(|d| {
                format!(
                    "{} (from {}): {}",
                    d.addr,
                    d.via,
                    d.error.as_deref().unwrap_or("ok")
                )
            })
            .collect();
        out.push_str(&format!("tried {}", tried.join("; ")));
    }
    if let Some(report) = report {
        out.push_str(&format!("; discovery: {}", explain(&report.attempts)));
    }
    let errors: Vec<&str> = dials.iter().filter_map(|d| d.error.as_deref()).collect();
    // Discovery found the host at an address the code does not name, and nothing listens there:
    // the host listens only on the code's addresses, which this device cannot reach.
    let refused_elsewhere = dials.iter().any(|d| {
        !code.candidates.contains(&d.addr.ip())
            && d.error.as_deref().is_some_and(|e| e.contains("refused"))
    });
    let listens_only = format!(
        "the host listens only on {} (a VPN or another network?), and this device cannot reach \
         that; discovery found it at an address where nothing listens for pairing",
        list_addresses(&code.candidates)
    );
    let hint = if errors
        .iter()
        .any(|e| e.contains("does not match the pinned key"))
    {
        "a different device answered at the host's address (an impostor, or the host restarted with a new key)"
    } else if refused_elsewhere && !code.candidates.is_empty() {
        listens_only.as_str()
    } else if dials.is_empty() {
        "the host is not on this network (another subnet, a VPN, or Wi-Fi client isolation), or it stopped"
    } else if errors.iter().all(|e| e.contains("timed out")) {
        "packets to the host are dropped: a firewall on the host, or Wi-Fi client isolation"
    } else if errors.iter().any(|e| e.contains("refused")) {
        "nothing listens at those addresses any more: the host stopped or moved to another address"
    } else {
        "the host could not be reached"
    };
    out.push_str(&format!(". Likely: {hint}"));
    out
}

fn list_addresses(addrs: &[std::net::IpAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
