//! Fuzzes a UPnP gateway's device description. The check, and what it asserts beyond "no panic", is
//! `localpair_upnp::fuzzing::gateway_description`, which `cargo test` also runs on the saved corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| localpair_upnp::fuzzing::gateway_description(data));
