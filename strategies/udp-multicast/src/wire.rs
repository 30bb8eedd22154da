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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Packet {
        let mut p = Packet::new(
            Kind::Announce,
            Fingerprint::from_bytes([7; 32]),
            40_123,
            "kitchen-pc",
        );
        p.starting = true;
        p.pairing_port = Some(5000);
        p.session_tag = Some([1, 2, 3, 4, 5, 6, 7, 8]);
        p
    }

    #[test]
    fn layout_is_as_documented() {
        let bytes = sample().encode();
        assert_eq!(&bytes[..4], b"LPmc");
        assert_eq!(bytes[4], 1);
        assert_eq!(bytes[5], 1);
        assert_eq!(bytes[6], 0b111);
        assert_eq!(&bytes[7..39], &[7; 32]);
        assert_eq!(&bytes[39..41], &40_123u16.to_be_bytes());
        assert_eq!(&bytes[41..43], &5000u16.to_be_bytes());
        assert_eq!(&bytes[43..51], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(bytes[51], 10);
        assert_eq!(&bytes[52..], b"kitchen-pc");
        assert_eq!(parse(&bytes).unwrap(), sample());
    }

    #[test]
    fn largest_packet_is_130_bytes() {
        let mut p = sample();
        p.name = "x".repeat(MAX_NAME);
        assert_eq!(p.encode().len(), 116);
        p.link_port = Some(47_000);
        assert_eq!(p.encode().len(), 118);
        // With an offer, the largest there is.
        p.offer = Some(Offer::new(19_537, OfferTo::Session([9; 8])));
        assert_eq!(p.encode().len(), 129);
        p.short_channel = Some(99);
        assert_eq!(p.encode().len(), 130);
        assert_eq!(parse(&p.encode()).unwrap(), p);
    }

    #[test]
    fn short_channel_follows_the_offer_and_is_range_checked() {
        let mut p = Packet::new(Kind::Announce, Fingerprint::from_bytes([7; 32]), 1, "");
        p.short_channel = Some(47);
        let bytes = p.encode();
        assert_eq!(bytes[6], 0b10_0000);
        assert_eq!(bytes[41], 47);
        assert_eq!(bytes[42], 0);
        assert_eq!(parse(&bytes).unwrap(), p);
        let mut bad = bytes;
        bad[41] = 9;
        assert!(parse(&bad).is_err());
        // A channel outside the range is left out rather than sent wrong.
        p.short_channel = Some(100);
        assert_eq!(parse(&p.encode()).unwrap().short_channel, None);
    }

    #[test]
    fn offers_are_laid_out_after_the_link_port() {
        let mut p = Packet::new(Kind::Announce, Fingerprint::from_bytes([7; 32]), 1, "");
        p.offer = Some(Offer::new(
            19_539,
            OfferTo::Device(DeviceId::from_bytes([3; 8])),
        ));
        let bytes = p.encode();
        assert_eq!(bytes[6], 0b1_0000);
        assert_eq!(&bytes[41..43], &19_539u16.to_be_bytes());
        assert_eq!(bytes[43], 2);
        assert_eq!(&bytes[44..52], &[3; 8]);
        assert_eq!(parse(&bytes).unwrap(), p);
        let mut bad_kind = bytes.clone();
        bad_kind[43] = 7;
        assert!(parse(&bad_kind).is_err());
        let mut zero_port = bytes;
        zero_port[41..43].copy_from_slice(&[0, 0]);
        assert!(parse(&zero_port).is_err());
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(
                matches!(parse(&bytes[..len]), Err(Error::Malformed { .. })),
                "{len}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = sample().encode();
        bytes.push(0);
        assert!(
            matches!(parse(&bytes), Err(Error::Malformed { reason }) if reason.contains("trailing"))
        );
    }

    #[test]
    fn oversized_is_rejected_before_reading() {
        let mut bytes = vec![0; MAX_DATAGRAM + 1];
        bytes[..4].copy_from_slice(&MAGIC);
        assert!(matches!(parse(&bytes), Err(Error::Oversized { len: 1201 })));
    }

    #[test]
    fn bad_fields_are_named() {
        let good = sample().encode();
        let cases: [(usize, u8, &str); 5] = [
            (0, b'X', "magic"),
            (4, 2, "version"),
            (5, 9, "kind"),
            (6, 0b1010_0111, "reserved"),
            (51, 65, "longer than 64"),
        ];
        for (at, value, why) in cases {
            let mut bytes = good.clone();
            bytes[at] = value;
            match parse(&bytes) {
                Err(Error::Malformed { reason }) => assert!(reason.contains(why), "{reason}"),
                other => panic!("byte {at} = {value}: {other:?}"),
            }
        }
        let mut zero_port = good;
        zero_port[41..43].copy_from_slice(&[0, 0]);
        assert!(parse(&zero_port).is_err());
    }

    #[test]
    fn names_must_be_clean_utf8() {
        let mut p = sample();
        p.name = "ab".into();
        let mut bytes = p.encode();
        let at = bytes.len() - 2;
        bytes[at] = 0xff;
        assert!(
            matches!(parse(&bytes), Err(Error::Malformed { reason }) if reason.contains("UTF-8"))
        );
        bytes[at] = 0x1b; // ESC: would let a name drive the terminal that prints it
        assert!(
            matches!(parse(&bytes), Err(Error::Malformed { reason }) if reason.contains("control"))
        );
    }

    #[test]
    fn names_that_print_as_something_else_are_rejected() {
        let mut p = sample();
        p.name = "ab".into();
        let mut bytes = p.encode();
        let len_at = bytes.len() - 3;
        bytes.truncate(len_at);
        let rlo = "a\u{202E}b".as_bytes();
        bytes.push(rlo.len() as u8);
        bytes.extend_from_slice(rlo);
        assert!(
            matches!(parse(&bytes), Err(Error::Malformed { reason }) if reason.contains("invisible"))
        );
        p.name = "a\u{200B}\u{202E}b\u{2066}".into();
        assert_eq!(parse(&p.encode()).unwrap().name, "ab");
    }

    #[test]
    fn names_are_cleaned_on_the_way_out() {
        assert_eq!(clean_name("a\u{1b}[2Jb"), "a [2Jb");
        let long = "é".repeat(40); // 80 bytes
        let cut = clean_name(&long);
        assert_eq!(cut.len(), 64);
        assert!(cut.chars().all(|c| c == 'é'));
        let mut p = sample();
        p.name = "\u{7}".repeat(100);
        assert_eq!(parse(&p.encode()).unwrap().name, " ".repeat(64));
    }

    fn packets() -> impl Strategy<Value = Packet> {
        (
            prop_oneof![Just(Kind::Announce), Just(Kind::Answer), Just(Kind::Probe)],
            any::<bool>(),
            any::<[u8; 32]>(),
            any::<u16>(),
            proptest::option::of(1u16..=u16::MAX),
            proptest::option::of(any::<[u8; 8]>()),
            "\\PC{0,30}",
            proptest::option::of((1u16..=u16::MAX, any::<bool>(), any::<[u8; 8]>())),
            proptest::option::of(10u8..=99),
        )
            .prop_map(
                |(kind, starting, fp, confirm_port, pairing_port, tag, name, offer, short)| {
                    let mut p = Packet::new(kind, Fingerprint::from_bytes(fp), confirm_port, &name);
                    p.starting = starting;
                    p.pairing_port = pairing_port;
                    p.session_tag = tag;
                    p.short_channel = short;
                    p.offer = offer.map(|(port, session, to)| {
                        let to = if session {
                            OfferTo::Session(to)
                        } else {
                            OfferTo::Device(DeviceId::from_bytes(to))
                        };
                        Offer::new(port, to)
                    });
                    p
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(p in packets()) {
            let bytes = p.encode();
            prop_assert!(bytes.len() <= 130);
            prop_assert_eq!(parse(&bytes).unwrap(), p);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1400)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn valid_prefix_with_noise_never_panics(
            p in packets(),
            cut in 0usize..120,
            noise in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut bytes = p.encode();
            bytes.truncate(cut.min(bytes.len()));
            bytes.extend_from_slice(&noise);
            if let Ok(parsed) = parse(&bytes) {
                // Whatever parses re-encodes to the same bytes: there is one encoding per packet.
                prop_assert_eq!(parsed.encode(), bytes);
            }
        }

        #[test]
        fn every_strict_prefix_fails(p in packets()) {
            let bytes = p.encode();
            for len in 0..bytes.len() {
                prop_assert!(parse(&bytes[..len]).is_err());
            }
        }
    }
}
