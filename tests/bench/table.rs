//! The Markdown table the benchmark prints: one row per measurement.

use localpair_lab::stats::Summary;

/// Collected rows.
#[derive(Default)]
pub(crate) struct Table {
    rows: Vec<(String, String)>,
}

impl Table {
    /// A row of timings in milliseconds; returns their summary.
    pub(crate) fn times(&mut self, name: &str, samples: Vec<f64>) -> Summary {
        let summary = Summary::new(samples);
        let Summary {
            runs,
            median,
            p95,
            max,
            ..
        } = summary;
        eprintln!("{name}: median {median:.1} ms, p95 {p95:.1} ms, max {max:.1} ms ({runs} runs)");
        self.rows.push((
            name.to_owned(),
            format!("| {runs} | {median:.1} | {p95:.1} | {max:.1} |"),
        ));
        summary
    }

    /// A row holding one value with its unit.
    pub(crate) fn value(&mut self, name: &str, runs: usize, value: f64, unit: &str) {
        eprintln!("{name}: {value:.2} {unit}");
        self.rows.push((
            name.to_owned(),
            format!("| {runs} | {value:.2} {unit} | | |"),
        ));
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = String::from(
            "| measurement | runs | median (ms) | p95 (ms) | max (ms) |\n|---|---:|---:|---:|---:|\n",
        );
        for (name, cells) in &self.rows {
            out.push_str(&format!("| {name} {cells}\n"));
        }
        out
    }
}
