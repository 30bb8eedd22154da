//! Messages of the pairing protocol, inside TLS. One parse function; never panics; trailing
//! bytes rejected.
//!
//! ```text
//! payload = version:u8 (=1) type:u8 body
//! JoinerProof (1): proof:[u8;32]     HMAC(secret, "joiner" label ‖ TLS exporter)
//! HostProof   (2): proof:[u8;32]     HMAC(secret, "host" label ‖ TLS exporter)
//! Refused     (3): reason:u8
//! Info        (4): name_len:u8 name:[u8; name_len] (UTF-8, at most 64 bytes)
//!                  [link_port:u16, non-zero]  (where the sender accepts known peers later)
//! ShortHello  (6): pake:[u8;33]      the joiner's SPAKE2 message (short code, ALPN
//!                                    `localpair-short/1`)
//! ShortReply  (7): nonce:[u8;8] pake:[u8;33]  the host's session nonce and SPAKE2 message
//! Confirm     (8): mac:[u8;32]       key confirmation, HMAC(PAKE key, role ‖ transcript)
//! ```
//!
//! A short-code exchange: `ShortHello` → `ShortReply` (or `Refused`) → `Confirm` (joiner) →
//! `Confirm` (host; or `Refused`: wrong code, or the code ended) → `Info` → `Info`.
//!
//! Reconnecting (ALPN `localpair-link/1`) uses the same messages: the dialling device sends its
//! `Info`, the listening one answers with its own `Info`, or `Refused` (5, unknown peer) when the
//! dialling key is not in its trust store.
//! Device id and key are not sent: they are the TLS key's.

use localpair_core::peer::clean_name;

use crate::error::Error;

const VERSION: u8 = 1;
/// Longest device name exchanged.
pub(crate) const MAX_NAME: usize = 64;

/// Why the host refused a joiner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Refusal {
    /// The proof did not verify: the joiner holds another code.
    WrongProof,
    /// The code's lifetime is over.
    Expired,
    /// The code was already used for a pairing.
    Used,
    /// Too many wrong proofs from this source: it must wait before the next is looked at.
    TooManyAttempts,
    /// Reconnecting: the listening device does not know this one (it never paired with it, or it
    /// forgot it).
    UnknownPeer,
    /// Short code: the key confirmation failed, the code typed is not the host's.
    WrongCode,
    /// Short code: too many wrong codes were tried; this code is over.
    CodeEnded,
}

impl Refusal {
    fn byte(self) -> u8 {
        match self {
            Self::WrongProof => 1,
            Self::Expired => 2,
            Self::Used => 3,
            Self::TooManyAttempts => 4,
            Self::UnknownPeer => 5,
            Self::WrongCode => 6,
            Self::CodeEnded => 7,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::WrongProof,
            2 => Self::Expired,
            3 => Self::Used,
            4 => Self::TooManyAttempts,
            5 => Self::UnknownPeer,
            6 => Self::WrongCode,
            7 => Self::CodeEnded,
            _ => return None,
        })
    }

    /// What it means for the person holding the code.
    pub fn explain(self) -> &'static str {
        match self {
            Self::WrongProof => {
                "the host rejected our proof: this code is not the one it shows (mistyped or from another pairing)"
            }
            Self::Expired => "the code has expired: start pairing again on the host",
            Self::Used => "the code was already used: start pairing again on the host",
            Self::TooManyAttempts => {
                "too many wrong attempts from this device: the host ignores it for a while; check \
                 the code and try again in a minute"
            }
            Self::UnknownPeer => {
                "the other device does not know this one (it never paired with it, or it forgot \
                 it): pair again"
            }
            Self::WrongCode => {
                "the code was wrong (or typed wrong): check it with the host and try again; the \
                 host ends the code after 3 wrong tries"
            }
            Self::CodeEnded => {
                "the code has ended: someone entered a wrong code 3 times; ask the host for a new one"
            }
        }
    }
}

/// A pairing message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Message {
    /// The joiner proves it holds the secret.
    JoinerProof([u8; 32]),
    /// The host proves it holds the secret too.
    HostProof([u8; 32]),
    /// The host says no.
    Refused(Refusal),
    /// A device's name, after both proofs.
    Info {
        /// Display name.
        name: String,
        /// The port of its link listener, so the other device can reconnect later even when
        /// discovery cannot tell it.
        link_port: Option<u16>,
    },
    /// Short code: the joiner's SPAKE2 message.
    ShortHello([u8; 33]),
    /// Short code: the host's session nonce and SPAKE2 message.
    ShortReply {
        /// The session nonce the host announces.
        nonce: [u8; 8],
        /// Its SPAKE2 message.
        pake: [u8; 33],
    },
    /// Short code: key confirmation.
    Confirm([u8; 32]),
}

/// Encodes a message; names are cleaned and cut to [`MAX_NAME`] bytes ([`clean_name`]).
pub(crate) fn encode(message: &Message) -> Vec<u8> {
    let mut out = vec![VERSION];
    match message {
        Message::JoinerProof(proof) => {
            out.push(1);
            out.extend_from_slice(proof);
        }
        Message::HostProof(proof) => {
            out.push(2);
            out.extend_from_slice(proof);
        }
        Message::Refused(reason) => {
            out.push(3);
            out.push(reason.byte());
        }
        Message::Info { name, link_port } => {
            out.push(4);
            let name = clean_name(name, MAX_NAME);
            out.push(u8::try_from(name.len()).unwrap_or(0));
            out.extend_from_slice(name.as_bytes());
            if let Some(port) = link_port.filter(|p| *p != 0) {
                out.extend_from_slice(&port.to_be_bytes());
            }
        }
        Message::ShortHello(pake) => {
            out.push(6);
            out.extend_from_slice(pake);
        }
        Message::ShortReply { nonce, pake } => {
            out.push(7);
            out.extend_from_slice(nonce);
            out.extend_from_slice(pake);
        }
        Message::Confirm(mac) => {
            out.push(8);
            out.extend_from_slice(mac);
        }
    }
    out
}

fn malformed(reason: &'static str) -> Error {
    Error::Malformed { reason }
}

fn proof(body: &[u8]) -> Result<[u8; 32], Error> {
    <[u8; 32]>::try_from(body).map_err(|_| malformed("a proof is 32 bytes"))
}

/// Parses one payload.
pub(crate) fn parse(bytes: &[u8]) -> Result<Message, Error> {
    let [version, kind, body @ ..] = bytes else {
        return Err(malformed("truncated"));
    };
    if *version != VERSION {
        return Err(malformed("unsupported pairing protocol version"));
    }
    match kind {
        1 => Ok(Message::JoinerProof(proof(body)?)),
        2 => Ok(Message::HostProof(proof(body)?)),
        3 => match body {
            [reason] => Refusal::from_byte(*reason)
                .map(Message::Refused)
                .ok_or_else(|| malformed("unknown refusal")),
            _ => Err(malformed("a refusal is one byte")),
        },
        4 => {
            let [len, rest @ ..] = body else {
                return Err(malformed("truncated"));
            };
            let len = usize::from(*len);
            if len > MAX_NAME || rest.len() < len {
                return Err(malformed("bad name length"));
            }
            let (name, tail) = rest.split_at(len);
            let link_port = match tail {
                [] => None,
                [hi, lo] => match u16::from_be_bytes([*hi, *lo]) {
                    0 => return Err(malformed("link port 0")),
                    port => Some(port),
                },
                _ => return Err(malformed("trailing bytes after the name")),
            };
            let name = std::str::from_utf8(name).map_err(|_| malformed("name is not UTF-8"))?;
            // The peer's name ends up on a terminal and in the trust store.
            Ok(Message::Info {
                name: clean_name(name, MAX_NAME),
                link_port,
            })
        }
        6 => <[u8; 33]>::try_from(body)
            .map(Message::ShortHello)
            .map_err(|_| malformed("a SPAKE2 message is 33 bytes")),
        7 => match body.split_first_chunk::<8>() {
            Some((nonce, pake)) => Ok(Message::ShortReply {
                nonce: *nonce,
                pake: <[u8; 33]>::try_from(pake)
                    .map_err(|_| malformed("a SPAKE2 message is 33 bytes"))?,
            }),
            None => Err(malformed("truncated")),
        },
        8 => Ok(Message::Confirm(proof(body)?)),
        _ => Err(malformed("unknown message type")),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            any::<[u8; 32]>().prop_map(Message::JoinerProof),
            any::<[u8; 32]>().prop_map(Message::HostProof),
            any::<[u8; 32]>().prop_map(Message::Confirm),
            (any::<[u8; 8]>(), proptest::collection::vec(any::<u8>(), 33)).prop_map(
                |(nonce, p)| {
                    Message::ShortReply {
                        nonce,
                        pake: <[u8; 33]>::try_from(p.as_slice()).unwrap(),
                    }
                }
            ),
            proptest::collection::vec(any::<u8>(), 33)
                .prop_map(|p| Message::ShortHello(<[u8; 33]>::try_from(p.as_slice()).unwrap())),
            (1u8..=7).prop_map(|b| Message::Refused(Refusal::from_byte(b).unwrap())),
            ("[a-zA-Z0-9 éü-]{0,20}", proptest::option::of(1u16..))
                .prop_map(|(name, link_port)| Message::Info { name, link_port }),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(m in message()) {
            prop_assert_eq!(parse(&encode(&m)).unwrap(), m);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = parse(&bytes);
        }
    }

    #[test]
    fn names_with_terminal_escapes_arrive_cleaned() {
        let mut raw = vec![VERSION, 4];
        let name = "desk\u{1b}[2J\u{202E}top";
        raw.push(u8::try_from(name.len()).unwrap());
        raw.extend_from_slice(name.as_bytes());
        let Ok(Message::Info { name, .. }) = parse(&raw) else {
            panic!("not info");
        };
        assert_eq!(name, "desk\u{FFFD}[2Jtop");
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let name = "é".repeat(40);
        let info = Message::Info {
            name,
            link_port: Some(4242),
        };
        let Message::Info {
            name: cut,
            link_port,
        } = parse(&encode(&info)).unwrap()
        else {
            panic!("not info");
        };
        assert_eq!(cut.len(), 64);
        assert_eq!(link_port, Some(4242));
    }
}
