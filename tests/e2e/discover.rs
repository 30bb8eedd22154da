//! End to end: `localpair discover` and the peer-observed resolver on lab hosts (issue 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use localpair_lab::{CLI_TIMEOUT, Host, HostSpec, Lab, Localpair, Running, lab_or_skip};
use serde_json::Value;

fn hosts(lab: &Lab, n: usize) -> Vec<Host> {
    (0..n)
        .map(|_| lab.add_host(HostSpec::new()).unwrap())
        .collect()
}

fn start_discover(host: &Host, args: &[&str], config: &str) -> Running {
    Localpair::on(host)
        .unwrap()
        .config(config)
        .unwrap()
        .args(["--json", "discover"])
        .args(args)
        .start()
        .unwrap()
}

fn names(report: &Value) -> Vec<String> {
    let mut names: Vec<String> = report["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn finish(run: Running) -> (Option<i32>, Value, String) {
    let line = run.next_line(CLI_TIMEOUT);
    let (status, stderr) = run.finish(CLI_TIMEOUT).unwrap();
    let report = line
        .ok()
        .and_then(|l| serde_json::from_str(&l).ok())
        .unwrap_or(Value::Null);
    (status.code(), report, stderr)
}

#[test]
fn three_hosts_find_each_other_with_the_default_chain() {
    let lab = lab_or_skip!("disc_three");
    let all = hosts(&lab, 3);
    let runs: Vec<Running> = all
        .iter()
        // A fixed window for all: a host that stopped at its count would stop announcing before a
        // slower peer heard it.
        .map(|h| start_discover(h, &["--timeout", "5"], ""))
        .collect();
    for (host, run) in all.iter().zip(runs) {
        let (code, report, stderr) = finish(run);
        assert_eq!(code, Some(0), "{}: {stderr}", host.name());
        let mut expected: Vec<String> = all
            .iter()
            .filter(|h| h.name() != host.name())
            .map(|h| h.name().to_owned())
            .collect();
        expected.sort();
        assert_eq!(names(&report), expected, "{}", host.name());
        for peer in report["peers"].as_array().unwrap() {
            assert!(["udp-multicast", "mdns"].contains(&peer["strategy"].as_str().unwrap()));
            assert_eq!(peer["fingerprint"].as_str().unwrap().len(), 64);
            assert!(peer["elapsed_ms"].as_f64().unwrap() >= 0.0);
        }
        // Progress went to stderr as the peers appeared.
        assert!(stderr.matches("found ").count() >= 2, "{stderr}");
    }
}

#[test]
fn a_host_behind_dropped_multicast_is_not_found_and_says_why() {
    let lab = lab_or_skip!("disc_nomcast");
    let all = hosts(&lab, 3);
    all[2].drop_multicast().unwrap();
    let runs: Vec<Running> = all
        .iter()
        .map(|h| start_discover(h, &["--timeout", "4"], ""))
        .collect();
    let results: Vec<_> = runs.into_iter().map(finish).collect();
    for (i, (code, report, stderr)) in results.iter().enumerate().take(2) {
        assert_eq!(*code, Some(0), "{stderr}");
        let other = all[1 - i].name().to_owned();
        assert_eq!(names(report), [other], "h{i} must not see the muted host");
    }
    let (code, report, stderr) = &results[2];
    assert_eq!(*code, Some(1), "{stderr}");
    let error = &report["error"];
    assert_eq!(error["kind"], "no-peers", "{report:#}");
    assert!(
        stderr.contains("error: no peer found within 4 s"),
        "{stderr}"
    );
    let attempts = error["attempts"]
        .as_array()
        .expect("the attempts travel with the error");
    assert!(!attempts.is_empty(), "{report:#}");
    for attempt in attempts {
        assert_eq!(attempt["outcome"], "empty", "{attempt}");
        let why = attempt["error"].as_str().unwrap_or_default();
        assert!(why.contains("multicast"), "{}: {why}", attempt["strategy"]);
    }
}

#[test]
fn discovery_survives_thirty_percent_udp_loss() {
    let lab = lab_or_skip!("disc_loss");
    let all = hosts(&lab, 3);
    for h in &all {
        h.udp_loss(30).unwrap();
    }
    let runs: Vec<Running> = all
        .iter()
        .map(|h| start_discover(h, &["--timeout", "10"], ""))
        .collect();
    for run in runs {
        let (code, report, stderr) = finish(run);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(
            report["peers"].as_array().unwrap().len(),
            2,
            "{report:#}\n{stderr}"
        );
    }
}

#[test]
fn peer_observed_address_comes_from_a_peer() {
    let lab = lab_or_skip!("disc_observed");
    let all = hosts(&lab, 2);
    let _peer = start_discover(&all[0], &["--timeout", "20"], "");
    let report = Localpair::on(&all[1])
        .unwrap()
        .config("[resolve]\norder = [\"peer-observed\"]\n")
        .unwrap()
        .args(["--json", "resolve"])
        .ok_json(CLI_TIMEOUT)
        .unwrap();
    let first = &report["candidates"][0];
    assert_eq!(
        first["ip"],
        all[1].addr().to_string().as_str(),
        "{report:#}"
    );
    assert_eq!(first["confirmed"], "peer");
    assert_eq!(first["strategy"], "peer-observed");
    assert_eq!(first["interface"], "eth0");
    let _ = Duration::ZERO;
}
