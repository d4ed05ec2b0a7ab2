//! Per-tenant admission: one merchant's flash sale cannot take the cluster from the others.
//! Each tenant's limits (orders/s with a burst, streams, reads/s) come from the coordinators
//! with the directory. Orders are admitted by the shard leader that proposes them, at its share
//! of the tenant's rate (the shards it leads over all shards), so however a client routes, each
//! order is counted once and the tenant gets its whole rate across the cluster. Reads and
//! streams are counted where they arrive (calls another node forwarded were counted there).
//! Over a limit, a call is refused RESOURCE_EXHAUSTED with how long to wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use prometheus::IntCounterVec;
use surge_grpc::ApiError;
use surge_proto::v1::TenantLimits;
use tonic::Status;

/// A token bucket that may go into debt: a call is admitted while a whole token is there and
/// pays its whole cost, so a batch larger than the burst still goes through once and the rate
/// holds over time; a refused caller is told when a whole token is there again.
#[derive(Clone, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    fn take(&mut self, cost: f64, rate: f64, burst: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        if self.tokens < 1.0 {
            // Until a whole token is there again, at least a millisecond.
            let wait = ((1.0 - self.tokens) / rate).max(0.001);
            return Err(Duration::from_secs_f64(wait.min(60.0)));
        }
        self.tokens -= cost;
        Ok(())
    }
}

#[derive(Debug)]
struct TenantUse {
    orders: Option<Bucket>,
    reads: Option<Bucket>,
    streams: u32,
}

/// What this node admits per tenant. Its map holds only tenants whose keys checked out, so it
/// is bounded by the cluster's tenants.
#[derive(Debug, Default)]
pub struct Admission {
    tenants: Mutex<HashMap<u64, TenantUse>>,
    /// Shard leaders (tenant, address) that refused a tenant's orders lately, and until when:
    /// while that lasts, orders for them are refused here, without the hop, so a tenant far
    /// over its limit costs the cluster little more than its admitted orders.
    held: Mutex<HashMap<(u64, String), Instant>>,
}

/// Most (tenant, leader) holds kept; expired ones are dropped first.
const MAX_HOLDS: usize = 4096;

/// An open stream, counted against its tenant until dropped.
pub struct StreamSlot {
    admission: Arc<Admission>,
    tenant: u64,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut tenants = self
            .admission
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tenants.get_mut(&self.tenant) {
            t.streams = t.streams.saturating_sub(1);
        }
    }
}

/// What a call costs and which limit it counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Orders,
    Reads,
    Streams,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Orders => "orders",
            Kind::Reads => "reads",
            Kind::Streams => "streams",
        }
    }
}

struct Metrics {
    admitted: IntCounterVec,
    throttled: IntCounterVec,
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let vec = |name: &str, help: &str| {
            IntCounterVec::new(prometheus::Opts::new(name, help), &["tenant", "kind"])
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        let m = Metrics {
            admitted: vec(
                "surge_tenant_admitted_total",
                "Orders, reads and streams admitted, by tenant",
            ),
            throttled: vec(
                "surge_tenant_throttled_total",
                "Orders, reads and streams refused RESOURCE_EXHAUSTED over a tenant's limit",
            ),
        };
        let r = prometheus::default_registry();
        let _ = r.register(Box::new(m.admitted.clone()));
        let _ = r.register(Box::new(m.throttled.clone()));
        m
    })
}

fn refused(tenant: &str, kind: Kind, n: u64, wait: Duration, what: String) -> Status {
    metrics()
        .throttled
        .with_label_values(&[tenant, kind.as_str()])
        .inc_by(n);
    ApiError::overloaded(
        format!(
            "tenant {tenant}: {what}; retry after {} ms",
            wait.as_millis()
        ),
        Some(wait),
    )
    .into()
}

fn admitted(tenant: &str, kind: Kind, n: u64) {
    metrics()
        .admitted
        .with_label_values(&[tenant, kind.as_str()])
        .inc_by(n);
}

impl Admission {
    fn with<R>(&self, tenant: u64, f: impl FnOnce(&mut TenantUse) -> R) -> R {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let entry = tenants.entry(tenant).or_insert(TenantUse {
            orders: None,
            reads: None,
            streams: 0,
        });
        f(entry)
    }

    /// Admits `n` orders of `tenant` (named `name` in metrics) at `share` (0..=1) of its rate.
    pub fn orders(
        &self,
        (tenant, name): (u64, &str),
        n: usize,
        limits: &TenantLimits,
        share: f64,
    ) -> Result<(), Status> {
        let n64 = n as u64;
        if limits.orders_per_sec == 0 {
            admitted(name, Kind::Orders, n64);
            return Ok(());
        }
        let share = share.clamp(0.0, 1.0);
        let rate = (f64::from(limits.orders_per_sec) * share).max(0.01);
        let burst = match limits.orders_burst {
            0 => limits.orders_per_sec,
            b => b,
        };
        let burst = (f64::from(burst) * share).max(1.0);
        let now = Instant::now();
        let taken = self.with(tenant, |t| {
            t.orders
                .get_or_insert_with(|| Bucket::full(burst, now))
                .take(n as f64, rate, burst, now)
        });
        match taken {
            Ok(()) => {
                admitted(name, Kind::Orders, n64);
                Ok(())
            }
            Err(wait) => Err(refused(
                name,
                Kind::Orders,
                n64,
                wait,
                format!("over its limit of {} orders/s", limits.orders_per_sec),
            )),
        }
    }

    /// Admits one read (a list, an events page, a stream opening) of `tenant` on this node.
    pub fn read(&self, (tenant, name): (u64, &str), limits: &TenantLimits) -> Result<(), Status> {
        if limits.reads_per_sec == 0 {
            admitted(name, Kind::Reads, 1);
            return Ok(());
        }
        let rate = f64::from(limits.reads_per_sec);
        let now = Instant::now();
        let taken = self.with(tenant, |t| {
            t.reads
                .get_or_insert_with(|| Bucket::full(rate, now))
                .take(1.0, rate, rate, now)
        });
        match taken {
            Ok(()) => {
                admitted(name, Kind::Reads, 1);
                Ok(())
            }
            Err(wait) => Err(refused(
                name,
                Kind::Reads,
                1,
                wait,
                format!("over its limit of {} reads/s", limits.reads_per_sec),
            )),
        }
    }

    /// How long the leader at `leader` still refuses `tenant`'s orders, as it last said.
    pub fn held(&self, tenant: u64, leader: &str) -> Option<Duration> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let until = *held.get(&(tenant, leader.to_string()))?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Remembers that the leader at `leader` refused `tenant`'s orders for `wait`.
    pub fn hold(&self, tenant: u64, leader: &str, wait: Duration) {
        let now = Instant::now();
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.len() >= MAX_HOLDS {
            held.retain(|_, until| *until > now);
            if held.len() >= MAX_HOLDS {
                return;
            }
        }
        held.insert(
            (tenant, leader.to_string()),
            now + wait.min(Duration::from_secs(5)),
        );
    }

    /// Counts `n` orders of `name` (limited to `limit`/s) refused here for a leader that holds
    /// them off for `wait`: the same refusal the leader gives.
    pub fn count_held(&self, name: &str, (n, limit): (u64, u32), wait: Duration) -> ApiError {
        let what = format!("over its limit of {limit} orders/s");
        ApiError::from_status(&refused(name, Kind::Orders, n, wait, what))
    }

    /// Opens one stream of `tenant` on this node: a slot held until the stream ends.
    pub fn stream(
        self: &Arc<Self>,
        (tenant, name): (u64, &str),
        limits: &TenantLimits,
    ) -> Result<StreamSlot, Status> {
        let open = self.with(tenant, |t| {
            if limits.streams != 0 && t.streams >= limits.streams {
                return false;
            }
            t.streams += 1;
            true
        });
        if !open {
            return Err(refused(
                name,
                Kind::Streams,
                1,
                Duration::from_secs(1),
                format!("already has {} streams open on this node", limits.streams),
            ));
        }
        admitted(name, Kind::Streams, 1);
        Ok(StreamSlot {
            admission: self.clone(),
            tenant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(orders: u32, burst: u32, streams: u32, reads: u32) -> TenantLimits {
        TenantLimits {
            orders_per_sec: orders,
            orders_burst: burst,
            streams,
            reads_per_sec: reads,
        }
    }

    #[test]
    fn the_bucket_refills_at_the_rate_and_a_large_batch_goes_into_debt() {
        let t0 = Instant::now();
        let mut b = Bucket::full(10.0, t0);
        assert!(
            b.take(25.0, 10.0, 10.0, t0).is_ok(),
            "a batch above the burst, once"
        );
        let wait = b.take(1.0, 10.0, 10.0, t0).expect_err("in debt");
        assert!((wait.as_secs_f64() - 1.6).abs() < 1e-6, "{wait:?}");
        assert!(b
            .take(1.0, 10.0, 10.0, t0 + Duration::from_millis(1500))
            .is_err());
        assert!(b
            .take(1.0, 10.0, 10.0, t0 + Duration::from_millis(1700))
            .is_ok());
        // Never more than the burst, however long it rested.
        let later = t0 + Duration::from_secs(3600);
        assert!(b.take(10.0, 10.0, 10.0, later).is_ok());
        assert!(b.take(1.0, 10.0, 10.0, later).is_err());
    }

    #[test]
    fn orders_reads_and_streams_are_limited_per_tenant() {
        let a = Arc::new(Admission::default());
        let shop = (1, "杭州小店");
        let other = (2, "other");
        let l = limits(100, 0, 1, 2);
        // At half the shards, half the rate and half the burst: 50 now, then refused.
        assert!(a.orders(shop, 50, &l, 0.5).is_ok());
        let err = a.orders(shop, 1, &l, 0.5).expect_err("over");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(ApiError::from_status(&err).retry_after.is_some());
        assert!(err.message().contains("100 orders/s"), "{}", err.message());
        // Another tenant is untouched; no limit means no limit.
        assert!(a.orders(other, 50, &l, 0.5).is_ok());
        assert!(a.orders(other, 10_000, &limits(0, 0, 0, 0), 1.0).is_ok());
        assert!(a.read(shop, &l).is_ok() && a.read(shop, &l).is_ok());
        assert!(a.read(shop, &l).is_err());
        let slot = a.stream(shop, &l).expect("one stream");
        assert!(a.stream(shop, &l).is_err(), "a second");
        drop(slot);
        assert!(a.stream(shop, &l).is_ok(), "the slot came back");
    }
}
