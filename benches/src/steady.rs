//! The rebalance bench's steady intake: an open loop of `rate` calls a second, each a batch
//! of `batch` orders, with at most 256 calls in flight (a call that finds none free counts as
//! failed). Every call is logged (start, latency, orders, failed) for the phases to summarize.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use surge_client::{sample, OrderClient};
use surge_proto::v1::Order;
use tokio::sync::Semaphore;

use crate::node_metrics::DiskPhase;
use crate::stats::{summarize, Summary};

/// One phase of the steady intake, with how busy the disks were meanwhile.
#[derive(Debug, Serialize)]
pub(crate) struct Phase {
    pub(crate) seconds: f64,
    pub(crate) orders: u64,
    pub(crate) orders_per_second: f64,
    pub(crate) failed_calls: u64,
    /// Orders the client sent again after a transient refusal (a leader change, a moved
    /// replica), from its counter.
    pub(crate) retried_orders: u64,
    pub(crate) latency: Summary,
    pub(crate) disk: DiskPhase,
}

/// Every call of the steady intake: when it started, how long it took, its orders, whether
/// it failed.
#[derive(Default)]
pub(crate) struct Calls {
    log: Mutex<Vec<(Instant, Duration, u64, bool)>>,
    /// The client's retry counter as each call ended: (when, retries so far).
    retries: Mutex<Vec<(Instant, u64)>>,
}

impl Calls {
    fn push(&self, call: (Instant, Duration, u64, bool)) {
        if let Ok(mut l) = self.log.lock() {
            l.push(call);
        }
    }

    pub(crate) fn log(&self) -> Vec<(Instant, Duration, u64, bool)> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn note_retries(&self, total: u64) {
        if let Ok(mut r) = self.retries.lock() {
            r.push((Instant::now(), total));
        }
    }

    /// Retries the client counted between `from` and `to`.
    pub(crate) fn retries_between(&self, from: Instant, to: Instant) -> u64 {
        let Ok(r) = self.retries.lock() else {
            return 0;
        };
        let upto = |t: Instant| {
            r.iter()
                .filter(|(at, _)| *at < t)
                .map(|(_, n)| *n)
                .max()
                .unwrap_or(0)
        };
        upto(to).saturating_sub(upto(from))
    }

    pub(crate) fn phase(&self, from: Instant, to: Instant, disk: DiskPhase) -> Phase {
        let log = self.log();
        let inside: Vec<_> = log
            .iter()
            .filter(|(at, _, _, _)| *at >= from && *at < to)
            .collect();
        let seconds = to.duration_since(from).as_secs_f64();
        let orders: u64 = inside.iter().filter(|c| !c.3).map(|c| c.2).sum();
        let latencies: Vec<Duration> = inside.iter().filter(|c| !c.3).map(|c| c.1).collect();
        Phase {
            seconds: (seconds * 10.0).round() / 10.0,
            orders,
            orders_per_second: (orders as f64 / seconds.max(0.001)).round(),
            failed_calls: inside.iter().filter(|c| c.3).count() as u64,
            retried_orders: self.retries_between(from, to),
            latency: summarize(&latencies),
            disk,
        }
    }
}

/// Submits one batch; true when every order was accepted.
pub(crate) async fn submit(client: &OrderClient, orders: Vec<Order>) -> bool {
    let n = orders.len();
    match client.submit_batch(orders).await {
        Ok(results) => {
            results
                .iter()
                .filter(|r| {
                    matches!(
                        r.outcome,
                        Some(surge_proto::v1::submit_result::Outcome::Accepted(_))
                    )
                })
                .count()
                == n
        }
        Err(e) => {
            eprintln!("batch failed: {:?} {}", e.code(), e.message());
            false
        }
    }
}

/// The running intake.
pub(crate) struct Steady {
    calls: Arc<Calls>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Steady {
    pub(crate) fn start(client: Arc<OrderClient>, rate: u64, batch: usize) -> Steady {
        let calls = Arc::new(Calls::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (rate, batch) = (rate.max(1), batch.max(1));
        let task = tokio::spawn(run(client, calls.clone(), stop.clone(), rate, batch));
        Steady { calls, stop, task }
    }

    /// Stops starting calls, waits for those in flight, and hands back the log.
    pub(crate) async fn stop(self) -> Arc<Calls> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.calls
    }
}

async fn run(
    client: Arc<OrderClient>,
    calls: Arc<Calls>,
    stop: Arc<AtomicBool>,
    rate: u64,
    batch: usize,
) {
    let limit = Arc::new(Semaphore::new(256));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let run = format!("steady-{}", uuid::Uuid::new_v4().simple());
    let mut n = 0u64;
    let mut inflight = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            calls.push((Instant::now(), Duration::ZERO, 0, true));
            continue;
        };
        let orders: Vec<Order> = (n..n + batch as u64)
            .map(|i| sample::order(&run, i))
            .collect();
        n += batch as u64;
        let (client, calls) = (client.clone(), calls.clone());
        inflight.spawn(async move {
            let at = Instant::now();
            let ok = submit(&client, orders).await;
            calls.push((at, at.elapsed(), batch as u64, !ok));
            calls.note_retries(client.retries());
            drop(permit);
        });
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
}
