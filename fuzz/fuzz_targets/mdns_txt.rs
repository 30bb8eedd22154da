//! Fuzzes an mDNS TXT record of a `_localpair._tcp` service. The check, and what it asserts beyond "no panic", is
//! `localpair_mdns::fuzzing::txt_record`, which `cargo test` also runs on the saved corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| localpair_mdns::fuzzing::txt_record(data));
