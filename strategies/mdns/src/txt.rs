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
mod tests;
