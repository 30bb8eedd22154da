//! The embedding example runs to the end: two devices pair over loopback, restart, and
//! reconnect without a code. It announces nothing (no discoverer runs) and dials only loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn pairs_restarts_and_reconnects_in_process() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_localpair-embed"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code_line = stdout
        .lines()
        .find(|l| l.starts_with("code LP:"))
        .expect("a code");
    assert!(code_line.len() > 60);
    let paired = stdout
        .lines()
        .find(|l| l.starts_with("paired with desk"))
        .expect("paired");
    assert!(paired.contains("via direct"), "{paired}");
    assert!(paired.contains("\"hello from the phone\""), "{paired}");
    assert!(
        stdout.contains("after the restart the phone knows [\"desk\"]"),
        "{stdout}"
    );
    let again = stdout
        .lines()
        .find(|l| l.starts_with("reconnected to desk"))
        .expect("reconnected");
    assert!(again.contains("\"hello again\""), "{again}");
}
