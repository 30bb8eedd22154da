//! The other direction: a device that cannot reach the one it looks for (a firewall drops its
//! connections) listens itself and says so in its announcements, bound to whom it waits for.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::identity::{DeviceId, hex};

/// "I listen on `port` for `to`": set in a device's announcements while it waits to be dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Offer {
    /// The port it listens on (TCP), never 0.
    pub port: u16,
    /// Whom it waits for.
    pub to: OfferTo,
}

/// Whom an [`Offer`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OfferTo {
    /// The host of the pairing with this session tag (a joiner that holds its code).
    Session([u8; 8]),
    /// The device with this id (a known peer reconnecting).
    Device(DeviceId),
}

impl Offer {
    /// An offer to be dialled on `port` by `to`.
    pub fn new(port: u16, to: OfferTo) -> Self {
        Self { port, to }
    }
}

impl fmt::Display for Offer {
    /// `session:<16 hex digits>@<port>` or `device:<device id>@<port>`, as JSON and mDNS TXT
    /// carry it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to {
            OfferTo::Session(tag) => write!(f, "session:{}@{}", hex(&tag), self.port),
            OfferTo::Device(id) => write!(f, "device:{id}@{}", self.port),
        }
    }
}

/// Why an offer's text did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an offer is `session:<16 hex digits>@<port>` or `device:<device id>@<port>`")]
pub struct BadOffer;

impl FromStr for Offer {
    type Err = BadOffer;

    /// The one parser of an offer's text (it arrives from the network in mDNS TXT records).
    fn from_str(text: &str) -> Result<Self, BadOffer> {
        if text.len() > 64 {
            return Err(BadOffer);
        }
        let (kind, rest) = text.split_once(':').ok_or(BadOffer)?;
        let (who, port) = rest.split_once('@').ok_or(BadOffer)?;
        let port: u16 = port.parse().map_err(|_| BadOffer)?;
        if port == 0 {
            return Err(BadOffer);
        }
        let to = match kind {
            "session" => OfferTo::Session(parse_tag(who)?),
            "device" => OfferTo::Device(who.parse().map_err(|_| BadOffer)?),
            _ => return Err(BadOffer),
        };
        Ok(Self { port, to })
    }
}

fn parse_tag(text: &str) -> Result<[u8; 8], BadOffer> {
    if text.len() != 16 || !text.is_ascii() {
        return Err(BadOffer);
    }
    let mut tag = [0u8; 8];
    for (slot, pair) in tag.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| BadOffer)?;
        *slot = u8::from_str_radix(pair, 16).map_err(|_| BadOffer)?;
    }
    Ok(tag)
}

impl Serialize for Offer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Offer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_junk_is_refused() {
        let offers = [
            Offer::new(19537, OfferTo::Session([0xab; 8])),
            Offer::new(1, OfferTo::Device(DeviceId::from_bytes([7; 8]))),
        ];
        for offer in offers {
            assert_eq!(offer.to_string().parse(), Ok(offer));
        }
        for junk in [
            "",
            "session:abababababababab@0",
            "session:abab@19537",
            "session:zzzzzzzzzzzzzzzz@19537",
            "other:abababababababab@1",
            "session:abababababababab",
            "session:ééééééééé@1",
        ] {
            assert_eq!(junk.parse::<Offer>(), Err(BadOffer), "{junk}");
        }
    }
}
