//! `order watch`: the tenant's order events as JSON lines, following the cluster from node to
//! node with the stream's cursor.

use std::time::{Duration, Instant};

use surge_client::OrderClient;
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::{WatchOrdersRequest, WatchOrdersResponse};
use tonic::Streaming;

use crate::calls::{order_client as orders, status_error};
use crate::order_view::status_name;

/// The tenant's event stream from `cursor` at the `turn`-th node of the shard map (so each
/// reconnection tries the next), or `None` after a pause when that node does not answer.
pub(crate) async fn open_stream(
    c: &OrderClient,
    turn: usize,
    cursor: &str,
) -> anyhow::Result<Option<Streaming<WatchOrdersResponse>>> {
    let addresses = c.node_addresses().await.map_err(status_error)?;
    let address = &addresses[turn % addresses.len().max(1)];
    let (ch, req) = c
        .stream_request(
            address,
            WatchOrdersRequest {
                cursor: cursor.to_owned(),
            },
        )
        .map_err(status_error)?;
    match OrderServiceClient::new(ch).watch_orders(req).await {
        Ok(s) => Ok(Some(s.into_inner())),
        Err(_) => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok(None)
        }
    }
}

/// Streams the tenant's order events as JSON lines; stops after `max_events` or `seconds`.
pub(crate) async fn watch(
    nodes: &[String],
    api_key: &str,
    cursor: String,
    max_events: u64,
    seconds: u64,
) -> anyhow::Result<()> {
    let c = orders(nodes, api_key)?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut cursor = cursor;
    let mut seen = 0u64;
    while seen < max_events && Instant::now() < deadline {
        let Some(mut stream) = open_stream(&c, seen as usize, &cursor).await? else {
            continue;
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = tokio::time::timeout(left, stream.message()).await;
            let Ok(Ok(Some(batch))) = next else { break };
            for e in &batch.events {
                println!(
                    "{}",
                    serde_json::json!({
                        "order_id": e.order_id, "shard": e.shard, "index": e.index, "pos": e.pos,
                        "from": status_name(e.from), "to": status_name(e.to), "action": e.action,
                        "actor": e.actor, "reason": e.reason, "at_ms": e.at_ms,
                        "external_order_id": e.external_order_id, "waybill": e.waybill,
                    })
                );
            }
            seen += batch.events.len() as u64;
            cursor = batch.cursor;
            if seen >= max_events {
                break;
            }
        }
    }
    eprintln!("cursor: {cursor}");
    Ok(())
}
