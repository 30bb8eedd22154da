//! Replays the saved corpus of the packet parser's fuzz target (`fuzz/`, cargo-fuzz on nightly)
//! on any toolchain, so `cargo test` checks every input the fuzzer kept: no panic, and one
//! encoding per packet (the same check as `fuzz/fuzz_targets/parse.rs`).

use std::path::Path;

use localpair_core::fuzzing::replay;
use localpair_udp_multicast::wire;

#[test]
fn saved_corpus_replays_without_a_panic() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse");
    replay(&corpus, |data| {
        if let Ok(packet) = wire::parse(data) {
            assert_eq!(packet.encode(), data);
        }
    });
}
