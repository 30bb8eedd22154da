//! Pairing: pinned TLS plus a proof that both sides hold the code's secret.
//!
//! The joiner dials the host with TLS 1.3, pinning the key fingerprint from the code and presenting
//! its own key. Both sides derive a value from the TLS session (RFC 5705/8446 exporter) and prove
//! knowledge of the secret with HMAC-SHA256(secret, role ‖ exporter): the secret never crosses the
//! network, and a proof taken from one connection is worthless on another. The joiner proves first;
//! the host answers with its own proof (so the joiner knows the host holds the same code, not just
//! the key), then both exchange their names. The code is single use, expires, and dies after too
//! many wrong proofs.

mod host;
mod join;
mod listen;
pub mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::Error;
use crate::frame::{MAX_FRAME, read_frame, write_frame};
use crate::identity::{DeviceId, Fingerprint};

pub use host::{HostOptions, PairingHost};
pub use join::{DialRecord, JoinOptions, Joined, dial, join, probe};
pub use listen::{ListenPlan, listen_addresses};

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
}

/// A finished pairing, seen from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Paired {
    /// Who joined.
    pub peer: PairedPeer,
    /// From listener start to pairing.
    #[serde(rename = "elapsed_ms", serialize_with = "crate::serde_millis")]
    pub elapsed: Duration,
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, message: &wire::Message) -> Result<(), Error> {
    write_frame(stream, &wire::encode(message)).await
}

async fn read_message<S: AsyncRead + Unpin>(stream: &mut S) -> Result<wire::Message, Error> {
    wire::parse(&read_frame(stream, MAX_FRAME).await?)
}

#[cfg(test)]
mod tests;
