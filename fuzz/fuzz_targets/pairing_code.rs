//! Fuzzes the pairing code, as text and as binary. The check, and what it asserts beyond "no panic", is
//! `localpair_pairing::fuzzing::code`, which `cargo test` also runs on the saved corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| localpair_pairing::fuzzing::code(data));
