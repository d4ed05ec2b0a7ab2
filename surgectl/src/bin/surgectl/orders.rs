//! `surgectl order ...`: a merchant's view through `surge-client`, for operators and the quick
//! start — submit a burst of sample orders, look one up, list by status.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use surge_client::sample;
use surge_proto::v1::submit_result::Outcome;
use surge_proto::v1::{ListOrdersRequest, OrderStatus, OrderView};

use crate::calls::{order_client as client, status_error};
use crate::output::{emit, print_json, print_table, Format};

/// Submits `count` sample orders in batches and shows where they went.
pub(crate) async fn burst(
    nodes: &[String],
    api_key: &str,
    format: Format,
    count: u64,
    batch: usize,
    run: Option<String>,
) -> anyhow::Result<()> {
    let client = client(nodes, api_key)?;
    let run = run.unwrap_or_else(|| format!("burst-{}", uuid::Uuid::new_v4().simple()));
    let started = Instant::now();
    let mut per_shard: BTreeMap<u32, u64> = BTreeMap::new();
    let (mut accepted, mut duplicates, mut rejected) = (0u64, 0u64, 0u64);
    let batch = batch.clamp(1, surge_proto::validate::MAX_BATCH) as u64;
    let mut next = 0u64;
    while next < count {
        let end = (next + batch).min(count);
        let orders = (next..end).map(|n| sample::order(&run, n)).collect();
        let results = client
            .submit_batch(orders)
            .await
            .map_err(status_error)
            .context("order burst")?;
        for r in results {
            match r.outcome {
                Some(Outcome::Accepted(a)) => {
                    *per_shard.entry(a.shard).or_default() += 1;
                    accepted += 1;
                    if a.duplicate {
                        duplicates += 1;
                    }
                }
                Some(Outcome::Rejected(rej)) => {
                    rejected += 1;
                    let code = crate::order_view::error_code_name(rej.code);
                    eprintln!("order {} refused: {code} {}", r.index, rej.message);
                }
                None => rejected += 1,
            }
        }
        next = end;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let map = client.shard_map().await.map_err(status_error)?;
    let routes: BTreeMap<u32, _> = map.shards.iter().map(|s| (s.id, s)).collect();
    match format {
        Format::Json => print_json(&serde_json::json!({
            "run": run,
            "accepted": accepted,
            "duplicates": duplicates,
            "rejected": rejected,
            "seconds": elapsed,
            "per_shard": per_shard.iter().map(|(shard, n)| serde_json::json!({
                "shard": shard,
                "orders": n,
                "leader": routes.get(shard).map(|r| r.leader),
                "replicas": routes.get(shard).map(|r| r.replicas.clone()),
            })).collect::<Vec<_>>(),
        })),
        Format::Table => {
            let rows: Vec<Vec<String>> = per_shard
                .iter()
                .map(|(shard, n)| {
                    let route = routes.get(shard);
                    vec![
                        shard.to_string(),
                        n.to_string(),
                        route.map(|r| r.leader.to_string()).unwrap_or_default(),
                        route
                            .map(|r| {
                                r.replicas
                                    .iter()
                                    .map(u64::to_string)
                                    .collect::<Vec<_>>()
                                    .join(",")
                            })
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(&["SHARD", "ORDERS", "LEADER", "REPLICAS (NODE IDS)"], &rows);
            let mut per_node: BTreeMap<u64, u64> = BTreeMap::new();
            for (shard, n) in &per_shard {
                for node in routes
                    .get(shard)
                    .map(|r| r.replicas.clone())
                    .unwrap_or_default()
                {
                    *per_node.entry(node).or_default() += n;
                }
            }
            emit("");
            for (node, n) in per_node {
                emit(&format!(
                    "node {node} holds a replica of {n} of these orders"
                ));
            }
            emit(&format!(
                "{accepted} orders accepted ({duplicates} were retries of earlier ones), {rejected} refused, over {} shards in {elapsed:.2} s ({:.0} orders/s); run tag {run}",
                per_shard.len(),
                accepted as f64 / elapsed.max(1e-9)
            ));
        }
    }
    if rejected > 0 {
        anyhow::bail!("{rejected} orders were refused");
    }
    Ok(())
}

fn print_orders(format: Format, orders: &[OrderView]) {
    match format {
        Format::Json => print_json(
            &orders
                .iter()
                .map(|o| {
                    let order = o.order.clone().unwrap_or_default();
                    serde_json::json!({
                        "order_id": o.order_id,
                        "shard": o.shard,
                        "status": OrderStatus::try_from(o.status).map(|s| s.as_str_name()).unwrap_or("?"),
                        "accepted_at_ms": o.accepted_at_ms,
                        "platform": order.platform,
                        "external_order_id": order.external_order_id,
                        "lines": order.lines.len(),
                        "payable_cents": order.totals.map(|t| t.payable_cents),
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Format::Table => {
            let rows: Vec<Vec<String>> = orders
                .iter()
                .map(|o| {
                    let order = o.order.clone().unwrap_or_default();
                    vec![
                        o.order_id.clone(),
                        o.shard.to_string(),
                        OrderStatus::try_from(o.status)
                            .map(|s| s.as_str_name().trim_start_matches("ORDER_STATUS_").to_string())
                            .unwrap_or_default(),
                        order.platform,
                        order.external_order_id,
                        order.totals.map(|t| t.payable_cents.to_string()).unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(
                &["ORDER", "SHARD", "STATUS", "PLATFORM", "EXTERNAL ID", "PAYABLE (CENTS)"],
                &rows,
            );
        }
    }
}

pub(crate) async fn list(
    nodes: &[String],
    api_key: &str,
    format: Format,
    status: OrderStatus,
    limit: u32,
) -> anyhow::Result<()> {
    let page = client(nodes, api_key)?
        .list(ListOrdersRequest {
            status: status as i32,
            page_size: limit,
            ..ListOrdersRequest::default()
        })
        .await
        .map_err(status_error)?;
    print_orders(format, &page.orders);
    Ok(())
}

/// How many of the tenant's orders are in each status, and how many of them are held.
pub(crate) async fn tally(nodes: &[String], api_key: &str, format: Format) -> anyhow::Result<()> {
    use OrderStatus as S;
    let client = client(nodes, api_key)?;
    let mut counts: Vec<(S, u64, u64)> = Vec::new();
    for status in [
        S::Received,
        S::Approved,
        S::Allocated,
        S::WaybillAssigned,
        S::LabelPrinted,
        S::Packed,
        S::Shipped,
        S::Cancelled,
    ] {
        let (mut n, mut held, mut token) = (0u64, 0u64, String::new());
        loop {
            let page = client
                .list(ListOrdersRequest {
                    status: status as i32,
                    page_size: crate::MAX_PAGE,
                    page_token: token,
                    ..ListOrdersRequest::default()
                })
                .await
                .map_err(status_error)?;
            n += page.orders.len() as u64;
            held += page.orders.iter().filter(|o| !o.holds.is_empty()).count() as u64;
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        counts.push((status, n, held));
    }
    let name = |s: S| {
        s.as_str_name()
            .trim_start_matches("ORDER_STATUS_")
            .to_string()
    };
    match format {
        Format::Json => print_json(&serde_json::json!(counts
            .iter()
            .map(|(s, n, held)| (name(*s), serde_json::json!({"orders": n, "held": held})))
            .collect::<serde_json::Map<String, serde_json::Value>>())),
        Format::Table => {
            let rows: Vec<Vec<String>> = counts
                .iter()
                .map(|(s, n, held)| vec![name(*s), n.to_string(), held.to_string()])
                .collect();
            print_table(&["STATUS", "ORDERS", "HELD"], &rows);
            let total: u64 = counts.iter().map(|c| c.1).sum();
            emit(&format!("{total} orders in all"));
        }
    }
    Ok(())
}
