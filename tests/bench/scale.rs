//! H hosts discovering each other all at once: completion time, then packets per second per host
//! once discovery has settled.

use std::time::{Duration, Instant};

use localpair_lab::stats::ms;
use localpair_lab::{HostSpec, Lab, LabError, Localpair};

use crate::Options;
use crate::table::Table;

/// After the start-up bursts and back-off (0, 0.1, 0.5, 1.5 s, then 2 s, 4 s, 5 s …).
const SETTLE: Duration = Duration::from_secs(20);
const WINDOW: Duration = Duration::from_secs(30);

fn tx_packets(host: &localpair_lab::Host) -> Result<u64, LabError> {
    let text = host.exec(["cat", "/sys/class/net/eth0/statistics/tx_packets"])?;
    Ok(text.trim().parse().unwrap_or(0))
}

/// Linux keeps one neighbour table (ARP / NDP) for all network namespaces, with one limit
/// (`gc_thresh3`, 1024 by default). Every lab host talks to every other one (observation reports),
/// so 50 hosts need ~2,500 entries where 50 real devices need 49 each; past the limit the kernel
/// refuses new entries (sends fail with EINVAL). The scale run raises the limits while it runs and
/// puts them back afterwards.
struct NeighbourLimits {
    saved: Vec<(String, String)>,
}

impl NeighbourLimits {
    fn raise(hosts: usize) -> Self {
        let needed = (hosts * hosts * 2).max(1024);
        let mut saved = Vec::new();
        for family in ["ipv4", "ipv6"] {
            for (knob, value) in [
                ("gc_thresh1", needed / 4),
                ("gc_thresh2", needed / 2),
                ("gc_thresh3", needed),
            ] {
                let path = format!("/proc/sys/net/{family}/neigh/default/{knob}");
                let Ok(old) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let old = old.trim().to_owned();
                if old.parse::<usize>().is_ok_and(|o| o >= value) {
                    continue;
                }
                if std::fs::write(&path, value.to_string()).is_ok() {
                    eprintln!("(raised {path} from {old} to {value} for the run)");
                    saved.push((path, old));
                }
            }
        }
        Self { saved }
    }
}

impl Drop for NeighbourLimits {
    fn drop(&mut self) {
        for (path, old) in self.saved.drain(..).rev() {
            let _ = std::fs::write(&path, old);
        }
    }
}

pub(crate) fn bench(table: &mut Table, options: &Options) -> Result<(), LabError> {
    let count = options.hosts.max(2);
    let _limits = NeighbourLimits::raise(count);
    let lab = Lab::new("bench_scale")?;
    let hosts: Vec<_> = (0..count)
        .map(|i| {
            // Past .254 (the lab gateway) the third octet changes; a /16 keeps one subnet.
            let addr = format!("10.77.{}.{}/16", 1 + i / 200, 1 + i % 200);
            lab.add_host(HostSpec::new().addr(&addr))
        })
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    // A fixed window for everyone: a host that stopped at its count would stop announcing
    // before a slower peer had heard it.
    let runs: Vec<_> = hosts
        .iter()
        .map(|h| {
            Localpair::on(h)?
                .args(["--json", "discover", "--timeout", "30"])
                .start()
        })
        .collect::<Result<_, _>>()?;
    // The last peer's sighting time is when that host's view was complete.
    let mut complete = Vec::new();
    for run in runs {
        let report = run.next_json(Duration::from_secs(150))?;
        let last = report["peers"]
            .as_array()
            .map(|peers| {
                peers
                    .iter()
                    .filter_map(|p| p["elapsed_ms"].as_f64())
                    .fold(0.0, f64::max)
            })
            .unwrap_or(f64::NAN);
        let found = report["peers"].as_array().map_or(0, Vec::len);
        if found != count - 1 {
            return Err(LabError::Timeout(format!(
                "a host found {found} of {} peers: {report}",
                count - 1
            )));
        }
        complete.push(last);
        run.finish(Duration::from_secs(10))?;
    }
    let ran_for = ms(started.elapsed());
    let everyone = complete.iter().copied().fold(0.0, f64::max);
    table.times(
        &format!("scale: {count} hosts, each host's view complete (all-to-all)"),
        complete,
    );
    table.value(
        &format!(
            "scale: {count} hosts, until every host had all {} peers (slowest view)",
            count - 1
        ),
        1,
        everyone,
        "ms",
    );
    eprintln!("(the {count} discovery processes ran {ran_for:.0} ms in all)");

    // Steady state: everyone keeps running; count what each host sends.
    let resident: Vec<_> = hosts
        .iter()
        .map(|h| {
            Localpair::on(h)?
                .args(["discover", "--timeout", "3600"])
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    std::thread::sleep(SETTLE);
    let before: Vec<u64> = hosts.iter().map(tx_packets).collect::<Result<_, _>>()?;
    std::thread::sleep(WINDOW);
    let after: Vec<u64> = hosts.iter().map(tx_packets).collect::<Result<_, _>>()?;
    drop(resident);
    let rates: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.saturating_sub(*b)) as f64 / WINDOW.as_secs_f64())
        .collect();
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    let max = rates.iter().copied().fold(0.0, f64::max);
    table.value(
        &format!("scale: {count} hosts, steady state packets/s sent per host (mean)"),
        count,
        mean,
        "pkt/s",
    );
    table.value(
        &format!("scale: {count} hosts, steady state packets/s sent per host (max)"),
        count,
        max,
        "pkt/s",
    );
    Ok(())
}
