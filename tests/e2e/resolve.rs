//! End to end: `localpair resolve` on lab hosts (issue 2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use localpair_lab::{CLI_TIMEOUT, HostSpec, Localpair, lab_or_skip};
use serde_json::Value;

fn strings<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap_or(""))
        .collect()
}

#[test]
fn lan_address_first_docker_bridge_last_with_reason() {
    let lab = lab_or_skip!("resolve_docker");
    let host = lab
        .add_host(HostSpec::new().extra_bridge_no_carrier("docker0", "172.17.0.1/16"))
        .unwrap();
    let lan = host.addr().to_string();

    // Every resolver at once, merged: the ranking decides the order.
    let report = Localpair::on(&host)
        .unwrap()
        .config("[resolve]\nmode = \"all\"\n")
        .unwrap()
        .args(["--json", "resolve"])
        .ok_json(CLI_TIMEOUT)
        .unwrap();
    let candidates = &report["candidates"];
    let first = &candidates[0];
    assert_eq!(first["ip"], lan.as_str(), "{report:#}");
    assert_eq!(first["interface"], "eth0");
    // The lab's LAN link is one end of a veth pair: the OS says so (sysfs), whatever its name.
    assert_eq!(first["class"], "virtual-ethernet");
    assert_eq!(first["confirmed"], "local");
    assert!(
        first["reason"].as_str().unwrap().contains("default route"),
        "{first}"
    );

    let interfaces = strings(candidates, "interface");
    let first_docker = interfaces
        .iter()
        .position(|i| *i == "docker0")
        .expect("docker0 listed");
    assert!(
        interfaces[first_docker..].iter().all(|i| *i == "docker0"),
        "docker0 candidates must come last: {interfaces:?}"
    );
    let docker = candidates
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["ip"] == "172.17.0.1")
        .expect("172.17.0.1 listed");
    assert_eq!(docker["class"], "virtual-bridge");
    assert_eq!(docker["strategy"], "interface-sweep");
    assert!(
        docker["reason"].as_str().unwrap().contains("ranked last"),
        "{docker}"
    );
    // Alone on the LAN: peer-observed hears nobody and says so.
    assert_eq!(
        strings(&report["attempts"], "outcome"),
        ["ok", "ok", "error"]
    );
    let alone = report["attempts"][2]["error"].as_str().unwrap();
    assert!(alone.contains("no peer"), "{alone}");

    // The default chain is sequential: outbound-route answers, interface-sweep is not needed.
    let report = Localpair::on(&host)
        .unwrap()
        .args(["--json", "resolve"])
        .ok_json(CLI_TIMEOUT)
        .unwrap();
    assert_eq!(report["candidates"][0]["ip"], lan.as_str());
    assert_eq!(report["candidates"][0]["strategy"], "outbound-route");
    assert_eq!(
        strings(&report["attempts"], "outcome"),
        ["ok", "skipped", "skipped"]
    );

    // The text form names the same order.
    let ran = Localpair::on(&host)
        .unwrap()
        .config("[resolve]\nmode = \"all\"\n")
        .unwrap()
        .args(["resolve"])
        .run(CLI_TIMEOUT)
        .unwrap();
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr);
    let lan_at = ran.stdout.find(&lan).expect("LAN address printed");
    let docker_at = ran
        .stdout
        .find("172.17.0.1")
        .expect("docker address printed");
    assert!(lan_at < docker_at, "{}", ran.stdout);
}

#[test]
fn no_default_route_falls_through_to_interface_sweep() {
    let lab = lab_or_skip!("resolve_noroute");
    let host = lab.add_host(HostSpec::new().default_route(false)).unwrap();
    let report = Localpair::on(&host)
        .unwrap()
        .args(["--json", "resolve"])
        .ok_json(CLI_TIMEOUT)
        .unwrap();
    let attempts = &report["attempts"];
    assert_eq!(
        strings(attempts, "strategy"),
        ["outbound-route", "interface-sweep", "peer-observed"]
    );
    assert_eq!(strings(attempts, "outcome"), ["error", "ok", "skipped"]);
    let why = attempts[0]["error"].as_str().unwrap();
    assert!(
        why.contains("no route to any target") && why.contains("unreachable"),
        "{why}"
    );
    assert_eq!(
        report["candidates"][0]["ip"],
        host.addr().to_string().as_str()
    );
    assert_eq!(report["candidates"][0]["strategy"], "interface-sweep");
    assert_eq!(report["candidates"][0]["confirmed"], "local");
}

#[test]
fn no_address_at_all_exits_1_explaining_every_attempt() {
    let lab = lab_or_skip!("resolve_nothing");
    let host = lab.add_host(HostSpec::new().default_route(false)).unwrap();
    // With the LAN interface excluded nothing is left: both resolvers must say why.
    let ran = Localpair::on(&host)
        .unwrap()
        .config("[interfaces]\ndeny = [\"eth*\"]\n")
        .unwrap()
        .args(["resolve"])
        .run(CLI_TIMEOUT)
        .unwrap();
    assert_eq!(ran.code(), Some(1), "{}\n{}", ran.stdout, ran.stderr);
    let last = ran.stderr.lines().last().unwrap();
    assert!(last.starts_with("error: no usable address found"), "{last}");
    assert!(
        last.contains("outbound-route: error") && last.contains("interface-sweep: error"),
        "{last}"
    );
    assert!(last.contains("no private address"), "{last}");
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let lab = lab_or_skip!("resolve_badcfg");
    let host = lab.add_host(HostSpec::new()).unwrap();
    let ran = Localpair::on(&host)
        .unwrap()
        .config("[resolve]\norder = [\"outbound-route\", \"smoke-signals\"]\n")
        .unwrap()
        .args(["--json", "resolve"])
        .run(CLI_TIMEOUT)
        .unwrap();
    assert_eq!(ran.code(), Some(2));
    assert!(
        ran.stderr.contains("resolve.order[1]") && ran.stderr.contains("smoke-signals"),
        "{}",
        ran.stderr
    );
    let error: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(error["error"]["kind"], "config", "{error:#}");
    assert_eq!(error["error"]["exit_code"], 2, "{error:#}");

    let ran = Localpair::on(&host)
        .unwrap()
        .config("[strategies.outbound-route]\ntargets = [\"not an address\"]\n")
        .unwrap()
        .args(["resolve"])
        .run(CLI_TIMEOUT)
        .unwrap();
    assert_eq!(ran.code(), Some(2));
    assert!(
        ran.stderr.contains("strategies.outbound-route.targets"),
        "{}",
        ran.stderr
    );
}

#[test]
fn interface_classes_come_from_the_os_not_the_names() {
    let lab = lab_or_skip!("resolve_classes");
    let host = lab
        .add_host(
            HostSpec::new()
                .extra_bridge("docker0", "172.17.0.1/16")
                .extra_tun("tun0", "100.64.0.2/32")
                .extra_bridge("eth9", "192.168.77.1/24"),
        )
        .unwrap();
    let report = Localpair::on(&host)
        .unwrap()
        .args(["--json", "diagnose", "--window", "0.1"])
        .ok_json(CLI_TIMEOUT)
        .unwrap();
    let interfaces = report["checks"][0]["details"]["interfaces"]
        .as_array()
        .unwrap()
        .clone();
    let class = |name: &str| {
        interfaces
            .iter()
            .find(|i| i["name"] == name)
            .map(|i| i["class"].as_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    };
    assert_eq!(class("lo"), "loopback");
    assert_eq!(
        class("eth0"),
        "virtual-ethernet",
        "a veth, though named like a NIC"
    );
    assert_eq!(class("docker0"), "virtual-bridge");
    assert_eq!(class("tun0"), "vpn");
    assert_eq!(
        class("eth9"),
        "virtual-bridge",
        "a bridge, though named like a NIC"
    );
}
