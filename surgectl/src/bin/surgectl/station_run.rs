//! `station run`: the printing-station agent ([`surgectl::station`]) for the tenant of the
//! API key, printing to a ZPL printer or a folder.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use surgectl::station::{self, Sink, StationConfig};

use crate::calls::{order_client as orders, status_error};
use crate::output::{emit, print_json, Format};

pub(crate) struct StationArgs {
    pub tenant: String,
    pub station: String,
    pub printer: Option<String>,
    pub out_dir: Option<PathBuf>,
    pub window: u32,
    pub exit_after_idle: Option<u64>,
}

pub(crate) async fn station_run(
    nodes: &[String],
    api_key: &str,
    format: Format,
    args: StationArgs,
) -> anyhow::Result<()> {
    let sink = match (args.printer, args.out_dir) {
        (Some(p), None) => Sink::Printer(p),
        (None, Some(d)) => Sink::Dir(d),
        _ => anyhow::bail!("give exactly one of --printer HOST:9100 and --out-dir DIR"),
    };
    let client = Arc::new(orders(nodes, api_key)?);
    // A station prints what its key's tenant ships: make sure that is the tenant it was
    // started for, rather than printing another merchant's labels.
    let map = client.shard_map().await.map_err(status_error)?;
    if map.tenant_name != args.tenant {
        anyhow::bail!(
            "--tenant {}: the API key belongs to tenant {:?} (id {}); refusing to print its labels",
            args.tenant,
            map.tenant_name,
            map.tenant_id
        );
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    });
    let config = StationConfig {
        station: args.station.clone(),
        sink,
        window: args.window,
        exit_after_idle: args.exit_after_idle.map(Duration::from_secs),
    };
    let report = station::run(client, config, stop)
        .await
        .map_err(status_error)?;
    match format {
        Format::Json => print_json(&report),
        Format::Table => emit(&format!(
            "station {}: {} labels printed ({} reprints), {} redeliveries skipped, {} acked, {} acks refused, {} printer errors",
            args.station, report.printed, report.reprints, report.duplicates_skipped, report.acked, report.ack_refused, report.printer_errors
        )),
    }
    Ok(())
}
