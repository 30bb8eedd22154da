//! Time to first peer per discoverer, and python-zeroconf's browse→resolved for comparison.

use std::time::Duration;

use localpair_lab::pcap::{self, Datagram};
use localpair_lab::stats::ms;
use localpair_lab::{ChildGuard, Host, HostSpec, Lab, LabError, Localpair};

use crate::table::Table;
use crate::{Options, json_run};

fn order(strategy: &str) -> String {
    match strategy {
        "default chain" => String::new(),
        name => format!("[discover]\norder = [\"{name}\"]\n"),
    }
}

/// How long a resident peer is left to settle before the first newcomer: probing (about 0.75 s)
/// and its two announcements 1.1 s apart, plus the one-second window after the second in which
/// it multicasts none of those records again (RFC 6762 section 6). Less, and the first
/// newcomer's answer is held back a second.
const SETTLE: Duration = Duration::from_secs(3);

/// Start-up of a resident peer plus the mDNS responder's once-a-second answer limit: newcomers
/// spaced closer than this wait a second for their answer (RFC 6762 section 6).
const SPACING: Duration = Duration::from_millis(1500);

fn first_peer_ms(report: &serde_json::Value) -> f64 {
    report["peers"][0]["elapsed_ms"]
        .as_f64()
        .unwrap_or(f64::NAN)
}

pub(crate) fn bench(table: &mut Table, options: &Options) -> Result<(), LabError> {
    for strategy in ["udp-multicast", "mdns", "default chain"] {
        let lab = Lab::new("bench_discover")?;
        let resident = lab.add_host(HostSpec::new())?;
        let newcomer = lab.add_host(HostSpec::new())?;
        let config = order(strategy);
        // Peer already running.
        let running = Localpair::on(&resident)?
            .config(&config)?
            .args(["discover", "--timeout", "3600"])
            .spawn()?;
        std::thread::sleep(SETTLE);
        let mut already = Vec::new();
        for _ in 0..options.runs {
            let report = json_run(
                &newcomer,
                &config,
                &["discover", "--count", "1", "--timeout", "10"],
            )?;
            already.push(first_peer_ms(&report));
            std::thread::sleep(SPACING);
        }
        drop(running);
        table.times(
            &format!("first peer, {strategy}: peer already running"),
            already,
        );

        // Both starting together.
        let mut together = Vec::new();
        for _ in 0..options.runs {
            let a = start(&resident, &config)?;
            let b = start(&newcomer, &config)?;
            for child in [a, b] {
                let out = child.wait_with_output_timeout(Duration::from_secs(30))?;
                let report: serde_json::Value =
                    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
                together.push(first_peer_ms(&report));
            }
            std::thread::sleep(SPACING);
        }
        table.times(
            &format!("first peer, {strategy}: both starting together"),
            together,
        );
    }
    Ok(())
}

/// A fixed window rather than `--count 1`: the first to find the other would exit, and with it
/// stop answering the other.
fn start(host: &Host, config: &str) -> Result<ChildGuard, LabError> {
    Localpair::on(host)?
        .config(config)?
        .args(["--json", "discover", "--timeout", "4"])
        .spawn()
}

/// Our mDNS browse→first peer against python-zeroconf's browse→resolved, same responder.
pub(crate) fn zeroconf(table: &mut Table, options: &Options) -> Result<(), LabError> {
    if !localpair_lab::zeroconf::available() {
        eprintln!("zeroconf: /usr/bin/python3 cannot import zeroconf; skipped");
        return Ok(());
    }
    let (_lab, browser, _running) = mdns_resident("bench_zeroconf")?;
    let config = order("mdns");
    let mut ours = Vec::new();
    for _ in 0..options.runs {
        let report = json_run(
            &browser,
            &config,
            &["discover", "--count", "1", "--timeout", "10"],
        )?;
        ours.push(first_peer_ms(&report));
        std::thread::sleep(SPACING);
    }
    let theirs: Vec<f64> = localpair_lab::zeroconf::browse_times(&browser, options.runs)?
        .into_iter()
        .flatten()
        .map(ms)
        .collect();
    let ours = table.times("mDNS browse→peer: localpair (mdns only)", ours);
    let theirs = table.times("mDNS browse→resolved: python-zeroconf 0.47", theirs);
    let ratio = ours.median / theirs.median;
    table.value(
        "mDNS ratio ours/python-zeroconf (medians)",
        options.runs,
        ratio,
        "×",
    );
    Ok(())
}

/// Where a newcomer's time to its first mDNS peer goes, run by run: `localpair discover` (only
/// mdns, debug log) in one host against a resident peer in another, with tcpdump on the
/// newcomer's interface. Log lines and packets carry the same wall clock.
pub(crate) fn mdns_timeline(table: &mut Table, options: &Options) -> Result<(), LabError> {
    let (_lab, newcomer, _running) = mdns_resident("bench_mdns_timeline")?;
    let config = order("mdns");
    let mut us = vec![std::net::IpAddr::from(newcomer.addr())];
    us.extend(newcomer.link_local_v6()?.map(std::net::IpAddr::from));
    let mut phases: [Vec<f64>; 6] = Default::default();
    for _ in 0..options.runs {
        let capture = newcomer.capture(newcomer.iface())?;
        let ran = Localpair::on(&newcomer)?
            .config(&config)?
            .env("RUST_LOG", "localpair_mdns=debug")
            .env("NO_COLOR", "1")
            .args(["--json", "discover", "--count", "1", "--timeout", "10"])
            .run(Duration::from_secs(60))?;
        let pcap = capture.stop()?;
        let report = ran.json();
        let at = |needle: &str| {
            ran.stderr
                .lines()
                .find(|l| l.contains(needle))
                .and_then(log_time)
        };
        let packets: Vec<(f64, bool, Datagram)> = pcap::udp_datagrams(&pcap)
            .into_iter()
            .filter(|d| d.dst.port() == 5353)
            .map(|d| (secs_of_day(d.at), us.contains(&d.src.ip()), d))
            .collect();
        // Ours: the first query that is not a probe (probes carry records in the authority section).
        let query = packets
            .iter()
            .find(|(_, ours, d)| *ours && !d.is_dns_response() && d.dns_authorities() == 0)
            .map(|(at, ..)| *at);
        let answer = query.and_then(|q| {
            packets
                .iter()
                .find(|(at, ours, d)| !ours && d.is_dns_response() && *at >= q)
                .map(|(at, ..)| *at)
        });
        let (Some(session), Some(daemon), Some(query), Some(answer), Some(peer)) = (
            at("mdns: session starting"),
            at("mdns: daemon started"),
            query,
            answer,
            at("mdns: peer resolved"),
        ) else {
            eprintln!("mdns-timeline: incomplete run:\n{}", ran.stderr);
            continue;
        };
        let ms = |from: f64, to: f64| (to - from) * 1000.0;
        let run = [
            ms(session, daemon),
            ms(daemon, query),
            ms(query, answer),
            ms(answer, peer),
            ms(session, peer),
            first_peer_ms(&report),
        ];
        eprintln!("mdns-timeline run (ms): {run:.1?}");
        for (phase, value) in phases.iter_mut().zip(run) {
            phase.push(value);
        }
        std::thread::sleep(SPACING);
    }
    for (name, samples) in [
        "mdns timeline: session start → daemon started",
        "mdns timeline: daemon started → first query on the wire",
        "mdns timeline: query → resident's answer on the wire",
        "mdns timeline: answer → peer resolved (log)",
        "mdns timeline: session start → peer resolved",
        "mdns timeline: chain's first peer (elapsed_ms)",
    ]
    .into_iter()
    .zip(phases)
    {
        table.times(name, samples);
    }
    Ok(())
}

/// Seconds since midnight (UTC), the clock of [`log_time`].
fn secs_of_day(at: std::time::SystemTime) -> f64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(f64::NAN, |d| {
            (d.as_secs() % 86_400) as f64 + f64::from(d.subsec_micros()) / 1e6
        })
}

/// Seconds since midnight (UTC) of a log line's RFC 3339 timestamp.
fn log_time(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?;
    let time = stamp.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Two hosts, the first running `discover` with only mDNS, settled: the resident responder an
/// mDNS measurement browses for from the second, which is returned.
fn mdns_resident(name: &str) -> Result<(Lab, Host, ChildGuard), LabError> {
    let lab = Lab::new(name)?;
    let resident = lab.add_host(HostSpec::new())?;
    let other = lab.add_host(HostSpec::new())?;
    let running = Localpair::on(&resident)?
        .config(&order("mdns"))?
        .args(["discover", "--timeout", "3600"])
        .spawn()?;
    std::thread::sleep(SETTLE);
    Ok((lab, other, running))
}
