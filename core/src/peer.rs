//! What a discoverer finds: another device on the network, and the cleaning of the name it
//! announces.

mod name;
mod offer;
mod rounds;

pub use name::{REPLACEMENT, clean_name, is_clean, is_control, is_invisible};
pub use offer::{BadOffer, Offer, OfferTo};
pub use rounds::{ROUND, Rounds, evict_least};

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::identity::{DeviceId, Fingerprint};

/// Most addresses one peer keeps. A device has an IPv4 and a link-local IPv6 address per network
/// card, perhaps a ULA or global IPv6 address too: 16 covers four cards with room to spare, while
/// announcements under a known key from spoofed source addresses can no longer grow the list
/// (nor make merging it quadratic).
pub const MAX_ADDRS: usize = 16;

/// Another device, as one discoverer saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Peer {
    /// Its device id (derived from its key fingerprint).
    pub id: DeviceId,
    /// The name it announces.
    pub name: String,
    /// Where its confirmation listener can be reached, best first.
    pub addrs: Vec<SocketAddr>,
    /// Port of its pairing listener, when it is hosting a pairing.
    pub pairing_port: Option<u16>,
    /// SHA-256 of its SubjectPublicKeyInfo, as announced (pinned when we connect).
    pub fingerprint: Fingerprint,
    /// Session tag of the pairing it hosts, when it announces one.
    #[serde(with = "tag_hex")]
    pub session_tag: Option<[u8; 8]>,
    /// Port of its link listener, when it accepts connections from the peers it knows.
    pub link_port: Option<u16>,
    /// The listener it offers to the device it cannot reach, when it waits to be dialled.
    pub offer: Option<Offer>,
    /// The short-code channel of the pairing it hosts, when it hosts one with a typed code.
    #[serde(default)]
    pub short_channel: Option<u8>,
    /// The strategy that found it first (filled in by the chain runner).
    pub strategy: String,
    /// Time from the start of discovery to the first sighting (filled in by the chain runner).
    #[serde(rename = "elapsed_ms", with = "millis")]
    pub found_after: Duration,
}

impl Peer {
    /// A peer with the fields every discoverer knows; the chain fills in `strategy` and `found_after`.
    pub fn new(fingerprint: Fingerprint, name: String, addrs: Vec<SocketAddr>) -> Self {
        Self {
            id: fingerprint.device_id(),
            name,
            addrs,
            pairing_port: None,
            fingerprint,
            session_tag: None,
            link_port: None,
            offer: None,
            short_channel: None,
            strategy: String::new(),
            found_after: Duration::ZERO,
        }
    }

    /// Folds a later sighting of the same device into this one: new addresses join the list while
    /// it holds fewer than [`MAX_ADDRS`] (the rest are dropped), and it stays ordered IPv4,
    /// routable IPv6, link-local (a first sighting may carry only link-local IPv6 when A and AAAA
    /// records arrive apart); a newer pairing port or session tag replaces the older (a host that
    /// restarts pairing announces new ones); the first finder keeps the credit.
    pub fn absorb(&mut self, later: Peer) {
        for addr in later.addrs {
            if self.addrs.len() >= MAX_ADDRS {
                break;
            }
            if !self.addrs.contains(&addr) {
                self.addrs.push(addr);
            }
        }
        self.addrs.sort_by_key(|a| address_rank(a.ip()));
        if later.pairing_port.is_some() {
            self.pairing_port = later.pairing_port;
        }
        if later.session_tag.is_some() {
            self.session_tag = later.session_tag;
        }
        if later.link_port.is_some() {
            self.link_port = later.link_port;
        }
        if later.offer.is_some() {
            self.offer = later.offer;
        }
        if later.short_channel.is_some() {
            self.short_channel = later.short_channel;
        }
        if self.name.is_empty() {
            self.name = later.name;
        }
    }
}

fn address_rank(ip: std::net::IpAddr) -> u8 {
    match ip {
        std::net::IpAddr::V4(_) => 0,
        std::net::IpAddr::V6(v6) if v6.is_unicast_link_local() => 2,
        std::net::IpAddr::V6(_) => 1,
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        crate::serde_millis(d, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        f64::deserialize(d).map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    }
}

mod tag_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(tag: &Option<[u8; 8]>, s: S) -> Result<S::Ok, S::Error> {
        match tag {
            Some(tag) => s.serialize_some(&crate::identity::hex(tag)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 8]>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let mut tag = [0u8; 8];
        if text.len() != 16 || !text.is_ascii() {
            return Err(serde::de::Error::custom("a session tag is 16 hex digits"));
        }
        for (slot, pair) in tag.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(serde::de::Error::custom)?;
            *slot = u8::from_str_radix(pair, 16).map_err(serde::de::Error::custom)?;
        }
        Ok(Some(tag))
    }
}
