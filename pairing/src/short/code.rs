//! The short code a person reads aloud and types: `47-392-8150`.
//!
//! Two public digits, the *channel* (10–99), tell a joiner which open host is meant; the seven
//! digits after them are the *secret* (10^7 values, 23.25 bits). Only the channel is ever
//! announced; the secret is the password of the PAKE and never leaves the device in any form a
//! recording could test offline.
//!
//! Digits rather than words: every keyboard and every language has them, a typo cannot be
//! "corrected" into another valid code, and seven digits carry more than the two words of a
//! 1,296-word list (20.7 bits) at the same length to read aloud.

use std::fmt;

use crate::error::Error;

/// Longest text [`ShortCode::parse`] reads; longer input is refused before it is looked at.
pub const MAX_TEXT: usize = 64;
/// Digits in the secret part.
pub const SECRET_DIGITS: usize = 7;
/// Values of the secret part (10^7: 23.25 bits).
pub const SECRET_SPACE: u32 = 10_000_000;
/// The channels a code may use.
pub const CHANNELS: std::ops::RangeInclusive<u8> = 10..=99;

/// The secret part: never in `Debug` output, logs, adverts or packets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortSecret(u32);

impl fmt::Debug for ShortSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShortSecret(<redacted>)")
    }
}

impl ShortSecret {
    /// The PAKE password: the seven digits as ASCII, one canonical form however the code was
    /// typed.
    pub(crate) fn password(self) -> [u8; SECRET_DIGITS] {
        let mut out = [b'0'; SECRET_DIGITS];
        let mut rest = self.0;
        for slot in out.iter_mut().rev() {
            // rest % 10 < 10: the cast cannot truncate.
            *slot = b'0' + u8::try_from(rest % 10).unwrap_or(0);
            rest /= 10;
        }
        out
    }

    /// The number (for tests that look for it in captures; never log it).
    pub fn expose(self) -> u32 {
        self.0
    }
}

/// A short code: the public channel and the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShortCode {
    /// The public part, 10–99: announced, so joiners try only hosts on their channel.
    pub channel: u8,
    /// The secret part.
    pub secret: ShortSecret,
}

impl ShortCode {
    /// A fresh code: channel and secret uniform, from the OS random generator.
    pub fn generate() -> Result<Self, Error> {
        let channel_span = u32::from(CHANNELS.end() - CHANNELS.start()) + 1;
        let channel = uniform(channel_span)?;
        let secret = uniform(SECRET_SPACE)?;
        Ok(Self {
            channel: CHANNELS.start() + u8::try_from(channel).unwrap_or(0),
            secret: ShortSecret(secret),
        })
    }

    /// A code from its parts; `None` when the channel is outside 10–99 or the secret has more
    /// than seven digits.
    pub fn new(channel: u8, secret: u32) -> Option<Self> {
        (CHANNELS.contains(&channel) && secret < SECRET_SPACE).then_some(Self {
            channel,
            secret: ShortSecret(secret),
        })
    }

    /// Reads a typed code. Case does not matter (there are no letters), and spaces, dashes,
    /// dots and underscores anywhere are ignored: `47-392-8150`, `47 3928150`, `473928150`.
    /// Never panics; anything over [`MAX_TEXT`] bytes is refused unread.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.len() > MAX_TEXT {
            return Err(bad("longer than a short code"));
        }
        let mut digits = [0u8; 2 + SECRET_DIGITS];
        let mut count = 0usize;
        for c in text.chars() {
            match c {
                '0'..='9' => {
                    let slot = digits.get_mut(count).ok_or(bad("more than 9 digits"))?;
                    *slot = u8::try_from(u32::from(c) - u32::from('0')).unwrap_or(0);
                    count += 1;
                }
                ' ' | '\t' | '-' | '_' | '.' | '\u{2010}'..='\u{2015}' | '\u{2212}' => {}
                _ => return Err(bad("only digits, spaces and dashes belong in a short code")),
            }
        }
        if count != digits.len() {
            return Err(bad("a short code has 9 digits"));
        }
        let channel = digits[0] * 10 + digits[1];
        let secret = digits[2..].iter().fold(0u32, |n, d| n * 10 + u32::from(*d));
        Self::new(channel, secret).ok_or(bad("its first two digits are 10 to 99"))
    }
}

/// `47-392-8150`: channel, then the secret in groups of three and four.
impl fmt::Display for ShortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.secret.0;
        write!(f, "{:02}-{:03}-{:04}", self.channel, s / 10_000, s % 10_000)
    }
}

fn bad(reason: &'static str) -> Error {
    Error::BadShortCode { reason }
}

/// A number uniform in `0..span` (span ≥ 1), by rejection: no value is likelier than another.
fn uniform(span: u32) -> Result<u32, Error> {
    let limit = u32::MAX - u32::MAX % span;
    // Each draw is accepted with probability > 1/2, so 64 draws all failing never happens.
    for _ in 0..64 {
        let n = u32::from_le_bytes(localpair_core::identity::random_bytes()?);
        if n < limit {
            return Ok(n % span);
        }
    }
    Err(bad("the random generator kept returning the same values"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn shown_and_typed_forms() {
        let code = ShortCode::new(47, 3_928_150).unwrap();
        assert_eq!(code.to_string(), "47-392-8150");
        for typed in [
            "47-392-8150",
            " 47 392 8150 ",
            "473928150",
            "47_392.8150",
            "47 — 392 — 8150".replace('—', "-").as_str(),
            "47\u{2013}392\u{2013}8150",
        ] {
            assert_eq!(ShortCode::parse(typed).unwrap(), code, "{typed}");
        }
        let small = ShortCode::new(10, 42).unwrap();
        assert_eq!(small.to_string(), "10-000-0042");
        assert_eq!(ShortCode::parse("10-000-0042").unwrap(), small);
        assert_eq!(&small.secret.password(), b"0000042");
    }

    #[test]
    fn wrong_shapes_say_why() {
        for (typed, why) in [
            ("47-392-815", "9 digits"),
            ("47-392-81500", "more than 9"),
            ("07-392-8150", "10 to 99"),
            ("47-392-815O", "only digits"),
            ("", "9 digits"),
        ] {
            let error = ShortCode::parse(typed).unwrap_err().to_string();
            assert!(error.contains(why), "{typed}: {error}");
        }
        assert!(ShortCode::parse(&"1".repeat(65)).is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let code = ShortCode::new(47, 3_928_150).unwrap();
        let shown = format!("{code:?}");
        assert!(
            !shown.contains("3928150") && !shown.contains("392"),
            "{shown}"
        );
    }

    #[test]
    fn generated_codes_are_in_range_and_vary() {
        let codes: Vec<ShortCode> = (0..32).map(|_| ShortCode::generate().unwrap()).collect();
        assert!(codes.iter().all(|c| CHANNELS.contains(&c.channel)));
        assert!(codes.iter().all(|c| c.secret.expose() < SECRET_SPACE));
        assert!(codes.windows(2).any(|w| w[0].secret != w[1].secret));
    }

    proptest! {
        #[test]
        fn round_trips(channel in 10u8..=99, secret in 0u32..SECRET_SPACE) {
            let code = ShortCode::new(channel, secret).unwrap();
            prop_assert_eq!(ShortCode::parse(&code.to_string()).unwrap(), code);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,80}") {
            let _ = ShortCode::parse(&text);
        }
    }
}
