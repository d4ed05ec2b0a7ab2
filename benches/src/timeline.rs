//! One line per second of a bench's steady intake, as CSV: calls started that second, their
//! p99 and worst latency, the orders the client sent again, and the nodes' RocksDB background
//! work sampled in it. A spike in the
//! latency column next to a compaction or a write stall names the spike's cause.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::node_metrics::Samples;
use crate::stats::summarize;
use crate::steady::Calls;

/// Writes the timeline of `log`'s calls from `origin` to `path`.
pub(crate) fn write(
    path: &Path,
    log: &Calls,
    samples: &Samples,
    origin: Instant,
) -> anyhow::Result<()> {
    let calls = log.log();
    let last = calls
        .iter()
        .map(|c| c.0.saturating_duration_since(origin).as_secs())
        .max()
        .unwrap_or(0);
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    writeln!(
        out,
        "second,calls,failed,p99_ms,max_ms,retried_orders,running_compactions,level0_files,pending_compaction_mib,nodes_delayed"
    )?;
    for second in 0..=last {
        let from = origin + Duration::from_secs(second);
        let to = from + Duration::from_secs(1);
        let inside: Vec<_> = calls.iter().filter(|c| c.0 >= from && c.0 < to).collect();
        let ok: Vec<Duration> = inside.iter().filter(|c| !c.3).map(|c| c.1).collect();
        let failed = inside.len() - ok.len();
        let latency = summarize(&ok);
        let background = samples.between(from, to);
        let b = background.first().copied().unwrap_or_default();
        writeln!(
            out,
            "{second},{},{failed},{},{},{},{},{},{:.0},{}",
            inside.len(),
            latency.p99_ms,
            latency.max_ms,
            log.retries_between(from, to),
            b.running_compactions,
            b.level0_files,
            b.pending_compaction_bytes / f64::from(1 << 20),
            b.nodes_delayed
        )?;
    }
    out.flush()?;
    Ok(())
}
