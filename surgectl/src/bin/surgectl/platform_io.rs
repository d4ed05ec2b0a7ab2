//! `order import` and `order export-shipments`: platform order files in, the platform's
//! shipment confirmations out.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::ProgressBar;
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::{CancelOrderRequest, OrderStatus};
use surge_platforms::{map_lines, shipment_request, Mapped, Platform, Shipment};
use surge_proto::v1::submit_result::Outcome;
use surge_proto::v1::Order;

use crate::calls::{order_client as client, status_error};
use crate::elastic::bar;
use crate::order_view::error_code_name;
use crate::output::{emit, print_json, print_table, Format};

/// Files larger than this are refused before reading (split them).
const MAX_IMPORT_BYTES: u64 = 1 << 30;
/// Refusals printed one by one; past this only counted.
const MAX_PRINTED_REFUSALS: usize = 50;

#[derive(Default)]
struct Tally {
    records: u64,
    accepted: u64,
    retries: u64,
    refused: u64,
    malformed: u64,
    cancelled: u64,
    cancel_unknown: u64,
    printed: usize,
}

impl Tally {
    fn refuse(&mut self, line: usize, what: &str) {
        self.refused += 1;
        self.say(format!("line {line}: refused: {what}"));
    }

    fn say(&mut self, message: String) {
        self.printed += 1;
        if self.printed <= MAX_PRINTED_REFUSALS {
            eprintln!("{message}");
        }
    }
}

/// Submits every order of `file` (JSON Lines of `platform`'s order records) in batches; a
/// record the platform cancelled cancels the order if it was imported before. Importing the
/// same file again stores nothing twice: each order comes back as a retry.
pub(crate) async fn import(
    nodes: &[String],
    api_key: &str,
    format: Format,
    platform: &str,
    file: &Path,
    batch: usize,
) -> anyhow::Result<()> {
    let platform: Platform = platform.parse().map_err(anyhow::Error::msg)?;
    let size = std::fs::metadata(file)
        .with_context(|| format!("{}", file.display()))?
        .len();
    if size > MAX_IMPORT_BYTES {
        bail!("{}: {size} bytes; split files over 1 GiB", file.display());
    }
    let text = std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))?;
    let c = client(nodes, api_key)?;
    let started = Instant::now();
    let mut tally = Tally::default();
    let records = text.lines().filter(|l| !l.trim().is_empty()).count();
    let bar = bar(records as u64, "import");
    let batch = batch.clamp(1, surge_proto::validate::MAX_BATCH);
    let mut pending: Vec<(usize, Order)> = Vec::with_capacity(batch);
    let mut cancels: Vec<(usize, String)> = Vec::new();
    for (line, result) in map_lines(platform, &text) {
        tally.records += 1;
        match result {
            Err(e) => {
                tally.malformed += 1;
                tally.say(format!("{e}"));
                bar.inc(1);
            }
            Ok(Mapped::Cancelled {
                external_order_id, ..
            }) => cancels.push((line, external_order_id)),
            Ok(Mapped::Order(order)) => {
                pending.push((line, *order));
                if pending.len() == batch {
                    submit(&c, &mut pending, &mut tally, &bar).await?;
                }
            }
        }
    }
    submit(&c, &mut pending, &mut tally, &bar).await?;
    for (line, external) in cancels {
        match c.get_by_external(platform.name(), &external).await {
            Ok(view) => {
                let req = CancelOrderRequest {
                    order_id: view.order_id.clone(),
                    reason: format!("cancelled on {}", platform.name()),
                };
                c.on_order(&view.order_id, req, |ch, r| async move {
                    OrderServiceClient::new(ch).cancel_order(r).await
                })
                .await
                .map_err(status_error)
                .with_context(|| format!("line {line}: cancel {external}"))?;
                tally.cancelled += 1;
            }
            Err(status) if status.code() == tonic::Code::NotFound => tally.cancel_unknown += 1,
            Err(status) => return Err(status_error(status)).context(format!("line {line}")),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    match format {
        Format::Json => print_json(&serde_json::json!({
            "platform": platform.name(), "records": tally.records, "accepted": tally.accepted,
            "retries": tally.retries, "refused": tally.refused, "malformed": tally.malformed,
            "cancelled": tally.cancelled, "cancelled_never_imported": tally.cancel_unknown,
            "seconds": seconds,
        })),
        Format::Table => print_table(
            &[
                "records",
                "accepted",
                "retries",
                "refused",
                "malformed",
                "cancelled",
                "seconds",
            ],
            &[vec![
                tally.records.to_string(),
                tally.accepted.to_string(),
                tally.retries.to_string(),
                tally.refused.to_string(),
                tally.malformed.to_string(),
                format!(
                    "{} (+{} never imported)",
                    tally.cancelled, tally.cancel_unknown
                ),
                format!("{seconds:.1}"),
            ]],
        ),
    }
    if tally.refused + tally.malformed > 0 {
        bail!(
            "{} of {} records refused (the lines above name the field)",
            tally.refused + tally.malformed,
            tally.records
        );
    }
    Ok(())
}

async fn submit(
    c: &surge_client::OrderClient,
    pending: &mut Vec<(usize, Order)>,
    tally: &mut Tally,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let (lines, orders): (Vec<usize>, Vec<Order>) = pending.drain(..).unzip();
    let n = orders.len() as u64;
    let results = c
        .submit_batch(orders)
        .await
        .map_err(status_error)
        .context("order import")?;
    for r in results {
        let line = lines.get(r.index as usize).copied().unwrap_or(0);
        match r.outcome {
            Some(Outcome::Accepted(a)) if a.duplicate => tally.retries += 1,
            Some(Outcome::Accepted(_)) => tally.accepted += 1,
            Some(Outcome::Rejected(rej)) => {
                let code = error_code_name(rej.code);
                tally.refuse(line, &format!("{code} {}", rej.message));
            }
            None => tally.refuse(line, "no answer"),
        }
    }
    bar.inc(n);
    Ok(())
}

/// Writes, for every order of `platform` that shipped, the confirmation request that platform
/// expects (one JSON object per line) to `out` or stdout, from the tenant's event stream; stops
/// once the stream has been quiet for `idle` seconds. `carrier_codes` maps surge's carrier
/// names to the platform's codes (`SF=44`); unmapped names go as they are.
pub(crate) async fn export_shipments(
    nodes: &[String],
    api_key: &str,
    platform: &str,
    carrier_codes: &[String],
    out: Option<&Path>,
    idle: u64,
) -> anyhow::Result<()> {
    let platform: Platform = platform.parse().map_err(anyhow::Error::msg)?;
    let mut codes: HashMap<&str, &str> = HashMap::new();
    for pair in carrier_codes {
        let (name, code) = pair
            .split_once('=')
            .with_context(|| format!("--carrier-code {pair:?}: expected NAME=CODE, e.g. SF=44"))?;
        codes.insert(name.trim(), code.trim());
    }
    let c = client(nodes, api_key)?;
    // Order id → (external id, carrier, waybill): an order that shipped, once.
    let mut shipped: BTreeMap<String, Shipment> = BTreeMap::new();
    let mut cursor = String::new();
    let idle = Duration::from_secs(idle.clamp(1, 600));
    let deadline = Instant::now() + Duration::from_secs(3600);
    // Each reconnection tries the next node.
    let mut turn = 0usize;
    'stream: while Instant::now() < deadline {
        turn += 1;
        let Some(mut stream) = crate::watch::open_stream(&c, turn, &cursor).await? else {
            continue;
        };
        loop {
            match tokio::time::timeout(idle, stream.message()).await {
                Err(_) => break 'stream,
                Ok(Ok(Some(batch))) => {
                    for e in batch.events {
                        let to_shipped = e.to == OrderStatus::Shipped as i32;
                        if to_shipped && e.platform == platform.name() {
                            let code = codes
                                .get(e.carrier.as_str())
                                .map_or(e.carrier.clone(), |c| (*c).to_owned());
                            shipped.entry(e.order_id).or_insert(Shipment {
                                external_order_id: e.external_order_id,
                                carrier_code: code,
                                waybill: e.waybill,
                            });
                        }
                    }
                    cursor = batch.cursor;
                }
                // The node went away: resume from the cursor on another.
                Ok(_) => break,
            }
        }
    }
    match out {
        Some(path) => {
            let file =
                std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            for s in shipped.values() {
                writeln!(writer, "{}", shipment_request(platform, s))?;
            }
            writer.flush()?;
        }
        None => {
            for s in shipped.values() {
                emit(&shipment_request(platform, s).to_string());
            }
        }
    }
    eprintln!(
        "{} shipment confirmations for {}",
        shipped.len(),
        platform.name()
    );
    Ok(())
}
