//! End to end: firewalls (issue 15) — stable ports, pairing in the other direction when the
//! host's firewall drops incoming TCP, a failure that names the firewall when both do, and the
//! rules `localpair firewall` prints, applied to a namespace whose input policy is drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::time::Instant;

use localpair_lab::pairs::{self, STEP};
use localpair_lab::{CLI_TIMEOUT, Host, HostSpec, Lab, Localpair, lab_or_skip};
use localpair_pairing::code::PairingCode;

/// How `join` reports a connection the host opened to the joiner's offer.
const OTHER_DIRECTION: &str = "other direction (it dialled this device)";

fn two(lab: &Lab) -> (Host, Host) {
    let desk = lab.add_host(HostSpec::new().name("desk")).unwrap();
    let phone = lab.add_host(HostSpec::new().name("phone")).unwrap();
    (desk, phone)
}

/// Pairs `phone` with `desk` hosting in `flow`; both must say so. Returns the joiner's JSON.
fn pair(desk: &Host, phone: &Host, flow: &str) -> serde_json::Value {
    let (running, code) = pairs::start_host(desk, flow, "").unwrap();
    let joined = pairs::join(phone, &code, "").unwrap();
    assert_eq!(
        joined.code(),
        Some(0),
        "join: {}\nhost: {}",
        joined.stderr,
        running.stderr()
    );
    let hosted = running.next_json(STEP).unwrap();
    assert_eq!(hosted["paired"], true, "{hosted}\n{}", running.stderr());
    assert!(running.wait(STEP).unwrap().success());
    joined.json()
}

fn other_direction_case(flow: &str) {
    let lab = lab_or_skip!(&format!("fw_host_drops_{flow}"));
    let (desk, phone) = two(&lab);
    desk.drop_incoming_tcp().unwrap();
    let joined = pair(&desk, &phone, flow);
    assert_eq!(joined["via"], OTHER_DIRECTION, "{joined}");
    eprintln!(
        "{flow}: paired in the other direction in {} ms",
        joined["elapsed_ms"]
    );
    lab.teardown().unwrap();
}

#[test]
fn a_host_whose_firewall_drops_incoming_tcp_pairs_in_the_other_direction_pre() {
    other_direction_case("pre");
}

#[test]
fn a_host_whose_firewall_drops_incoming_tcp_pairs_in_the_other_direction_post() {
    other_direction_case("post");
}

#[test]
fn a_joiner_whose_firewall_drops_incoming_tcp_pairs_as_usual() {
    let lab = lab_or_skip!("fw_joiner_drops");
    let (desk, phone) = two(&lab);
    phone.drop_incoming_tcp().unwrap();
    let joined = pair(&desk, &phone, "pre");
    assert_ne!(joined["via"], OTHER_DIRECTION, "{joined}");
    lab.teardown().unwrap();
}

#[test]
fn when_both_firewalls_drop_the_join_ends_soon_naming_the_hosts_firewall() {
    let lab = lab_or_skip!("fw_both_drop");
    let (desk, phone) = two(&lab);
    desk.drop_incoming_tcp().unwrap();
    phone.drop_incoming_tcp().unwrap();
    let (running, code) = pairs::start_host(&desk, "pre", "").unwrap();
    let started = Instant::now();
    let joined = pairs::join(&phone, &code, "").unwrap();
    let took = started.elapsed();
    assert_ne!(joined.code(), Some(0), "paired through two firewalls?");
    let text = &joined.stderr;
    assert!(
        text.contains("a firewall on the host drops incoming TCP 19537"),
        "{text}"
    );
    assert!(
        text.contains("offered the other direction on TCP 19537"),
        "{text}"
    );
    // The deadline is 30 s: the join must end on what it learnt, not on the clock.
    assert!(
        took.as_secs() < 15,
        "ended after {took:?} (deadline 30 s): {text}"
    );
    eprintln!(
        "both firewalls: the join ended after {} ms",
        took.as_millis()
    );
    drop(running);
    lab.teardown().unwrap();
}

fn code_port(host: &Host) -> (localpair_lab::Running, u16) {
    let (running, code) = pairs::start_host(host, "pre", "").unwrap();
    (running, PairingCode::parse(&code).unwrap().port)
}

#[test]
fn ports_stay_the_same_across_runs_and_a_taken_one_falls_back_saying_so() {
    let lab = lab_or_skip!("fw_ports");
    let desk = lab.add_host(HostSpec::new().name("desk")).unwrap();
    for _ in 0..2 {
        let (running, port) = code_port(&desk);
        assert_eq!(port, 19537);
        drop(running);
    }
    // While one host runs, a second one on the same device falls back and says so.
    let (first, port) = code_port(&desk);
    assert_eq!(port, 19537);
    let (second, other) = code_port(&desk);
    assert_ne!(other, 19537);
    let said = second.stderr();
    assert!(said.contains("pairing port 19537 is taken"), "{said}");
    assert!(said.contains(&format!("using {other}")), "{said}");
    drop((first, second));
    // The firewall hint names every port.
    let rules = Localpair::on(&desk)
        .unwrap()
        .args(["firewall", "--shell", "ufw"])
        .run(CLI_TIMEOUT)
        .unwrap();
    for port in [
        "19536/udp",
        "5353/udp",
        "19537/tcp",
        "19538/tcp",
        "19539/tcp",
    ] {
        assert!(
            rules.stdout.contains(&format!("ufw allow {port}")),
            "{}",
            rules.stdout
        );
    }
    lab.teardown().unwrap();
}

/// A host firewall as distributions ship it: input policy drop, replies and loopback allowed.
const DROP_POLICY: &str = "table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname \"lo\" accept
    meta l4proto { icmp, ipv6-icmp } accept
  }
}
";

#[test]
fn the_printed_nft_rules_let_pairing_through_a_drop_policy() {
    let lab = lab_or_skip!("fw_nft_rules");
    let (desk, phone) = two(&lab);
    std::fs::create_dir_all(desk.files()).unwrap();
    let script = desk.files().join("drop-policy.nft");
    std::fs::write(&script, DROP_POLICY).unwrap();
    desk.exec(["nft", "-f", script.to_str().unwrap()]).unwrap();
    // Nothing gets in: not the joiner's connections, not its announcements (so not its offer).
    let (running, code) = pairs::start_host(&desk, "pre", "").unwrap();
    let blocked = pairs::join(&phone, &code, "").unwrap();
    assert_ne!(blocked.code(), Some(0), "paired through a drop policy?");
    drop(running);
    let printed = Localpair::on(&desk)
        .unwrap()
        .args(["firewall", "--shell", "nft"])
        .run(CLI_TIMEOUT)
        .unwrap();
    assert!(
        printed
            .stdout
            .contains("nftables input chains: inet filter input"),
        "{}",
        printed.stdout
    );
    let commands: Vec<&str> = printed
        .stdout
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .collect();
    assert!(!commands.is_empty(), "{}", printed.stdout);
    for command in commands {
        desk.exec(["sh", "-c", command]).unwrap();
    }
    let joined = pair(&desk, &phone, "pre");
    assert_ne!(joined["via"], OTHER_DIRECTION, "{joined}");
    lab.teardown().unwrap();
}

#[test]
fn a_known_peer_behind_a_firewall_is_reconnected_in_the_other_direction() {
    let lab = lab_or_skip!("fw_reconnect");
    let (desk, phone) = two(&lab);
    pairs::pair(&desk, &phone).unwrap();
    desk.drop_incoming_tcp().unwrap();
    let listener = pairs::Listener::start(&desk, "", true).unwrap();
    let ran = pairs::connect(&phone, "desk", "", b"through the other direction").unwrap();
    assert_eq!(
        ran.code(),
        Some(0),
        "connect: {}\nlisten: {}",
        ran.stderr,
        listener.stderr()
    );
    let connected = ran.json();
    assert_eq!(connected["via"], OTHER_DIRECTION, "{connected}");
    let (status, received) = listener.finish(STEP).unwrap();
    assert!(status.success());
    assert_eq!(received, b"through the other direction");
    eprintln!(
        "reconnected in the other direction in {} ms",
        connected["elapsed_ms"]
    );
    lab.teardown().unwrap();
}
