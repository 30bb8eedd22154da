//! Messages of the confirmation protocol. One parse function for untrusted bytes; it never
//! panics and rejects trailing bytes.
//!
//! ```text
//! payload = version:u8 (=1) type:u8 body
//! Probe    (1): code:[u8;16] ip
//! Observed (2): ip
//! Reply  (129): status:u8 (0 accepted, 1 unknown code, 2 refused)
//! ip = 4 a:[u8;4] | 6 a:[u8;16] scope:u32be
//! ```

use std::net::IpAddr;

use crate::bytes::{self, Reader};
use crate::error::Error;

const VERSION: u8 = 1;
const PROBE: u8 = 1;
const OBSERVED: u8 = 2;
const REPLY: u8 = 129;

/// Length of a probe's random code (128 bits).
pub(crate) const CODE_LEN: usize = 16;

/// An address with its IPv6 scope (interface index; 0 when not link-local).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScopedIp {
    /// The address.
    pub ip: IpAddr,
    /// IPv6 scope id; always 0 for IPv4.
    pub scope: u32,
}

/// How the listener answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// The message was taken.
    Accepted,
    /// The probe's code is not one we are waiting for.
    UnknownCode,
    /// The message was refused (e.g. an observation of an address we do not accept).
    Refused,
}

/// A message of the confirmation protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// "I am you; here is the code you are waiting for, sent to this address of yours."
    Probe {
        /// The random code.
        code: [u8; CODE_LEN],
        /// The address the prober dialled.
        target: ScopedIp,
    },
    /// "I heard your announcement from this address."
    Observed {
        /// The source address the peer saw.
        ip: ScopedIp,
    },
    /// The listener's answer.
    Reply(Status),
}

/// Encodes a message.
pub(crate) fn encode(message: &Message) -> Vec<u8> {
    let mut out = vec![VERSION];
    match message {
        Message::Probe { code, target } => {
            out.push(PROBE);
            out.extend_from_slice(code);
            put_ip(&mut out, *target);
        }
        Message::Observed { ip } => {
            out.push(OBSERVED);
            put_ip(&mut out, *ip);
        }
        Message::Reply(status) => {
            out.push(REPLY);
            out.push(match status {
                Status::Accepted => 0,
                Status::UnknownCode => 1,
                Status::Refused => 2,
            });
        }
    }
    out
}

fn put_ip(out: &mut Vec<u8>, ip: ScopedIp) {
    bytes::put_ip(out, ip.ip);
    if ip.ip.is_ipv6() {
        out.extend_from_slice(&ip.scope.to_be_bytes());
    }
}

fn malformed(reason: &'static str) -> Error {
    Error::MalformedFrame { reason }
}

fn read_ip(r: &mut Reader<'_, Error>) -> Result<ScopedIp, Error> {
    let ip = r.ip()?;
    let scope = if ip.is_ipv6() {
        u32::from_be_bytes(r.array::<4>()?)
    } else {
        0
    };
    Ok(ScopedIp { ip, scope })
}

/// Parses one payload (already length-capped by the frame reader).
pub(crate) fn parse(bytes: &[u8]) -> Result<Message, Error> {
    let mut r = Reader::new(bytes, malformed);
    if r.byte()? != VERSION {
        return Err(malformed("unsupported version"));
    }
    let message = match r.byte()? {
        PROBE => {
            let code = r.array::<CODE_LEN>()?;
            let target = read_ip(&mut r)?;
            Message::Probe { code, target }
        }
        OBSERVED => Message::Observed {
            ip: read_ip(&mut r)?,
        },
        REPLY => Message::Reply(match r.byte()? {
            0 => Status::Accepted,
            1 => Status::UnknownCode,
            2 => Status::Refused,
            _ => return Err(malformed("unknown status")),
        }),
        _ => return Err(malformed("unknown message type")),
    };
    r.finish()?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn scoped_ip() -> impl Strategy<Value = ScopedIp> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|a| ScopedIp {
                ip: IpAddr::from(a),
                scope: 0
            }),
            (any::<[u8; 16]>(), any::<u32>()).prop_map(|(a, scope)| ScopedIp {
                ip: IpAddr::from(a),
                scope
            }),
        ]
    }

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (any::<[u8; 16]>(), scoped_ip())
                .prop_map(|(code, target)| Message::Probe { code, target }),
            scoped_ip().prop_map(|ip| Message::Observed { ip }),
            prop_oneof![
                Just(Status::Accepted),
                Just(Status::UnknownCode),
                Just(Status::Refused)
            ]
            .prop_map(Message::Reply),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(m in message()) {
            prop_assert_eq!(parse(&encode(&m)).unwrap(), m);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn truncations_and_extensions_are_rejected(m in message(), extra in any::<u8>()) {
            let bytes = encode(&m);
            for cut in 0..bytes.len() {
                prop_assert!(parse(&bytes[..cut]).is_err());
            }
            let mut longer = bytes;
            longer.push(extra);
            prop_assert!(parse(&longer).is_err());
        }
    }
}
