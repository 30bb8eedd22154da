//! The short code's key exchange: SPAKE2 (Ed25519 group) keyed by the secret part, inside a TLS
//! 1.3 session whose keys are not pinned, then key confirmation in both directions bound to the
//! session's exporter, both keys and the channel.
//!
//! An eavesdropper sees only TLS records. An active attacker who answers as the host (or dials it)
//! can test one guess per exchange, online: SPAKE2 messages reveal nothing testable offline, and
//! the only message that depends on the password in a checkable way, the confirmation, is sent
//! by the host only after the joiner's confirmation verified. A man in the middle who terminates
//! TLS on both sides gets different exporters on each, so the confirmations cannot match even
//! with the right code.

use localpair_core::identity::Fingerprint;
use ring::hmac;
use spake2::{Ed25519Group, Identity as PakeId, Password, Spake2};

use super::code::ShortSecret;
use crate::code::Role;
use crate::error::Error;

/// ALPN of the short-code exchange (on the pairing port).
pub const ALPN: &[u8] = b"localpair-short/1";
/// TLS exporter label of the short-code exchange.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-localpair-short";

const JOINER_ID: &[u8] = b"localpair-joiner";
const HOST_ID: &[u8] = b"localpair-host";

/// One side's SPAKE2 state, between sending its message and reading the other's.
pub(crate) struct Pake(Spake2<Ed25519Group>);

/// The key both sides share when they used the same secret.
pub(crate) struct Confirmer {
    key: hmac::Key,
    transcript: Vec<u8>,
}

/// What the confirmations bind: the TLS session (its exporter), both keys as presented in TLS,
/// the channel and the host's session nonce.
pub(crate) fn transcript(
    exporter: &[u8; 32],
    host: &Fingerprint,
    joiner: &Fingerprint,
    channel: u8,
    nonce: &[u8; 8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + 32 + 32 + 1 + 8);
    out.extend_from_slice(exporter);
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(joiner.as_bytes());
    out.push(channel);
    out.extend_from_slice(nonce);
    out
}

impl Pake {
    /// Starts the exchange as `role`; the message to send is 33 bytes.
    pub(crate) fn start(role: Role, secret: ShortSecret) -> (Self, [u8; 33]) {
        let password = Password::new(secret.password());
        let (joiner, host) = (PakeId::new(JOINER_ID), PakeId::new(HOST_ID));
        let (state, message) = match role {
            Role::Host => Spake2::<Ed25519Group>::start_b(&password, &joiner, &host),
            Role::Joiner => Spake2::<Ed25519Group>::start_a(&password, &joiner, &host),
        };
        let mut out = [0u8; 33];
        // The Ed25519 group's messages are a side byte and a 32-byte point.
        if let Some(bytes) = message.get(..33) {
            out.copy_from_slice(bytes);
        }
        (Self(state), out)
    }

    /// Finishes with the other side's message; fails on a message that is not a group element
    /// or comes from the wrong side (never on a wrong password: that shows only in the
    /// confirmation).
    pub(crate) fn finish(self, theirs: &[u8; 33], transcript: Vec<u8>) -> Result<Confirmer, Error> {
        let key = self.0.finish(theirs).map_err(|_| Error::Malformed {
            reason: "the SPAKE2 message is not valid",
        })?;
        Ok(Confirmer {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            transcript,
        })
    }
}

fn label(role: Role) -> &'static [u8] {
    match role {
        Role::Host => b"localpair-short/1 confirm host",
        Role::Joiner => b"localpair-short/1 confirm joiner",
    }
}

impl Confirmer {
    /// HMAC-SHA256(PAKE key, role label ‖ transcript).
    pub(crate) fn confirmation(&self, role: Role) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(label(role));
        context.update(&self.transcript);
        let mut out = [0u8; 32];
        out.copy_from_slice(context.sign().as_ref());
        out
    }

    /// Checks the other side's confirmation, in constant time.
    pub(crate) fn verify(&self, role: Role, mac: &[u8; 32]) -> bool {
        let mut message = label(role).to_vec();
        message.extend_from_slice(&self.transcript);
        hmac::verify(&self.key, &message, mac).is_ok()
    }
}

/// A short string both people can compare after pairing: six digits from SHA-256 of both keys in
/// a fixed order (so both devices show the same), `123-456`.
pub fn verification_code(a: &Fingerprint, b: &Fingerprint) -> String {
    let (first, second) = if a.as_bytes() <= b.as_bytes() {
        (a, b)
    } else {
        (b, a)
    };
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"localpair-short/1 verification");
    context.update(first.as_bytes());
    context.update(second.as_bytes());
    let digest = context.finish();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest.as_ref()[..8]);
    let n = u64::from_be_bytes(head) % 1_000_000;
    format!("{:03}-{:03}", n / 1000, n % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::short::ShortCode;

    fn transcript_for(exporter: u8) -> Vec<u8> {
        transcript(
            &[exporter; 32],
            &Fingerprint::from_bytes([1; 32]),
            &Fingerprint::from_bytes([2; 32]),
            47,
            &[3; 8],
        )
    }

    fn exchange(joiner: u32, host: u32, joiner_exporter: u8) -> (Confirmer, Confirmer) {
        let j = ShortCode::new(47, joiner).unwrap().secret;
        let h = ShortCode::new(47, host).unwrap().secret;
        let (a, to_host) = Pake::start(Role::Joiner, j);
        let (b, to_joiner) = Pake::start(Role::Host, h);
        let joiner = a
            .finish(&to_joiner, transcript_for(joiner_exporter))
            .unwrap();
        let host = b.finish(&to_host, transcript_for(9)).unwrap();
        (joiner, host)
    }

    #[test]
    fn same_code_confirms_both_ways() {
        let (joiner, host) = exchange(3_928_150, 3_928_150, 9);
        assert!(host.verify(Role::Joiner, &joiner.confirmation(Role::Joiner)));
        assert!(joiner.verify(Role::Host, &host.confirmation(Role::Host)));
        // A confirmation is bound to its role.
        assert!(!host.verify(Role::Host, &joiner.confirmation(Role::Joiner)));
    }

    #[test]
    fn a_wrong_code_or_another_session_does_not_confirm() {
        let (joiner, host) = exchange(3_928_151, 3_928_150, 9);
        assert!(!host.verify(Role::Joiner, &joiner.confirmation(Role::Joiner)));
        // Right code, but the two sides are in different TLS sessions (a relay in the middle).
        let (joiner, host) = exchange(3_928_150, 3_928_150, 8);
        assert!(!host.verify(Role::Joiner, &joiner.confirmation(Role::Joiner)));
    }

    #[test]
    fn two_joiners_cannot_pair_with_each_other() {
        let s = ShortCode::new(47, 1).unwrap().secret;
        let (a, _) = Pake::start(Role::Joiner, s);
        let (_, other) = Pake::start(Role::Joiner, s);
        assert!(a.finish(&other, transcript_for(9)).is_err());
    }

    #[test]
    fn verification_code_is_order_independent() {
        let (a, b) = (
            Fingerprint::from_bytes([1; 32]),
            Fingerprint::from_bytes([2; 32]),
        );
        let code = verification_code(&a, &b);
        assert_eq!(code, verification_code(&b, &a));
        assert_eq!(code.len(), 7);
        assert_ne!(
            code,
            verification_code(&a, &Fingerprint::from_bytes([3; 32]))
        );
    }
}
