//! The joiner side: dial every address known for the host, in parallel, until one pairs.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use super::wire::{Message, Refusal};
use super::{EXPORTER_LABEL, PairedPeer, read_message, send};
use crate::code::{PairingCode, Role};
use crate::error::{Attempted, Error};
use crate::link::Link;
use crate::offer::OfferListener;
use crate::race::{DialRecord, Lost, RaceOptions, Target, list_addresses, race};
use localpair_core::chain::{DiscovererChain, explain};
use localpair_core::identity::Identity;
use localpair_core::tls;
use localpair_core::{Context, JoinTarget, OfferTo, Peer};

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
    /// This device's link port, told to the host so it can reconnect later.
    pub link_port: Option<u16>,
    /// Where this device listens when it offers the host the other direction (the host is
    /// heard but no dial gets through): the pairing port unless set; 0 lets the OS choose.
    pub offer_port: u16,
}

impl Default for JoinOptions {
    fn default() -> Self {
        Self {
            dial_timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(30),
            max_parallel: 16,
            sightings: None,
            link_port: None,
            offer_port: crate::host::DEFAULT_PORT,
        }
    }
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

/// Serialises the proof step of parallel dials to one host: connections race, but only one at a
/// time may spend the code, and none after one succeeded (a second proof would only meet "used").
#[derive(Debug, Default)]
pub(crate) struct ProofTurn {
    done: tokio::sync::Mutex<bool>,
}

/// What the joiner brings to the proofs, in either direction.
#[derive(Debug)]
pub(crate) struct JoinerSide {
    /// The name this device tells the host.
    pub(crate) name: String,
    pub(crate) code: PairingCode,
    pub(crate) link_port: Option<u16>,
    pub(crate) turn: ProofTurn,
}

/// One pairing handshake with the host at `addr`.
/// The pairing's TLS stream stays open: it is the [`Link`] to the host.
pub async fn dial(
    identity: &Identity,
    code: &PairingCode,
    addr: SocketAddr,
) -> Result<Link, Error> {
    let side = JoinerSide {
        name: identity.name().to_owned(),
        code: code.clone(),
        link_port: None,
        turn: ProofTurn::default(),
    };
    dial_in_turn(identity, &side, addr).await
}

async fn dial_in_turn(
    identity: &Identity,
    side: &JoinerSide,
    addr: SocketAddr,
) -> Result<Link, Error> {
    let config = tls::client_config(identity, side.code.fingerprint, crate::ALPN)?;
    let stream = tls::connect(config, addr).await?;
    let mut exporter = [0u8; 32];
    stream
        .get_ref()
        .1
        .export_keying_material(&mut exporter, EXPORTER_LABEL, None)?;
    finish_as_joiner(
        stream,
        side,
        &exporter,
        addr,
        tokio_rustls::TlsStream::Client,
    )
    .await
}

/// The joiner's side once TLS is up, whichever device dialled: proofs and names, then the link
/// (`into_tls` says which end of TLS this device is).
pub(crate) async fn finish_as_joiner<S>(
    mut stream: S,
    side: &JoinerSide,
    exporter: &[u8; 32],
    host_addr: SocketAddr,
    into_tls: fn(S) -> tokio_rustls::TlsStream<tokio::net::TcpStream>,
) -> Result<Link, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (name, link_port) = prove_as_joiner(&mut stream, side, exporter, host_addr).await?;
    Ok(Link::new(
        host_peer(&side.code, name, host_addr, link_port),
        into_tls(stream),
    ))
}

/// The host as the joiner paired with it.
pub(crate) fn host_peer(
    code: &PairingCode,
    name: String,
    addr: SocketAddr,
    link_port: Option<u16>,
) -> PairedPeer {
    PairedPeer {
        id: code.device_id(),
        name,
        fingerprint: code.fingerprint,
        addr,
        link_port,
    }
}

/// The joiner's side of a pairing on an open TLS stream to the code's host (its key pinned by
/// the TLS handshake), whichever side dialled: prove first, check the host's proof, exchange
/// names. Returns the host's name and link port.
pub(crate) async fn prove_as_joiner<S>(
    stream: &mut S,
    side: &JoinerSide,
    exporter: &[u8; 32],
    addr: SocketAddr,
) -> Result<(String, Option<u16>), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut done = side.turn.done.lock().await;
    if *done {
        return Err(Error::Superseded { addr });
    }
    let code = &side.code;
    send(
        stream,
        &Message::JoinerProof(code.secret.proof(Role::Joiner, exporter)),
    )
    .await?;
    match read_message(stream).await? {
        Message::HostProof(proof) if code.secret.verify(Role::Host, exporter, &proof) => {}
        Message::HostProof(_) => return Err(Error::HostProofInvalid { addr }),
        Message::Refused(refusal) => return Err(Error::Refused { addr, refusal }),
        _ => {
            return Err(Error::Malformed {
                reason: "expected the host's proof",
            });
        }
    }
    // Both proofs checked. The code is spent only once the names are through: if this exchange
    // breaks, another of our dials may take its turn (the host keeps the code valid).
    let names = swap_names_as_joiner(stream, &side.name, side.link_port).await?;
    *done = true;
    Ok(names)
}

/// The last step of every pairing, once both sides are authenticated: send our name and link
/// port, read the host's.
pub(crate) async fn swap_names_as_joiner<S>(
    stream: &mut S,
    name: &str,
    link_port: Option<u16>,
) -> Result<(String, Option<u16>), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    send(
        stream,
        &Message::Info {
            name: name.to_owned(),
            link_port,
        },
    )
    .await?;
    let Message::Info { name, link_port } = read_message(stream).await? else {
        return Err(Error::Malformed {
            reason: "expected the host's info",
        });
    };
    Ok((name, link_port))
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

/// The host a joiner holding a code looks for.
struct Pairing {
    identity: Arc<Identity>,
    side: Arc<JoinerSide>,
    /// Where to listen when offering the other direction.
    offer_port: u16,
}

impl Target for Pairing {
    fn matches(&self, peer: &Peer) -> bool {
        peer.fingerprint == self.side.code.fingerprint
            || peer.session_tag == Some(self.side.code.session_tag())
    }

    fn dial_addr(&self, _peer: &Peer, mut addr: SocketAddr) -> Option<SocketAddr> {
        addr.set_port(self.side.code.port);
        Some(addr)
    }

    fn dial(
        self: Arc<Self>,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<Link, Error>> + Send>> {
        Box::pin(async move { dial_in_turn(&self.identity, &self.side, addr).await })
    }

    fn is_final(&self, error: &Error) -> bool {
        // The host itself said no: other addresses cannot help. "Wait a moment" is not a no.
        matches!(error, Error::Refused { refusal, .. } if *refusal != Refusal::TooManyAttempts)
            || matches!(error, Error::HostProofInvalid { .. })
    }

    fn join_target(&self) -> Option<JoinTarget> {
        Some(join_target(&self.side.code))
    }

    fn offer(&self, ctx: &Context) -> Result<Option<OfferListener>, Error> {
        let mut listener =
            OfferListener::for_host(&self.identity, Arc::clone(&self.side), self.offer_port)?;
        listener.announce(ctx, OfferTo::Session(self.side.code.session_tag()));
        Ok(Some(listener))
    }
}

/// Joins the host the code describes.
///
/// Discovery (the chain) starts at once, before the code is known (the post-shared flow reads it
/// later); every address found for the host, and the code's own candidates through the `direct`
/// discoverer, is dialled in parallel as soon as both are known. The first successful handshake
/// wins and everything else is stopped; its TLS stream stays open as the [`Link`]. On failure the
/// error lists what was tried and the likely cause.
pub async fn join(
    ctx: &Context,
    chain: &DiscovererChain,
    code: impl Future<Output = Result<PairingCode, Error>> + Send,
    options: JoinOptions,
) -> Result<(Joined, Link), Error> {
    let identity = Arc::clone(ctx.identity());
    let link_port = options.link_port;
    let offer_port = options.offer_port;
    // The code, kept for the failure message.
    let (codes_tx, codes_rx) = std::sync::mpsc::channel();
    let target = async move {
        let code = code.await?;
        let _ = codes_tx.send(code.clone());
        Ok::<_, Error>(Arc::new(Pairing {
            side: Arc::new(JoinerSide {
                name: identity.name().to_owned(),
                code,
                link_port,
                turn: ProofTurn::default(),
            }),
            identity,
            offer_port,
        }))
    };
    let race_options = RaceOptions {
        dial_timeout: options.dial_timeout,
        deadline: options.deadline,
        max_parallel: options.max_parallel,
        sightings: options.sightings,
    };
    match race(ctx, chain, target, race_options).await? {
        Ok(won) => {
            let joined = Joined {
                peer: won.won.peer().clone(),
                via: won.via,
                elapsed: won.elapsed,
                dials: won.dials,
            };
            Ok((joined, won.won))
        }
        Err(lost) => {
            if let Some(refusal) = lost.refusal {
                return Err(refusal);
            }
            let code = codes_rx.try_recv().ok().filter(|_| lost.had_target);
            let (tried, likely) = summarize(code.as_ref(), &lost);
            Err(Error::JoinFailed(Box::new(Attempted {
                tried,
                likely,
                discovery: lost.report.map(|r| r.attempts).unwrap_or_default(),
                dials: lost.dials,
            })))
        }
    }
}

/// "What was tried" and "what likely went wrong", in a sentence or three.
fn summarize(code: Option<&PairingCode>, lost: &Lost) -> (String, String) {
    let (dials, report) = (&lost.dials, lost.report.as_ref());
    let Some(code) = code else {
        return (
            "no pairing code arrived before the deadline".to_owned(),
            "the code was not typed or pasted in time; start the join again".to_owned(),
        );
    };
    let mut out = String::new();
    if dials.is_empty() {
        out.push_str("no address for the host was found");
    } else {
        let tried: Vec<String> = dials.iter().map(ToString::to_string).collect();
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
    // Heard announcing: the host is on this network and discovery reaches it.
    let heard = lost.sightings.iter().find(|p| {
        (p.fingerprint == code.fingerprint || p.session_tag == Some(code.session_tag()))
            && crate::race::announced(p)
    });
    let all_timed_out = !errors.is_empty() && errors.iter().all(|e| e.contains("timed out"));
    let firewalled = match heard {
        Some(host) if all_timed_out => {
            Some(firewall_hint("the host", host, code.port, lost.offered))
        }
        _ => None,
    };
    let hint = if errors
        .iter()
        .any(|e| e.contains("does not match the pinned key"))
    {
        "a different device answered at the host's address (an impostor, or the host restarted with a new key)"
    } else if refused_elsewhere && !code.candidates.is_empty() {
        listens_only.as_str()
    } else if dials.is_empty() {
        "the host is not on this network (another subnet, a VPN, or Wi-Fi client isolation), or it stopped"
    } else if let Some(firewalled) = &firewalled {
        firewalled.as_str()
    } else if all_timed_out {
        "nothing was heard from the host and every connection timed out: Wi-Fi client \
         isolation or multicast filtering between the devices, or a firewall on the host \
         (`localpair diagnose` on both tells which)"
    } else if errors.iter().any(|e| e.contains("refused")) {
        "nothing listens at those addresses any more: the host stopped or moved to another address"
    } else {
        "the host could not be reached"
    };
    (out, hint.to_owned())
}

/// "Discovery works, connections do not": names the firewall that drops them. `who` was heard
/// announcing (as `heard`) but every dial to its `port` timed out; `offered` is the port this
/// device offered the other direction on, if it did (and nothing came).
pub(crate) fn firewall_hint(who: &str, heard: &Peer, port: u16, offered: Option<u16>) -> String {
    let at = heard
        .addrs
        .first()
        .map(|a| format!(" at {}", a.ip()))
        .unwrap_or_default();
    let mut hint = format!(
        "{who} is on this network (heard announcing{at} via {}) but a firewall on {who} drops \
         incoming TCP {port}",
        heard.strategy
    );
    match offered {
        Some(offered) => hint.push_str(&format!(
            "; this device offered the other direction on TCP {offered} and no connection \
             arrived either: a firewall on this device drops incoming TCP {offered} too"
        )),
        None => hint.push_str("; the other direction was not tried"),
    }
    hint.push_str(". `localpair firewall` prints the rules that let localpair through");
    hint
}
