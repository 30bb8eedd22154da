//! What a discoverer finds: another device on the network.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::identity::{DeviceId, Fingerprint};

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
    pub session_tag: Option<[u8; 8]>,
    /// The strategy that found it first (filled in by the chain runner).
    pub strategy: String,
    /// Time from the start of discovery to the first sighting (filled in by the chain runner).
    #[serde(with = "millis")]
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
            strategy: String::new(),
            found_after: Duration::ZERO,
        }
    }

    /// Folds a later sighting of the same device into this one: new addresses are appended, the
    /// first finder keeps the credit.
    pub fn absorb(&mut self, later: Peer) {
        for addr in later.addrs {
            if !self.addrs.contains(&addr) {
                self.addrs.push(addr);
            }
        }
        if self.pairing_port.is_none() {
            self.pairing_port = later.pairing_port;
        }
        if self.session_tag.is_none() {
            self.session_tag = later.session_tag;
        }
        if self.name.is_empty() {
            self.name = later.name;
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
