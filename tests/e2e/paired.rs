//! End to end: paired devices that last (issue 10) — a persistent identity and trust store,
//! reconnecting without a code by every route, strangers, impostors and forgotten peers refused,
//! and the stream itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use localpair_lab::pairs::{self, Listener, STEP};
use localpair_lab::{CLI_TIMEOUT, Host, HostSpec, Lab, Localpair, lab_or_skip};
use serde_json::Value;

fn two(lab: &Lab) -> (Host, Host) {
    let h1 = lab.add_host(HostSpec::new().name("desk")).unwrap();
    let h2 = lab.add_host(HostSpec::new().name("phone")).unwrap();
    (h1, h2)
}

fn peers(host: &Host) -> Vec<Value> {
    let report = Localpair::on(host)
        .unwrap()
        .args(["--json", "peers"])
        .ok_json(CLI_TIMEOUT)
        .unwrap();
    report["peers"].as_array().unwrap().clone()
}

fn fingerprint(host: &Host) -> String {
    // The key is the one in the host's state directory: the same every run.
    let report = Localpair::on(host)
        .unwrap()
        .args(["--json", "host", "--qr", "none"])
        .config("[pairing]\ncode_ttl_ms = 1\n")
        .unwrap()
        .start()
        .unwrap();
    let first = report.next_json(STEP).unwrap();
    let code =
        localpair_pairing::code::PairingCode::parse(first["code"].as_str().unwrap()).unwrap();
    code.fingerprint.to_string()
}

/// `desk` listens once; `phone` connects with `config` and sends `message`; both must succeed
/// and the bytes arrive. Returns the connect JSON.
fn reconnect(desk: &Host, phone: &Host, config: &str, message: &[u8]) -> Value {
    let listener = Listener::start(desk, "", true).unwrap();
    let ran = pairs::connect(phone, "desk", config, message).unwrap();
    assert_eq!(
        ran.code(),
        Some(0),
        "connect: {}\nlisten: {}",
        ran.stderr,
        listener.stderr()
    );
    let stderr = listener.stderr();
    let (status, received) = listener.finish(STEP).unwrap();
    assert!(status.success(), "listen exited {status}: {stderr}");
    assert_eq!(received, message);
    ran.json()
}

#[test]
fn pair_once_then_reconnect_after_restarts_by_every_route() {
    let lab = lab_or_skip!("paired_routes");
    let (desk, phone) = two(&lab);
    let first = fingerprint(&desk);
    assert_eq!(fingerprint(&desk), first, "the key persists across runs");

    let joined = pairs::pair(&desk, &phone).unwrap();
    assert_eq!(joined["saved"], true);
    let on_phone = peers(&phone);
    assert_eq!(on_phone.len(), 1);
    assert_eq!(on_phone[0]["name"], "desk");
    assert_eq!(on_phone[0]["fingerprint"], first.as_str());
    assert_eq!(peers(&desk)[0]["name"], "phone");

    // Found by its announcements (each discoverer alone), then by its last known address with
    // multicast dropped, then by a subnet scan after it moved.
    let by_multicast = reconnect(
        &desk,
        &phone,
        "[connect]\norder = [\"udp-multicast\"]\n",
        b"one",
    );
    assert_eq!(by_multicast["via"], "udp-multicast", "{by_multicast}");
    let by_mdns = reconnect(&desk, &phone, "[connect]\norder = [\"mdns\"]\n", b"two");
    assert_eq!(by_mdns["via"], "mdns", "{by_mdns}");
    desk.drop_multicast().unwrap();
    phone.drop_multicast().unwrap();
    let by_address = reconnect(&desk, &phone, "", b"three");
    assert_eq!(by_address["via"], "direct", "{by_address}");
    // Its IPv6 link-local address survives the move (and `direct` would still reach it there):
    // the scan alone must find the new IPv4 address.
    desk.move_to("10.77.0.99/24").unwrap();
    let scanned = reconnect(
        &desk,
        &phone,
        "[connect]\norder = [\"subnet-scan\"]\n[strategies.subnet-scan]\ngrace_ms = 300\n",
        b"four",
    );
    assert_eq!(scanned["via"], "subnet-scan", "{scanned}");
    assert_eq!(
        scanned["peer"]["addr"].as_str().unwrap().split(':').next(),
        Some("10.77.0.99")
    );
}

#[test]
fn strangers_impostors_and_forgotten_peers_are_refused() {
    let lab = lab_or_skip!("paired_refuse");
    let (desk, phone) = two(&lab);
    let stranger = lab.add_host(HostSpec::new().name("stranger")).unwrap();
    pairs::pair(&desk, &phone).unwrap();

    // A third device that knows the desk's key (the phone's trust store, copied) but has its own
    // key: the desk refuses it, says so, and logs it; the phone still gets in.
    std::fs::create_dir_all(stranger.state_dir()).unwrap();
    std::fs::copy(
        phone.state_dir().join("trusted-peers.toml"),
        stranger.state_dir().join("trusted-peers.toml"),
    )
    .unwrap();
    let listener = Listener::start(&desk, "", true).unwrap();
    let refused = pairs::connect(&stranger, "desk", "", b"let me in").unwrap();
    assert_eq!(refused.code(), Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("does not know this device"),
        "{}",
        refused.stderr
    );
    listener
        .wait_for("refused a device that is not in the trust store", STEP)
        .unwrap();
    let ran = pairs::connect(&phone, "desk", "", b"it is me").unwrap();
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr);
    let (_, received) = listener.finish(STEP).unwrap();
    assert_eq!(received, b"it is me", "the stranger's bytes never arrive");

    // An impostor at the desk's address and link port (both use the stable default, 19539), with
    // its own key: refused by the pin.
    let desk_ip = desk.cidr();
    desk.move_to("10.77.0.98/24").unwrap();
    stranger.move_to(&desk_ip).unwrap();
    phone.drop_multicast().unwrap();
    // The phone still has the desk's MAC for that address; a new device there would have
    // announced itself (gratuitous ARP), which the lab does not do.
    phone.exec(["ip", "neigh", "flush", "all"]).unwrap();
    let impostor = Listener::start(&stranger, "", true).unwrap();
    let ran = pairs::connect(
        &phone,
        "desk",
        "[connect]\norder = [\"direct\"]\ndeadline_ms = 3000\n",
        b"x",
    )
    .unwrap();
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("does not match the pinned key"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("impostor"), "{}", ran.stderr);
    drop(impostor);
    stranger.move_to("10.77.0.97/24").unwrap();
    desk.move_to(&desk_ip).unwrap();
    phone.clear_faults().unwrap();
    phone.exec(["ip", "neigh", "flush", "all"]).unwrap();

    // Forgotten on the listening side: the listener says it does not know the phone.
    let forgot = Localpair::on(&desk)
        .unwrap()
        .args(["forget", "phone"])
        .run(CLI_TIMEOUT)
        .unwrap();
    assert_eq!(forgot.code(), Some(0), "{}", forgot.stderr);
    let listener = Listener::start(&desk, "", false).unwrap();
    let ran = pairs::connect(&phone, "desk", "", b"hello?").unwrap();
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("refused the connection")
            && ran.stderr.contains("it does not know this device"),
        "{}",
        ran.stderr
    );
    drop(listener);
    // Forgotten on the dialling side: nothing to dial, bad usage, the known peers listed.
    let forgot = Localpair::on(&phone)
        .unwrap()
        .args(["forget", "desk"])
        .run(CLI_TIMEOUT)
        .unwrap();
    assert_eq!(forgot.code(), Some(0), "{}", forgot.stderr);
    let ran = pairs::connect(&phone, "desk", "", b"").unwrap();
    assert_eq!(ran.code(), Some(2), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("no known peer is `desk`"),
        "{}",
        ran.stderr
    );
}

/// A deterministic stream of bytes that compresses badly.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn a_quarter_gigabyte_arrives_intact() {
    let lab = lab_or_skip!("paired_bulk");
    let (desk, phone) = two(&lab);
    pairs::pair(&desk, &phone).unwrap();
    let data = noise(256 << 20);
    let sent = ring::digest::digest(&ring::digest::SHA256, &data);
    let listener = Listener::start(&desk, "", true).unwrap();
    let ran = pairs::connect(&phone, "desk", "", &data).unwrap();
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr);
    assert_eq!(ran.json()["sent"], 256u64 << 20);
    let (status, received) = listener.finish(Duration::from_secs(120)).unwrap();
    assert!(status.success());
    assert_eq!(received.len(), data.len());
    let got = ring::digest::digest(&ring::digest::SHA256, &received);
    assert_eq!(got.as_ref(), sent.as_ref(), "SHA-256 of what arrived");
}

#[test]
fn two_pairings_at_once_keep_both_entries() {
    let lab = lab_or_skip!("paired_twice");
    let desk = lab.add_host(HostSpec::new().name("desk")).unwrap();
    let phone = lab.add_host(HostSpec::new().name("phone")).unwrap();
    let tablet = lab.add_host(HostSpec::new().name("tablet")).unwrap();
    let (first, code1) = pairs::start_host(&desk, "pre", "").unwrap();
    let (second, code2) = pairs::start_host(&desk, "pre", "").unwrap();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| pairs::join(&phone, &code1, "").unwrap());
        let b = s.spawn(|| pairs::join(&tablet, &code2, "").unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.code(), Some(0), "{}", a.stderr);
    assert_eq!(b.code(), Some(0), "{}", b.stderr);
    assert!(first.wait(STEP).unwrap().success());
    assert!(second.wait(STEP).unwrap().success());
    let mut names: Vec<String> = peers(&desk)
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["phone", "tablet"]);
}

#[test]
fn a_connection_that_breaks_does_not_stop_the_listener() {
    let lab = lab_or_skip!("paired_broken");
    let (desk, phone) = two(&lab);
    pairs::pair(&desk, &phone).unwrap();
    // `--once`: it ends after the first connection that ends cleanly.
    let listener = Listener::start(&desk, "", true).unwrap();
    // A `connect` killed mid-stream: its stdin never ends, then the process is gone.
    let mut broken = Localpair::on(&phone)
        .unwrap()
        .args(["connect", "desk"])
        .stdin_piped()
        .spawn()
        .unwrap();
    listener.wait_for("connected: phone", STEP).unwrap();
    broken.kill().unwrap();
    let _ = broken.wait();
    listener.wait_for("the connection broke", STEP).unwrap();
    // The listener is still there, and the next connection is served.
    let ran = pairs::connect(&phone, "desk", "", b"still here").unwrap();
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr);
    let (status, received) = listener.finish(STEP).unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(received, b"still here");
}
