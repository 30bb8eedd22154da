//! Fuzzes an SSDP answer to our `M-SEARCH`. The check, and what it asserts beyond "no panic", is
//! `localpair_upnp::fuzzing::ssdp_answer`, which `cargo test` also runs on the saved corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| localpair_upnp::fuzzing::ssdp_answer(data));
