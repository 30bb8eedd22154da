//! Issue 11, items 5 and 6, in the lab: an attacker on the link forges announcements (any key,
//! any source address, any confirm port) and must neither make our devices connect to a third
//! party (reflection) nor grow their memory without bound, while the genuine discovery goes on.
//! Numbers are printed as `MEASURE` lines (`--nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod attack_util;
mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use attack_util::{Spoofer, announcement, key, link_local, overhear};
use common::{discover, if_index};
use localpair_lab::{Count, Counters, Host, HostSpec, Localpair, Running, Usage, lab_or_skip};
use localpair_udp_multicast::wire::{Kind, Packet};

/// The third party the attacker wants connections sent to.
const THIRD_PARTY: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 50);
/// Its port.
const TARGET_PORT: u16 = 7777;
/// Discovery with udp-multicast alone: the reflection test counts the connections it makes.
const UDP_ONLY: &str = "[discover]\norder = [\"udp-multicast\"]\n";

/// Runs `f(spoofer, n)` for `n` in `0..count`, paced evenly over `over`, on `host`; returns the
/// datagrams sent.
fn paced(
    host: &Host,
    count: u32,
    over: Duration,
    f: impl Fn(&Spoofer, u32) -> usize + Send + 'static,
) -> usize {
    host.run(move || {
        let spoofer = Spoofer::new(if_index("eth0"));
        let started = Instant::now();
        let mut sent = 0;
        for n in 0..count {
            let due = started + over.mul_f64(f64::from(n) / f64::from(count));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            sent += f(&spoofer, n);
        }
        sent
    })
    .unwrap()
}

/// Connection attempts (TCP SYNs) counted on a victim: to anywhere, and to the third party.
struct Syns {
    counters: Counters,
}

impl Syns {
    fn on(victim: &Host) -> Self {
        let counters = Counters::new(victim).unwrap();
        counters
            .outbound("syn", "tcp flags & (syn | ack) == syn")
            .unwrap();
        counters
            .outbound(
                "syn-third",
                &format!("ip daddr {THIRD_PARTY} tcp flags & (syn | ack) == syn"),
            )
            .unwrap();
        counters.outbound("udp-out", "udp dport 19536").unwrap();
        counters
            .inbound(
                "forged-in",
                &format!("ip saddr {THIRD_PARTY} udp dport 19536"),
            )
            .unwrap();
        Self { counters }
    }

    fn read(&self) -> [Count; 4] {
        ["syn", "syn-third", "udp-out", "forged-in"].map(|n| self.counters.get(n).unwrap())
    }
}

fn delta(after: [Count; 4], before: [Count; 4]) -> [Count; 4] {
    std::array::from_fn(|i| Count {
        packets: after[i].packets - before[i].packets,
        bytes: after[i].bytes - before[i].bytes,
    })
}

#[test]
fn forged_announcements_make_no_device_a_reflector() {
    let lab = lab_or_skip!("reflector");
    let victims: Vec<Host> = (0..2)
        .map(|i| {
            lab.add_host(HostSpec::new().name(&format!("victim-{i}")))
                .unwrap()
        })
        .collect();
    let genuine = lab.add_host(HostSpec::new().name("genuine")).unwrap();
    let latecomer = lab.add_host(HostSpec::new().name("latecomer")).unwrap();
    let attacker = lab.add_host(HostSpec::new().name("attacker")).unwrap();
    let third = lab
        .add_host(
            HostSpec::new()
                .name("third")
                .addr(&format!("{THIRD_PARTY}/24")),
        )
        .unwrap();
    let third_syns = Counters::new(&third).unwrap();
    for v in &victims {
        third_syns
            .inbound(
                &v.addr().to_string(),
                &format!("ip saddr {} tcp flags & (syn | ack) == syn", v.addr()),
            )
            .unwrap();
    }

    // The victims run the real binary, each its own process (so its memory and CPU time are
    // its own); the genuine device and the latecomer run in this process.
    let window = Duration::from_secs(26);
    let mut runs: Vec<Running> = victims
        .iter()
        .map(|h| discover_process(h, window.as_secs(), UDP_ONLY))
        .collect();
    let pids: Vec<u32> = runs.iter_mut().map(|run| run.pid().unwrap()).collect();
    let g = discover(&genuine, "genuine", window, "");
    // Let the genuine reports (each victim to the genuine peer and back) happen first.
    std::thread::sleep(Duration::from_secs(3));
    let syns: Vec<Syns> = victims.iter().map(Syns::on).collect();
    let usage_before: Vec<Usage> = pids.iter().map(|p| Usage::of(*p).unwrap()).collect();
    let attack_started = Instant::now();
    let read = |s: &[Syns]| s.iter().map(Syns::read).collect::<Vec<_>>();

    // 1. One packet per forged key, each naming the third party: 400 a second for 5 s.
    let singles = Duration::from_secs(5);
    let before = read(&syns);
    let sent = paced(&attacker, 2000, singles, |s, n| {
        usize::from(s.send_v4(THIRD_PARTY, &announcement(key(n), TARGET_PORT)))
    });
    std::thread::sleep(Duration::from_millis(500));
    let after = read(&syns);
    for (i, (a, b)) in after.iter().zip(&before).enumerate() {
        let [syn, to_third, udp_out, forged_in] = delta(*a, *b);
        eprintln!(
            "MEASURE reflector singles: {sent} forged announcements in (400/s for {singles:?}; \
             {} of {} B reached victim-{i}); victim-{i} opened {} connections ({} to the third \
             party) and multicast {} answers of {} B",
            forged_in.packets,
            forged_in.bytes_per_packet(),
            syn.packets,
            to_third.packets,
            udp_out.packets,
            udp_out.bytes_per_packet()
        );
        assert!(
            forged_in.packets > 1000,
            "the flood did not arrive: {forged_in:?}"
        );
        assert_eq!(
            to_third.packets, 0,
            "one forged packet made victim-{i} connect"
        );
        assert_eq!(syn.packets, 0, "victim-{i} connected somewhere");
    }

    // 2. Pairs (every key heard twice from its source), all naming the same target: 100 keys
    // a second for 6 s. One report per target per 30 s at most.
    let pairs = Duration::from_secs(6);
    let before = read(&syns);
    let sent = paced(&attacker, 600, pairs, |s, n| {
        let packet = announcement(key(10_000 + n), TARGET_PORT);
        usize::from(s.send_v4(THIRD_PARTY, &packet)) + usize::from(s.send_v4(THIRD_PARTY, &packet))
    });
    std::thread::sleep(Duration::from_millis(500));
    let after = read(&syns);
    for (i, (a, b)) in after.iter().zip(&before).enumerate() {
        let [syn, to_third, _, forged_in] = delta(*a, *b);
        eprintln!(
            "MEASURE reflector pairs, one target: {sent} forged announcements in (200/s for \
             {pairs:?}; {} reached victim-{i}); victim-{i} opened {} connections, {} to {}:{}",
            forged_in.packets, syn.packets, to_third.packets, THIRD_PARTY, TARGET_PORT
        );
        assert!(
            to_third.packets <= 1,
            "{} connections to one target",
            to_third.packets
        );
    }

    // 3. Pairs naming a new target each (the third party's ports 20000..20600), while a
    // genuine device starts: one connection per second per device at most, in total.
    let late = discover(&latecomer, "latecomer", Duration::from_secs(5), "");
    let many = Duration::from_secs(6);
    let before = read(&syns);
    let sent = paced(&attacker, 600, many, |s, n| {
        let packet = announcement(key(20_000 + n), 20_000 + n as u16);
        usize::from(s.send_v4(THIRD_PARTY, &packet)) + usize::from(s.send_v4(THIRD_PARTY, &packet))
    });
    std::thread::sleep(Duration::from_millis(500));
    let after = read(&syns);
    for (i, (a, b)) in after.iter().zip(&before).enumerate() {
        let [syn, to_third, _, forged_in] = delta(*a, *b);
        let rate = syn.packets as f64 / (many.as_secs_f64() + 0.5);
        eprintln!(
            "MEASURE reflector pairs, new target each: {sent} forged announcements in (200/s \
             for {many:?}; {} reached victim-{i}); victim-{i} opened {} connections ({rate:.2}/s; \
             {} to the third party, SYN {} B)",
            forged_in.packets,
            syn.packets,
            to_third.packets,
            to_third.bytes_per_packet()
        );
        // One a second, plus one for the window's edges.
        assert!(
            syn.packets <= many.as_secs() + 1,
            "victim-{i}: {} connections in {many:?}",
            syn.packets
        );
    }
    let wall = attack_started.elapsed();
    for (i, (v, pid)) in victims.iter().zip(&pids).enumerate() {
        let total = third_syns.get(&v.addr().to_string()).unwrap().packets;
        let now = Usage::of(*pid).unwrap();
        let (grown, cpu) = (
            now.rss_growth_kib(&usage_before[i]),
            now.cpu_share_since(&usage_before[i], wall),
        );
        eprintln!(
            "MEASURE reflector: the third party saw {total} connection attempts from victim-{i}; \
             over the {wall:.1?} of attacks its RSS grew by {grown} KiB, CPU {:.1}% of one core",
            cpu * 100.0
        );
        assert!(grown < 16 * 1024, "victim-{i}: RSS grew by {grown} KiB");
        assert!(cpu < 0.20, "victim-{i}: CPU {:.1}%", cpu * 100.0);
    }

    let late = late.join();
    let _ = g.join();
    for (i, run) in runs.into_iter().enumerate() {
        let report = report_of(run);
        assert!(
            peer_named(&report, "genuine").is_some(),
            "victim-{i} lost the genuine peer"
        );
        let found = peer_named(&report, "latecomer")
            .unwrap_or_else(|| panic!("victim-{i} missed the device started under attack"));
        let at = format!("{}:", latecomer.addr());
        let addrs = found["addrs"].as_array().unwrap();
        assert!(
            addrs.iter().any(|a| a.as_str().unwrap().starts_with(&at)),
            "{found}"
        );
        let peers = report["peers"].as_array().unwrap().len();
        assert!(peers <= localpair_core::chain::MAX_PEERS);
        eprintln!("MEASURE reflector: victim-{i} kept {peers} peers");
    }
    let late_found: Vec<_> = (0..victims.len())
        .filter_map(|i| {
            let name = format!("victim-{i}");
            late.peers
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.found_after)
        })
        .collect();
    assert_eq!(
        late_found.len(),
        victims.len(),
        "the latecomer missed a victim"
    );
    eprintln!(
        "MEASURE reflector: the device started under attack found the victims after {late_found:?}"
    );
}

/// `localpair --json discover --timeout <seconds>` on `host`, with settings `toml` (none when
/// empty), as a process of its own.
fn discover_process(host: &Host, seconds: u64, toml: &str) -> Running {
    let mut command = Localpair::on(host).unwrap();
    if !toml.is_empty() {
        command = command.config(toml).unwrap();
    }
    command
        .args(["--json", "discover", "--timeout", &seconds.to_string()])
        .start()
        .unwrap()
}

/// The one JSON object a finished `discover` printed.
fn report_of(run: Running) -> serde_json::Value {
    let line = run.next_line(Duration::from_secs(30)).unwrap();
    let (status, stderr) = run.finish(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "discover failed: {stderr}");
    serde_json::from_str(&line).unwrap()
}

fn peer_named<'a>(report: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    report["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
}

#[test]
fn a_minute_of_forged_identities_and_spoofed_addresses_is_bounded() {
    let lab = lab_or_skip!("flood_minute");
    let victim = lab.add_host(HostSpec::new().name("victim")).unwrap();
    let genuine = lab.add_host(HostSpec::new().name("genuine")).unwrap();
    let latecomer = lab.add_host(HostSpec::new().name("latecomer")).unwrap();
    let attacker = lab.add_host(HostSpec::new().name("attacker")).unwrap();
    let flood_for = Duration::from_secs(60);

    let v_started = Instant::now();
    let mut v = discover_process(&victim, 80, "");
    let g = discover_process(&genuine, 80, "");
    let pid = v.pid().unwrap();
    // What any device on the link hears: the genuine device's key and listener port.
    let local = attacker.addr();
    let (g_key, g_port) = attacker
        .run(move || overhear(local, "genuine", Duration::from_secs(10)))
        .unwrap();
    let counters = Counters::new(&victim).unwrap();
    counters.inbound("in", "udp dport 19536").unwrap();
    counters
        .outbound("syn", "tcp flags & (syn | ack) == syn")
        .unwrap();
    counters.outbound("udp-out", "udp dport 19536").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let before = Usage::of(pid).unwrap();
    let started = Instant::now();

    // 10,000 forged identities (each announced twice, from spoofed sources across the subnet,
    // so they pass the report gate too) and 10,000 spoofed link-local sources announcing the
    // genuine device's key: 30,000 datagrams, 500 a second for a minute.
    let flood = {
        std::thread::spawn(move || {
            let as_genuine = Packet::new(Kind::Announce, g_key, g_port, "genuine").encode();
            paced(&attacker, 30_000, flood_for, move |s, n| {
                let (k, step) = (n / 3, n % 3);
                if step < 2 {
                    let source = Ipv4Addr::new(10, 77, 0, 100 + (k % 100) as u8);
                    usize::from(s.send_v4(source, &announcement(key(k), 9)))
                } else {
                    usize::from(s.send_v6(link_local(k), &as_genuine))
                }
            })
        })
    };
    let mut samples = Vec::new();
    let mut late = None;
    while started.elapsed() < flood_for {
        std::thread::sleep(Duration::from_secs(5));
        let now = Usage::of(pid).unwrap();
        samples.push((
            started.elapsed().as_secs(),
            now.rss_kib.saturating_sub(before.rss_kib),
        ));
        if late.is_none() && started.elapsed() >= flood_for / 2 {
            late = Some((Instant::now(), discover_process(&latecomer, 15, "")));
        }
    }
    let sent = flood.join().unwrap();
    let wall = started.elapsed();
    let after = Usage::of(pid).unwrap();
    let grown_kib = after.rss_growth_kib(&before);
    let cpu = after.cpu_share_since(&before, wall);
    let [inbound, syn, udp_out] = ["in", "syn", "udp-out"].map(|n| counters.get(n).unwrap());
    eprintln!(
        "MEASURE flood: {sent} forged datagrams in {wall:.1?} ({:.0}/s; the victim received \
         {} of {} B); victim sent {} multicast packets of {} B and opened {} connections; RSS \
         {} KiB -> {} KiB (+{grown_kib} KiB; every 5 s: {samples:?}); CPU {:.1}% of one core",
        sent as f64 / wall.as_secs_f64(),
        inbound.packets,
        inbound.bytes_per_packet(),
        udp_out.packets,
        udp_out.bytes_per_packet(),
        syn.packets,
        before.rss_kib,
        after.rss_kib,
        cpu * 100.0
    );
    assert!(sent > 29_000, "the flood itself failed: {sent}");
    assert!(
        inbound.packets > 25_000,
        "the flood did not arrive: {inbound:?}"
    );
    assert!(grown_kib < 16 * 1024, "RSS grew by {grown_kib} KiB");
    assert!(cpu < 0.20, "CPU {:.1}% of one core", cpu * 100.0);
    assert!(
        syn.packets <= wall.as_secs() + 1,
        "{} connections",
        syn.packets
    );

    let (late_started, late) = late.unwrap();
    let late_report = report_of(late);
    let victim_seen = peer_named(&late_report, "victim")
        .unwrap_or_else(|| panic!("the latecomer missed the victim: {late_report:#}"));
    eprintln!(
        "MEASURE flood: a device started {:?} into the flood found the victim after {} ms",
        late_started.duration_since(started),
        victim_seen["elapsed_ms"]
    );
    let report = report_of(v);
    let _ = report_of(g);
    let peers = report["peers"].as_array().unwrap();
    assert!(
        peers.len() <= localpair_core::chain::MAX_PEERS,
        "{} peers",
        peers.len()
    );
    let found = peer_named(&report, "genuine").expect("the genuine device was lost");
    let addrs = found["addrs"].as_array().unwrap();
    assert!(addrs.len() <= localpair_core::peer::MAX_ADDRS);
    assert!(
        addrs.iter().any(|a| a
            .as_str()
            .unwrap()
            .starts_with(&format!("{}:", genuine.addr()))),
        "the genuine device's own address is gone: {found}"
    );
    let late_seen = peer_named(&report, "latecomer").expect("the latecomer was not found");
    // Both clocks start a few ms apart (process start), so this is good to a few ms.
    let late_after_ms = (late_seen["elapsed_ms"].as_f64().unwrap()
        - late_started.duration_since(v_started).as_secs_f64() * 1000.0)
        .max(0.0);
    eprintln!(
        "MEASURE flood: the victim found the device started under attack within \
         {late_after_ms:.0} ms (+- a few ms) of its start"
    );
    eprintln!(
        "MEASURE flood: the victim kept {} peers; the genuine device with {} addresses",
        peers.len(),
        addrs.len()
    );
}
