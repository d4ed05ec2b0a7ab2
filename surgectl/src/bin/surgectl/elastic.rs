//! Elastic-cluster commands: shards (list, show, verify), operators (list, add, cancel),
//! node drain and remove, run-time settings, and waiting for a rebalance or a drain with a
//! progress bar.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use surge_client::verify::{self, Verdict, VerifyPolicy};
use surge_client::MetaClient;
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::{
    CancelOperatorRequest, ClusterStatusRequest, CreateOperatorRequest, DrainNodeRequest,
    GetShardRequest, ListNodesRequest, ListOperatorsRequest, ListShardsRequest, NodeState,
    NodeStatus, RemoveNodeRequest, SetClusterConfigRequest,
};

use crate::calls::{admin, meta_client as client, status_error};
use crate::elastic_output as out;
use crate::output::{self, Format};

pub(crate) async fn shard_list(coordinators: &[String], format: Format) -> anyhow::Result<()> {
    let resp = admin(
        coordinators,
        "shard list",
        ListShardsRequest {},
        |mut c, r| async move { c.list_shards(r).await },
    )
    .await?;
    out::print_shards(format, &resp.shards);
    Ok(())
}

pub(crate) async fn shard_show(
    coordinators: &[String],
    format: Format,
    id: u32,
) -> anyhow::Result<()> {
    let resp = admin(
        coordinators,
        "shard show",
        GetShardRequest { id },
        |mut c, r| async move { c.get_shard(r).await },
    )
    .await?;
    out::print_shard(format, &resp);
    Ok(())
}

/// Compares every replica of each shard; fails unless all are identical.
pub(crate) async fn shard_verify(
    coordinators: &[String],
    format: Format,
    only: Vec<u32>,
) -> anyhow::Result<()> {
    let verdicts = verify::verify(&client(coordinators)?, &only, VerifyPolicy::default())
        .await
        .map_err(status_error)
        .context("shard verify")?;
    out::print_verdicts(format, &verdicts);
    let differ = verdicts
        .iter()
        .filter(|v| matches!(v.verdict, Verdict::Differ { .. }))
        .count();
    let unsettled = verdicts
        .iter()
        .filter(|v| matches!(v.verdict, Verdict::Unsettled { .. }))
        .count();
    if differ > 0 {
        bail!("{differ} shard(s) have replicas holding different data");
    }
    if unsettled > 0 {
        bail!("{unsettled} shard(s) could not be compared (replicas kept applying, or one did not answer); try again");
    }
    Ok(())
}

pub(crate) async fn operator_list(
    coordinators: &[String],
    format: Format,
    all: bool,
) -> anyhow::Result<()> {
    let resp = admin(
        coordinators,
        "operator list",
        ListOperatorsRequest {
            include_finished: all,
        },
        |mut c, r| async move { c.list_operators(r).await },
    )
    .await?;
    out::print_operators(format, &resp.operators);
    Ok(())
}

pub(crate) async fn operator_add(
    coordinators: &[String],
    format: Format,
    req: CreateOperatorRequest,
) -> anyhow::Result<()> {
    let resp = admin(coordinators, "operator add", req, |mut c, r| async move {
        c.create_operator(r).await
    })
    .await?;
    out::print_operators(format, &[resp]);
    Ok(())
}

pub(crate) async fn operator_cancel(
    coordinators: &[String],
    format: Format,
    id: u64,
) -> anyhow::Result<()> {
    let resp = admin(
        coordinators,
        "operator cancel",
        CancelOperatorRequest { id },
        |mut c, r| async move { c.cancel_operator(r).await },
    )
    .await?;
    if format == Format::Table {
        let will = if matches!(resp.step.as_str(), "leave-joint" | "remove-old") {
            "it is past the point of no return and will complete"
        } else {
            "it will roll back"
        };
        output::emit(&format!("operator {id}: cancel requested; {will}"));
    }
    out::print_operators(format, &[resp]);
    Ok(())
}

async fn nodes(meta: &MetaClient) -> Result<Vec<NodeStatus>, tonic::Status> {
    meta.call(|ch| async move {
        AdminServiceClient::new(ch)
            .list_nodes(ListNodesRequest {})
            .await
    })
    .await
    .map(|r| r.nodes)
}

pub(crate) fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len.max(1));
    let style = ProgressStyle::with_template(
        "{spinner} {prefix} [{bar:30}] {pos}/{len} {msg} (elapsed {elapsed}, ETA {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

pub(crate) async fn node_drain(
    coordinators: &[String],
    format: Format,
    id: u64,
    wait: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let meta = client(coordinators)?;
    let resp = meta
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .drain_node(DrainNodeRequest { id })
                .await
        })
        .await
        .map_err(status_error)
        .context("node drain")?;
    if !wait {
        output::print_nodes(format, &[resp]);
        return Ok(());
    }
    let start = resp.replica_count as u64;
    let progress = bar(start, &format!("draining node {id}"));
    let deadline = Instant::now() + timeout;
    let last = loop {
        let node = nodes(&meta)
            .await
            .map_err(status_error)?
            .into_iter()
            .find(|n| n.id == id)
            .ok_or_else(|| anyhow::anyhow!("node {id} vanished from the node list"))?;
        let left = node.replica_count as u64;
        progress.set_length(start.max(left).max(1));
        progress.set_position(start.saturating_sub(left));
        progress.set_message(format!(
            "{left} replicas and {} leaders left",
            node.leader_count
        ));
        let done =
            node.state == NodeState::Removable as i32 || node.state == NodeState::Removed as i32;
        if done {
            break node;
        }
        if Instant::now() >= deadline {
            progress.abandon_with_message("timed out; the drain goes on in the background");
            bail!(
                "node {id} still holds {left} replicas after {}",
                humantime::format_duration(timeout)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    progress.finish_with_message("drained: the node holds nothing");
    output::print_nodes(format, &[last]);
    Ok(())
}

pub(crate) async fn node_remove(
    coordinators: &[String],
    format: Format,
    id: u64,
) -> anyhow::Result<()> {
    let resp = admin(
        coordinators,
        "node remove",
        RemoveNodeRequest { id },
        |mut c, r| async move { c.remove_node(r).await },
    )
    .await?;
    output::print_nodes(format, &[resp]);
    Ok(())
}

/// `cluster set NAME VALUE`.
pub(crate) async fn cluster_set(
    coordinators: &[String],
    format: Format,
    name: &str,
    value: &str,
) -> anyhow::Result<()> {
    let req = match name {
        "max-down-time" => {
            let d = humantime::parse_duration(value).map_err(|e| {
                anyhow::anyhow!(
                    "max-down-time: {value:?} is not a duration like 30s, 5m or 1h ({e})"
                )
            })?;
            if d.is_zero() {
                bail!("max-down-time: must be more than zero");
            }
            SetClusterConfigRequest {
                max_down_time_ms: Some(d.as_millis() as u64),
            }
        }
        other => bail!("{other}: unknown setting; the settings are: max-down-time"),
    };
    let resp = admin(coordinators, "cluster set", req, |mut c, r| async move {
        c.set_cluster_config(r).await
    })
    .await?;
    out::print_config(format, &resp);
    Ok(())
}

/// Waits until the scheduler reports the cluster balanced, with a progress bar.
pub(crate) async fn wait_balanced(
    coordinators: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    let meta = client(coordinators)?;
    let first = meta
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .cluster_status(ClusterStatusRequest {})
                .await
        })
        .await
        .map_err(status_error)?;
    let done_before = first.rebalance.as_ref().map_or(0, |r| r.operators_done);
    let progress = bar(1, "rebalancing");
    let deadline = Instant::now() + timeout;
    // The scheduler needs a round or two to see a new node: "balanced" counts only after it
    // has been seen twice in a row.
    let mut balanced_rounds = 0;
    loop {
        let status = meta
            .call(|ch| async move {
                AdminServiceClient::new(ch)
                    .cluster_status(ClusterStatusRequest {})
                    .await
            })
            .await
            .map_err(status_error)?;
        let r = status.rebalance.unwrap_or_default();
        let done = r.operators_done.saturating_sub(done_before);
        let total = done + u64::from(r.operators_in_flight) + u64::from(r.operators_planned);
        progress.set_length(total.max(1));
        progress.set_position(done);
        progress.set_message(format!(
            "{} in flight, {} moved, replica spread {}, leader spread {}",
            r.operators_in_flight,
            crate::human::bytes(r.bytes_moved),
            r.replica_spread,
            r.leader_spread
        ));
        balanced_rounds = if r.balanced { balanced_rounds + 1 } else { 0 };
        if balanced_rounds >= 2 {
            progress.finish_with_message("balanced");
            return Ok(());
        }
        if Instant::now() >= deadline {
            progress.abandon_with_message("timed out; the scheduler carries on");
            bail!("not balanced after {}", humantime::format_duration(timeout));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
