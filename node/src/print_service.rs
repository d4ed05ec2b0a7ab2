//! `PrintService`: warehouse printing stations (DESIGN.md §5). A station subscribes to every
//! node; each node leases the pending jobs of the shards it leads to the station through the
//! shard's log (so a lease outlives a leader change), renders them to ZPL and streams them. The
//! station prints, then acks; the ack marks the order LABEL_PRINTED and empties the job from
//! the outbox. A job whose lease lapses goes to the next station that asks.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus::IntCounterVec;
use surge_grpc::v1::order_action::Kind;
use surge_grpc::v1::print_service_client::PrintServiceClient;
use surge_grpc::v1::print_service_server::PrintService;
use surge_grpc::v1::{
    AckJobsRequest, AckJobsResponse, Empty, JobAck, JobDone, JobLease, OrderAction, PrintJob,
    ReprintRequest, ReprintResponse, SubscribeRequest,
};
use surge_grpc::ApiError;
use surge_shard::ActionOutcome;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::actions::{self, now_ms, refusal_status};
use crate::dispatch::{forward_failed, Route, Target};
use crate::order_api::{Need, OrderApi};
use crate::order_service::field_error;

/// How long a station holds a job before another may get it.
pub const LEASE: Duration = Duration::from_secs(30);
const DEFAULT_WINDOW: u32 = 50;
const MAX_WINDOW: u32 = 500;
const POLL: Duration = Duration::from_millis(100);
/// Job ids a stream remembers having sent (so it does not send one twice under a live lease).
const SENT_MEMORY: usize = 10_000;
/// Most acks per call.
const MAX_ACKS: usize = 1000;

struct Metrics {
    jobs: IntCounterVec,
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let jobs = IntCounterVec::new(
            prometheus::Opts::new(
                "surge_print_jobs_total",
                "Print jobs by what happened: delivered (leased and sent to a station), printed (acked), reprint (requested)",
            ),
            &["event"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let _ = prometheus::default_registry().register(Box::new(jobs.clone()));
        Metrics { jobs }
    })
}

fn check_station(station: &str) -> Result<(), Status> {
    let ok = (1..=64).contains(&station.len())
        && station
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(field_error("station", "1-64 of [A-Za-z0-9._-]"))
    }
}

pub struct PrintApi {
    api: Arc<OrderApi>,
}

impl PrintApi {
    pub fn new(api: Arc<OrderApi>) -> PrintApi {
        PrintApi { api }
    }
}

/// What one subscription remembers.
struct Sent {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Sent {
    fn insert(&mut self, id: String) {
        if self.ids.insert(id.clone()) {
            self.order.push_back(id);
        }
        while self.order.len() > SENT_MEMORY {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }
}

/// Leases and sends the jobs of one led shard; answers how many were sent.
async fn deliver_shard(
    api: &OrderApi,
    tenant: u64,
    shard: u32,
    station: &str,
    window: usize,
    sent: &mut Sent,
    tx: &mpsc::Sender<Result<PrintJob, Status>>,
) -> Result<usize, ()> {
    let now = now_ms();
    let jobs = api
        .handle
        .inspect(u64::from(shard), move |peer| {
            peer.sm.jobs(tenant, 4 * MAX_WINDOW as usize)
        })
        .await
        .map_err(|_| ())?
        .map_err(|_| ())?;
    let in_flight = jobs
        .iter()
        .filter(|j| {
            j.leased_to == station && j.lease_until_ms > now && sent.ids.contains(&j.job_id)
        })
        .count();
    let wanted: Vec<OrderAction> = jobs
        .iter()
        .filter(|j| {
            let free = j.leased_to.is_empty() || j.lease_until_ms <= now;
            let mine_unsent = j.leased_to == station && !sent.ids.contains(&j.job_id);
            free || mine_unsent
        })
        .take(window.saturating_sub(in_flight))
        .map(|j| OrderAction {
            tenant_id: tenant,
            expect_status: 0,
            order_id: j.order_id.clone(),
            actor: format!("station:{station}"),
            reason: String::new(),
            kind: Some(Kind::Lease(JobLease {
                job_id: j.job_id.clone(),
                station: station.to_string(),
                until_ms: now + LEASE.as_millis() as u64,
            })),
        })
        .collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let outcomes = actions::propose(&api.handle, shard, wanted)
        .await
        .map_err(|_| ())?;
    let rules = api
        .directory
        .read()
        .map(|d| d.rules_of(tenant))
        .unwrap_or_default();
    let mut n = 0;
    for outcome in outcomes {
        let ActionOutcome::Done(done) = outcome else {
            continue;
        };
        let Some(job) = done.job else { continue };
        let label = crate::labels::label_of(&done.record, &rules, job.reprint);
        let msg = PrintJob {
            job_id: job.job_id.clone(),
            order_id: job.order_id,
            waybill: done.record.waybill.clone(),
            carrier: done.record.carrier.clone(),
            reprint: job.reprint,
            lease_until_ms: job.lease_until_ms,
            zpl: api.renderer.zpl(&label),
        };
        if tx.send(Ok(msg)).await.is_err() {
            return Err(());
        }
        metrics().jobs.with_label_values(&["delivered"]).inc();
        sent.insert(job.job_id);
        n += 1;
    }
    Ok(n)
}

impl PrintApi {
    /// Marks acked jobs printed on one shard, here or at its leader.
    async fn ack_shard(
        &self,
        original: &Request<AckJobsRequest>,
        tenant: u64,
        shard: u32,
        station: &str,
        acks: Vec<JobAck>,
    ) -> Vec<String> {
        let n = acks.len();
        let route = self.api.route(original, shard, "ack");
        let result: Result<Vec<String>, Status> = match route {
            Ok(Route::Local) => {
                let items = acks
                    .into_iter()
                    .map(|a| OrderAction {
                        tenant_id: tenant,
                        expect_status: 0,
                        order_id: a.order_id,
                        actor: format!("station:{station}"),
                        reason: String::new(),
                        kind: Some(Kind::Printed(JobDone {
                            job_id: a.job_id,
                            station: station.to_string(),
                        })),
                    })
                    .collect();
                match actions::propose(&self.api.handle, shard, items).await {
                    Ok(outcomes) => Ok(outcomes
                        .into_iter()
                        .map(|o| match o {
                            ActionOutcome::Done(d) if d.changed => {
                                metrics().jobs.with_label_values(&["printed"]).inc();
                                "printed".to_string()
                            }
                            ActionOutcome::Done(_) => "already printed".to_string(),
                            ActionOutcome::TooLate(_) => "shipped".to_string(),
                            ActionOutcome::Refused { message, .. } => message,
                        })
                        .collect()),
                    Err(actions::ProposeError::Request(e)) => {
                        Err(self.api.map_request(shard, e).into())
                    }
                    Err(actions::ProposeError::Apply(m)) => Err(ApiError::internal(m).into()),
                }
            }
            Ok(Route::Forward { address, channel }) => {
                let req = AckJobsRequest {
                    station: station.to_string(),
                    acks,
                };
                PrintServiceClient::new(channel)
                    .ack_jobs(self.api.forward_request(original, req))
                    .await
                    .map(|r| r.into_inner().results)
                    .map_err(|s| forward_failed(s, &address))
            }
            Err(s) => Err(s),
        };
        match result {
            Ok(r) if r.len() == n => r,
            Ok(_) => vec!["retry: incomplete answer".to_string(); n],
            Err(s) => vec![format!("retry: {}", s.message()); n],
        }
    }
}

#[tonic::async_trait]
impl PrintService for PrintApi {
    type SubscribeStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<PrintJob, Status>> + Send>>;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let tenant = self.api.tenant(&request, Need::Print).await?;
        let slot = self.api.open_stream(&request, tenant)?;
        let key = OrderApi::key_of(&request);
        let req = request.into_inner();
        check_station(&req.station)?;
        let window = match req.window {
            0 => DEFAULT_WINDOW,
            w if w > MAX_WINDOW => {
                return Err(field_error("window", format!("at most {MAX_WINDOW}")))
            }
            w => w,
        } as usize;
        info!(tenant, station = req.station, "station subscribed");
        let (tx, rx) = mpsc::channel(MAX_WINDOW as usize);
        let api = self.api.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut sent = Sent {
                ids: HashSet::new(),
                order: VecDeque::new(),
            };
            loop {
                if let Err(refused) = api.still_granted(&key, Need::Print) {
                    info!(
                        tenant,
                        station = req.station,
                        "station's key revoked; stream ended"
                    );
                    let _ = tx.send(Err(refused)).await;
                    return;
                }
                let led: Vec<u32> = api
                    .handle
                    .statuses()
                    .into_iter()
                    .filter(|(_, st)| st.is_leader())
                    .map(|(g, _)| g as u32)
                    .collect();
                let mut total = 0;
                for shard in led {
                    match deliver_shard(&api, tenant, shard, &req.station, window, &mut sent, &tx)
                        .await
                    {
                        Ok(n) => total += n,
                        Err(()) if tx.is_closed() => {
                            info!(tenant, station = req.station, "station left");
                            return;
                        }
                        Err(()) => {}
                    }
                }
                if total == 0 {
                    if tx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn ack_jobs(
        &self,
        request: Request<AckJobsRequest>,
    ) -> Result<Response<AckJobsResponse>, Status> {
        let tenant = self.api.tenant(&request, Need::Print).await?;
        let req = request.get_ref().clone();
        check_station(&req.station)?;
        if req.acks.len() > MAX_ACKS {
            return Err(field_error("acks", format!("at most {MAX_ACKS} per call")));
        }
        let mut by_shard: std::collections::BTreeMap<u32, Vec<(usize, JobAck)>> =
            Default::default();
        let mut results = vec![String::new(); req.acks.len()];
        for (i, ack) in req.acks.iter().enumerate() {
            match self.api.shard_of_id(&ack.order_id) {
                Ok(shard) => by_shard.entry(shard).or_default().push((i, ack.clone())),
                Err(s) => results[i] = s.message().to_string(),
            }
        }
        let calls = by_shard.into_iter().map(|(shard, items)| {
            let (request, station) = (&request, &req.station);
            async move {
                let (indexes, acks): (Vec<usize>, Vec<JobAck>) = items.into_iter().unzip();
                let answers = self.ack_shard(request, tenant, shard, station, acks).await;
                (indexes, answers)
            }
        });
        for (indexes, answers) in futures::future::join_all(calls).await {
            for (i, a) in indexes.into_iter().zip(answers) {
                results[i] = a;
            }
        }
        Ok(Response::new(AckJobsResponse { results }))
    }

    async fn reprint(
        &self,
        request: Request<ReprintRequest>,
    ) -> Result<Response<ReprintResponse>, Status> {
        let tenant = self.api.tenant(&request, Need::Print).await?;
        let req = request.get_ref().clone();
        if req.reason.trim().is_empty() {
            return Err(field_error(
                "reason",
                "required: say why the label is printed again",
            ));
        }
        if req.reason.len() > 256 {
            return Err(field_error("reason", "at most 256 bytes"));
        }
        let shard = self.api.shard_of_id(&req.order_id)?;
        match self.api.target(shard) {
            Target::Local => {
                let action = OrderAction {
                    tenant_id: tenant,
                    expect_status: 0,
                    order_id: req.order_id.clone(),
                    actor: "erp".into(),
                    reason: req.reason.clone(),
                    kind: Some(Kind::Reprint(Empty {})),
                };
                match self.api.act(shard, action).await? {
                    ActionOutcome::Done(done) => {
                        let job = done.job.unwrap_or_default();
                        if done.changed {
                            metrics().jobs.with_label_values(&["reprint"]).inc();
                            warn!(
                                tenant,
                                order_id = req.order_id,
                                job_id = job.job_id,
                                reprint = job.reprint,
                                reason = req.reason,
                                "label reprint requested"
                            );
                        }
                        Ok(Response::new(ReprintResponse {
                            job_id: job.job_id,
                            reprint: job.reprint,
                        }))
                    }
                    ActionOutcome::TooLate(_) => {
                        Err(ApiError::failed_precondition("the order has shipped").into())
                    }
                    ActionOutcome::Refused { code, message } => Err(refusal_status(code, message)),
                }
            }
            _ => match self.api.route(&request, shard, "lease")? {
                Route::Forward { address, channel } => PrintServiceClient::new(channel)
                    .reprint(self.api.forward_request(&request, req))
                    .await
                    .map_err(|s| forward_failed(s, &address)),
                Route::Local => Err(ApiError::unavailable("leadership moved; retry").into()),
            },
        }
    }
}
