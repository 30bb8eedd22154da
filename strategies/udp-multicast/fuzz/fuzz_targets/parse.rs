//! The datagram parser on arbitrary input: it must never panic, and whatever it accepts must
//! re-encode to exactly the bytes it came from (one encoding per packet, nothing ignored).
#![no_main]

use libfuzzer_sys::fuzz_target;
use localpair_udp_multicast::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = wire::parse(data) {
        assert_eq!(packet.encode(), data);
    }
});
