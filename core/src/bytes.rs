//! The small binary formats (pairing code, confirmation messages) share one bounds-checked reader
//! and one address encoding: a family byte (4 or 6) and the octets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::Error;

/// Reads fields off the front of untrusted bytes; every shortfall is an error, never a panic.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    /// Builds the format's own error ("corrupted pairing code", "malformed frame").
    error: fn(&'static str) -> Error,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], error: fn(&'static str) -> Error) -> Self {
        Self { rest: bytes, error }
    }

    pub(crate) fn fail(&self, reason: &'static str) -> Error {
        (self.error)(reason)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.rest.len() < n {
            return Err(self.fail("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// An address written by [`put_ip`].
    pub(crate) fn ip(&mut self) -> Result<IpAddr, Error> {
        match self.byte()? {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(self.array::<4>()?))),
            6 => Ok(IpAddr::V6(Ipv6Addr::from(self.array::<16>()?))),
            _ => Err(self.fail("unknown address family")),
        }
    }

    /// Ends the read: trailing bytes are an error.
    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.fail("trailing bytes"))
        }
    }
}

/// Appends the family byte and the octets.
pub(crate) fn put_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
}
