//! Fuzzes the trust store file. The check, and what it asserts beyond "no panic", is
//! `localpair_pairing::fuzzing::trust_store`, which `cargo test` also runs on the saved corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| localpair_pairing::fuzzing::trust_store(data));
