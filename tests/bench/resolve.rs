//! `localpair resolve` per strategy and for the chain with fall-through.

use std::time::Instant;

use localpair_lab::stats::ms;
use localpair_lab::{HostSpec, Lab, LabError};

use crate::table::Table;
use crate::{Options, json_run};

pub(crate) fn bench(table: &mut Table, options: &Options) -> Result<(), LabError> {
    let lab = Lab::new("bench_resolve")?;
    let routed = lab.add_host(HostSpec::new())?;
    let unrouted = lab.add_host(HostSpec::new().default_route(false))?;
    let peer = lab.add_host(HostSpec::new())?;
    // A peer that hears us, for peer-observed.
    let _listener = localpair_lab::Localpair::on(&peer)?
        .args(["discover", "--timeout", "3600"])
        .spawn()?;
    for (label, host, config) in [
        (
            "resolve: outbound-route",
            &routed,
            "[resolve]\norder = [\"outbound-route\"]\n",
        ),
        (
            "resolve: interface-sweep",
            &routed,
            "[resolve]\norder = [\"interface-sweep\"]\n",
        ),
        (
            "resolve: peer-observed (peer running)",
            &routed,
            // A peer reports to one address and port once per 30 s at most (a reflection bound):
            // each run listens on a port of its own, like a fresh device, rather than waiting.
            "[resolve]\norder = [\"peer-observed\"]\n[confirm]\nport = 0\n",
        ),
        (
            "resolve: default chain, fall-through (no default route)",
            &unrouted,
            "",
        ),
    ] {
        let mut chain = Vec::new();
        let mut wall = Vec::new();
        for _ in 0..options.runs {
            if config.contains("peer-observed") {
                // A peer sends one observation report a second in all (a reflection bound):
                // runs back to back would measure that budget, not the time a new device waits.
                std::thread::sleep(std::time::Duration::from_millis(1100));
            }
            let started = Instant::now();
            let report = json_run(host, config, &["resolve"])?;
            wall.push(ms(started.elapsed()));
            chain.push(report["elapsed_ms"].as_f64().unwrap_or(f64::NAN));
        }
        table.times(&format!("{label} — chain"), chain);
        table.times(&format!("{label} — whole process"), wall);
    }
    Ok(())
}
