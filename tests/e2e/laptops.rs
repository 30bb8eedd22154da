//! End to end: laptops as they are — a full-tunnel VPN, a second network, a Docker bridge — must
//! not break `resolve` or pairing (issue 14).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use localpair_lab::pairs::{self, STEP};
use localpair_lab::{CLI_TIMEOUT, Host, HostSpec, Localpair, Running, lab_or_skip, scenes};
use localpair_pairing::code::PairingCode;
use serde_json::Value;

/// The IPv4 candidates in order (IPv6 link-local addresses come on every interface, tunnels included).
fn ips(report: &Value) -> Vec<String> {
    report["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ip"].as_str().unwrap_or("").to_owned())
        .filter(|ip| !ip.contains(':'))
        .collect()
}

fn start_host(host: &Host, flow: &str, config: &str) -> (Running, PairingCode, String) {
    let (running, text) = pairs::start_host(host, flow, config).unwrap();
    (running, PairingCode::parse(&text).unwrap(), text)
}

fn join(host: &Host, code: &str) -> localpair_lab::Ran {
    pairs::join(host, code, "").unwrap()
}

/// Hosts with `flow`, joins from `joiner`, and checks both sides paired.
fn pairs(host: &Host, joiner: &Host, flow: &str) -> PairingCode {
    let (running, code, text) = start_host(host, flow, "");
    let joined = join(joiner, &text);
    assert_eq!(
        joined.code(),
        Some(0),
        "{flow}: join failed: {}\nhost: {}",
        joined.stderr,
        running.stderr()
    );
    assert_eq!(joined.json()["paired"], true);
    let paired = running.next_json(STEP).unwrap();
    assert_eq!(paired["paired"], true, "{paired}");
    assert!(running.wait(STEP).unwrap().success());
    code
}

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn full_tunnel_vpn_resolves_the_lan_first() {
    let lab = lab_or_skip!("vpn_resolve");
    let (laptop, _) = scenes::full_tunnel_vpn(&lab).unwrap();
    let report = Localpair::on(&laptop)
        .unwrap()
        .args(["--json", "resolve"])
        .ok_json(CLI_TIMEOUT)
        .unwrap();
    assert_eq!(ips(&report), ["10.84.0.2", "100.64.0.2"], "{report:#}");
    let first = &report["candidates"][0];
    assert_eq!(first["interface"], "eth0");
    let vpn = report["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["ip"] == "100.64.0.2")
        .unwrap();
    assert_eq!(vpn["interface"], "tun0");
    assert_eq!(vpn["class"], "vpn");
    assert!(vpn["reason"].as_str().unwrap().contains("VPN"), "{vpn}");

    // outbound-route's answer (the tunnel) is weak: the chain went on to interface-sweep.
    let attempts = report["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["strategy"], "outbound-route");
    assert_eq!(attempts[0]["outcome"], "ok");
    assert!(
        attempts[0]["note"].as_str().unwrap().contains("VPN"),
        "{attempts:?}"
    );
    assert_eq!(attempts[1]["strategy"], "interface-sweep");
    assert_eq!(attempts[1]["outcome"], "ok");
    assert_eq!(attempts[2]["outcome"], "skipped");
}

#[test]
fn full_tunnel_vpn_pairs_in_both_flows_on_the_lan_address() {
    let lab = lab_or_skip!("vpn_pair");
    let (laptop, phone) = scenes::full_tunnel_vpn(&lab).unwrap();

    let code = pairs(&laptop, &phone, "post");
    assert_eq!(
        code.candidates,
        [v4("10.84.0.2")],
        "the post-shared host listens on the LAN, not on the tunnel"
    );

    let code = pairs(&laptop, &phone, "pre");
    assert_eq!(code.candidates.first(), Some(&v4("10.84.0.2")));
    assert!(code.candidates.contains(&v4("100.64.0.2")));
}

#[test]
fn a_host_listening_only_on_its_vpn_is_named_as_such_and_the_join_ends_early() {
    let lab = lab_or_skip!("vpn_only");
    let (laptop, phone) = scenes::full_tunnel_vpn(&lab).unwrap();
    // Only the outbound route: the host knows nothing but its tunnel address.
    let (running, code, text) =
        start_host(&laptop, "post", "[resolve]\norder = [\"outbound-route\"]\n");
    assert_eq!(code.candidates, [v4("100.64.0.2")]);
    let warned = Instant::now() + Duration::from_secs(5);
    while !running.stderr().contains("no LAN address") && Instant::now() < warned {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        running.stderr().contains("no LAN address"),
        "the host warns: {}",
        running.stderr()
    );

    // The joiner's dial to the tunnel address fails, but the host hears the joiner's offer and
    // dials it over the LAN.
    let joined = join(&phone, &text);
    assert_eq!(joined.code(), Some(0), "{}", joined.stderr);
    assert_eq!(
        joined.json()["via"],
        "other direction (it dialled this device)"
    );
    drop(running);

    // With the joiner's firewall closed too, nothing gets through: the failure says why.
    phone.drop_incoming_tcp().unwrap();
    let (running, _, text) =
        start_host(&laptop, "post", "[resolve]\norder = [\"outbound-route\"]\n");
    let started = Instant::now();
    let joined = join(&phone, &text);
    let took = started.elapsed();
    assert_eq!(joined.code(), Some(1), "{}", joined.stderr);
    assert!(
        joined
            .stderr
            .contains("the host listens only on 100.64.0.2 (a VPN or another network?)"),
        "{}",
        joined.stderr
    );
    // The deadline is 30 s; discovery found the host within milliseconds, every address failed.
    assert!(took < Duration::from_secs(15), "gave up after {took:?}");
    drop(running);
}

#[test]
fn a_second_network_pairs_in_both_flows() {
    let lab = lab_or_skip!("two_nets");
    let (laptop, joiner) = scenes::two_networks(&lab).unwrap();
    let report = Localpair::on(&laptop)
        .unwrap()
        .config("[resolve]\nmode = \"all\"\n")
        .unwrap()
        .args(["--json", "resolve"])
        .ok_json(CLI_TIMEOUT)
        .unwrap();
    assert_eq!(ips(&report)[..2], ["10.84.0.2", "10.85.0.2"], "{report:#}");

    let code = pairs(&laptop, &joiner, "post");
    assert!(
        code.candidates.contains(&v4("10.84.0.2")) && code.candidates.contains(&v4("10.85.0.2")),
        "the post-shared host listens on both LANs: {:?}",
        code.candidates
    );
    pairs(&laptop, &joiner, "pre");
}

#[test]
fn a_docker_bridge_is_never_the_only_address_a_post_shared_host_listens_on() {
    let lab = lab_or_skip!("docker_post");
    let (laptop, phone) = scenes::docker_bridge(&lab).unwrap();
    let code = pairs(&laptop, &phone, "post");
    assert_eq!(code.candidates, [IpAddr::V4(laptop.addr())]);

    // Even when the only resolver that answers names the bridge first.
    let (running, code, _) = start_host(
        &laptop,
        "post",
        "[resolve]\norder = [\"interface-sweep\"]\n[interfaces]\nallow = [\"docker*\", \"eth*\"]\n",
    );
    assert!(!code.candidates.is_empty());
    assert_ne!(code.candidates, [v4("172.17.0.1")]);
    drop(running);
}

#[test]
fn diagnose_tells_a_tentative_address_from_a_firewall() {
    let lab = lab_or_skip!("dad_diag");
    let host = lab.add_host(HostSpec::new()).unwrap();
    // Duplicate address detection on, and slow (30 probes, one a second): the new address stays
    // tentative for the whole run, as right after a link comes up.
    host.exec([
        "sysctl",
        "-qw",
        "net.ipv6.conf.eth0.accept_dad=1",
        "net.ipv6.conf.eth0.dad_transmits=30",
    ])
    .unwrap();
    host.exec(["ip", "addr", "add", "fd77::99/64", "dev", "eth0"])
        .unwrap();
    let report = Localpair::on(&host)
        .unwrap()
        .config("[diagnostics]\ndiscovery_window_ms = 300\n")
        .unwrap()
        .args(["--json", "diagnose"])
        .ok_json(CLI_TIMEOUT)
        .unwrap();
    let hints: Vec<&str> = report["hints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap_or(""))
        .collect();
    assert!(
        hints.contains(&"address-not-ready"),
        "{hints:?}\n{report:#}"
    );
    assert!(
        !hints.contains(&"self-unreachable"),
        "{hints:?}\n{report:#}"
    );
    let own = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "self-reachability")
        .unwrap();
    let row = own["details"]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["ip"] == "fd77::99")
        .expect("the tentative address is tested");
    assert_eq!(row["dad"], "tentative", "{row}");
}
