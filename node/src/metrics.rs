//! Order intake metrics: orders accepted and rejected by reason, forwarded calls and the
//! latency of every OrderService call by method and code. Raft-level figures (role, term,
//! indexes, replication lag, proposal and fsync latency, batch sizes) come from
//! `surge_raftstore::metrics`, labelled by shard.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{exponential_buckets, HistogramOpts, HistogramVec, IntCounterVec, Opts};
use tonic::Code;

pub struct OrderMetrics {
    /// By kind: new, duplicate.
    pub accepted: IntCounterVec,
    /// By reason: invalid, conflict, unavailable.
    pub rejected: IntCounterVec,
    /// By call: submit, get, list.
    pub forwarded: IntCounterVec,
    pub rpc_seconds: HistogramVec,
}

fn counter(name: &str, help: &str, label: &str) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), &[label]).unwrap_or_else(|e| panic!("{name}: {e}"))
}

impl OrderMetrics {
    pub fn get() -> &'static OrderMetrics {
        static M: OnceLock<OrderMetrics> = OnceLock::new();
        M.get_or_init(|| {
            let m = OrderMetrics {
                accepted: counter(
                    "surge_orders_accepted_total",
                    "Orders accepted (new) or recognised as a retry (duplicate)",
                    "kind",
                ),
                rejected: counter(
                    "surge_orders_rejected_total",
                    "Orders not accepted, by reason",
                    "reason",
                ),
                forwarded: counter(
                    "surge_forwarded_calls_total",
                    "Calls forwarded to a shard leader on another node",
                    "call",
                ),
                rpc_seconds: HistogramVec::new(
                    HistogramOpts::new("surge_order_rpc_seconds", "OrderService call latency")
                        .buckets(exponential_buckets(0.0002, 2.0, 16).unwrap_or_default()),
                    &["method", "code"],
                )
                .unwrap_or_else(|e| panic!("rpc histogram: {e}")),
            };
            let r = prometheus::default_registry();
            let _ = r.register(Box::new(m.accepted.clone()));
            let _ = r.register(Box::new(m.rejected.clone()));
            let _ = r.register(Box::new(m.forwarded.clone()));
            let _ = r.register(Box::new(m.rpc_seconds.clone()));
            m
        })
    }

    pub fn accepted(&self, duplicate: bool, n: u64) {
        let kind = if duplicate { "duplicate" } else { "new" };
        self.accepted.with_label_values(&[kind]).inc_by(n);
    }

    pub fn rejected(&self, reason: &str) {
        self.rejected.with_label_values(&[reason]).inc();
    }
}

pub fn observe_rpc(method: &str, code: Code, took: Duration) {
    OrderMetrics::get()
        .rpc_seconds
        .with_label_values(&[method, &format!("{code:?}")])
        .observe(took.as_secs_f64());
}
