//! The handles [`Device::host`](super::Device::host) and
//! [`Device::listen`](super::Device::listen) return: each keeps what it started running until it
//! is dropped.

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::DropGuard;

use super::{Announcing, Device, Forwarding};
use crate::code::{Flow, PairingCode};
use crate::link::{Link, LinkListener};
use crate::trust::PairedHow;
use crate::{Error, Paired, PairingHost};

/// A pairing being hosted; the pairing's code and where it listens.
pub struct Hosting<'a> {
    pub(super) device: &'a Device,
    pub(super) host: PairingHost,
    pub(super) flow: Flow,
    pub(super) warning: Option<String>,
    pub(super) _offers: Forwarding,
    pub(super) _announcing: Announcing<'a>,
}

impl std::fmt::Debug for Hosting<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosting")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Hosting<'_> {
    /// The code to show (as a QR code, or as text).
    pub fn code(&self) -> &PairingCode {
        self.host.code()
    }

    /// Why the code's addresses are unlikely to reach peers, when they are (only VPN or
    /// virtual-bridge addresses).
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// How long the code lives.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.device.pairing.code_ttl_ms)
    }

    /// Where the pairing listener is bound.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.host.local_addrs()
    }

    /// Waits for the one pairing (saved in the trust store) and returns the open link to the
    /// device that joined; fails when the code expires or wrong proofs end it.
    pub async fn wait(&self) -> Result<(Paired, Link), Error> {
        let (paired, link) = self.host.wait().await?;
        let how = if self.flow == Flow::Post {
            PairedHow::QrPost
        } else {
            PairedHow::QrPre
        };
        self.device.save_pairing(&paired.peer, how, &[]);
        Ok((paired, link))
    }
}

impl Drop for Hosting<'_> {
    fn drop(&mut self) {
        self.device.set_advert(|a| {
            a.pairing_port = None;
            a.session_tag = None;
        });
    }
}

/// Accepting links from known peers.
pub struct Listening<'a> {
    pub(super) device: &'a Device,
    pub(super) listener: LinkListener,
    pub(super) _offers: (Forwarding, DropGuard),
    pub(super) _announcing: Announcing<'a>,
}

impl std::fmt::Debug for Listening<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listening")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Listening<'_> {
    /// The link port.
    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// The next link from a known peer.
    pub async fn accept(&self) -> Result<Link, Error> {
        self.listener.accept().await
    }
}

impl Drop for Listening<'_> {
    fn drop(&mut self) {
        self.device.set_advert(|a| a.link_port = None);
    }
}
