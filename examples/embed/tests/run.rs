//! The embedding example runs to the end: resolve, then an in-process pairing over loopback. It
//! starts no discovery (that needs `--discover`), so nothing but self-connections and loopback
//! traffic happens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn resolves_and_pairs_in_process() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_localpair-embed"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("resolver outbound-route"), "{stdout}");
    let code_line = stdout
        .lines()
        .find(|l| l.starts_with("code LP:"))
        .expect("a code");
    assert!(code_line.len() > 60);
    let joined = stdout
        .lines()
        .find(|l| l.starts_with("joiner paired with"))
        .expect("joined");
    assert!(joined.contains("via direct"), "{joined}");
    assert!(stdout.contains("host paired with"), "{stdout}");
}
