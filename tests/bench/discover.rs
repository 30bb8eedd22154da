//! Time to first peer per discoverer, and python-zeroconf's browse→resolved for comparison.

use std::time::Duration;

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
        std::thread::sleep(Duration::from_secs(2));
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
    let lab = Lab::new("bench_zeroconf")?;
    let resident = lab.add_host(HostSpec::new())?;
    let browser = lab.add_host(HostSpec::new())?;
    let config = order("mdns");
    let _running = Localpair::on(&resident)?
        .config(&config)?
        .args(["discover", "--timeout", "3600"])
        .spawn()?;
    std::thread::sleep(Duration::from_secs(2));
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
