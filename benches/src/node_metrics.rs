//! What the bench reads from the nodes' `/metrics`: counters summed over nodes, histograms
//! merged over nodes (to compare fsync and raft-round latency between phases), and RocksDB's
//! background-work gauges sampled once a second (to see whether a latency spike lines up with
//! compaction).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use surgectl::dev_cluster::ClusterFile;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `/metrics` text of every node that answers.
async fn scrape(file: &ClusterFile) -> Vec<String> {
    let mut bodies = Vec::new();
    for n in &file.nodes {
        let Ok(Ok(mut conn)) = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(&n.http_address),
        )
        .await
        else {
            continue;
        };
        let req = format!("GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n", n.http_address);
        if conn.write_all(req.as_bytes()).await.is_err() {
            continue;
        }
        let mut body = String::new();
        let read = conn.read_to_string(&mut body);
        if tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .is_ok()
        {
            bodies.push(body);
        }
    }
    bodies
}

/// The sum over `bodies` of every sample whose line starts with `series`.
fn sum(bodies: &[String], series: &str) -> f64 {
    bodies
        .iter()
        .flat_map(|b| b.lines())
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The sum over the nodes of one counter of their metrics.
pub(crate) async fn metric_sum(file: &ClusterFile, series: &str) -> u64 {
    sum(&scrape(file).await, series) as u64
}

/// A histogram merged over the nodes: (upper bound, cumulative count) per bucket.
#[derive(Clone, Debug, Default)]
pub(crate) struct Histogram {
    buckets: Vec<(f64, f64)>,
}

impl Histogram {
    fn parse(bodies: &[String], name: &str) -> Histogram {
        let prefix = format!("{name}_bucket{{le=\"");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for line in bodies.iter().flat_map(|b| b.lines()) {
            let Some(rest) = line.strip_prefix(&prefix) else {
                continue;
            };
            let Some((le, value)) = rest.split_once("\"} ") else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            let value: f64 = value.trim().parse().unwrap_or(0.0);
            match buckets.iter_mut().find(|(b, _)| *b == le) {
                Some(slot) => slot.1 += value,
                None => buckets.push((le, value)),
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Histogram { buckets }
    }

    /// Observations between `earlier` and `self`, and the upper bound (in ms) of the bucket
    /// holding quantile `q` of them (a bucket bound, so an upper estimate).
    pub(crate) fn since(&self, earlier: &Histogram, q: f64) -> (u64, f64) {
        let delta: Vec<(f64, f64)> = self
            .buckets
            .iter()
            .map(|(le, c)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(b, _)| b == le)
                    .map_or(0.0, |(_, v)| *v);
                (*le, (c - before).max(0.0))
            })
            .collect();
        let total = delta.last().map_or(0.0, |(_, c)| *c);
        if total <= 0.0 {
            return (0, 0.0);
        }
        let bound = delta
            .iter()
            .find(|(_, c)| *c >= q * total)
            .map_or(f64::INFINITY, |(le, _)| *le);
        (total as u64, (bound * 1e6).round() / 1e3)
    }
}

/// The histograms compared between phases, at one moment.
#[derive(Clone, Debug, Default)]
pub(crate) struct Histograms {
    pub(crate) fsync: Histogram,
    pub(crate) round: Histogram,
}

pub(crate) async fn histograms(file: &ClusterFile) -> Histograms {
    let bodies = scrape(file).await;
    Histograms {
        fsync: Histogram::parse(&bodies, "surge_raft_fsync_seconds"),
        round: Histogram::parse(&bodies, "surge_raft_round_seconds"),
    }
}

/// RocksDB's background work over the nodes, at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Background {
    pub(crate) at: Option<Instant>,
    pub(crate) running_compactions: f64,
    pub(crate) pending_compaction_bytes: f64,
    pub(crate) level0_files: f64,
    /// Nodes whose RocksDB is throttling writes.
    pub(crate) nodes_delayed: f64,
}

async fn background(file: &ClusterFile) -> Background {
    let bodies = scrape(file).await;
    let delayed = bodies
        .iter()
        .filter(|b| {
            sum(
                std::slice::from_ref(b),
                "surge_rocksdb_delayed_write_rate_bytes",
            ) > 0.0
        })
        .count();
    Background {
        at: Some(Instant::now()),
        running_compactions: sum(&bodies, "surge_rocksdb_running_compactions"),
        pending_compaction_bytes: sum(&bodies, "surge_rocksdb_pending_compaction_bytes"),
        level0_files: sum(&bodies, "surge_rocksdb_level0_files"),
        nodes_delayed: delayed as f64,
    }
}

/// Background-work samples, one a second, taken by [`sample_background`].
#[derive(Default)]
pub(crate) struct Samples {
    log: Mutex<Vec<Background>>,
}

/// Samples once a second until `limit` passes (the bench aborts it sooner).
pub(crate) async fn sample_background(
    dir: std::path::PathBuf,
    samples: Arc<Samples>,
    limit: Duration,
) {
    let started = Instant::now();
    while started.elapsed() < limit {
        // Re-read the cluster file: a node may have joined.
        if let Ok(file) = ClusterFile::load(&dir) {
            let b = background(&file).await;
            if let Ok(mut log) = samples.log.lock() {
                log.push(b);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How busy the disks were in one phase.
#[derive(Debug, Default, Serialize)]
pub(crate) struct DiskPhase {
    pub(crate) fsyncs: u64,
    pub(crate) fsync_p99_ms: f64,
    pub(crate) raft_rounds: u64,
    pub(crate) raft_round_p99_ms: f64,
    pub(crate) mean_running_compactions: f64,
    pub(crate) max_pending_compaction_mib: f64,
    pub(crate) max_level0_files: f64,
    /// Samples (about one a second) in which some node's RocksDB throttled writes.
    pub(crate) seconds_writes_delayed: u64,
}

impl Samples {
    pub(crate) fn between(&self, from: Instant, to: Instant) -> Vec<Background> {
        let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        log.into_iter()
            .filter(|b| b.at.is_some_and(|at| at >= from && at < to))
            .collect()
    }

    /// The phase `from..to`, given the histograms at its two ends.
    pub(crate) fn phase(
        &self,
        from: Instant,
        to: Instant,
        start: &Histograms,
        end: &Histograms,
    ) -> DiskPhase {
        let inside = self.between(from, to);
        let n = inside.len().max(1) as f64;
        let (fsyncs, fsync_p99_ms) = end.fsync.since(&start.fsync, 0.99);
        let (raft_rounds, raft_round_p99_ms) = end.round.since(&start.round, 0.99);
        let max = |f: fn(&Background) -> f64| inside.iter().map(f).fold(0.0, f64::max);
        DiskPhase {
            fsyncs,
            fsync_p99_ms,
            raft_rounds,
            raft_round_p99_ms,
            mean_running_compactions: (inside.iter().map(|b| b.running_compactions).sum::<f64>()
                / n
                * 100.0)
                .round()
                / 100.0,
            max_pending_compaction_mib: (max(|b| b.pending_compaction_bytes) / f64::from(1 << 20))
                .round(),
            max_level0_files: max(|b| b.level0_files),
            seconds_writes_delayed: inside.iter().filter(|b| b.nodes_delayed > 0.0).count() as u64,
        }
    }
}

/// Waits (at most `limit`) until no node runs a compaction or owes one, so that a phase does
/// not start in the middle of the load's housekeeping.
pub(crate) async fn wait_compactions(file: &ClusterFile, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut quiet = 0;
    while started.elapsed() < limit && quiet < 3 {
        let b = background(file).await;
        quiet = if b.running_compactions == 0.0 && b.pending_compaction_bytes == 0.0 {
            quiet + 1
        } else {
            0
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    started.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(buckets: &[(&str, u64)]) -> String {
        buckets
            .iter()
            .map(|(le, c)| format!("surge_raft_fsync_seconds_bucket{{le=\"{le}\"}} {c}\n"))
            .collect()
    }

    #[test]
    fn histograms_merge_over_nodes_and_subtract_between_phases() {
        let start = Histogram::parse(
            &[body(&[("0.001", 10), ("0.01", 10), ("+Inf", 10)])],
            "surge_raft_fsync_seconds",
        );
        let end = Histogram::parse(
            &[
                body(&[("0.001", 60), ("0.01", 108), ("+Inf", 110)]),
                body(&[("0.001", 0), ("0.01", 0), ("+Inf", 0)]),
            ],
            "surge_raft_fsync_seconds",
        );
        // 100 new observations: 50 under 1 ms, 48 more under 10 ms, 2 above.
        assert_eq!(end.since(&start, 0.5), (100, 1.0));
        assert_eq!(end.since(&start, 0.98), (100, 10.0));
        assert_eq!(end.since(&start, 0.99).1, f64::INFINITY);
        assert_eq!(start.since(&start, 0.99), (0, 0.0));
    }
}
