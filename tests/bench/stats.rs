//! Median, p95, max, and the Markdown table.

/// Collected rows.
#[derive(Default)]
pub(crate) struct Table {
    rows: Vec<(String, String)>,
}

/// Nearest-rank quantile of sorted samples.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Table {
    /// A row of timings in milliseconds.
    pub(crate) fn times(&mut self, name: &str, mut samples: Vec<f64>) {
        samples.sort_by(f64::total_cmp);
        let (median, p95, max) = (
            quantile(&samples, 0.5),
            quantile(&samples, 0.95),
            samples.last().copied().unwrap_or(f64::NAN),
        );
        eprintln!(
            "{name}: median {median:.1} ms, p95 {p95:.1} ms, max {max:.1} ms ({} runs)",
            samples.len()
        );
        self.rows.push((
            name.to_owned(),
            format!("| {} | {median:.1} | {p95:.1} | {max:.1} |", samples.len()),
        ));
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

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank() {
        let s: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(quantile(&s, 0.5), 10.0);
        assert_eq!(quantile(&s, 0.95), 19.0);
        assert_eq!(quantile(&[3.0], 0.95), 3.0);
    }
}
