//! The datagram format: small, versioned, binary, and parsed by exactly one function.
//!
//! ```text
//! offset  size  field
//!      0     4  magic          b"LPmc"
//!      4     1  version        1
//!      5     1  kind           1 = announce (scheduled), 2 = answer (triggered by a new peer),
//!                              3 = probe (a loopback self-test: every receiver but the sender
//!                              ignores it, so testing multicast does not announce the device)
//!      6     1  flags          bit 0 STARTING     the sender is in its start-up burst: answer it
//!                              bit 1 PAIRING_PORT the pairing-port field is present
//!                              bit 2 SESSION_TAG  the session-tag field is present
//!                              bit 3 LINK_PORT    the link-port field is present: the sender
//!                                                 accepts connections from the peers it knows
//!                              bit 4 OFFER        the offer fields are present: the sender
//!                                                 cannot reach a device and waits to be dialled
//!                              bit 5 SHORT        the short-channel field is present: the
//!                                                 sender hosts a short-code pairing
//!                              bits 6..7 reserved, must be 0 (a new meaning bumps the version)
//!      7    32  fingerprint    SHA-256 of the sender's SubjectPublicKeyInfo (its device id is the
//!                              first 8 bytes, so the id is not carried separately)
//!     39     2  confirm port   u16 big endian; the sender's confirmation listener, 0 = none
//!      …     2  pairing port   u16 big endian, non-zero; only with PAIRING_PORT
//!      …     8  session tag    only with SESSION_TAG
//!      …     2  link port      u16 big endian, non-zero; only with LINK_PORT
//!      …     2  offer port     u16 big endian, non-zero; only with OFFER
//!      …     1  offer kind     1 = for the host of a session tag, 2 = for a device id; only
//!                              with OFFER
//!      …     8  offer to       that session tag or device id; only with OFFER
//!      …     1  short channel  10..=99, the short code's public part; only with SHORT
//!      …     1  name length    n, 0..=64
//!      …     n  name           UTF-8 without control or invisible formatting characters
//!                              (`localpair_core::peer::is_clean`)
//! ```
//!
//! Nothing may follow the name. The largest packet is 130 bytes; datagrams over
//! [`MAX_DATAGRAM`] are dropped by the receiver without being read.

use localpair_core::identity::DeviceId;
use localpair_core::{Fingerprint, Offer, OfferTo};

use crate::error::Error;

/// First four bytes of every packet.
pub const MAGIC: [u8; 4] = *b"LPmc";
/// The format version this crate speaks.
pub const VERSION: u8 = 1;
/// Datagrams longer than this are dropped unread (a valid packet is at most 130 bytes; the cap
/// leaves room for later versions while staying under every LAN's MTU).
pub const MAX_DATAGRAM: usize = 1200;
/// Longest name on the wire, in bytes.
pub const MAX_NAME: usize = 64;

const KIND_ANNOUNCE: u8 = 1;
const KIND_ANSWER: u8 = 2;
const KIND_PROBE: u8 = 3;
const FLAG_STARTING: u8 = 0b001;
const FLAG_PAIRING_PORT: u8 = 0b010;
const FLAG_SESSION_TAG: u8 = 0b100;
const FLAG_LINK_PORT: u8 = 0b1000;
const FLAG_OFFER: u8 = 0b1_0000;
const FLAG_SHORT: u8 = 0b10_0000;
const FLAGS_KNOWN: u8 =
    FLAG_STARTING | FLAG_PAIRING_PORT | FLAG_SESSION_TAG | FLAG_LINK_PORT | FLAG_OFFER | FLAG_SHORT;
/// The short-code channels a packet may carry.
const SHORT_CHANNELS: std::ops::RangeInclusive<u8> = 10..=99;
const OFFER_SESSION: u8 = 1;
const OFFER_DEVICE: u8 = 2;
/// Magic, version, kind, flags, fingerprint, confirm port.
const FIXED_LEN: usize = 4 + 1 + 1 + 1 + 32 + 2;

/// Why a packet was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A scheduled announcement.
    Announce,
    /// An immediate reply to a newly heard peer, sent to the group like everything else.
    Answer,
    /// A self-test that only its sender listens for (multicast loopback); others ignore it.
    Probe,
}

/// One datagram's content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Packet {
    /// Why it was sent.
    pub kind: Kind,
    /// The sender is in its start-up burst; listeners answer so it finds them at once.
    pub starting: bool,
    /// The sender's key fingerprint.
    pub fingerprint: Fingerprint,
    /// The sender's confirmation listener port; 0 when it runs without one.
    pub confirm_port: u16,
    /// The sender's pairing listener, while it hosts a pairing. `Some(0)` is not encoded.
    pub pairing_port: Option<u16>,
    /// The session tag of the pairing it hosts.
    pub session_tag: Option<[u8; 8]>,
    /// The sender's link listener, when it accepts connections from known peers. `Some(0)` is
    /// not encoded.
    pub link_port: Option<u16>,
    /// The listener it offers to a device it cannot reach.
    pub offer: Option<Offer>,
    /// The channel of the short-code pairing it hosts (10..=99; others are not encoded).
    pub short_channel: Option<u8>,
    /// Its name, at most [`MAX_NAME`] bytes without control characters (see [`clean_name`]).
    pub name: String,
}

impl Packet {
    /// A packet with no pairing port and no session tag; `name` is cleaned with [`clean_name`].
    pub fn new(kind: Kind, fingerprint: Fingerprint, confirm_port: u16, name: &str) -> Self {
        Self {
            kind,
            starting: false,
            fingerprint,
            confirm_port,
            pairing_port: None,
            session_tag: None,
            link_port: None,
            offer: None,
            short_channel: None,
            name: clean_name(name),
        }
    }

    /// The datagram. A name that is not clean is cleaned on the way out, so every encoded
    /// packet parses.
    pub fn encode(&self) -> Vec<u8> {
        let pairing_port = self.pairing_port.filter(|p| *p != 0);
        let mut flags = 0;
        if self.starting {
            flags |= FLAG_STARTING;
        }
        if pairing_port.is_some() {
            flags |= FLAG_PAIRING_PORT;
        }
        if self.session_tag.is_some() {
            flags |= FLAG_SESSION_TAG;
        }
        let link_port = self.link_port.filter(|p| *p != 0);
        if link_port.is_some() {
            flags |= FLAG_LINK_PORT;
        }
        // A kind of offer this version cannot say is left out rather than sent wrong.
        let offer = self.offer.filter(|o| o.port != 0).and_then(|o| match o.to {
            OfferTo::Session(tag) => Some((o.port, OFFER_SESSION, tag)),
            OfferTo::Device(id) => Some((o.port, OFFER_DEVICE, *id.as_bytes())),
            _ => None,
        });
        if offer.is_some() {
            flags |= FLAG_OFFER;
        }
        let short_channel = self.short_channel.filter(|c| SHORT_CHANNELS.contains(c));
        if short_channel.is_some() {
            flags |= FLAG_SHORT;
        }
        let cleaned;
        let name = if is_clean(&self.name) {
            self.name.as_str()
        } else {
            cleaned = clean_name(&self.name);
            cleaned.as_str()
        };
        let mut out = Vec::with_capacity(FIXED_LEN + 2 + 8 + 2 + 11 + 1 + name.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(match self.kind {
            Kind::Announce => KIND_ANNOUNCE,
            Kind::Answer => KIND_ANSWER,
            Kind::Probe => KIND_PROBE,
        });
        out.push(flags);
        out.extend_from_slice(self.fingerprint.as_bytes());
        out.extend_from_slice(&self.confirm_port.to_be_bytes());
        if let Some(port) = pairing_port {
            out.extend_from_slice(&port.to_be_bytes());
        }
        if let Some(tag) = &self.session_tag {
            out.extend_from_slice(tag);
        }
        if let Some(port) = link_port {
            out.extend_from_slice(&port.to_be_bytes());
        }
        if let Some((port, kind, to)) = offer {
            out.extend_from_slice(&port.to_be_bytes());
            out.push(kind);
            out.extend_from_slice(&to);
        }
        if let Some(channel) = short_channel {
            out.push(channel);
        }
        // `name` is at most MAX_NAME (64) bytes here, so the length fits a byte.
        out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(name.as_bytes());
        out
    }
}

/// Parses one datagram. Never panics; rejects anything but exactly one well-formed packet.
pub fn parse(bytes: &[u8]) -> Result<Packet, Error> {
    if bytes.len() > MAX_DATAGRAM {
        return Err(Error::Oversized { len: bytes.len() });
    }
    let mut r = Reader { bytes };
    if r.take(4, "shorter than the magic")? != MAGIC {
        return Err(malformed("wrong magic (not a localpair packet)"));
    }
    if r.byte("no version")? != VERSION {
        return Err(malformed("unsupported version"));
    }
    let kind = match r.byte("no kind")? {
        KIND_ANNOUNCE => Kind::Announce,
        KIND_ANSWER => Kind::Answer,
        KIND_PROBE => Kind::Probe,
        _ => return Err(malformed("unknown packet kind")),
    };
    let flags = r.byte("no flags")?;
    if flags & !FLAGS_KNOWN != 0 {
        return Err(malformed("reserved flag bits set"));
    }
    let fingerprint = Fingerprint::from_bytes(r.array("truncated fingerprint")?);
    let confirm_port = u16::from_be_bytes(r.array("truncated confirm port")?);
    let pairing_port = if flags & FLAG_PAIRING_PORT != 0 {
        match u16::from_be_bytes(r.array("truncated pairing port")?) {
            0 => return Err(malformed("pairing port 0")),
            port => Some(port),
        }
    } else {
        None
    };
    let session_tag = if flags & FLAG_SESSION_TAG != 0 {
        Some(r.array("truncated session tag")?)
    } else {
        None
    };
    let link_port = if flags & FLAG_LINK_PORT != 0 {
        match u16::from_be_bytes(r.array("truncated link port")?) {
            0 => return Err(malformed("link port 0")),
            port => Some(port),
        }
    } else {
        None
    };
    let offer = if flags & FLAG_OFFER != 0 {
        let port = u16::from_be_bytes(r.array("truncated offer port")?);
        let kind = r.byte("truncated offer kind")?;
        let to: [u8; 8] = r.array("truncated offer")?;
        let to = match kind {
            OFFER_SESSION => OfferTo::Session(to),
            OFFER_DEVICE => OfferTo::Device(DeviceId::from_bytes(to)),
            _ => return Err(malformed("unknown offer kind")),
        };
        if port == 0 {
            return Err(malformed("offer port 0"));
        }
        Some(Offer::new(port, to))
    } else {
        None
    };
    let short_channel = if flags & FLAG_SHORT != 0 {
        match r.byte("truncated short channel")? {
            channel if SHORT_CHANNELS.contains(&channel) => Some(channel),
            _ => return Err(malformed("short channel outside 10..=99")),
        }
    } else {
        None
    };
    let len = usize::from(r.byte("no name length")?);
    if len > MAX_NAME {
        return Err(malformed("name longer than 64 bytes"));
    }
    let name = std::str::from_utf8(r.take(len, "truncated name")?)
        .map_err(|_| malformed("name is not UTF-8"))?;
    if name.chars().any(localpair_core::peer::is_control) {
        return Err(malformed("control character in name"));
    }
    if !localpair_core::peer::is_clean(name, MAX_NAME) {
        // Bidi overrides, zero-width characters and the like: a name that prints as something
        // else than it is. Our encoder never sends one.
        return Err(malformed("invisible formatting character in name"));
    }
    if !r.bytes.is_empty() {
        return Err(malformed("trailing bytes after the name"));
    }
    Ok(Packet {
        kind,
        starting: flags & FLAG_STARTING != 0,
        fingerprint,
        confirm_port,
        pairing_port,
        session_tag,
        link_port,
        offer,
        short_channel,
        name: name.to_owned(),
    })
}

/// A name fit for the wire: control characters become spaces (the name keeps its shape), then
/// [`localpair_core::peer::clean_name`] drops invisible formatting characters and cuts it to at
/// most [`MAX_NAME`] bytes on a character boundary.
pub fn clean_name(name: &str) -> String {
    let spaced: String = name
        .chars()
        .map(|c| {
            if localpair_core::peer::is_control(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    localpair_core::peer::clean_name(&spaced, MAX_NAME)
}

fn is_clean(name: &str) -> bool {
    localpair_core::peer::is_clean(name, MAX_NAME)
}

fn malformed(reason: &'static str) -> Error {
    Error::Malformed { reason }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, missing: &'static str) -> Result<&'a [u8], Error> {
        if self.bytes.len() < n {
            return Err(malformed(missing));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn byte(&mut self, missing: &'static str) -> Result<u8, Error> {
        Ok(self.array::<1>(missing)?[0])
    }

    fn array<const N: usize>(&mut self, missing: &'static str) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, missing)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
