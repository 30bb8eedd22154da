//! The TXT record of a `_localpair._tcp` service: what we announce, and the one parser for what
//! others announce (untrusted: any responder on the LAN can publish our service type).

use std::net::SocketAddr;

use localpair_core::{Advert, DeviceId, Fingerprint, Offer, Peer};

use crate::error::Error;

/// The protocol version we announce and accept (`v`).
pub const VERSION: &str = "1";

/// TXT keys. Keys are compared case-insensitively (RFC 6763 §6.4); we emit them in lower case.
pub mod key {
    /// Protocol version, `1`.
    pub const VERSION: &str = "v";
    /// Device id: 16 lower-case hex digits, the first 8 bytes of the fingerprint.
    pub const ID: &str = "id";
    /// Key fingerprint: 64 lower-case hex digits, SHA-256 of the SubjectPublicKeyInfo.
    pub const FINGERPRINT: &str = "fp";
    /// Device name, UTF-8.
    pub const NAME: &str = "name";
    /// Pairing listener port, decimal, while hosting a pairing.
    pub const PAIRING_PORT: &str = "pp";
    /// Session tag of the hosted pairing: 16 hex digits.
    pub const SESSION_TAG: &str = "tag";
    /// Link listener port, decimal, while the device accepts connections from known peers.
    pub const LINK_PORT: &str = "lp";
    /// A listener offered to a device this one cannot reach: `session:<tag hex>@<port>` or
    /// `device:<device id>@<port>` (see `localpair_core::Offer`).
    pub const OFFER: &str = "of";
    /// Short-code channel, two decimal digits `10`..=`99`, while the device hosts a pairing with
    /// a typed short code (its public part only).
    pub const SHORT_CHANNEL: &str = "sc";
}

/// Most entries a record may have before we stop reading it. Ours has at most 9; the slack is for
/// later versions adding keys.
pub const MAX_ENTRIES: usize = 32;
/// Most bytes of keys and values together. Ours is under 200; 1,300 keeps a record inside one
/// Ethernet-sized mDNS packet.
pub const MAX_BYTES: usize = 1_300;
/// Longest device name we announce or accept, in bytes (longer ones are cut at a character
/// boundary), so the name also fits a DNS label beside the id.
pub const NAME_MAX: usize = 63;

/// What a `_localpair._tcp` TXT record says about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Txt {
    /// The device's key fingerprint; its first 8 bytes are the device id.
    pub fingerprint: Fingerprint,
    /// The device name (control characters replaced, at most [`NAME_MAX`] bytes).
    pub name: String,
    /// Port of the pairing listener, while the device hosts a pairing.
    pub pairing_port: Option<u16>,
    /// Session tag of the hosted pairing.
    pub session_tag: Option<[u8; 8]>,
    /// Port of the link listener, while the device accepts connections from known peers.
    pub link_port: Option<u16>,
    /// The listener it offers to a device it cannot reach.
    pub offer: Option<Offer>,
    /// The short-code channel of the pairing it hosts (10..=99).
    pub short_channel: Option<u8>,
}

impl Txt {
    /// The record for a device with this key, name and advert.
    pub fn new(fingerprint: Fingerprint, name: &str, advert: Advert) -> Self {
        Self {
            fingerprint,
            name: clean_name(name, NAME_MAX),
            pairing_port: advert.pairing_port,
            session_tag: advert.session_tag,
            link_port: advert.link_port,
            offer: advert.offer,
            short_channel: advert.short_channel.filter(|c| (10..=99).contains(c)),
        }
    }

    /// The device id the fingerprint implies.
    pub fn device_id(&self) -> DeviceId {
        self.fingerprint.device_id()
    }

    /// The entries to publish, in a stable order.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            (key::VERSION, VERSION.to_owned()),
            (key::ID, self.device_id().to_string()),
            (key::FINGERPRINT, self.fingerprint.to_string()),
            (key::NAME, self.name.clone()),
        ];
        if let Some(port) = self.pairing_port {
            out.push((key::PAIRING_PORT, port.to_string()));
        }
        if let Some(tag) = self.session_tag {
            out.push((key::SESSION_TAG, localpair_core::identity::hex(&tag)));
        }
        if let Some(port) = self.link_port {
            out.push((key::LINK_PORT, port.to_string()));
        }
        if let Some(offer) = self.offer {
            out.push((key::OFFER, offer.to_string()));
        }
        if let Some(channel) = self.short_channel {
            out.push((key::SHORT_CHANNEL, channel.to_string()));
        }
        out
    }

    /// Parses a record received from the network: `(key, value)` pairs in wire order, `None` for a
    /// key without `=`. Never panics; any input either parses or is an error that says why.
    ///
    /// The first occurrence of a key wins and later ones are ignored (RFC 6763 §6.4); unknown keys
    /// are ignored, so a later version can add some. `v`, `id` and `fp` are required, and `id` must
    /// be the first 8 bytes of `fp`.
    pub fn parse<'a, I>(entries: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    {
        let mut slots = Slots::default();
        let mut count = 0usize;
        let mut bytes = 0usize;
        for (k, v) in entries {
            count += 1;
            bytes = bytes
                .saturating_add(k.len())
                .saturating_add(v.map_or(0, <[u8]>::len));
            if count > MAX_ENTRIES || bytes > MAX_BYTES {
                return Err(Error::TxtTooLarge {
                    max_entries: MAX_ENTRIES,
                    max_bytes: MAX_BYTES,
                });
            }
            slots.offer(k, v);
        }
        slots.finish()
    }

    /// The peer this record describes, reachable at `addrs` (its confirmation listener).
    pub fn into_peer(self, addrs: Vec<SocketAddr>) -> Peer {
        let mut peer = Peer::new(self.fingerprint, self.name, addrs);
        peer.pairing_port = self.pairing_port;
        peer.session_tag = self.session_tag;
        peer.link_port = self.link_port;
        peer.offer = self.offer;
        peer.short_channel = self.short_channel;
        peer
    }
}

/// A value per known key: `None` = not seen yet, `Some(None)` = seen without `=`.
#[derive(Default)]
struct Slots<'a> {
    version: Option<Option<&'a [u8]>>,
    id: Option<Option<&'a [u8]>>,
    fingerprint: Option<Option<&'a [u8]>>,
    name: Option<Option<&'a [u8]>>,
    pairing_port: Option<Option<&'a [u8]>>,
    session_tag: Option<Option<&'a [u8]>>,
    link_port: Option<Option<&'a [u8]>>,
    offer: Option<Option<&'a [u8]>>,
    short_channel: Option<Option<&'a [u8]>>,
}

impl<'a> Slots<'a> {
    fn offer(&mut self, k: &str, v: Option<&'a [u8]>) {
        let slot = if k.eq_ignore_ascii_case(key::VERSION) {
            &mut self.version
        } else if k.eq_ignore_ascii_case(key::ID) {
            &mut self.id
        } else if k.eq_ignore_ascii_case(key::FINGERPRINT) {
            &mut self.fingerprint
        } else if k.eq_ignore_ascii_case(key::NAME) {
            &mut self.name
        } else if k.eq_ignore_ascii_case(key::PAIRING_PORT) {
            &mut self.pairing_port
        } else if k.eq_ignore_ascii_case(key::SESSION_TAG) {
            &mut self.session_tag
        } else if k.eq_ignore_ascii_case(key::LINK_PORT) {
            &mut self.link_port
        } else if k.eq_ignore_ascii_case(key::OFFER) {
            &mut self.offer
        } else if k.eq_ignore_ascii_case(key::SHORT_CHANNEL) {
            &mut self.short_channel
        } else {
            return;
        };
        if slot.is_none() {
            *slot = Some(v);
        }
    }

    fn finish(self) -> Result<Txt, Error> {
        // Version first: a record of another version may legitimately use the other keys
        // differently, and "other version" explains more than "bad fp".
        let version = required(self.version, key::VERSION)?;
        if version != VERSION.as_bytes() {
            return Err(Error::UnsupportedVersion {
                version: String::from_utf8_lossy(version).chars().take(16).collect(),
            });
        }
        let id = required(self.id, key::ID)?;
        let id = DeviceId::from_bytes(hex_array(id).ok_or(Error::MalformedTxt {
            key: key::ID,
            reason: "is not 16 hex digits",
        })?);
        let fp = required(self.fingerprint, key::FINGERPRINT)?;
        let fingerprint = Fingerprint::from_bytes(hex_array(fp).ok_or(Error::MalformedTxt {
            key: key::FINGERPRINT,
            reason: "is not 64 hex digits",
        })?);
        if fingerprint.device_id() != id {
            return Err(Error::IdMismatch {
                announced: id,
                implied: fingerprint.device_id(),
            });
        }
        let name = match self.name {
            None => String::new(),
            Some(v) => {
                let v = value(v, key::NAME)?;
                let text = std::str::from_utf8(v).map_err(|_| Error::MalformedTxt {
                    key: key::NAME,
                    reason: "is not UTF-8",
                })?;
                clean_name(text, NAME_MAX)
            }
        };
        let pairing_port = port_entry(self.pairing_port, key::PAIRING_PORT)?;
        let link_port = port_entry(self.link_port, key::LINK_PORT)?;
        let session_tag = self
            .session_tag
            .map(|v| {
                value(v, key::SESSION_TAG).and_then(|v| {
                    hex_array(v).ok_or(Error::MalformedTxt {
                        key: key::SESSION_TAG,
                        reason: "is not 16 hex digits",
                    })
                })
            })
            .transpose()?;
        let offer = self
            .offer
            .map(|v| {
                value(v, key::OFFER).and_then(|v| {
                    std::str::from_utf8(v)
                        .ok()
                        .and_then(|text| text.parse::<Offer>().ok())
                        .ok_or(Error::MalformedTxt {
                            key: key::OFFER,
                            reason: "is not session:<16 hex digits>@<port> or device:<id>@<port>",
                        })
                })
            })
            .transpose()?;
        let short_channel = self
            .short_channel
            .map(|v| {
                value(v, key::SHORT_CHANNEL).and_then(|v| match v {
                    [a @ b'1'..=b'9', b @ b'0'..=b'9'] => Ok((a - b'0') * 10 + (b - b'0')),
                    _ => Err(Error::MalformedTxt {
                        key: key::SHORT_CHANNEL,
                        reason: "is not two digits 10..=99",
                    }),
                })
            })
            .transpose()?;
        Ok(Txt {
            fingerprint,
            name,
            pairing_port,
            session_tag,
            link_port,
            offer,
            short_channel,
        })
    }
}

/// An optional port entry: absent, or a decimal port 1..=65535.
fn port_entry(slot: Option<Option<&[u8]>>, key: &'static str) -> Result<Option<u16>, Error> {
    slot.map(|v| {
        value(v, key).and_then(|v| {
            port(v).ok_or(Error::MalformedTxt {
                key,
                reason: "is not a port number 1..=65535",
            })
        })
    })
    .transpose()
}

fn required<'a>(slot: Option<Option<&'a [u8]>>, key: &'static str) -> Result<&'a [u8], Error> {
    match slot {
        None => Err(Error::MalformedTxt {
            key,
            reason: "is missing",
        }),
        Some(v) => value(v, key),
    }
}

fn value<'a>(v: Option<&'a [u8]>, key: &'static str) -> Result<&'a [u8], Error> {
    v.ok_or(Error::MalformedTxt {
        key,
        reason: "has no value",
    })
}

/// Exactly `2 * N` hex digits (either case), nothing else: no sign, no spaces.
fn hex_array<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = (nibble(*pair.first()?)?, nibble(*pair.get(1)?)?);
        *slot = hi << 4 | lo;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decimal digits only (1 to 5 of them), 1..=65535.
fn port(text: &[u8]) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = text.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).ok().filter(|p| *p != 0)
}

/// A name safe to print and to put in a DNS label: [`localpair_core::peer::clean_name`] (control
/// characters, terminal escapes among them, become U+FFFD; invisible formatting characters such
/// as bidi overrides and zero-width joiners go), surrounding whitespace goes, and it is cut to
/// `max` bytes at a character boundary.
pub(crate) fn clean_name(name: &str, max: usize) -> String {
    localpair_core::peer::clean_name(name.trim(), max)
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fp(seed: u8) -> Fingerprint {
        Fingerprint::from_bytes([seed; 32])
    }

    fn owned(entries: &[(&str, &str)]) -> Vec<(String, Option<Vec<u8>>)> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec())))
            .collect()
    }

    fn parse_owned(entries: &[(String, Option<Vec<u8>>)]) -> Result<Txt, Error> {
        Txt::parse(entries.iter().map(|(k, v)| (k.as_str(), v.as_deref())))
    }

    fn valid() -> Vec<(String, Option<Vec<u8>>)> {
        let txt = Txt::new(
            fp(0xab),
            "Kitchen laptop",
            Advert::pairing(4242, Some([7; 8])),
        );
        txt.entries()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Some(v.into_bytes())))
            .collect()
    }

    #[test]
    fn an_offer_round_trips_and_a_bad_one_is_named() {
        let offer = Offer::new(19_537, localpair_core::OfferTo::Session([0xcd; 8]));
        let advert = Advert::default().with_offer(Some(offer));
        let txt = Txt::new(Fingerprint::from_bytes([5; 32]), "desk", advert);
        let entries = txt.entries();
        assert!(entries.contains(&("of", format!("session:{}@19537", "cd".repeat(8)))));
        let raw: Vec<(String, Option<Vec<u8>>)> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some(v.as_bytes().to_vec())))
            .collect();
        let back = Txt::parse(raw.iter().map(|(k, v)| (k.as_str(), v.as_deref()))).unwrap();
        assert_eq!(back.into_peer(Vec::new()).offer, Some(offer));
        let mut bad = raw;
        bad.retain(|(k, _)| k != "of");
        bad.push(("of".to_owned(), Some(b"session:zz@1".to_vec())));
        let error = Txt::parse(bad.iter().map(|(k, v)| (k.as_str(), v.as_deref())))
            .unwrap_err()
            .to_string();
        assert!(error.contains("of"), "{error}");
    }

    #[test]
    fn the_short_channel_round_trips_and_a_bad_one_is_named() {
        let advert = Advert::pairing(19_537, Some([1; 8])).with_short_channel(Some(47));
        let txt = Txt::new(Fingerprint::from_bytes([3; 32]), "desk", advert);
        let entries = txt.entries();
        assert!(entries.contains(&("sc", "47".to_owned())));
        let owned: Vec<(String, Option<Vec<u8>>)> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some(v.clone().into_bytes())))
            .collect();
        assert_eq!(
            parse_owned(&owned)
                .unwrap()
                .into_peer(Vec::new())
                .short_channel,
            Some(47)
        );
        for wrong in [&b"9"[..], b"100", b"07", b"4x", b""] {
            let mut bad = owned.clone();
            bad.retain(|(k, _)| k != "sc");
            bad.push(("sc".to_owned(), Some(wrong.to_vec())));
            let error = parse_owned(&bad).unwrap_err().to_string();
            assert!(error.contains("sc"), "{error}");
        }
    }

    #[test]
    fn the_link_port_round_trips_and_a_bad_one_is_named() {
        let advert = Advert::default().with_link_port(Some(47_123));
        let txt = Txt::new(Fingerprint::from_bytes([3; 32]), "desk", advert);
        let entries = txt.entries();
        assert!(entries.contains(&("lp", "47123".to_owned())));
        let owned: Vec<(String, Option<Vec<u8>>)> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some(v.clone().into_bytes())))
            .collect();
        let back = parse_owned(&owned).unwrap();
        assert_eq!(back.link_port, Some(47_123));
        assert_eq!(back.into_peer(Vec::new()).link_port, Some(47_123));
        let mut bad = owned;
        bad.retain(|(k, _)| k != "lp");
        bad.push(("lp".to_owned(), Some(b"0".to_vec())));
        let error = parse_owned(&bad).unwrap_err().to_string();
        assert!(error.contains("lp"), "{error}");
    }

    #[test]
    fn round_trip() {
        let txt = Txt::new(
            fp(0xab),
            "Kitchen laptop",
            Advert::pairing(4242, Some([7; 8])),
        );
        assert_eq!(parse_owned(&valid()).unwrap(), txt);
        let plain = Txt::new(fp(1), "x", Advert::default());
        let entries: Vec<_> = plain.entries();
        assert_eq!(entries.len(), 4);
        let parsed = Txt::parse(entries.iter().map(|(k, v)| (*k, Some(v.as_bytes())))).unwrap();
        assert_eq!(parsed, plain);
    }

    #[test]
    fn entries_are_what_the_table_documents() {
        let txt = Txt::new(fp(0xab), "a", Advert::pairing(4242, Some([0x0f; 8])));
        let e = txt.entries();
        assert_eq!(e[0], ("v", "1".to_owned()));
        assert_eq!(e[1], ("id", "abababababababab".to_owned()));
        assert_eq!(e[2], ("fp", "ab".repeat(32)));
        assert_eq!(e[3], ("name", "a".to_owned()));
        assert_eq!(e[4], ("pp", "4242".to_owned()));
        assert_eq!(e[5], ("tag", "0f0f0f0f0f0f0f0f".to_owned()));
    }

    #[test]
    fn id_must_match_fingerprint() {
        let mut e = valid();
        e[1].1 = Some(b"0000000000000000".to_vec());
        assert!(matches!(parse_owned(&e), Err(Error::IdMismatch { .. })));
    }

    #[test]
    fn required_keys_and_values() {
        for missing in ["v", "id", "fp"] {
            let e: Vec<_> = valid().into_iter().filter(|(k, _)| k != missing).collect();
            let err = parse_owned(&e).unwrap_err();
            assert!(err.to_string().contains("is missing"), "{missing}: {err}");
        }
        let mut e = valid();
        e[2].1 = None;
        assert!(
            parse_owned(&e)
                .unwrap_err()
                .to_string()
                .contains("no value")
        );
        // A name is optional.
        let e: Vec<_> = valid().into_iter().filter(|(k, _)| k != "name").collect();
        assert_eq!(parse_owned(&e).unwrap().name, "");
    }

    #[test]
    fn other_versions_are_named() {
        let mut e = valid();
        e[0].1 = Some(b"2".to_vec());
        let err = parse_owned(&e).unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion { ref version } if version == "2"));
    }

    #[test]
    fn strict_numbers() {
        for bad in ["0", "65536", "+80", " 80", "8o", "", "123456"] {
            let mut e = valid();
            e[4].1 = Some(bad.as_bytes().to_vec());
            assert!(parse_owned(&e).is_err(), "pp={bad:?}");
        }
        for bad in ["+f0f0f0f0f0f0f0f", "0f0f0f0f0f0f0f0", "0f0f0f0f0f0f0f0fz"] {
            let mut e = valid();
            e[5].1 = Some(bad.as_bytes().to_vec());
            assert!(parse_owned(&e).is_err(), "tag={bad:?}");
        }
        let mut e = valid();
        e[4].1 = Some(b"65535".to_vec());
        assert_eq!(parse_owned(&e).unwrap().pairing_port, Some(65535));
    }

    #[test]
    fn first_key_wins_case_insensitively() {
        let mut e = valid();
        e.insert(0, ("NAME".to_owned(), Some(b"first".to_vec())));
        e.push(("pp".to_owned(), Some(b"not a port".to_vec())));
        let txt = parse_owned(&e).unwrap();
        assert_eq!(txt.name, "first");
        assert_eq!(txt.pairing_port, Some(4242));
        let upper = owned(&[
            ("V", "1"),
            ("ID", &"AB".repeat(8)),
            ("FP", &"AB".repeat(32)),
        ]);
        assert_eq!(parse_owned(&upper).unwrap().fingerprint, fp(0xab));
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(
            clean_name("  a\u{1b}[31m\nb\n ", 63),
            "a\u{FFFD}[31m\u{FFFD}b"
        );
        assert_eq!(clean_name(&"é".repeat(40), 63).len(), 62);
        assert_eq!(
            clean_name("\u{2067}mal\u{202E}lory\u{200B} ", 63),
            "mallory"
        );
        let mut e = valid();
        e[3].1 = Some(vec![0xff, 0xfe]);
        assert!(parse_owned(&e).unwrap_err().to_string().contains("UTF-8"));
    }

    #[test]
    fn caps() {
        let mut e = valid();
        e.extend((0..MAX_ENTRIES).map(|i| (format!("x{i}"), None)));
        assert!(matches!(parse_owned(&e), Err(Error::TxtTooLarge { .. })));
        let mut e = valid();
        e.push(("big".to_owned(), Some(vec![b'x'; MAX_BYTES])));
        assert!(matches!(parse_owned(&e), Err(Error::TxtTooLarge { .. })));
    }

    fn entry() -> impl Strategy<Value = (String, Option<Vec<u8>>)> {
        let k = prop_oneof![
            Just("v".to_owned()),
            Just("id".to_owned()),
            Just("fp".to_owned()),
            Just("name".to_owned()),
            Just("pp".to_owned()),
            Just("tag".to_owned()),
            "[ -~]{0,12}",
        ];
        let v = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80));
        (k, v)
    }

    proptest! {
        #[test]
        fn arbitrary_records_never_panic(entries in proptest::collection::vec(entry(), 0..40)) {
            if let Ok(txt) = parse_owned(&entries) {
                // Whatever parses keeps the invariants the rest of the crate relies on.
                prop_assert!(txt.name.len() <= NAME_MAX);
                prop_assert!(!txt.name.chars().any(char::is_control));
                prop_assert_ne!(txt.pairing_port, Some(0));
            }
        }

        #[test]
        fn announced_records_parse_back(
            seed in any::<[u8; 32]>(),
            name in "\\PC{0,80}",
            pp in proptest::option::of(1u16..),
            tag in proptest::option::of(any::<[u8; 8]>()),
        ) {
            let advert = match pp {
                Some(p) => Advert::pairing(p, tag),
                None => Advert::default(),
            };
            let txt = Txt::new(Fingerprint::from_bytes(seed), &name, advert);
            let entries = txt.entries();
            let parsed = Txt::parse(entries.iter().map(|(k, v)| (*k, Some(v.as_bytes()))));
            prop_assert_eq!(parsed.unwrap(), txt);
        }

        #[test]
        fn one_corrupted_byte_is_caught_or_harmless(i in 0usize..200, byte in any::<u8>()) {
            let mut flat = valid();
            let lens: Vec<usize> = flat.iter().map(|(_, v)| v.as_ref().map_or(0, Vec::len)).collect();
            let total: usize = lens.iter().sum();
            let mut at = i % total;
            for (n, len) in lens.iter().enumerate() {
                if at < *len {
                    if let Some(v) = flat[n].1.as_mut() { v[at] = byte; }
                    break;
                }
                at -= len;
            }
            // A flipped byte in id/fp is caught by the id check or the hex check; the fingerprint
            // of anything that still parses is consistent with its id.
            if let Ok(txt) = parse_owned(&flat) {
                let id = flat.iter().find(|(k, _)| k == "id").and_then(|(_, v)| v.clone()).unwrap();
                let announced = String::from_utf8_lossy(&id).to_ascii_lowercase();
                prop_assert_eq!(txt.device_id().to_string(), announced);
            }
        }
    }
}
