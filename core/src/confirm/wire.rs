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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::Error;

const VERSION: u8 = 1;
const PROBE: u8 = 1;
const OBSERVED: u8 = 2;
const REPLY: u8 = 129;

/// Length of a probe's random code (128 bits).
pub const CODE_LEN: usize = 16;

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
pub enum Status {
    /// The message was taken.
    Accepted,
    /// The probe's code is not one we are waiting for.
    UnknownCode,
    /// The message was refused (e.g. an observation of an address we do not accept).
    Refused,
}

/// A message of the confirmation protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
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
pub fn encode(message: &Message) -> Vec<u8> {
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
    match ip.ip {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
            out.extend_from_slice(&ip.scope.to_be_bytes());
        }
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

fn malformed(reason: &'static str) -> Error {
    Error::MalformedFrame { reason }
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.rest.len() < n {
            return Err(malformed("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn ip(&mut self) -> Result<ScopedIp, Error> {
        match self.byte()? {
            4 => Ok(ScopedIp {
                ip: IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)),
                scope: 0,
            }),
            6 => {
                let ip = IpAddr::V6(Ipv6Addr::from(self.array::<16>()?));
                let scope = u32::from_be_bytes(self.array::<4>()?);
                Ok(ScopedIp { ip, scope })
            }
            _ => Err(malformed("unknown address family")),
        }
    }
}

/// Parses one payload (already length-capped by the frame reader).
pub fn parse(bytes: &[u8]) -> Result<Message, Error> {
    let mut r = Reader { rest: bytes };
    if r.byte()? != VERSION {
        return Err(malformed("unsupported version"));
    }
    let message = match r.byte()? {
        PROBE => {
            let code = r.array::<CODE_LEN>()?;
            let target = r.ip()?;
            Message::Probe { code, target }
        }
        OBSERVED => Message::Observed { ip: r.ip()? },
        REPLY => Message::Reply(match r.byte()? {
            0 => Status::Accepted,
            1 => Status::UnknownCode,
            2 => Status::Refused,
            _ => return Err(malformed("unknown status")),
        }),
        _ => return Err(malformed("unknown message type")),
    };
    if !r.rest.is_empty() {
        return Err(malformed("trailing bytes"));
    }
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
