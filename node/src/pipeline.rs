//! The order pipeline on shard leaders (DESIGN.md §4, §5): review, carrier allocation and waybill
//! binding, proposed through each shard's log, plus waybill blocks leased from the coordinators.
//!
//! Each round, for every shard this node leads, it reads the orders waiting in each stage
//! ([`Stage`]), decides their next steps with the tenant's rules, and proposes them as one
//! entry. An order that is neither held nor waiting goes from RECEIVED to WAYBILL_ASSIGNED in one
//! entry: approve, allocate and bind apply in order, each seeing the last. The rules run here,
//! on the leader, and their outcome enters the log, so replicas never evaluate rules themselves.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntGauge};
use prost::Message as _;
use surge_client::MetaClient;
use surge_grpc::v1::node_service_client::NodeServiceClient;
use surge_grpc::v1::shard_command::Command as ShardCmd;
use surge_grpc::v1::{
    ActionBatch, AddWaybillBlock, LeaseWaybillsRequest, OrderAction, OrderRecord, RangeUsage,
    ShardCommand, TrimEvents, WaybillBook,
};
use surge_raftstore::EngineError;
use surge_shard::{free_numbers, planner, Applied, Stage, MAX_BLOCKS};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::actions::now_ms;
use crate::directory::SharedDirectory;
use crate::replicas::ShardHandle;

/// Waybill usage per led shard, reported with heartbeats.
pub type UsageBoard = Arc<RwLock<HashMap<u32, Vec<RangeUsage>>>>;

/// Orders read per stage and shard in one round, and at most of one tenant.
const STAGE_BATCH: usize = 400;
const TENANT_SHARE: usize = 200;
const ROUND: Duration = Duration::from_millis(100);
/// Every how many rounds the orders waiting for a carrier rule are looked at again.
const SLOW_EVERY: u64 = 20;
/// How long events stay for `WatchOrders` to resume from.
pub const EVENT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Every how many rounds old events are trimmed, and how many one trim looks at.
const TRIM_EVERY: u64 = 600;
const TRIM_SCAN: usize = 10_000;
/// Below this many free numbers a shard asks for the next block.
const LOW_WATER: u64 = 300;
/// After the coordinators answered "no numbers left", wait this long before asking again.
const EXHAUSTED_BACKOFF: Duration = Duration::from_secs(5);

struct Metrics {
    waiting: IntGauge,
    exhausted: IntCounter,
    leased_blocks: IntCounter,
    proposed: IntCounter,
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let waiting = IntGauge::new(
            "surge_orders_waiting_for_waybills",
            "Orders held for want of waybill numbers, on the shards this node leads (counted up to 200 per shard)",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let exhausted = IntCounter::new(
            "surge_waybill_exhausted_total",
            "Block requests the coordinators answered with no numbers left",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let leased_blocks = IntCounter::new(
            "surge_waybill_blocks_leased_total",
            "Waybill blocks leased to shards this node leads",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let proposed = IntCounter::new(
            "surge_pipeline_actions_total",
            "Lifecycle actions the pipeline proposed",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let r = prometheus::default_registry();
        let _ = r.register(Box::new(waiting.clone()));
        let _ = r.register(Box::new(exhausted.clone()));
        let _ = r.register(Box::new(leased_blocks.clone()));
        let _ = r.register(Box::new(proposed.clone()));
        Metrics {
            waiting,
            exhausted,
            leased_blocks,
            proposed,
        }
    })
}

/// What one round reads of a shard.
struct Snapshot {
    stages: Vec<(Stage, Vec<OrderRecord>)>,
    books: Vec<(u64, String, WaybillBook)>,
    /// Per stage, the tenant the next round's read starts at.
    next: HashMap<Stage, u64>,
}

type BookKey = (u32, u64, String);

/// Block requests in flight, and those answered "exhausted" (with when to ask again).
#[derive(Default)]
struct Leasing {
    in_flight: HashSet<BookKey>,
    exhausted: HashMap<BookKey, Instant>,
}

pub struct Pipeline {
    pub handle: ShardHandle,
    pub directory: SharedDirectory,
    pub client: Arc<MetaClient>,
    pub usage: UsageBoard,
    leasing: Arc<Mutex<Leasing>>,
    /// Per shard and stage, the tenant the next read starts at (so tenants take turns).
    resume: Mutex<HashMap<u32, HashMap<Stage, u64>>>,
}

impl Pipeline {
    pub fn new(
        handle: ShardHandle,
        directory: SharedDirectory,
        client: Arc<MetaClient>,
        usage: UsageBoard,
    ) -> Pipeline {
        Pipeline {
            handle,
            directory,
            client,
            usage,
            leasing: Arc::default(),
            resume: Mutex::default(),
        }
    }

    /// Runs rounds until `stop`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut round = 0u64;
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(ROUND) => {}
            }
            // Until the first heartbeat answer, no tenant's rules are known: reviewing with the
            // defaults would approve every order unseen.
            if !self.directory.read().is_ok_and(|d| d.is_loaded()) {
                continue;
            }
            let led: Vec<u32> = self
                .handle
                .statuses()
                .into_iter()
                .filter(|(_, st)| st.is_leader())
                .map(|(g, _)| g as u32)
                .collect();
            if let Ok(mut board) = self.usage.write() {
                board.retain(|shard, _| led.contains(shard));
            }
            round += 1;
            let slow = round.is_multiple_of(SLOW_EVERY);
            if round.is_multiple_of(TRIM_EVERY) {
                for &shard in &led {
                    self.trim_events(
                        shard,
                        now_ms().saturating_sub(EVENT_RETENTION.as_millis() as u64),
                    )
                    .await;
                }
            }
            let rounds = led.iter().map(|&shard| self.round(shard, slow));
            let waiting: usize = futures::future::join_all(rounds).await.into_iter().sum();
            metrics().waiting.set(waiting as i64);
        }
    }

    /// Deletes each tenant's events older than `cutoff_ms` on `shard` (bounded per call).
    async fn trim_events(&self, shard: u32, cutoff_ms: u64) {
        let tenants: Vec<u64> = self
            .directory
            .read()
            .map(|d| d.names.keys().copied().collect())
            .unwrap_or_default();
        for tenant in tenants {
            let point = self
                .handle
                .inspect(u64::from(shard), move |peer| {
                    peer.sm.trim_point(tenant, cutoff_ms, TRIM_SCAN)
                })
                .await;
            let Ok(Ok(Some((below_index, below_pos)))) = point else {
                continue;
            };
            let cmd = ShardCommand {
                command: Some(ShardCmd::TrimEvents(TrimEvents {
                    tenant_id: tenant,
                    below_index,
                    below_pos,
                })),
            };
            if let Err(e) = self
                .handle
                .propose(u64::from(shard), cmd.encode_to_vec())
                .await
            {
                debug!(shard, tenant, error = ?e, "event trim not committed");
            }
        }
    }

    /// One round on `shard`; answers how many orders wait for waybill numbers.
    async fn round(&self, shard: u32, slow: bool) -> usize {
        let from = self
            .resume
            .lock()
            .map(|r| r.get(&shard).cloned().unwrap_or_default())
            .unwrap_or_default();
        let snapshot = match self
            .handle
            .inspect(u64::from(shard), move |peer| {
                read_snapshot(&peer.sm, slow, from)
            })
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                warn!(shard, error = %e, "pipeline could not read the shard");
                return 0;
            }
            Err(_) => return 0,
        };
        if let Ok(mut r) = self.resume.lock() {
            r.entry(shard).or_default().extend(snapshot.next.clone());
        }
        let usage: Vec<RangeUsage> = snapshot
            .books
            .iter()
            .flat_map(|(_, _, b)| b.usage.iter().cloned())
            .collect();
        if let Ok(mut board) = self.usage.write() {
            board.insert(shard, usage);
        }
        let mut free: HashMap<(u64, String), u64> = snapshot
            .books
            .iter()
            .map(|(t, c, b)| ((*t, c.clone()), free_numbers(b)))
            .collect();
        let mut demand: HashSet<(u64, String)> = snapshot
            .books
            .iter()
            .filter(|(_, _, b)| b.next_seq > 0)
            .map(|(t, c, _)| (*t, c.clone()))
            .collect();
        let mut items = Vec::new();
        let mut waiting = 0;
        for (stage, records) in &snapshot.stages {
            for rec in records {
                waiting += usize::from(*stage == Stage::AwaitWaybill);
                self.decide(shard, *stage, rec, &mut free, &mut demand, &mut items);
            }
        }
        self.refill(shard, &snapshot.books, &free, &demand);
        if !items.is_empty() {
            let n = items.len();
            let cmd = ShardCommand {
                command: Some(ShardCmd::Actions(ActionBatch {
                    at_ms: now_ms(),
                    items,
                })),
            };
            match self
                .handle
                .propose(u64::from(shard), cmd.encode_to_vec())
                .await
            {
                Ok(Ok(_)) => metrics().proposed.inc_by(n as u64),
                Ok(Err(e)) => warn!(shard, error = %e, "pipeline actions failed to apply"),
                Err(e) => debug!(shard, error = ?e, "pipeline proposal not committed"),
            }
        }
        waiting
    }

    /// The next steps of one order, appended to `items` (planned by `surge_shard::planner`
    /// with the tenant's rules and which books the coordinators said are used up, as of now).
    fn decide(
        &self,
        shard: u32,
        stage: Stage,
        rec: &OrderRecord,
        free: &mut HashMap<(u64, String), u64>,
        demand: &mut HashSet<(u64, String)>,
        items: &mut Vec<OrderAction>,
    ) {
        let rules = self
            .directory
            .read()
            .map(|d| d.rules_of(rec.tenant_id))
            .unwrap_or_default();
        let now = Instant::now();
        let exhausted = |(tenant, carrier): &(u64, String)| {
            self.leasing.lock().is_ok_and(|l| {
                l.exhausted
                    .get(&(shard, *tenant, carrier.clone()))
                    .is_some_and(|until| *until > now)
            })
        };
        planner::plan(&rules, stage, rec, free, demand, &exhausted, items);
    }

    /// Asks the coordinators for the next block of every (tenant, carrier) running low.
    fn refill(
        &self,
        shard: u32,
        books: &[(u64, String, WaybillBook)],
        free: &HashMap<(u64, String), u64>,
        demand: &HashSet<(u64, String)>,
    ) {
        for (tenant, carrier) in demand {
            if free.get(&(*tenant, carrier.clone())).copied().unwrap_or(0) >= LOW_WATER {
                continue;
            }
            let book = books.iter().find(|(t, c, _)| t == tenant && c == carrier);
            if book.is_some_and(|(_, _, b)| b.blocks.len() >= MAX_BLOCKS) {
                continue; // the shard holds as many blocks as it keeps; it asks once one is used
            }
            let seq = book.map_or(0, |(_, _, b)| b.next_seq);
            let key: BookKey = (shard, *tenant, carrier.clone());
            {
                let Ok(mut leasing) = self.leasing.lock() else {
                    return;
                };
                let waiting = leasing
                    .exhausted
                    .get(&key)
                    .is_some_and(|until| *until > Instant::now());
                if waiting || !leasing.in_flight.insert(key.clone()) {
                    continue;
                }
            }
            let (client, handle, leasing) = (
                self.client.clone(),
                self.handle.clone(),
                self.leasing.clone(),
            );
            tokio::spawn(async move {
                let outcome = lease_block(&client, &handle, &key, seq).await;
                if let Ok(mut l) = leasing.lock() {
                    l.in_flight.remove(&key);
                    if outcome == LeaseOutcome::Exhausted {
                        l.exhausted.insert(key, Instant::now() + EXHAUSTED_BACKOFF);
                    }
                }
            });
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum LeaseOutcome {
    Added,
    Exhausted,
    Failed,
}

async fn lease_block(
    client: &MetaClient,
    handle: &ShardHandle,
    key: &BookKey,
    seq: u64,
) -> LeaseOutcome {
    let (shard, tenant, carrier) = key.clone();
    let req = LeaseWaybillsRequest {
        shard,
        tenant_id: tenant,
        carrier: carrier.clone(),
        seq,
    };
    let resp = client
        .call(|ch| {
            let req = req.clone();
            async move { NodeServiceClient::new(ch).lease_waybills(req).await }
        })
        .await;
    let block = match resp {
        Ok(r) => r.block,
        Err(s) => {
            warn!(shard, tenant, carrier, code = ?s.code(), message = s.message(), "waybill lease failed");
            return LeaseOutcome::Failed;
        }
    };
    let Some(block) = block else {
        metrics().exhausted.inc();
        warn!(
            shard,
            tenant, carrier, "no waybill numbers left for this carrier; orders wait on hold"
        );
        return LeaseOutcome::Exhausted;
    };
    // The shard's log takes only a block a coordinator could have leased.
    if !surge_shard::waybills::sane_block(&block) {
        warn!(
            shard,
            tenant,
            carrier,
            from = block.from,
            to = block.to,
            width = block.width,
            "waybill lease answered an impossible block; refused"
        );
        return LeaseOutcome::Failed;
    }
    info!(
        shard,
        tenant,
        carrier,
        seq,
        from = block.from,
        to = block.to,
        "waybill block leased"
    );
    let cmd = ShardCommand {
        command: Some(ShardCmd::AddBlock(AddWaybillBlock {
            tenant_id: tenant,
            carrier,
            seq,
            block: Some(block),
        })),
    };
    match handle.propose(u64::from(shard), cmd.encode_to_vec()).await {
        Ok(Ok(Applied::BlockAdded(true))) => {
            metrics().leased_blocks.inc();
            LeaseOutcome::Added
        }
        _ => LeaseOutcome::Failed,
    }
}

/// Reads what a round needs. Orders waiting for a carrier rule are looked at only on
/// `slow` rounds: they move only when the tenant's rules change.
fn read_snapshot<E: surge_raftstore::Engine>(
    sm: &surge_shard::ShardSm<E>,
    slow: bool,
    from: HashMap<Stage, u64>,
) -> Result<Snapshot, EngineError> {
    let mut stages = Vec::with_capacity(Stage::ALL.len());
    let mut next = HashMap::new();
    for stage in Stage::ALL {
        if stage == Stage::AwaitCarrier && !slow {
            continue;
        }
        let start = from.get(&stage).copied().unwrap_or(0);
        let (records, resume) = sm.pending(stage, start, TENANT_SHARE, STAGE_BATCH)?;
        next.insert(stage, resume);
        stages.push((stage, records));
    }
    Ok(Snapshot {
        stages,
        books: sm.books()?,
        next,
    })
}
