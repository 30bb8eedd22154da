//! Benchmarks in the network lab: builds a lab, runs each scenario N times, prints a Markdown table
//! of median / p95 / max.
//!
//! ```text
//! cargo build --release -p localpair-cli && cargo run --release -p localpair-lab --bin lab-bench -- [--runs N] [SCENARIO...]
//! ```
//! Scenarios: `resolve` (default: all). Needs root, like the lab tests.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark reports on the terminal"
)]

use std::time::{Duration, Instant};

use localpair_lab::{HostSpec, Lab, LabError, Localpair};

/// Median, p95 and max of a sample, in milliseconds.
struct Stats {
    median: f64,
    p95: f64,
    max: f64,
    runs: usize,
}

fn stats(mut samples: Vec<f64>) -> Stats {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let rank = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(rank).copied().unwrap_or(f64::NAN)
    };
    Stats {
        median: at(0.5),
        p95: at(0.95),
        max: samples.last().copied().unwrap_or(f64::NAN),
        runs: samples.len(),
    }
}

struct Table {
    rows: Vec<(String, Stats)>,
}

impl Table {
    fn add(&mut self, name: &str, samples: Vec<f64>) {
        let s = stats(samples);
        eprintln!(
            "{name}: median {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} runs)",
            s.median, s.p95, s.max, s.runs
        );
        self.rows.push((name.to_owned(), s));
    }

    fn markdown(&self) -> String {
        let mut out = String::from(
            "| measurement | runs | median ms | p95 ms | max ms |\n|---|---:|---:|---:|---:|\n",
        );
        for (name, s) in &self.rows {
            out.push_str(&format!(
                "| {name} | {} | {:.1} | {:.1} | {:.1} |\n",
                s.runs, s.median, s.p95, s.max
            ));
        }
        out
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `localpair --json resolve` with `config`; returns (chain elapsed_ms, process wall ms).
fn resolve_once(host: &localpair_lab::Host, config: &str) -> Result<(f64, f64), LabError> {
    let started = Instant::now();
    let ran = Localpair::on(host)?
        .config(config)?
        .args(["--json", "resolve"])
        .run(Duration::from_secs(30))?;
    let wall = ms(started.elapsed());
    if ran.code() != Some(0) {
        return Err(LabError::Timeout(format!("resolve failed: {}", ran.stderr)));
    }
    let chain = ran.json()["elapsed_ms"].as_f64().unwrap_or(f64::NAN);
    Ok((chain, wall))
}

fn bench_resolve(table: &mut Table, runs: usize) -> Result<(), LabError> {
    let lab = Lab::new("bench_resolve")?;
    let routed = lab.add_host(HostSpec::new())?;
    let unrouted = lab.add_host(HostSpec::new().default_route(false))?;
    for (label, host, config) in [
        (
            "resolve: outbound-route alone",
            &routed,
            "[resolve]\norder = [\"outbound-route\"]\n",
        ),
        (
            "resolve: chain with fall-through (no default route → interface-sweep)",
            &unrouted,
            "",
        ),
        (
            "resolve: interface-sweep alone",
            &routed,
            "[resolve]\norder = [\"interface-sweep\"]\n",
        ),
    ] {
        let mut chain = Vec::new();
        let mut wall = Vec::new();
        for _ in 0..runs {
            let (c, w) = resolve_once(host, config)?;
            chain.push(c);
            wall.push(w);
        }
        table.add(&format!("{label} — chain"), chain);
        table.add(&format!("{label} — whole process"), wall);
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let mut runs = 30;
    let mut scenarios = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).unwrap_or(runs),
            other => scenarios.push(other.to_owned()),
        }
    }
    let all = scenarios.is_empty();
    let mut table = Table { rows: Vec::new() };
    let mut result = Ok(());
    if all || scenarios.iter().any(|s| s == "resolve") {
        result = result.and_then(|()| bench_resolve(&mut table, runs));
    }
    println!("{}", table.markdown());
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
