//! Fuzzes length-prefixed frames read from a byte stream. The check, and what it asserts beyond "no panic", is
//! `localpair_core::fuzzing::frames`, which `cargo test` also runs on the saved corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| localpair_core::fuzzing::frames(data));
