//! Pairing for localpair: the code a QR shows, a host that waits for one joiner, a joiner that
//! finds the host (through the discoverer chain and the code's own addresses) and proves it holds
//! the code, a trust store of the devices paired with, and reconnecting to them later without a
//! code. Pairing and reconnecting both give the application the open [`Link`]: a TLS stream
//! pinned to both devices' keys.
//!
//! An application embeds one [`Device`]:
//!
//! ```no_run
//! use localpair_core::{Registry, Settings, config::Source};
//! use localpair_pairing::{Device, code::Flow};
//! use tokio::io::AsyncWriteExt as _;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), localpair_pairing::Error> {
//! let settings = Settings::load(Source::Discover)?;
//! let device = Device::open(settings, Registry::linked()?)?;
//!
//! // Once: show the code (as a QR), wait for the phone; both sides save each other.
//! let hosting = device.host(Flow::Pre).await?;
//! println!("{}", hosting.code().encode());
//! let (paired, mut link) = hosting.wait().await?;
//! link.write_all(b"hello").await?;
//!
//! // Tomorrow, after a restart: no code, both keys pinned.
//! let (_, mut link) = device.connect(&paired.peer.name).await?;
//! link.write_all(b"hello again").await?;
//! # Ok(())
//! # }
//! ```
//!
//! The pieces underneath, over loopback:
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr, SocketAddr};
//! use std::sync::Arc;
//! use localpair_core::Identity;
//! use localpair_pairing::code::PairingCode;
//! use localpair_pairing::{HostOptions, PairingHost, dial};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), localpair_pairing::Error> {
//! let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
//! let mut options = HostOptions::default();
//! options.listen_on = vec![loopback];
//! options.candidates = vec![loopback];
//! let host = PairingHost::start(Arc::new(Identity::ephemeral("desk")?), options)?;
//!
//! // What the QR code carries, as the phone reads it back.
//! let code = PairingCode::parse(&host.code().encode())?;
//! let phone = Identity::ephemeral("phone")?;
//! let addr = SocketAddr::new(code.candidates[0], code.port);
//! let (joined, hosted) = tokio::join!(dial(&phone, &code, addr), host.wait());
//! assert_eq!(joined?.peer().name, "desk");
//! assert_eq!(hosted?.0.peer.name, "phone");
//! # Ok(())
//! # }
//! ```
//!
//! How it is safe:
//! The joiner dials the host with TLS 1.3, pinning the key fingerprint from the code and presenting
//! its own key. Both sides derive a value from the TLS session (RFC 5705/8446 exporter) and prove
//! knowledge of the secret with HMAC-SHA256(secret, role ‖ exporter): the secret never crosses the
//! network, and a proof taken from one connection is worthless on another. The joiner proves first;
//! the host answers with its own proof (so the joiner knows the host holds the same code, not just
//! the key), then both exchange their names. The code is single use and expires.
//!
//! For a device without a camera, [`short`] pairs by a code a person reads aloud
//! (`47-392-8150`): [`Device::host_short`] and [`Device::join_short`], a PAKE inside TLS where the
//! QR code's secret and pinned key are not available.

pub mod code;
mod config;
mod connect;
mod device;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod host;
mod join;
pub mod link;
mod listen;
mod nearby;
mod offer;
mod race;
pub mod short;
pub mod trust;
mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};

pub use config::{ConnectConfig, JoinConfig, PairingConfig};
pub use connect::Connected;
pub use device::{Device, Hosting, Listening, ShortHosting};
pub use error::{Attempted, Error};
use localpair_core::frame::{MAX_FRAME, read_frame, write_frame};
use localpair_core::identity::{DeviceId, Fingerprint};
pub use wire::Refusal;

pub use host::{DEFAULT_PORT, HostOptions, MAX_PENALISED_SOURCES, MAX_PROOF_BACKOFF, PairingHost};
pub use join::{JoinOptions, Joined, dial, join, join_target};
pub use link::{Link, LinkListener};
pub use listen::{ListenPlan, listen_addresses};
pub use localpair_core::chain::Change;
pub use nearby::{Nearby, Watching};
pub use offer::{MAX_OFFER_DIALS, MAX_OFFERS};
pub use race::DialRecord;

/// ALPN of the pairing listener.
pub const ALPN: &[u8] = b"localpair-pair/1";

/// TLS exporter label both sides use to bind proofs to the session.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-localpair-pairing-proof";

/// The device on the other side of a pairing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PairedPeer {
    /// Its device id (from its key).
    pub id: DeviceId,
    /// The name it sent.
    pub name: String,
    /// Its key fingerprint, as presented in TLS.
    pub fingerprint: Fingerprint,
    /// The address the connection used.
    pub addr: SocketAddr,
    /// The port of its link listener, as it said (where to reconnect later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_port: Option<u16>,
}

/// A finished pairing, seen from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Paired {
    /// Who joined.
    pub peer: PairedPeer,
    /// From listener start to pairing.
    #[serde(rename = "elapsed_ms", serialize_with = "localpair_core::serde_millis")]
    pub elapsed: Duration,
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, message: &wire::Message) -> Result<(), Error> {
    Ok(write_frame(stream, &wire::encode(message)).await?)
}

async fn read_message<S: AsyncRead + Unpin>(stream: &mut S) -> Result<wire::Message, Error> {
    wire::parse(&read_frame(stream, MAX_FRAME).await?)
}

#[cfg(test)]
mod link_tests;
#[cfg(test)]
mod tests;
