//! Entry point of the fuzz target in `fuzz/` (cargo-fuzz, nightly) for the TXT parser, and the
//! replay of its saved corpus that `cargo test` runs on any toolchain. Not part of the API: built
//! for this crate's tests and with the `fuzzing` feature only.

use crate::txt::Txt;

/// The bytes of a TXT record (length-prefixed strings), cut into entries the way mdns-sd does
/// (split at the first `=`, keys that are not UTF-8 dropped, stop at a zero length or a string
/// running past the end), then parsed: never panics; a record accepted once is published as
/// entries that read back as the same record.
pub fn txt_record(data: &[u8]) {
    let mut entries: Vec<(String, Option<&[u8]>)> = Vec::new();
    let mut rest = data;
    while let [len, tail @ ..] = rest {
        let len = usize::from(*len);
        if len == 0 || len > tail.len() {
            break;
        }
        let (entry, tail) = tail.split_at(len);
        rest = tail;
        let (key, value) = match entry.iter().position(|&b| b == b'=') {
            Some(at) => (&entry[..at], Some(&entry[at + 1..])),
            None => (entry, None),
        };
        if let Ok(key) = std::str::from_utf8(key) {
            entries.push((key.to_owned(), value));
        }
    }
    let Ok(txt) = Txt::parse(entries.iter().map(|(k, v)| (k.as_str(), *v))) else {
        return;
    };
    let published = txt.entries();
    match Txt::parse(published.iter().map(|(k, v)| (*k, Some(v.as_bytes())))) {
        Ok(again) => assert_eq!(again, txt, "the record changed on the way back"),
        Err(e) => panic!("a record that was read cannot be read back: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use localpair_core::fuzzing::{corpus, replay};

    use super::*;

    #[test]
    fn saved_corpus_replays_without_a_panic() {
        replay(&corpus("mdns_txt"), txt_record);
    }
}
