//! Percentiles over recorded durations.

use std::time::Duration;

use serde::Serialize;

/// Summary of a sample of durations, in milliseconds.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Summary {
    pub(crate) count: usize,
    pub(crate) min_ms: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Nearest-rank percentile of a sorted sample.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn summarize(samples: &[Duration]) -> Summary {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    Summary {
        count: sorted.len(),
        min_ms: ms(sorted.first().copied().unwrap_or_default()),
        p50_ms: ms(percentile(&sorted, 50.0)),
        p90_ms: ms(percentile(&sorted, 90.0)),
        p99_ms: ms(percentile(&sorted, 99.0)),
        max_ms: ms(sorted.last().copied().unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        let sum = summarize(&s);
        assert_eq!(
            (sum.p50_ms, sum.p90_ms, sum.max_ms, sum.min_ms),
            (5.0, 9.0, 10.0, 1.0)
        );
        assert_eq!(summarize(&[]).count, 0);
    }
}
