//! End to end: the devices nearby (issue 10's discovery events) — `discover --watch` reports a
//! device when it comes, whether this device knows it, and says it is lost when it goes silent
//! (udp-multicast) or says goodbye (mDNS).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::time::{Duration, Instant};

use localpair_lab::pairs::{self, Listener};
use localpair_lab::{Host, HostSpec, Lab, Localpair, Running, lab_or_skip};
use serde_json::Value;

/// udp-multicast alone, announcing every second once started: a silent peer is forgotten
/// after three intervals (3.3 s with jitter), checked every 2 s.
const MULTICAST: &str = "[discover]\norder = [\"udp-multicast\"]\n\
                         [strategies.udp-multicast]\nsteady_interval_ms = 1000\n";
/// mDNS alone: a peer that stops says goodbye.
const MDNS: &str = "[discover]\norder = [\"mdns\"]\n";
/// Longest a test waits for one event.
const EVENT: Duration = Duration::from_secs(20);

fn host(lab: &Lab, name: &str) -> Host {
    lab.add_host(HostSpec::new().name(name)).unwrap()
}

/// `discover --watch --json` on a host, and the events it printed that no test step took yet.
struct Watcher {
    running: Running,
    unread: Vec<Value>,
}

fn watch(host: &Host, config: &str) -> Watcher {
    let running = Localpair::on(host)
        .unwrap()
        .config(config)
        .unwrap()
        .args(["--json", "discover", "--watch"])
        .start()
        .unwrap();
    Watcher {
        running,
        unread: Vec::new(),
    }
}

impl Watcher {
    /// The first unread `event` for the device named `name`, waiting for it; fails on any
    /// `lost` for another device meanwhile (nobody else went away).
    fn until(&mut self, event: &str, name: &str) -> Value {
        let deadline = Instant::now() + EVENT;
        loop {
            let position = self.unread.iter().position(|line| {
                line["event"] == event && line["peer"]["name"].as_str() == Some(name)
            });
            if let Some(position) = position {
                return self.unread.remove(position);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.running.next_json(left).unwrap_or_else(|e| {
                panic!("no {event} for {name}: {e}\n{}", self.running.stderr())
            });
            let who = line["peer"]["name"].as_str().unwrap_or_default();
            assert!(
                line["event"] != "lost" || who == name,
                "{who} was lost: {line}"
            );
            self.unread.push(line);
        }
    }
}

#[test]
fn a_device_that_goes_silent_is_lost_and_the_others_stay() {
    let lab = lab_or_skip!("nearby_silent");
    let desk = host(&lab, "desk");
    let phone = host(&lab, "phone");
    let tablet = host(&lab, "tablet");
    pairs::pair(&desk, &phone).unwrap();

    let mut watcher = watch(&desk, MULTICAST);
    let phone_listening = Listener::start(&phone, MULTICAST, false).unwrap();
    let tablet_listening = Listener::start(&tablet, MULTICAST, false).unwrap();
    let found = watcher.until("found", "phone");
    // Known: paired a moment ago; and it says where it accepts known peers.
    assert_eq!(found["known"]["name"], "phone", "{found}");
    assert!(found["peer"]["link_port"].as_u64().is_some(), "{found}");
    let stranger = watcher.until("found", "tablet");
    assert!(stranger["known"].is_null(), "{stranger}");

    // kill -9: no goodbye; the silence tells.
    let killed = Instant::now();
    drop(phone_listening);
    let lost = watcher.until("lost", "phone");
    let after = killed.elapsed();
    assert_eq!(lost["peer"]["fingerprint"], found["peer"]["fingerprint"]);
    // Three 1 s intervals (+10 % jitter) and a 2 s housekeeping tick at most.
    assert!(after >= Duration::from_secs(3), "lost after {after:?}");
    eprintln!("phone lost {} ms after it was killed", after.as_millis());

    // It comes back: found again.
    let _back = Listener::start(&phone, MULTICAST, false).unwrap();
    watcher.until("found", "phone");
    drop(tablet_listening);
    drop(watcher);
    lab.teardown().unwrap();
}

#[test]
fn a_device_that_stops_says_goodbye_over_mdns() {
    let lab = lab_or_skip!("nearby_goodbye");
    let desk = host(&lab, "desk");
    let tablet = host(&lab, "tablet");
    let mut watcher = watch(&desk, MDNS);
    let listening = Listener::start(&tablet, MDNS, false).unwrap();
    let found = watcher.until("found", "tablet");
    assert_eq!(found["peer"]["strategy"], "mdns", "{found}");
    let stopped = Instant::now();
    listening.terminate();
    let lost = watcher.until("lost", "tablet");
    let after = stopped.elapsed();
    assert_eq!(lost["peer"]["fingerprint"], found["peer"]["fingerprint"]);
    // Its records would live 120 s: only the goodbye explains an early loss.
    assert!(after < Duration::from_secs(60), "lost after {after:?}");
    eprintln!("tablet lost {} ms after it stopped", after.as_millis());
    drop(watcher);
    lab.teardown().unwrap();
}
