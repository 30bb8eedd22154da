//! The joiner of a short-code pairing: finds the hosts announcing its channel, and runs the key
//! exchange with them, one at a time; the first verdict (paired, wrong code, code ended) is final.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use localpair_core::chain::{DiscovererChain, explain};
use localpair_core::identity::Identity;
use localpair_core::{Context, JoinTarget, Peer, tls};

use super::code::ShortCode;
use super::pake::{self, Pake};
use crate::code::Role;
use crate::error::{Attempted, Error};
use crate::join::swap_names_as_joiner;
use crate::link::Link;
use crate::offer::OfferListener;
use crate::race::{RaceOptions, Target, race};
use crate::wire::{Message, Refusal};
use crate::{JoinOptions, Joined, PairedPeer, read_message, send};

/// What the joiner brings to each dial.
struct Side {
    identity: Arc<Identity>,
    code: ShortCode,
    link_port: Option<u16>,
    /// Set once a host answered an exchange: every further one would be another guess (with the
    /// same code), so parallel dials to the host's other addresses stop.
    spent: tokio::sync::Mutex<bool>,
}

/// One short-code exchange with the host at `addr` (its key is learnt in TLS and authenticated by
/// the exchange). The pairing's TLS stream stays open: it is the [`Link`] to the host.
pub async fn dial_short(
    identity: Arc<Identity>,
    code: ShortCode,
    addr: SocketAddr,
) -> Result<Link, Error> {
    let side = Side {
        identity,
        code,
        link_port: None,
        spent: tokio::sync::Mutex::new(false),
    };
    dial(&side, addr).await
}

async fn dial(side: &Side, addr: SocketAddr) -> Result<Link, Error> {
    let config = tls::client_config_unpinned(&side.identity, pake::ALPN)?;
    let mut stream = tls::connect(config, addr).await?;
    let (host_key, exporter) = {
        let conn = stream.get_ref().1;
        let key = tls::peer_fingerprint(conn).ok_or(Error::Malformed {
            reason: "no server key",
        })?;
        let mut exporter = [0u8; 32];
        conn.export_keying_material(&mut exporter, pake::EXPORTER_LABEL, None)?;
        (key, exporter)
    };
    let mut spent = side.spent.lock().await;
    if *spent {
        return Err(Error::Superseded { addr });
    }
    let (state, ours) = Pake::start(Role::Joiner, side.code.secret);
    send(&mut stream, &Message::ShortHello(ours)).await?;
    let (nonce, theirs) = match read_message(&mut stream).await? {
        Message::ShortReply { nonce, pake } => (nonce, pake),
        Message::Refused(refusal) => {
            *spent = true;
            return Err(Error::Refused { addr, refusal });
        }
        _ => {
            return Err(Error::Malformed {
                reason: "expected the host's SPAKE2 message",
            });
        }
    };
    // The host counts this exchange now, whatever happens next.
    *spent = true;
    drop(spent);
    let transcript = pake::transcript(
        &exporter,
        &host_key,
        &side.identity.fingerprint(),
        side.code.channel,
        &nonce,
    );
    let confirmer = state.finish(&theirs, transcript)?;
    send(
        &mut stream,
        &Message::Confirm(confirmer.confirmation(Role::Joiner)),
    )
    .await?;
    match read_message(&mut stream).await? {
        Message::Confirm(mac) if confirmer.verify(Role::Host, &mac) => {}
        Message::Confirm(_) => return Err(Error::HostProofInvalid { addr }),
        Message::Refused(refusal) => return Err(Error::Refused { addr, refusal }),
        _ => {
            return Err(Error::Malformed {
                reason: "expected the host's confirmation",
            });
        }
    }
    let (name, link_port) =
        swap_names_as_joiner(&mut stream, side.identity.name(), side.link_port).await?;
    let peer = PairedPeer {
        id: host_key.device_id(),
        name,
        fingerprint: host_key,
        addr,
        link_port,
    };
    Ok(Link::new(peer, tokio_rustls::TlsStream::Client(stream)))
}

/// The hosts a joiner holding a short code looks for: those announcing its channel.
struct ShortTarget {
    side: Side,
}

impl Target for ShortTarget {
    fn matches(&self, peer: &Peer) -> bool {
        peer.short_channel == Some(self.side.code.channel) && peer.pairing_port.is_some()
    }

    fn dial_addr(&self, peer: &Peer, addr: SocketAddr) -> Option<SocketAddr> {
        peer.pairing_port
            .map(|port| SocketAddr::new(addr.ip(), port))
    }

    fn dial(
        self: Arc<Self>,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<Link, Error>> + Send>> {
        Box::pin(async move { dial(&self.side, addr).await })
    }

    fn is_final(&self, error: &Error) -> bool {
        matches!(error, Error::Refused { refusal, .. } if *refusal != Refusal::TooManyAttempts)
            || matches!(error, Error::HostProofInvalid { .. })
    }

    fn join_target(&self) -> Option<JoinTarget> {
        // Nothing but the channel is known: no address to dial, no key to scan for.
        None
    }

    fn offer(&self, _ctx: &Context) -> Result<Option<OfferListener>, Error> {
        // The other direction would need the host to dial strangers on its channel: not offered.
        Ok(None)
    }
}

/// Joins the host announcing the short code's channel through the discoverer chain, and pairs
/// with it by the code's secret. Discovery starts at once; the code may arrive later.
pub async fn join_short(
    ctx: &Context,
    chain: &DiscovererChain,
    code: impl Future<Output = Result<ShortCode, Error>> + Send,
    options: JoinOptions,
) -> Result<(Joined, Link), Error> {
    let identity = Arc::clone(ctx.identity());
    let link_port = options.link_port;
    let (codes_tx, codes_rx) = std::sync::mpsc::channel();
    let target = async move {
        let code = code.await?;
        let _ = codes_tx.send(code.channel);
        Ok::<_, Error>(Arc::new(ShortTarget {
            side: Side {
                identity,
                code,
                link_port,
                spent: tokio::sync::Mutex::new(false),
            },
        }))
    };
    let race_options = RaceOptions {
        dial_timeout: options.dial_timeout,
        deadline: options.deadline,
        max_parallel: options.max_parallel,
        sightings: options.sightings,
    };
    match race(ctx, chain, target, race_options).await? {
        Ok(won) => Ok((
            Joined {
                peer: won.won.peer().clone(),
                via: won.via,
                elapsed: won.elapsed,
                dials: won.dials,
            },
            won.won,
        )),
        Err(lost) => {
            if let Some(refusal) = lost.refusal {
                return Err(refusal);
            }
            let channel = codes_rx.try_recv().ok();
            let tried = match channel {
                None => "no short code arrived before the deadline".to_owned(),
                Some(channel) if lost.dials.is_empty() => {
                    format!("no host announced short-code channel {channel}")
                }
                Some(channel) => format!(
                    "tried the hosts on channel {channel}: {}",
                    lost.dials
                        .iter()
                        .map(|d| format!("{}: {}", d.addr, d.error.as_deref().unwrap_or("ok")))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            };
            let discovery = lost.report.map(|r| r.attempts).unwrap_or_default();
            let likely = if channel.is_some() && lost.dials.is_empty() {
                format!(
                    "the host is not hosting a short code now (it expired or ended), its first \
                     two digits differ, or discovery does not reach it ({})",
                    explain(&discovery)
                )
            } else {
                "the host could not be reached".to_owned()
            };
            Err(Error::JoinFailed(Box::new(Attempted {
                tried,
                likely,
                discovery,
                dials: lost.dials,
            })))
        }
    }
}
