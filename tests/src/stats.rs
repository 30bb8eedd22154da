//! The one way the lab's measurements summarise samples: nearest-rank median and p95, min and max.
//!
//! Nearest rank (the smallest sample with at least `q` of all samples at or below it) always reports a sample that
//! was measured, never an average of two, so medians of the benchmark, the strategies' measurements and BENCHMARKS.md
//! compare like with like.

use std::fmt;
use std::time::Duration;

/// The nearest-rank `q`-quantile (`0.0..=1.0`) of `sorted` (ascending); NaN when there are no samples.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The nearest-rank median of `sorted` (ascending): the lower middle sample of an even count.
pub fn median(sorted: &[f64]) -> f64 {
    quantile(sorted, 0.5)
}

/// The nearest-rank 95th percentile of `sorted` (ascending).
pub fn p95(sorted: &[f64]) -> f64 {
    quantile(sorted, 0.95)
}

/// A duration in milliseconds, the unit every lab measurement reports in.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// What a measurement reports of its samples; NaN for every figure when there are none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// How many samples.
    pub runs: usize,
    /// The smallest sample.
    pub min: f64,
    /// The nearest-rank median.
    pub median: f64,
    /// The nearest-rank 95th percentile.
    pub p95: f64,
    /// The largest sample.
    pub max: f64,
}

impl Summary {
    /// Summarises samples given in any order.
    pub fn new(samples: impl IntoIterator<Item = f64>) -> Self {
        let mut sorted: Vec<f64> = samples.into_iter().collect();
        sorted.sort_by(f64::total_cmp);
        Self {
            runs: sorted.len(),
            min: sorted.first().copied().unwrap_or(f64::NAN),
            median: median(&sorted),
            p95: p95(&sorted),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// Summarises durations, in milliseconds.
    pub fn of_durations<'a>(samples: impl IntoIterator<Item = &'a Duration>) -> Self {
        Self::new(samples.into_iter().copied().map(ms))
    }
}

/// `n=30 median=12.3 ms p95=15.0 ms min=10.1 ms max=20.7 ms`; the precision (`{:.0}`) applies to every figure and is
/// one decimal by default.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = f.precision().unwrap_or(1);
        write!(
            f,
            "n={} median={:.p$} ms p95={:.p$} ms min={:.p$} ms max={:.p$} ms",
            self.runs, self.median, self.p95, self.min, self.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(quantile(&s, 0.5), 10.0);
        assert_eq!(quantile(&s, 0.95), 19.0);
        assert_eq!(quantile(&[3.0], 0.95), 3.0);
    }

    #[test]
    fn ends_and_odd_counts() {
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(median(&s), 3.0);
        assert_eq!(p95(&s), 5.0);
        assert_eq!(quantile(&s, 0.0), 1.0);
        assert_eq!(quantile(&s, 1.0), 5.0);
        // An even count reports the lower middle sample, not the mean of the two.
        assert_eq!(median(&[1.0, 2.0, 3.0, 4.0]), 2.0);
    }

    #[test]
    fn no_samples_is_nan() {
        assert!(quantile(&[], 0.5).is_nan());
        let s = Summary::new([]);
        assert_eq!(s.runs, 0);
        assert!(s.min.is_nan() && s.median.is_nan() && s.p95.is_nan() && s.max.is_nan());
    }

    #[test]
    fn summary_sorts_and_converts_durations() {
        let s = Summary::of_durations(&[
            Duration::from_millis(30),
            Duration::from_millis(10),
            Duration::from_millis(20),
        ]);
        assert_eq!(
            s,
            Summary {
                runs: 3,
                min: 10.0,
                median: 20.0,
                p95: 30.0,
                max: 30.0
            }
        );
        assert_eq!(
            s.to_string(),
            "n=3 median=20.0 ms p95=30.0 ms min=10.0 ms max=30.0 ms"
        );
        assert_eq!(
            format!("{s:.0}"),
            "n=3 median=20 ms p95=30 ms min=10 ms max=30 ms"
        );
    }
}
