//! Benchmarks in the network lab (`tests/bench/`, binary `lab-bench` of `localpair-lab`): builds
//! labs, runs each scenario N times, prints a Markdown table of median / p95 / max.
//!
//! ```text
//! cargo build --release -p localpair-cli -p localpair-lab
//! ./target/release/lab-bench [--runs N] [--hosts H] [SCENARIO...]
//! ```
//! Scenarios: `resolve`, `discover`, `zeroconf`, `mdns-timeline`, `pair`, `short`, `failfast`,
//! `diagnose`, `laptops`, `reconnect`, `throughput`, `scale` (default: all).
//! Needs root, like the lab tests. Times inside `localpair` are read from its JSON (`elapsed_ms`
//! of the chain, `elapsed_ms` of a found peer); "whole process" times include start-up.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark reports on the terminal"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark stops at the first broken run"
)]

mod discover;
mod laptops;
mod pair;
mod paired;
mod resolve;
mod scale;
mod short;
mod table;

use std::time::Duration;

use localpair_lab::{Host, LabError, Localpair};

use crate::table::Table;

/// Runs `localpair --json <args>` to the end; its JSON, or an error carrying stderr.
pub(crate) fn json_run(
    host: &Host,
    config: &str,
    args: &[&str],
) -> Result<serde_json::Value, LabError> {
    Localpair::on(host)?
        .config(config)?
        .args(["--json"])
        .args(args)
        .ok_json(Duration::from_secs(60))
}

fn main() -> std::process::ExitCode {
    // The plain TCP relay the throughput scenario runs inside lab hosts.
    let argv: Vec<String> = std::env::args().collect();
    if let [_, mode, arg] = argv.as_slice()
        && mode.starts_with("--relay-")
    {
        return match paired::relay_main(mode, arg) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("relay: {error}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let mut options = Options {
        runs: 30,
        hosts: 20,
    };
    let mut scenarios = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                options.runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(options.runs);
            }
            "--hosts" => {
                options.hosts = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(options.hosts);
            }
            other => scenarios.push(other.to_owned()),
        }
    }
    let wanted = |name: &str| scenarios.is_empty() || scenarios.iter().any(|s| s == name);
    let mut table = Table::default();
    let mut failures = Vec::new();
    let mut run = |name: &str, f: &dyn Fn(&mut Table, &Options) -> Result<(), LabError>| {
        if wanted(name) {
            eprintln!("== {name}");
            if let Err(e) = f(&mut table, &options) {
                eprintln!("{name} failed: {e}");
                failures.push(name.to_owned());
            }
        }
    };
    run("resolve", &resolve::bench);
    run("discover", &discover::bench);
    run("zeroconf", &discover::zeroconf);
    run("mdns-timeline", &discover::mdns_timeline);
    run("pair", &pair::bench);
    run("short", &short::bench);
    run("failfast", &pair::failfast);
    run("diagnose", &pair::diagnose);
    run("laptops", &laptops::bench);
    run("reconnect", &paired::reconnect);
    run("throughput", &paired::throughput);
    run("scale", &scale::bench);
    println!("{}", table.markdown());
    if failures.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!("failed scenarios: {}", failures.join(", "));
        std::process::ExitCode::FAILURE
    }
}

/// Knobs from the command line.
pub(crate) struct Options {
    /// Repetitions per measurement.
    pub(crate) runs: usize,
    /// Hosts in the scale run.
    pub(crate) hosts: usize,
}
