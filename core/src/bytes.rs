//! The small binary formats of localpair (the confirmation messages here, the pairing code and
//! wire messages in the pairing crate) share one bounds-checked reader and one address encoding:
//! a family byte (4 or 6) and the octets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Reads fields off the front of untrusted bytes; every shortfall is an error of the format's own
/// type `E`, never a panic.
#[derive(Debug)]
pub struct Reader<'a, E> {
    rest: &'a [u8],
    /// Builds the format's own error ("corrupted pairing code", "malformed frame").
    error: fn(&'static str) -> E,
}

impl<'a, E> Reader<'a, E> {
    /// A reader over `bytes` whose failures are built by `error`.
    pub fn new(bytes: &'a [u8], error: fn(&'static str) -> E) -> Self {
        Self { rest: bytes, error }
    }

    /// The format's error for `reason`.
    pub fn fail(&self, reason: &'static str) -> E {
        (self.error)(reason)
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], E> {
        if self.rest.len() < n {
            return Err(self.fail("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// The next byte.
    pub fn byte(&mut self) -> Result<u8, E> {
        Ok(self.take(1)?[0])
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], E> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// An address written by [`put_ip`].
    pub fn ip(&mut self) -> Result<IpAddr, E> {
        match self.byte()? {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(self.array::<4>()?))),
            6 => Ok(IpAddr::V6(Ipv6Addr::from(self.array::<16>()?))),
            _ => Err(self.fail("unknown address family")),
        }
    }

    /// Ends the read: trailing bytes are an error.
    pub fn finish(self) -> Result<(), E> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.fail("trailing bytes"))
        }
    }
}

/// Appends the family byte and the octets.
pub fn put_ip(out: &mut Vec<u8>, ip: IpAddr) {
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
