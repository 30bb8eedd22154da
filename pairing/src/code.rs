//! The pairing code: what the QR code holds.
//!
//! A versioned compact binary, encoded in upper-case base32 (RFC 4648, no padding) behind the
//! prefix `LP:`, so every character is in the QR alphanumeric alphabet and the QR stays small.
//!
//! ```text
//! version:u8 (=1)  flags:u8 (bit 0: post-shared flow; other bits reserved, must be 0)
//! port:u16be       fingerprint:[u8;32]   secret:[u8;16]
//! count:u8 (<= 8)  count × (4 a:[u8;4] | 6 a:[u8;16])
//! checksum:[u8;4] = SHA-256(everything before)[..4]
//! ```
//!
//! The device id is the fingerprint's first 8 bytes, so it is not repeated. IPv6 link-local
//! candidates carry no scope: an interface index means nothing on another device; the joiner tries
//! the address on each of its own interfaces.
//!
//! The checksum is checked before anything else, so a typo reads "corrupted pairing code", never a
//! handshake that hangs; a code from a newer release reads "this code needs a newer localpair".

use std::fmt;
use std::net::IpAddr;

use data_encoding::BASE32_NOPAD;
use ring::hmac;

use crate::error::Error;
use localpair_core::bytes::Reader;
use localpair_core::identity::{DeviceId, Fingerprint};

/// What the text form starts with.
pub const PREFIX: &str = "LP:";
/// The code version this release writes and reads.
pub const VERSION: u8 = 1;
/// Most candidate addresses a code carries.
pub const MAX_CANDIDATES: usize = 8;
/// Longest text accepted before decoding is attempted.
pub const MAX_TEXT: usize = 512;
const CHECKSUM: usize = 4;
const FLAG_POST: u8 = 1;

/// The seed's two flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Flow {
    /// The code is shown first; discovery happens after it is scanned.
    Pre,
    /// Devices discover each other first; the code confirms the pairing.
    Post,
}

/// The one-time secret: 128 bits from the OS generator. It never crosses the network (only
/// HMACs keyed with it do) and never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 16]);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Who computes a proof; each side's proof is keyed on its role so one cannot be replayed as the
/// other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// The device that scanned the code and dials.
    Joiner,
    /// The device that showed the code and listens.
    Host,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Joiner => b"localpair/1 proof joiner",
            Self::Host => b"localpair/1 proof host",
        }
    }
}

impl Secret {
    /// A fresh secret from the OS random generator.
    pub fn generate() -> Result<Self, Error> {
        Ok(Self(localpair_core::identity::random_bytes()?))
    }

    /// Wraps raw bytes (tests and decoding).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes. Only for encoding the code; never log them.
    pub fn expose(&self) -> &[u8; 16] {
        &self.0
    }

    fn key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.0)
    }

    /// HMAC-SHA256(secret, role label ‖ TLS exporter value): binds the proof to one TLS session, so
    /// a proof seen on one connection is useless on another.
    pub fn proof(&self, role: Role, exporter: &[u8]) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&self.key());
        context.update(role.label());
        context.update(exporter);
        let mut out = [0u8; 32];
        out.copy_from_slice(context.sign().as_ref());
        out
    }

    /// Checks a proof in constant time.
    pub fn verify(&self, role: Role, exporter: &[u8], proof: &[u8]) -> bool {
        let mut message = role.label().to_vec();
        message.extend_from_slice(exporter);
        hmac::verify(&self.key(), &message, proof).is_ok()
    }

    /// The session tag a host announces: HMAC(secret, "session tag" ‖ fingerprint), first 8 bytes.
    /// A joiner holding the code recognises its host among many; anyone else learns nothing.
    pub fn session_tag(&self, host: &Fingerprint) -> [u8; 8] {
        let mut context = hmac::Context::with_key(&self.key());
        context.update(b"localpair/1 session tag");
        context.update(host.as_bytes());
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&context.sign().as_ref()[..8]);
        tag
    }
}

/// The contents of a pairing code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PairingCode {
    /// Which flow the host runs.
    pub flow: Flow,
    /// The host's pairing port.
    pub port: u16,
    /// The host's key fingerprint (pinned by the joiner).
    pub fingerprint: Fingerprint,
    /// The one-time secret.
    pub secret: Secret,
    /// Addresses the host believes reachable, best first.
    pub candidates: Vec<IpAddr>,
}

impl PairingCode {
    /// A code; at most [`MAX_CANDIDATES`] addresses are kept.
    pub fn new(
        flow: Flow,
        port: u16,
        fingerprint: Fingerprint,
        secret: Secret,
        mut candidates: Vec<IpAddr>,
    ) -> Self {
        candidates.truncate(MAX_CANDIDATES);
        Self {
            flow,
            port,
            fingerprint,
            secret,
            candidates,
        }
    }

    /// The host's device id.
    pub fn device_id(&self) -> DeviceId {
        self.fingerprint.device_id()
    }

    /// The session tag the host announces.
    pub fn session_tag(&self) -> [u8; 8] {
        self.secret.session_tag(&self.fingerprint)
    }

    /// The binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 17 * self.candidates.len());
        out.push(VERSION);
        out.push(if self.flow == Flow::Post {
            FLAG_POST
        } else {
            0
        });
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(self.fingerprint.as_bytes());
        out.extend_from_slice(self.secret.expose());
        let count = self.candidates.len().min(MAX_CANDIDATES);
        out.push(u8::try_from(count).unwrap_or(0));
        for ip in self.candidates.iter().take(count) {
            localpair_core::bytes::put_ip(&mut out, *ip);
        }
        let checksum = checksum(&out);
        out.extend_from_slice(&checksum);
        out
    }

    /// The text form: `LP:` and upper-case base32.
    pub fn encode(&self) -> String {
        format!("{PREFIX}{}", BASE32_NOPAD.encode(&self.to_bytes()))
    }

    /// Parses the text form. Case, spaces and dashes are forgiven (people type codes).
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.len() > MAX_TEXT {
            return Err(corrupted("longer than any pairing code"));
        }
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let body = cleaned
            .strip_prefix(PREFIX)
            .ok_or_else(|| corrupted("it does not start with LP:"))?;
        let bytes = BASE32_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| corrupted("it holds characters a code never has"))?;
        Self::from_bytes(&bytes)
    }

    /// Parses the binary form: checksum first, then version, then fields.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < 2 + CHECKSUM {
            return Err(corrupted("too short"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
        if checksum(body) != sum {
            return Err(corrupted("checksum mismatch (a typo?)"));
        }
        let version = body[0];
        let flags = body[1];
        if version != VERSION || flags & !FLAG_POST != 0 {
            return Err(Error::NewerCode { version });
        }
        let mut r = Reader::new(&body[2..], corrupted);
        let port = u16::from_be_bytes(r.array::<2>()?);
        let fingerprint = r.array::<32>()?;
        let secret = r.array::<16>()?;
        let count = usize::from(r.byte()?);
        if count > MAX_CANDIDATES {
            return Err(corrupted("too many addresses"));
        }
        let candidates = (0..count).map(|_| r.ip()).collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        if port == 0 {
            return Err(corrupted("port 0"));
        }
        Ok(Self {
            flow: if flags & FLAG_POST != 0 {
                Flow::Post
            } else {
                Flow::Pre
            },
            port,
            fingerprint: Fingerprint::from_bytes(fingerprint),
            secret: Secret(secret),
            candidates,
        })
    }
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM] {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let mut out = [0u8; CHECKSUM];
    out.copy_from_slice(&digest.as_ref()[..CHECKSUM]);
    out
}

fn corrupted(reason: &'static str) -> Error {
    Error::CorruptedCode { reason }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn code(candidates: Vec<IpAddr>) -> PairingCode {
        PairingCode::new(
            Flow::Pre,
            47123,
            Fingerprint::from_bytes([7; 32]),
            Secret::from_bytes([9; 16]),
            candidates,
        )
    }

    #[test]
    fn lengths_for_one_two_four_ipv4_candidates() {
        let ip = |n: u8| IpAddr::from([192, 168, 1, n]);
        let lengths: Vec<usize> = [1, 2, 4]
            .iter()
            .map(|&n| code((1..=n).map(ip).collect()).encode().len())
            .collect();
        assert_eq!(lengths, [103, 111, 127]);
    }

    #[test]
    fn text_is_qr_alphanumeric_and_forgiving() {
        let c = code(vec![IpAddr::from([10, 0, 0, 2])]);
        let text = c.encode();
        assert!(
            text.chars()
                .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == ':')
        );
        let sloppy = format!("  {} ", text.to_lowercase().replace("lp:", "lp: "));
        assert_eq!(PairingCode::parse(&sloppy).unwrap(), c);
    }

    #[test]
    fn typo_is_corrupted_not_a_hang() {
        let text = code(vec![IpAddr::from([10, 0, 0, 2])]).encode();
        let mut chars: Vec<char> = text.chars().collect();
        chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
        let typo: String = chars.into_iter().collect();
        let err = PairingCode::parse(&typo).unwrap_err();
        assert!(
            err.to_string().starts_with("corrupted pairing code"),
            "{err}"
        );
        assert!(
            PairingCode::parse("hello")
                .unwrap_err()
                .to_string()
                .starts_with("corrupted pairing code")
        );
    }

    #[test]
    fn newer_version_says_so() {
        let mut bytes = code(vec![]).to_bytes();
        bytes.truncate(bytes.len() - CHECKSUM);
        bytes[0] = 2;
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        let text = format!("{PREFIX}{}", BASE32_NOPAD.encode(&bytes));
        let err = PairingCode::parse(&text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this code needs a newer localpair (code version 2)"
        );
    }

    #[test]
    fn proofs_are_bound_to_role_and_exporter() {
        let s = Secret::from_bytes([1; 16]);
        let p = s.proof(Role::Joiner, b"session-a");
        assert!(s.verify(Role::Joiner, b"session-a", &p));
        assert!(!s.verify(Role::Host, b"session-a", &p));
        assert!(!s.verify(Role::Joiner, b"session-b", &p));
        assert!(!Secret::from_bytes([2; 16]).verify(Role::Joiner, b"session-a", &p));
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }

    fn any_code() -> impl Strategy<Value = PairingCode> {
        let ip = prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ];
        (
            any::<bool>(),
            1u16..,
            any::<[u8; 32]>(),
            any::<[u8; 16]>(),
            proptest::collection::vec(ip, 0..=MAX_CANDIDATES),
        )
            .prop_map(|(post, port, fp, secret, candidates)| {
                PairingCode::new(
                    if post { Flow::Post } else { Flow::Pre },
                    port,
                    Fingerprint::from_bytes(fp),
                    Secret::from_bytes(secret),
                    candidates,
                )
            })
    }

    proptest! {
        #[test]
        fn round_trips(c in any_code()) {
            prop_assert_eq!(PairingCode::parse(&c.encode()).unwrap(), c);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,600}") {
            let _ = PairingCode::parse(&text);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = PairingCode::from_bytes(&bytes);
            let _ = PairingCode::parse(&format!("{PREFIX}{}", BASE32_NOPAD.encode(&bytes)));
        }

        #[test]
        fn any_single_character_change_is_detected(c in any_code(), at in any::<prop::sample::Index>(), with in 0usize..32) {
            let text = c.encode();
            let body_start = PREFIX.len();
            let i = body_start + at.index(text.len() - body_start);
            let replacement = char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[with]);
            prop_assume!(text.as_bytes()[i] != replacement as u8);
            let mut changed = text;
            changed.replace_range(i..=i, &replacement.to_string());
            // A changed character is either caught, or (last character's unused bits) decodes to
            // the same code.
            match PairingCode::parse(&changed) {
                Ok(parsed) => prop_assert_eq!(parsed, c),
                Err(e) => prop_assert!(e.to_string().starts_with("corrupted pairing code")),
            }
        }
    }
}
