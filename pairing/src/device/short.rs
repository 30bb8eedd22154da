//! The short-code calls of [`Device`]: [`Device::host_short`] and [`Device::join_short`].

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use localpair_core::Peer;
use tokio::sync::mpsc;

use super::{Announcing, Device};
use crate::short::{ShortCode, ShortHost, ShortHostOptions};
use crate::trust::PairedHow;
use crate::{Error, Joined, Link, Paired};

impl Device {
    /// Starts hosting a short-code pairing: listens on the pairing port, makes a fresh code, and
    /// announces its channel (with a random session nonce, nothing derived from the secret)
    /// until the returned [`ShortHosting`] is dropped. Show [`ShortHosting::code`], then
    /// [`ShortHosting::wait`].
    pub async fn host_short(&self) -> Result<ShortHosting<'_>, Error> {
        let options = ShortHostOptions {
            listen_on: vec![IpAddr::from([0, 0, 0, 0])],
            port: self.pairing.port,
            ttl: Duration::from_millis(self.pairing.short_code_ttl_ms),
            handshake_timeout: Duration::from_millis(self.pairing.handshake_timeout_ms),
            max_unauthenticated: self.pairing.max_unauthenticated,
            max_per_source: self.pairing.max_per_source,
            link_port: Some(self.link_port()?),
        };
        let host = ShortHost::start(Arc::clone(self.ctx.identity()), options)?;
        let (port, nonce, channel) = (host.port(), host.nonce(), host.code().channel);
        self.set_advert(|a| {
            a.pairing_port = Some(port);
            a.session_tag = Some(nonce);
            a.short_channel = Some(channel);
        });
        let (announcing, _nearby) = self.announce()?;
        Ok(ShortHosting {
            device: self,
            host,
            _announcing: announcing,
        })
    }

    /// Joins the host showing the short code `code` yields: discovery starts at once, the hosts
    /// announcing the code's channel are tried as soon as the code arrives. Saves the host in the
    /// trust store. A wrong code fails with [`Error::Refused`] (`WrongCode`, or `CodeEnded` on
    /// the host's last allowed failure).
    pub async fn join_short(
        &self,
        code: impl Future<Output = Result<ShortCode, Error>> + Send,
        sightings: Option<mpsc::Sender<Peer>>,
    ) -> Result<(Joined, Link), Error> {
        let (chain, options) = self.join_setup(sightings)?;
        let (joined, link) = crate::short::join_short(&self.ctx, &chain, code, options).await?;
        self.save_pairing(&joined.peer, PairedHow::ShortCode, &[]);
        Ok((joined, link))
    }
}

/// A short-code pairing being hosted.
pub struct ShortHosting<'a> {
    device: &'a Device,
    host: ShortHost,
    _announcing: Announcing<'a>,
}

impl std::fmt::Debug for ShortHosting<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShortHosting")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl ShortHosting<'_> {
    /// The code to show, `47-392-8150`.
    pub fn code(&self) -> ShortCode {
        self.host.code()
    }

    /// How long the code lives.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.device.pairing.short_code_ttl_ms)
    }

    /// Where the listener is bound.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.host.local_addrs()
    }

    /// Failed exchanges so far.
    pub fn failures(&self) -> u32 {
        self.host.failures()
    }

    /// Waits for the one pairing (saved in the trust store) and returns the open link to the
    /// device that joined; fails when the code expires or the third wrong code ends it
    /// ([`Error::CodeEnded`]: start a new one with [`Device::host_short`]).
    pub async fn wait(&self) -> Result<(Paired, Link), Error> {
        let (paired, link) = self.host.wait().await?;
        self.device
            .save_pairing(&paired.peer, PairedHow::ShortCode, &[]);
        Ok((paired, link))
    }
}

impl Drop for ShortHosting<'_> {
    fn drop(&mut self) {
        self.device.set_advert(|a| {
            a.pairing_port = None;
            a.session_tag = None;
            a.short_channel = None;
        });
    }
}
