//! The devices nearby, as an application lists them: every device discovery sees, whether this
//! device knows it, and when it comes, changes or goes.

use std::time::{Duration, Instant};

use localpair_core::Peer;
use localpair_core::chain::{Change, Subscription};

use crate::device::{Announcing, Device};
use crate::trust::KnownPeer;

/// How stale the copy of the trust store that [`Watching`] matches devices against may get: a
/// pairing made meanwhile shows as known within this.
const TRUST_REFRESH: Duration = Duration::from_secs(1);

/// One change to the list of devices nearby.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Nearby {
    /// Found, updated or lost.
    pub change: Change,
    /// The device as discovery sees it now (for `Lost`: as it was last seen).
    pub peer: Peer,
    /// The trust store's entry when this device paired with it (matched by the full key).
    pub known: Option<KnownPeer>,
}

/// The devices nearby as they come, change and go; keeps this device announced while it lives.
pub struct Watching<'a> {
    pub(crate) device: &'a Device,
    pub(crate) subscription: Subscription,
    pub(crate) _announcing: Announcing<'a>,
    pub(crate) trusted: Option<(Instant, Vec<KnownPeer>)>,
}

impl std::fmt::Debug for Watching<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watching").finish_non_exhaustive()
    }
}

impl Watching<'_> {
    /// The next change, waiting for one (wrap it in a timeout to wait less); `None` once
    /// discovery has ended (every discoverer failed or was stopped).
    ///
    /// A reader that falls behind misses nothing that still matters: it gets the net change
    /// since it last read (a device that came and went meanwhile is not reported).
    pub async fn next(&mut self) -> Option<Nearby> {
        let event = self.subscription.next().await?;
        let known = self.known(&event.peer);
        Some(Nearby {
            change: event.change,
            peer: event.peer,
            known,
        })
    }

    fn known(&mut self, peer: &Peer) -> Option<KnownPeer> {
        let fresh = self
            .trusted
            .as_ref()
            .is_some_and(|(read, _)| read.elapsed() < TRUST_REFRESH);
        if !fresh {
            match self.device.peers() {
                Ok(peers) => self.trusted = Some((Instant::now(), peers)),
                Err(error) => tracing::warn!(%error, "cannot read the trust store"),
            }
        }
        let (_, peers) = self.trusted.as_ref()?;
        peers
            .iter()
            .find(|known| known.fingerprint == peer.fingerprint)
            .cloned()
    }
}
