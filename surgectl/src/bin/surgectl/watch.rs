//! `order watch`: the tenant's order events as JSON lines, following the cluster from node to
//! node with the stream's cursor.

use std::time::{Duration, Instant};

use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::WatchOrdersRequest;

use crate::calls::{order_client as orders, status_error};
use crate::order_view::status_name;

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
        let addresses = c.node_addresses().await.map_err(status_error)?;
        let address = &addresses[(seen as usize) % addresses.len().max(1)];
        let (ch, req) = c
            .stream_request(
                address,
                WatchOrdersRequest {
                    cursor: cursor.clone(),
                },
            )
            .map_err(status_error)?;
        let mut stream = match OrderServiceClient::new(ch).watch_orders(req).await {
            Ok(s) => s.into_inner(),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
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
