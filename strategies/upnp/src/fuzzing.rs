//! Entry points of the fuzz targets in `fuzz/` (cargo-fuzz, nightly) for what this crate reads
//! from the network before igd-next does (SSDP answers, the gateway's description), and the replay
//! of their saved corpora that `cargo test` runs on any toolchain. Not part of the API: built for
//! this crate's tests and with the `fuzzing` feature only.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::{gateway, ssdp};

/// A datagram answering our `M-SEARCH`: never panics; an accepted answer has a usable location
/// and a printable `SERVER`.
pub fn ssdp_answer(data: &[u8]) {
    let from = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 1), ssdp::PORT);
    if let Ok(answer) = ssdp::parse_answer(data, from) {
        assert_ne!(answer.location.port(), 0, "location without a port");
        if let Some(server) = answer.server {
            assert!(!server.chars().any(char::is_control), "unprintable SERVER");
        }
    }
}

/// A gateway's device description (XML): never panics; a friendly name is non-empty, printable
/// and at most `MAX_NAME` (64) characters.
pub fn gateway_description(data: &[u8]) {
    if let Some(name) = gateway::parse_friendly_name(data) {
        assert!(!name.is_empty(), "empty friendly name");
        assert!(!name.chars().any(char::is_control), "unprintable name");
        assert!(name.chars().count() <= gateway::MAX_NAME, "name too long");
    }
}

#[cfg(test)]
mod tests {
    use localpair_core::fuzzing::{corpus, replay};

    use super::*;

    #[test]
    fn saved_corpora_replay_without_a_panic() {
        replay(&corpus("ssdp_answer"), ssdp_answer);
        replay(&corpus("gateway_description"), gateway_description);
    }
}
