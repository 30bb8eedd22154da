//! Fuzzes the device key file. The check, and what it asserts beyond "no panic", is
//! `localpair_core::fuzzing::key_file`, which `cargo test` also runs on the saved corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| localpair_core::fuzzing::key_file(data));
