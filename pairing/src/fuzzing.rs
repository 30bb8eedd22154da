//! Entry points of the fuzz targets in `fuzz/` (cargo-fuzz, nightly) for the parsers of this crate,
//! and the replay of their saved corpora that `cargo test` runs on any toolchain. Not part of the
//! API: built for this crate's tests and with the `fuzzing` feature only.
//!
//! Each entry point takes arbitrary bytes and panics only on a bug: a parser that panics, or one
//! that accepts what it would not read back the same.

use std::path::Path;

use crate::code::PairingCode;
use crate::{trust, wire};

/// A pairing code, as text (what a QR or a person gives) and as the binary inside it: never panics;
/// a code accepted once encodes to a text and bytes that read back as the same code.
pub fn code(data: &[u8]) {
    if let Ok(code) = PairingCode::from_bytes(data) {
        assert_eq!(code.to_bytes(), data, "one encoding per code");
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = PairingCode::parse(text) {
        match PairingCode::parse(&code.encode()) {
            Ok(again) => assert_eq!(again, code, "the code changed on the way back"),
            Err(e) => panic!("a code that was read cannot be read back: {e}"),
        }
    }
}

/// A typed short code: never panics; a code accepted once is shown as text that reads back as
/// the same code.
pub fn short_code(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = crate::short::ShortCode::parse(text) {
        match crate::short::ShortCode::parse(&code.to_string()) {
            Ok(again) => assert_eq!(again, code, "the code changed on the way back"),
            Err(e) => panic!("a short code that was read cannot be read back: {e}"),
        }
    }
}

/// A pairing-protocol payload: never panics; what it accepts is encoded to bytes that read back
/// as the same message and encode the same again. (Not necessarily the input's bytes: a name is
/// cleaned as it is read, so a control character in it comes back as U+FFFD.)
pub fn wire_message(data: &[u8]) {
    if let Ok(message) = wire::parse(data) {
        let encoded = wire::encode(&message);
        match wire::parse(&encoded) {
            Ok(again) => {
                assert_eq!(again, message, "the message changed on the way back");
                assert_eq!(wire::encode(&again), encoded, "one encoding per message");
            }
            Err(e) => panic!("an encoded message cannot be read back: {e}"),
        }
    }
}

/// A trust store's contents: never panics; what it accepts is written back as a store that reads
/// back and is written again to the same text. (The text, not the peers: times are written to
/// the second, and a hand-edited file may hold fractions.)
pub fn trust_store(data: &[u8]) {
    let origin = Path::new("fuzz/trusted-peers.toml");
    // The store reads bytes and refuses what is not UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(peers) = trust::parse(text, origin) else {
        return;
    };
    let rendered = match trust::render(&peers) {
        Ok(rendered) => rendered,
        Err(e) => panic!("accepted peers cannot be written: {e}"),
    };
    match trust::parse(&rendered, origin) {
        Ok(again) => match trust::render(&again) {
            Ok(twice) => assert_eq!(twice, rendered, "the store changed on the way back"),
            Err(e) => panic!("peers read back cannot be written: {e}"),
        },
        Err(e) => panic!("a written store cannot be read back: {e}\n{rendered}"),
    }
}

#[cfg(test)]
mod tests {
    use localpair_core::fuzzing::{corpus, replay};

    use super::*;

    #[test]
    fn saved_corpora_replay_without_a_panic() {
        for (target, check) in [
            ("pairing_code", code as fn(&[u8])),
            ("pairing_message", wire_message),
            ("trust_store", trust_store),
            ("short_code", short_code),
        ] {
            replay(&corpus(target), check);
        }
    }
}
