//! Reconnecting to a known peer: find it by its key through the `[connect]` discoverer chain, and
//! dial its link listener with both keys pinned.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use localpair_core::chain::explain;
use localpair_core::identity::Identity;
use localpair_core::{Context, Fingerprint, JoinTarget, OfferTo, Peer};
use serde::Serialize;

use crate::error::Attempted;
use crate::link::{self, Link};
use crate::offer::OfferListener;
use crate::race::{DialRecord, Lost, Target};
use crate::trust::KnownPeer;
use crate::{Error, Refusal};

/// A reconnection, seen from the device that dialled.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Connected {
    /// The strategy whose address answered.
    pub via: String,
    /// From start to the open stream.
    #[serde(rename = "elapsed_ms", serialize_with = "localpair_core::serde_millis")]
    pub elapsed: Duration,
    /// Every dial.
    pub dials: Vec<DialRecord>,
}

/// The known peer sought, with what was saved about it.
pub(crate) struct Reconnect {
    pub(crate) identity: Arc<Identity>,
    pub(crate) peer: KnownPeer,
    /// Where to listen when offering the peer the other direction.
    pub(crate) offer_port: u16,
}

impl Reconnect {
    fn key(&self) -> Fingerprint {
        self.peer.fingerprint
    }
}

impl Target for Reconnect {
    fn matches(&self, peer: &Peer) -> bool {
        peer.fingerprint == self.key()
    }

    fn dial_addr(&self, peer: &Peer, addr: SocketAddr) -> Option<SocketAddr> {
        match (peer.link_port, self.peer.link_port) {
            // Discovery heard it announce its link listener.
            (Some(port), _) => Some(SocketAddr::new(addr.ip(), port)),
            // Its last known addresses, or a subnet scan: already on the link port.
            (None, Some(port)) if addr.port() == port => Some(addr),
            // Found, but not accepting known peers right now.
            _ => None,
        }
    }

    fn dial(
        self: Arc<Self>,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<Link, Error>> + Send>> {
        Box::pin(async move { link::dial(&self.identity, self.key(), addr).await })
    }

    fn is_final(&self, error: &Error) -> bool {
        // It does not know us: no other address will.
        matches!(error, Error::Refused { .. })
    }

    fn join_target(&self) -> Option<JoinTarget> {
        let mut candidates = Vec::new();
        for addr in &self.peer.last_addrs {
            if !candidates.contains(&addr.ip()) {
                candidates.push(addr.ip());
            }
        }
        Some(JoinTarget::new(
            self.key(),
            self.peer.link_port.unwrap_or(0),
            candidates,
            [0; 8],
            link::ALPN,
        ))
    }

    fn offer(&self, ctx: &Context) -> Result<Option<OfferListener>, Error> {
        let mut listener = OfferListener::for_peer(&self.identity, self.key(), self.offer_port)?;
        listener.announce(ctx, OfferTo::Device(self.key().device_id()));
        Ok(Some(listener))
    }
}

/// Why a reconnection failed, in words that say which side does not know whom.
pub(crate) fn explain_failure(peer: &KnownPeer, lost: Lost) -> Error {
    let who = format!("{} [{}]", peer.label(), peer.id());
    let discovery = lost
        .report
        .as_ref()
        .map(|r| r.attempts.clone())
        .unwrap_or_default();
    if let Some(Error::Refused {
        addr,
        refusal: Refusal::UnknownPeer,
    }) = &lost.refusal
    {
        return Error::ConnectFailed(Box::new(Attempted {
            tried: format!("{who} at {addr} refused the connection"),
            likely: "it does not know this device (it forgot it, or its trust store was reset); \
                     pair again"
                .to_owned(),
            dials: lost.dials,
            discovery,
        }));
    }
    if let Some(refusal) = lost.refusal {
        return refusal;
    }
    // Discovery heard the peer (at its confirmation listener) but it announced no link port: it
    // runs, yet does not accept known peers.
    let not_accepting = lost.sightings.iter().any(|p| {
        p.fingerprint == peer.fingerprint
            && p.link_port.is_none()
            && p.addrs.iter().all(|a| Some(a.port()) != peer.link_port)
    });
    let tried: Vec<String> = lost.dials.iter().map(ToString::to_string).collect();
    let impostor = lost.dials.iter().any(|d| {
        d.error
            .as_deref()
            .is_some_and(|e| e.contains("does not match the pinned key"))
    });
    let heard = lost
        .sightings
        .iter()
        .find(|p| p.fingerprint == peer.fingerprint && crate::race::announced(p));
    let errors: Vec<&str> = lost
        .dials
        .iter()
        .filter_map(|d| d.error.as_deref())
        .collect();
    let all_timed_out = !errors.is_empty() && errors.iter().all(|e| e.contains("timed out"));
    let firewalled = match (heard, peer.link_port) {
        (Some(heard), Some(port)) if all_timed_out => Some(crate::join::firewall_hint(
            "the peer",
            heard,
            heard.link_port.unwrap_or(port),
            lost.offered,
        )),
        _ => None,
    };
    let likely = if impostor {
        "another device with another key answered at the peer's address (an impostor, or the \
         peer was reinstalled and needs pairing again)"
    } else if let Some(firewalled) = &firewalled {
        firewalled.as_str()
    } else if not_accepting {
        "the peer is on the network but does not accept connections: run `localpair listen` there"
    } else if lost.dials.is_empty() {
        "the peer was not found: it is off, on another network, or not listening"
    } else {
        "the peer could not be reached at any address found for it"
    };
    let explained = lost
        .report
        .as_ref()
        .map(|r| format!("; discovery: {}", explain(&r.attempts)))
        .unwrap_or_default();
    let tried = if tried.is_empty() {
        "no address to dial".to_owned()
    } else {
        format!("tried {}", tried.join("; "))
    };
    Error::ConnectFailed(Box::new(Attempted {
        tried: format!("{who}: {tried}{explained}"),
        likely: likely.to_owned(),
        dials: lost.dials,
        discovery,
    }))
}
