//! End to end: nobody on the LAN can stop a pairing (issue 11, the pairing listener): wrong
//! proofs slow only their own source down, and a connection flood delays a genuine joiner by
//! its own round trip, never locks it out — on the pairing listener and on the confirmation
//! listener alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::print_stderr,
    reason = "the numbers under attack go to the test log"
)]

mod codes;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use localpair_lab::attack::{self, Flood};
use localpair_lab::pairs::{self, STEP};
use localpair_lab::{Count, Counters, Host, HostSpec, Lab, Usage, lab_or_skip};
use localpair_pairing::code::PairingCode;

fn named(lab: &Lab, name: &str) -> Host {
    lab.add_host(HostSpec::new().name(name)).unwrap()
}

#[test]
fn a_hundred_wrong_proofs_from_ten_addresses_do_not_stop_the_pairing() {
    let lab = lab_or_skip!("attack_proofs");
    let desk = named(&lab, "desk");
    let phone = named(&lab, "phone");
    let attackers: Vec<Host> = (0..10).map(|n| named(&lab, &format!("evil{n}"))).collect();
    let (mut hosting, code) = pairs::start_host(&desk, "pre", "").unwrap();
    let port = PairingCode::parse(&code).unwrap().port;
    let pid = hosting.pid().unwrap();
    let counters = Cost::counters(&desk, &phone, port);
    let before = Usage::of(pid).unwrap();
    let started = Instant::now();
    let refused: usize = std::thread::scope(|s| {
        let handles: Vec<_> = attackers
            .iter()
            .enumerate()
            .map(|(i, attacker)| {
                let code = &code;
                s.spawn(move || {
                    (0..10)
                        .filter(|n| {
                            let wrong = codes::wrong_code(code, (i * 10 + n + 1) as u8);
                            let ran = pairs::join(attacker, &wrong, "[join]\ndeadline_ms = 1000\n")
                                .unwrap();
                            ran.code() == Some(1)
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let wall = started.elapsed();
    eprintln!(
        "MEASURE attack_proofs: 100 wrong proofs from 10 addresses (10 joins each, one after \
         another) in {:.1} s",
        wall.as_secs_f64()
    );
    let cost = Cost::read(&counters, &before, &Usage::of(pid).unwrap(), wall);
    cost.say("attack_proofs", wall);
    assert_eq!(refused, 100, "every wrong attempt is refused");
    // The genuine joiner pairs at its first try: its first dial of the code's address succeeds.
    let joined = pairs::join(&phone, &code, "").unwrap();
    assert_eq!(joined.code(), Some(0), "{}", joined.stderr);
    let json = joined.json();
    eprintln!(
        "MEASURE attack_proofs: the genuine joiner paired after them in {} ms",
        json["elapsed_ms"]
    );
    let dials = json["dials"].as_array().unwrap();
    assert!(dials.iter().all(|d| d["error"].is_null()), "{json}");
    let hosted = hosting.next_json(STEP).unwrap();
    assert_eq!(hosted["peer"]["name"], "phone");
}

/// What the victim received from the attack and sent back, and what it cost it, over `wall`.
struct Cost {
    received: Count,
    sent: Count,
    cpu_share: f64,
    rss_growth_kib: u64,
}

impl Cost {
    /// Counters for the pairing port on `victim`, for every source but `genuine`.
    fn counters(victim: &Host, genuine: &Host, port: u16) -> Counters {
        let counters = Counters::new(victim).unwrap();
        let other = genuine.addr();
        counters
            .inbound("in", &format!("ip saddr != {other} tcp dport {port}"))
            .unwrap();
        counters
            .outbound("out", &format!("ip daddr != {other} tcp sport {port}"))
            .unwrap();
        counters
    }

    fn read(counters: &Counters, before: &Usage, after: &Usage, wall: Duration) -> Self {
        Self {
            received: counters.get("in").unwrap(),
            sent: counters.get("out").unwrap(),
            cpu_share: after.cpu_share_since(before, wall),
            rss_growth_kib: after.rss_growth_kib(before),
        }
    }

    fn say(&self, tag: &str, wall: Duration) {
        let (r, s) = (self.received, self.sent);
        eprintln!(
            "MEASURE {tag}: over {:.1} s the victim received {} packets ({} B/packet) and sent \
             back {} packets ({} B/packet); CPU {:.1} % of one core; RSS +{} KiB",
            wall.as_secs_f64(),
            r.packets,
            r.bytes_per_packet(),
            s.packets,
            s.bytes_per_packet(),
            self.cpu_share * 100.0,
            self.rss_growth_kib
        );
    }

    /// Nothing is amplified: no more packets or bytes go back than came in.
    fn assert_no_amplification(&self) {
        assert!(
            self.sent.packets <= self.received.packets,
            "{:?} out for {:?} in",
            self.sent,
            self.received
        );
        assert!(
            self.sent.bytes <= self.received.bytes,
            "{:?} out for {:?} in",
            self.sent,
            self.received
        );
    }
}

/// Floods the desk's pairing listener from `sources` of the attacker, then pairs the phone.
fn joiner_gets_through(lab: &Lab, tag: &str, sources: u8) {
    let desk = named(lab, "desk");
    let phone = named(lab, "phone");
    let evil = named(lab, "evil");
    let from = if sources == 1 {
        vec![evil.addr()]
    } else {
        attack::add_sources(&evil, 100, sources).unwrap()
    };
    let (mut hosting, code) = pairs::start_host(&desk, "pre", "").unwrap();
    let port = PairingCode::parse(&code).unwrap().port;
    let pid = hosting.pid().unwrap();
    let counters = Cost::counters(&desk, &phone, port);
    let before = Usage::of(pid).unwrap();
    let started = Instant::now();
    let flood = attack::start(
        &evil,
        Flood {
            target: SocketAddr::new(IpAddr::V4(desk.addr()), port),
            sources: from,
            hold: 500,
            rate: 1000,
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // Read before the join: the host exits once paired.
    let wall = started.elapsed();
    let cost = Cost::read(&counters, &before, &Usage::of(pid).unwrap(), wall);
    let joined = pairs::join(&phone, &code, "").unwrap();
    let report = flood.stop();
    eprintln!(
        "MEASURE {tag}: flood of 1,000 connections/s holding 500, from {sources} address(es): {report:?}"
    );
    cost.say(tag, wall);
    cost.assert_no_amplification();
    assert!(
        cost.rss_growth_kib < 16 * 1024,
        "RSS grew {} KiB",
        cost.rss_growth_kib
    );
    assert_eq!(joined.code(), Some(0), "{}", joined.stderr);
    let elapsed = joined.json()["elapsed_ms"].as_f64().unwrap();
    eprintln!("MEASURE {tag}: the genuine joiner paired under the flood in {elapsed:.1} ms");
    assert!(elapsed < 5000.0, "paired after {elapsed} ms");
    assert!(report.opened > 1000, "the flood ran: {report:?}");
    assert_eq!(hosting.next_json(STEP).unwrap()["paired"], true);
}

#[test]
fn the_joiner_gets_through_a_flood_from_one_address() {
    let lab = lab_or_skip!("attack_flood1");
    joiner_gets_through(&lab, "attack_flood1", 1);
}

#[test]
fn the_joiner_gets_through_a_flood_from_fifty_addresses() {
    let lab = lab_or_skip!("attack_flood50");
    joiner_gets_through(&lab, "attack_flood50", 50);
}

#[test]
fn a_flooded_confirmation_listener_still_confirms_our_addresses() {
    let lab = lab_or_skip!("attack_confirm");
    let victim = named(&lab, "victim");
    let evil = named(&lab, "evil");
    let sources = attack::add_sources(&evil, 100, 50).unwrap();
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let ip = IpAddr::V4(victim.addr());
    let checks = victim
        .spawn(move || {
            localpair_lab::runtime().block_on(async move {
                let ctx = localpair_lab::discovery::context("victim", "").unwrap();
                let confirmer = ctx.confirmer().unwrap().clone();
                port_tx.send(confirmer.port()).unwrap();
                let _ = tokio::task::spawn_blocking(move || go_rx.recv()).await;
                let mut results = Vec::new();
                for _ in 0..20 {
                    let started = Instant::now();
                    let ok = confirmer.confirm(ip, 0).await.is_ok();
                    results.push((ok, started.elapsed()));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                results
            })
        })
        .unwrap();
    let port = port_rx.recv_timeout(STEP).unwrap();
    let flood = attack::start(
        &evil,
        Flood {
            target: SocketAddr::new(ip, port),
            sources,
            hold: 500,
            rate: 1000,
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    go_tx.send(()).unwrap();
    let results = checks.join();
    let report = flood.stop();
    eprintln!("confirmation flood {report:?}; checks {results:?}");
    assert!(report.opened > 1000, "the flood ran: {report:?}");
    assert!(results.iter().all(|(ok, _)| *ok), "{results:?}");
}
