//! Pairing codes the end-to-end suites forge.

use localpair_pairing::code::{PairingCode, Secret};

/// `code` with another secret (every byte `n`): what an attacker who saw the QR's shape, or a
/// joiner holding a different code, would send.
pub(crate) fn wrong_code(code: &str, n: u8) -> String {
    let c = PairingCode::parse(code).expect("the host printed a valid code");
    PairingCode::new(
        c.flow,
        c.port,
        c.fingerprint,
        Secret::from_bytes([n; 16]),
        c.candidates,
    )
    .encode()
}
