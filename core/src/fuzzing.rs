//! Entry points of the fuzz targets in `fuzz/` (cargo-fuzz, nightly) for the parsers of this crate,
//! and the replay of their saved corpora that `cargo test` runs on any toolchain. Not part of the
//! API: built for this crate's tests and with the `fuzzing` feature only.
//!
//! Each entry point takes arbitrary bytes and panics only on a bug: a parser that panics, or one
//! that accepts bytes it would not have written (one encoding per message, nothing ignored).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::task::{Poll, Waker};

use crate::frame::{MAX_FRAME, read_frame, write_frame};
use crate::{confirm, identity};

/// Frames read one after another from `data` until the first error; each one read re-encodes to
/// exactly the bytes it came from, and none is larger than the cap.
pub fn frames(data: &[u8]) {
    let mut rest = data;
    loop {
        let before = rest;
        let Ok(payload) = ready(read_frame(&mut rest, MAX_FRAME)) else {
            return;
        };
        assert!(payload.len() <= MAX_FRAME, "frame over the cap");
        let consumed = &before[..before.len() - rest.len()];
        let mut written = Vec::new();
        if let Err(e) = ready(write_frame(&mut written, &payload)) {
            panic!("a frame that was read cannot be written: {e}");
        }
        assert_eq!(written, consumed, "one encoding per frame");
    }
}

/// A confirmation-protocol payload: never panics; what it accepts re-encodes to the same bytes.
pub fn confirm_message(data: &[u8]) {
    if let Ok(message) = confirm::wire::parse(data) {
        assert_eq!(
            confirm::wire::encode(&message),
            data,
            "one encoding per message"
        );
    }
}

/// A key file's contents, through everything loading one does (parse, then the certificate that
/// carries it); a key accepted once is accepted again after being written back.
pub fn key_file(data: &[u8]) {
    let origin = Path::new("fuzz/device-key.pem");
    let Ok(key) = identity::parse_key(data, origin) else {
        return;
    };
    match identity::parse_key(key.serialize_pem().as_bytes(), origin) {
        Ok(again) => assert_eq!(
            rcgen::PublicKeyData::der_bytes(&again),
            rcgen::PublicKeyData::der_bytes(&key),
            "the key changed on the way back"
        ),
        Err(e) => panic!("a key that was read cannot be read back: {e}"),
    }
    let _ = identity::Identity::from_key(&key, "fuzz".to_owned(), origin);
}

/// Polls an in-memory I/O future once: reading a slice or writing a `Vec` never waits, so no
/// runtime is needed (and a fuzz iteration stays cheap).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("in-memory I/O waited"),
    }
}

/// The saved corpus of fuzz target `target` of the workspace's `fuzz/` crate.
pub fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Runs `check` on every file in `dir` (a saved corpus) and returns how many there were. For tests:
/// it panics when the directory is missing or empty, so a renamed target or a lost corpus is
/// noticed instead of replaying nothing.
pub fn replay(dir: &Path, check: fn(&[u8])) -> usize {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => panic!("corpus {}: {e}", dir.display()),
    };
    let mut count = 0;
    for entry in entries {
        let path = match entry {
            Ok(entry) => entry.path(),
            Err(e) => panic!("corpus {}: {e}", dir.display()),
        };
        match std::fs::read(&path) {
            Ok(bytes) => check(&bytes),
            Err(e) => panic!("{}: {e}", path.display()),
        }
        count += 1;
    }
    assert!(count > 0, "corpus {} is empty", dir.display());
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_corpora_replay_without_a_panic() {
        for (target, check) in [
            ("frame", frames as fn(&[u8])),
            ("confirm_message", confirm_message),
            ("key_file", key_file),
        ] {
            replay(&corpus(target), check);
        }
    }
}
