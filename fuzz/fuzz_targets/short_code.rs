//! Fuzzes the typed short code. The check, and what it asserts beyond "no panic", is
//! `localpair_pairing::fuzzing::short_code`, which `cargo test` also runs on the saved corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| localpair_pairing::fuzzing::short_code(data));
