//! The printing-station agent (`surgectl station run`, DESIGN.md §5): it subscribes to every
//! node for its tenant's print jobs, writes each job's ZPL to a raw TCP 9100 printer or to a
//! file, then acks it. A job is delivered at least once and printed once: the agent dedups by
//! job id (in memory, and by the file's presence with `--out-dir`), and acks only after the
//! write, so a job it never printed goes to another station when its lease lapses.
//!
//! Nodes come and go while it runs (scale-out, drains): it re-reads the shard map every few
//! seconds, subscribes to nodes that joined and drops nodes that left, so the jobs of shards
//! whose leaders moved to a new node keep flowing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use surge_grpc::v1::print_service_client::PrintServiceClient;
use surge_grpc::v1::{AckJobsRequest, JobAck, PrintJob, SubscribeRequest};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use surge_client::OrderClient;

/// Where labels go.
#[derive(Clone, Debug)]
pub enum Sink {
    /// A raw TCP printer (JetDirect, port 9100).
    Printer(String),
    /// `<dir>/<job id>.zpl`, plus a line per job in `<dir>/printed.log`.
    Dir(PathBuf),
}

#[derive(Clone, Debug)]
pub struct StationConfig {
    pub station: String,
    pub sink: Sink,
    /// Jobs in flight per node.
    pub window: u32,
    /// Stop after this long without a job (None: run until stopped).
    pub exit_after_idle: Option<Duration>,
}

/// What a station did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StationReport {
    pub printed: u64,
    pub reprints: u64,
    /// Deliveries of jobs already printed here (redelivered after a leader change): acked again,
    /// not printed again.
    pub duplicates_skipped: u64,
    pub acked: u64,
    /// Acks the cluster refused for good (e.g. the order was cancelled meanwhile).
    pub ack_refused: u64,
    pub printer_errors: u64,
}

/// Job ids remembered for dedup.
const REMEMBERED: usize = 200_000;
/// Most acks per call, and how long an ack waits for company.
const ACK_BATCH: usize = 200;
const ACK_EVERY: Duration = Duration::from_millis(50);
/// How long an ack of a printed label is retried before it is given up. Long past the job's
/// lease: an ack that lands late still marks the job printed, whereas one given up lets the
/// job print again at another station.
const ACK_GIVE_UP: Duration = Duration::from_secs(600);
/// Most acks waiting at once (the oldest is given up beyond it).
const MAX_PENDING_ACKS: usize = 100_000;
const RESUBSCRIBE: Duration = Duration::from_millis(500);
/// How often the station looks for nodes that joined or left.
const NODES_EVERY: Duration = Duration::from_secs(3);
const PRINTER_TIMEOUT: Duration = Duration::from_secs(5);

struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    fn insert(&mut self, id: &str) {
        if self.ids.insert(id.to_string()) {
            self.order.push_back(id.to_string());
        }
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }
}

/// Keeps one subscription per node alive, feeding jobs into `tx`, until `stop`.
async fn subscribe_node(
    client: Arc<OrderClient>,
    address: String,
    config: StationConfig,
    tx: mpsc::Sender<PrintJob>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let req = SubscribeRequest {
            station: config.station.clone(),
            window: config.window,
        };
        let stream = match client.stream_request(&address, req) {
            Ok((ch, request)) => PrintServiceClient::new(ch).subscribe(request).await,
            Err(s) => Err(s),
        };
        match stream {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        next = stream.message() => match next {
                            Ok(Some(job)) => {
                                if tx.send(job).await.is_err() {
                                    return;
                                }
                            }
                            Ok(None) => break,
                            Err(s) => {
                                warn!(%address, code = ?s.code(), message = s.message(), "print stream broke; resubscribing");
                                break;
                            }
                        }
                    }
                }
            }
            Err(s)
                if s.code() == tonic::Code::InvalidArgument
                    || s.code() == tonic::Code::Unauthenticated =>
            {
                warn!(%address, message = s.message(), "subscription refused");
                return;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(RESUBSCRIBE) => {}
        }
    }
}

/// Writes one label. A printer gets the raw ZPL on a fresh connection; a file is written whole
/// under a temporary name, then renamed, so a crash never leaves half a label under the job id.
async fn write_label(sink: &Sink, job: &PrintJob) -> std::io::Result<()> {
    match sink {
        Sink::Printer(address) => {
            let write = async {
                let mut conn = TcpStream::connect(address).await?;
                conn.write_all(job.zpl.as_bytes()).await?;
                conn.flush().await?;
                conn.shutdown().await
            };
            tokio::time::timeout(PRINTER_TIMEOUT, write)
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "printer timed out")
                })?
        }
        Sink::Dir(dir) => {
            let path = dir.join(format!("{}.zpl", job.job_id));
            let tmp = dir.join(format!(".{}.zpl.tmp", job.job_id));
            tokio::fs::write(&tmp, job.zpl.as_bytes()).await?;
            tokio::fs::rename(&tmp, &path).await?;
            let line = format!(
                "{}\t{}\t{}\t{}\t{}\n",
                job.job_id, job.order_id, job.carrier, job.waybill, job.reprint
            );
            let mut log = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("printed.log"))
                .await?;
            log.write_all(line.as_bytes()).await
        }
    }
}

fn already_written(sink: &Sink, job_id: &str) -> bool {
    match sink {
        Sink::Dir(dir) => dir.join(format!("{job_id}.zpl")).exists(),
        Sink::Printer(_) => false,
    }
}

/// Runs the station until `stop` (or until idle for `exit_after_idle`).
pub async fn run(
    client: Arc<OrderClient>,
    config: StationConfig,
    stop: watch::Receiver<bool>,
) -> Result<StationReport, tonic::Status> {
    if let Sink::Dir(dir) = &config.sink {
        std::fs::create_dir_all(dir).map_err(|e| {
            tonic::Status::invalid_argument(format!("out-dir: {}: {e}", dir.display()))
        })?;
    }
    let nodes = client.node_addresses().await?;
    let (tx, mut rx) = mpsc::channel::<PrintJob>(1024);
    let (sub_stop_tx, sub_stop) = watch::channel(false);
    let mut tasks: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let follow = |tasks: &mut HashMap<String, tokio::task::JoinHandle<()>>, nodes: Vec<String>| {
        tasks.retain(|address, task| {
            let keep = nodes.contains(address);
            if !keep {
                info!(%address, "node left the cluster; unsubscribing");
                task.abort();
            }
            keep
        });
        for address in nodes {
            if tasks.contains_key(&address) {
                continue;
            }
            let task = tokio::spawn(subscribe_node(
                client.clone(),
                address.clone(),
                config.clone(),
                tx.clone(),
                sub_stop.clone(),
            ));
            tasks.insert(address, task);
        }
    };
    follow(&mut tasks, nodes);
    let mut nodes_tick = tokio::time::interval(NODES_EVERY);
    nodes_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!(station = config.station, "station running");
    let mut report = StationReport::default();
    let mut seen = Seen {
        ids: HashSet::new(),
        order: VecDeque::new(),
    };
    // Acks waiting to be sent: job → (order, first try).
    let mut acks: HashMap<String, (String, Instant)> = HashMap::new();
    let mut last_job = Instant::now();
    let mut stop = stop;
    loop {
        let idle_left = config
            .exit_after_idle
            .map(|d| d.saturating_sub(last_job.elapsed()));
        if idle_left == Some(Duration::ZERO) && acks.is_empty() {
            break;
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = nodes_tick.tick() => {
                if let Ok(map) = client.refresh().await {
                    let mut now: Vec<String> = map.nodes.into_iter().map(|n| n.address).collect();
                    now.sort();
                    follow(&mut tasks, now);
                }
                continue;
            }
            job = rx.recv() => {
                let Some(job) = job else { break };
                last_job = Instant::now();
                if seen.ids.contains(&job.job_id) || already_written(&config.sink, &job.job_id) {
                    report.duplicates_skipped += 1;
                } else {
                    match write_label(&config.sink, &job).await {
                        Ok(()) => {
                            report.printed += 1;
                            if job.reprint > 0 {
                                report.reprints += 1;
                            }
                        }
                        Err(e) => {
                            // Not acked: the lease lapses and the job goes to another station.
                            report.printer_errors += 1;
                            warn!(job_id = job.job_id, error = %e, "printing failed");
                            continue;
                        }
                    }
                }
                seen.insert(&job.job_id);
                acks.entry(job.job_id).or_insert((job.order_id, Instant::now()));
                if acks.len() < ACK_BATCH {
                    continue;
                }
            }
            _ = tokio::time::sleep(ACK_EVERY) => {}
        }
        send_acks(&client, &config.station, &mut acks, &mut report).await;
    }
    send_acks(&client, &config.station, &mut acks, &mut report).await;
    let _ = sub_stop_tx.send(true);
    for (_, t) in tasks {
        let _ = t.await;
    }
    Ok(report)
}

async fn send_acks(
    client: &OrderClient,
    station: &str,
    acks: &mut HashMap<String, (String, Instant)>,
    report: &mut StationReport,
) {
    acks.retain(|job, (_, since)| {
        let keep = since.elapsed() < ACK_GIVE_UP;
        if !keep {
            warn!(
                job_id = job,
                "ack given up; the job may print again elsewhere"
            );
        }
        keep
    });
    while acks.len() > MAX_PENDING_ACKS {
        let oldest = acks
            .iter()
            .min_by_key(|(_, (_, since))| *since)
            .map(|(job, _)| job.clone());
        match oldest {
            Some(job) => {
                warn!(
                    job_id = job,
                    "too many acks waiting; the oldest is given up"
                );
                acks.remove(&job);
            }
            None => break,
        }
    }
    if acks.is_empty() {
        return;
    }
    let batch: Vec<JobAck> = acks
        .iter()
        .take(ACK_BATCH)
        .map(|(job, (order, _))| JobAck {
            job_id: job.clone(),
            order_id: order.clone(),
        })
        .collect();
    let req = AckJobsRequest {
        station: station.to_string(),
        acks: batch.clone(),
    };
    let answer = client
        .on_any(req, |ch, r| async move {
            PrintServiceClient::new(ch).ack_jobs(r).await
        })
        .await;
    let Ok(answer) = answer else { return };
    for (ack, result) in batch.iter().zip(answer.results) {
        if result.starts_with("retry") {
            continue;
        }
        acks.remove(&ack.job_id);
        if result == "printed" || result == "already printed" {
            report.acked += 1;
        } else {
            report.ack_refused += 1;
            warn!(
                job_id = ack.job_id,
                order_id = ack.order_id,
                result,
                "ack refused"
            );
        }
    }
}
