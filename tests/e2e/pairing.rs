//! End to end: `localpair host` and `localpair join` on lab hosts (issue 4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod codes;

use std::io::Write as _;
use std::time::Duration;

use localpair_lab::pairs::{self, STEP};
use localpair_lab::{CLI_TIMEOUT, Host, HostSpec, Lab, Localpair, Running, lab_or_skip};
use localpair_pairing::code::PairingCode;
use serde_json::Value;

/// `localpair --json host` with `config`; returns the process and its code.
fn start_host(host: &Host, flow: &str, config: &str) -> (Running, String) {
    pairs::start_host(host, flow, config).unwrap()
}

fn join(host: &Host, code: &str, config: &str) -> localpair_lab::Ran {
    pairs::join(host, code, config).unwrap()
}

fn host_result(running: Running) -> Value {
    let line = running.next_json(STEP).unwrap();
    let status = running.wait(STEP).unwrap();
    assert!(status.success(), "host exited {status}");
    line
}

/// A short join deadline keeps failing cases quick.
const QUICK_JOIN: &str = "[join]\ndeadline_ms = 8000\n";

#[test]
fn pre_shared_pairs_and_a_wrong_code_does_not() {
    let lab = lab_or_skip!("pair_pre");
    let [h1, h2, h3] = hosts(&lab, 3);
    let (host, code) = start_host(&h1, "pre", "");
    assert!(code.starts_with("LP:") && code.len() <= 120, "{code}");

    let wrong = join(&h3, &codes::wrong_code(&code, 1), QUICK_JOIN);
    assert_eq!(wrong.code(), Some(1), "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("rejected our proof"),
        "{}",
        wrong.stderr
    );

    let joined = join(&h2, &code, "");
    assert_eq!(joined.code(), Some(0), "{}", joined.stderr);
    let j = joined.json();
    assert_eq!(j["paired"], true);
    assert_eq!(j["peer"]["name"], h1.name());
    let parsed = PairingCode::parse(&code).unwrap();
    assert_eq!(
        j["peer"]["fingerprint"],
        parsed.fingerprint.to_string().as_str()
    );
    assert!(j["via"].as_str().is_some_and(|v| !v.is_empty()));

    let h = host_result(host);
    assert_eq!(h["paired"], true);
    assert_eq!(h["peer"]["name"], h2.name());
    assert_eq!(
        h["peer"]["addr"].as_str().unwrap().split(':').next(),
        Some(h2.addr().to_string().as_str())
    );
}

#[test]
fn post_shared_discovers_first_then_pairs_at_once() {
    let lab = lab_or_skip!("pair_post");
    let [h1, h2] = hosts(&lab, 2);
    let (host, code) = start_host(&h1, "post", "");
    let parsed = PairingCode::parse(&code).unwrap();
    assert_eq!(
        parsed.candidates,
        [std::net::IpAddr::V4(h1.addr())],
        "post flow listens on the LAN address only"
    );

    let mut joiner = Localpair::on(&h2)
        .unwrap()
        .stdin_piped()
        .args(["--json", "join"])
        .start()
        .unwrap();
    // Discovery runs before the code is typed: the host shows up on stderr.
    let deadline = std::time::Instant::now() + STEP;
    while !joiner.stderr().contains(&format!("found {}", h1.name())) {
        assert!(
            std::time::Instant::now() < deadline,
            "host not listed: {}",
            joiner.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdin = joiner.child().stdin.take().unwrap();
    writeln!(stdin, "{code}").unwrap();
    let j = joiner.next_json(STEP).unwrap();
    assert_eq!(j["paired"], true, "{}", joiner.stderr());
    assert_ne!(j["via"], "subnet-scan");
    assert!(joiner.wait(STEP).unwrap().success());
    assert_eq!(host_result(host)["peer"]["name"], h2.name());
}

#[test]
fn with_all_udp_dropped_direct_dial_pairs() {
    let lab = lab_or_skip!("pair_noudp");
    let [h1, h2] = hosts(&lab, 2);
    h1.drop_udp().unwrap();
    h2.drop_udp().unwrap();
    let (host, code) = start_host(&h1, "pre", "");
    let joined = join(&h2, &code, "");
    assert_eq!(joined.code(), Some(0), "{}", joined.stderr);
    assert_eq!(joined.json()["via"], "direct");
    host_result(host);
}

#[test]
fn moved_host_without_multicast_is_found_by_subnet_scan() {
    let lab = lab_or_skip!("pair_moved");
    let [h1, h2] = hosts(&lab, 2);
    h1.drop_multicast().unwrap();
    h2.drop_multicast().unwrap();
    let (host, code) = start_host(&h1, "pre", "");
    // The code's address is now stale: the host moved within the subnet.
    h1.move_to("10.77.0.99/24").unwrap();
    let joined = join(&h2, &code, "[strategies.subnet-scan]\ngrace_ms = 500\n");
    assert_eq!(joined.code(), Some(0), "{}", joined.stderr);
    let j = joined.json();
    assert_eq!(j["via"], "subnet-scan", "{j:#}");
    assert_eq!(
        j["peer"]["addr"].as_str().unwrap().split(':').next(),
        Some("10.77.0.99")
    );
    host_result(host);
}

#[test]
fn impostor_at_the_hosts_address_is_refused() {
    let lab = lab_or_skip!("pair_impostor");
    let [h1, h2] = hosts(&lab, 2);
    let fixed_port = "[pairing]\nport = 47011\n";
    let (real, code) = start_host(&h1, "pre", fixed_port);
    drop(real);
    // Another key at the same address and port.
    let (impostor, _) = start_host(
        &h1,
        "pre",
        &format!("{fixed_port}[device]\nephemeral = true\n"),
    );
    let joined = join(&h2, &code, QUICK_JOIN);
    assert_eq!(joined.code(), Some(1), "{}", joined.stderr);
    assert!(
        joined.stderr.contains("does not match the pinned key"),
        "{}",
        joined.stderr
    );
    assert!(joined.stderr.contains("impostor"), "{}", joined.stderr);
    drop(impostor);
}

#[test]
fn wrong_proofs_slow_their_source_down_but_never_end_the_code() {
    // Issue 11 replaced "5 wrong proofs end the code" (a kill switch for anyone on the LAN).
    let lab = lab_or_skip!("pair_5wrong");
    let [h1, h2, h3] = hosts(&lab, 3);
    let (host, code) = start_host(&h1, "pre", "");
    // One source: the code's IPv4 address only (an IPv6 /64 would be a source of its own).
    let ipv4_only =
        format!("{QUICK_JOIN}order = [\"direct\"]\n[strategies.direct]\nlink_local = false\n");
    let mut took = Vec::new();
    for n in 0..5 {
        let started = std::time::Instant::now();
        let wrong = join(&h2, &codes::wrong_code(&code, n), &ipv4_only);
        took.push(started.elapsed());
        assert_eq!(wrong.code(), Some(1), "{}", wrong.stderr);
        assert!(
            wrong.stderr.contains("rejected our proof"),
            "{}",
            wrong.stderr
        );
    }
    // Each wrong proof doubles the wait before the next one is looked at (250 ms, 500 ms, 1 s,
    // 2 s): the fifth guess cannot come before 3.75 s.
    let total: Duration = took.iter().sum();
    assert!(total >= Duration::from_millis(3750), "{took:?}");
    let right = join(&h3, &code, QUICK_JOIN);
    assert_eq!(right.code(), Some(0), "the code lives on: {}", right.stderr);
    assert!(host.wait(STEP).unwrap().success());
}

#[test]
fn expired_code_is_refused() {
    let lab = lab_or_skip!("pair_expired");
    let [h1, h2] = hosts(&lab, 2);
    let (host, code) = start_host(&h1, "pre", "[pairing]\ncode_ttl_ms = 1000\n");
    let status = host.wait(STEP).unwrap();
    assert_eq!(status.code(), Some(1));
    let late = join(&h2, &code, QUICK_JOIN);
    assert_eq!(late.code(), Some(1), "{}", late.stdout);
    assert!(late.stderr.contains("pairing failed"), "{}", late.stderr);
}

#[test]
fn the_secret_never_crosses_the_wire() {
    let lab = lab_or_skip!("pair_capture");
    let [h1, h2] = hosts(&lab, 2);
    let capture = h1.capture("eth0").unwrap();
    let (host, code) = start_host(&h1, "pre", "");
    let wrong = join(&h2, &codes::wrong_code(&code, 3), QUICK_JOIN);
    assert_eq!(wrong.code(), Some(1));
    let joined = Localpair::on(&h2)
        .unwrap()
        .env("RUST_LOG", "debug")
        .args(["--json", "join", &code])
        .run(CLI_TIMEOUT)
        .unwrap();
    assert_eq!(joined.code(), Some(0), "{}", joined.stderr);
    host_result(host);
    let pcap = capture.stop().unwrap();
    assert!(
        pcap.len() > 1000,
        "capture too small to mean anything: {} bytes",
        pcap.len()
    );

    let secret = *PairingCode::parse(&code).unwrap().secret.expose();
    let forms: Vec<(&str, Vec<u8>)> = vec![
        ("raw", secret.to_vec()),
        ("hex", localpair_core::identity::hex(&secret).into_bytes()),
        (
            "HEX",
            localpair_core::identity::hex(&secret)
                .to_uppercase()
                .into_bytes(),
        ),
        (
            "base32",
            data_encoding::BASE32_NOPAD.encode(&secret).into_bytes(),
        ),
        (
            "base64",
            data_encoding::BASE64_NOPAD.encode(&secret).into_bytes(),
        ),
        (
            "base64url",
            data_encoding::BASE64URL_NOPAD.encode(&secret).into_bytes(),
        ),
        ("code", code.into_bytes()),
    ];
    for (name, form) in &forms {
        assert!(
            !pcap.windows(form.len()).any(|w| w == form.as_slice()),
            "the secret ({name}) appears in the capture"
        );
        assert!(
            !joined
                .stderr
                .as_bytes()
                .windows(form.len())
                .any(|w| w == form.as_slice())
                || *name == "code",
            "the secret ({name}) appears in the joiner's debug log"
        );
    }
}

fn hosts<const N: usize>(lab: &Lab, _n: usize) -> [Host; N] {
    let hosts: Vec<Host> = (0..N)
        .map(|_| lab.add_host(HostSpec::new()).unwrap())
        .collect();
    hosts.try_into().unwrap_or_else(|_| unreachable!())
}

#[test]
fn join_waiting_for_a_code_gives_up_at_its_deadline() {
    let lab = lab_or_skip!("pair_nocode");
    let [h1] = hosts(&lab, 1);
    let mut joiner = Localpair::on(&h1)
        .unwrap()
        .config("[join]\ndeadline_ms = 1500\n")
        .unwrap()
        .stdin_piped()
        .args(["join"])
        .start()
        .unwrap();
    // stdin stays open and silent: the deadline, not the reader, ends it.
    let _stdin = joiner.child().stdin.take();
    let started = std::time::Instant::now();
    let (status, stderr) = joiner.finish(STEP).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no pairing code arrived before the deadline"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// `localpair --json host --qr TARGET` plus `extra` on `host`; returns the process once the QR file
/// is complete (it is written before the host waits for a joiner), with its code.
fn host_with_qr(host: &Host, target: &str, config: &str, extra: &[&str]) -> (Running, String) {
    let running = Localpair::on(host)
        .unwrap()
        .config(config)
        .unwrap()
        .args(["--json", "host", "--qr", target])
        .args(extra)
        .start()
        .unwrap();
    let line = running.next_json(STEP).unwrap();
    let code = line["code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("LP:"), "{line}");
    (running, code)
}

/// Waits until `path` is a regular file (`present`) or is gone.
fn wait_for_file(path: &std::path::Path, present: bool) {
    let deadline = std::time::Instant::now() + STEP;
    while std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) != present {
        assert!(
            std::time::Instant::now() < deadline,
            "{} still {}",
            path.display(),
            if present { "missing" } else { "there" }
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn qr_codes_are_written_privately_and_removed_when_the_code_ends() {
    use std::os::unix::fs::PermissionsExt as _;
    let lab = lab_or_skip!("pair_qr");
    let [h1, h2] = hosts(&lab, 2);
    let dir = std::env::temp_dir().join(format!("lp-qr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // PNG, and a pairing ends the code: the file goes.
    let png = dir.join("code.png");
    let (host, code) = host_with_qr(&h1, &format!("png:{}", png.display()), "", &[]);
    wait_for_file(&png, true);
    let meta = std::fs::metadata(&png).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "the QR holds the secret"
    );
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    // The joiner takes the code from a file (argv is visible to every local user).
    let code_file = dir.join("code.txt");
    std::fs::write(&code_file, format!("{code}\n")).unwrap();
    std::fs::set_permissions(&code_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let joined = Localpair::on(&h2)
        .unwrap()
        .args(["--json", "join", "--code-file", code_file.to_str().unwrap()])
        .run(CLI_TIMEOUT)
        .unwrap();
    assert_eq!(joined.code(), Some(0), "{}", joined.stderr);
    assert!(!joined.stderr.contains("warning"), "{}", joined.stderr);
    assert_eq!(host_result(host)["paired"], true);
    wait_for_file(&png, false);

    // SVG, and SIGTERM ends the host: the file goes too.
    let svg = dir.join("code.svg");
    let (mut host, _) = host_with_qr(&h1, &format!("svg:{}", svg.display()), "", &[]);
    wait_for_file(&svg, true);
    assert!(String::from_utf8_lossy(&std::fs::read(&svg).unwrap()).contains("<svg"));
    host.child().terminate();
    let (status, stderr) = host.finish(STEP).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    wait_for_file(&svg, false);

    // --keep-qr: the code expires, the file stays.
    let kept = dir.join("kept.png");
    let (host, _) = host_with_qr(
        &h1,
        &format!("png:{}", kept.display()),
        "[pairing]\ncode_ttl_ms = 1500\n",
        &["--keep-qr"],
    );
    wait_for_file(&kept, true);
    let (status, stderr) = host.finish(STEP).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(kept.is_file(), "--keep-qr removed it; {stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
