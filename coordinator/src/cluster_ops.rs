//! The elastic-cluster side of `AdminService`, at the leader: nodes with their replica and
//! leader counts and disks, shards with their replicas and lag, operators (list, start by
//! hand, cancel), drain and remove, run-time settings, and the rebalancing progress that
//! `cluster status` shows.

use surge_grpc::ApiError;
use surge_proto::v1::{
    ClusterConfig, CreateOperatorRequest, ListOperatorsResponse, ListShardsResponse, NodeStatus,
    OperatorInfo, RebalanceProgress, SetClusterConfigRequest, ShardDetail, ShardReplica,
};
use tonic::Status;

use crate::access::AuditEntry;
use crate::admin_writes::unexpected;
use crate::coordinator::{now_ms, Coordinator};
use crate::meta::{Command, NodeInfo, NodeState, Reply, ShardInfo};
use crate::meta_state::{Settings, META_GROUP};
use crate::operator::{Operator, OperatorKind, Reason};
use crate::shard_view::ShardView;

/// An operator as `surgectl operator list` shows it.
pub fn operator_info(op: &Operator) -> OperatorInfo {
    OperatorInfo {
        id: op.id,
        shard: op.shard,
        kind: op.kind.name().into(),
        from_node: op.kind.from_node().unwrap_or(0),
        to_node: op.kind.to_node().unwrap_or(0),
        reason: op.reason.name().into(),
        step: op.step.name().into(),
        created_at_ms: op.created_at_ms,
        step_since_ms: op.step_since_ms,
        outcome: op.outcome.map(|o| o.name().to_string()).unwrap_or_default(),
        note: op.note.clone(),
        finished_at_ms: op.finished_at_ms,
        epoch: op.epoch,
        cancel_requested: op.cancel_requested,
        bytes: op.bytes,
    }
}

fn node_state(state: NodeState) -> surge_proto::v1::NodeState {
    match state {
        NodeState::Up => surge_proto::v1::NodeState::Up,
        NodeState::Down => surge_proto::v1::NodeState::Down,
        NodeState::Draining => surge_proto::v1::NodeState::Draining,
        NodeState::Removable => surge_proto::v1::NodeState::Removable,
        NodeState::Removed => surge_proto::v1::NodeState::Removed,
    }
}

/// Parses `kind`, `from_node` and `to_node` of a hand-made operator.
fn kind_of(req: &CreateOperatorRequest) -> Result<OperatorKind, Status> {
    let (from, to) = (req.from_node, req.to_node);
    let need = |field: &str, v: u64| {
        if v == 0 {
            Err(ApiError::invalid_argument(
                field,
                format!("required for {}", req.kind),
            ))
        } else {
            Ok(v)
        }
    };
    match req.kind.as_str() {
        "move-replica" => Ok(OperatorKind::MoveReplica {
            from: need("from_node", from)?,
            to: need("to_node", to)?,
        }),
        "transfer-leader" => Ok(OperatorKind::TransferLeader {
            from,
            to: need("to_node", to)?,
        }),
        "add-replica" => Ok(OperatorKind::AddReplica {
            to: need("to_node", to)?,
        }),
        "remove-replica" => Ok(OperatorKind::RemoveReplica {
            from: need("from_node", from)?,
        }),
        other => Err(ApiError::invalid_argument("kind", format!("{other:?} is not one of move-replica, transfer-leader, add-replica, remove-replica"
        )).into()),
    }
}

/// Checks a hand-made operator against the shard and the nodes; names the field at fault.
fn check_manual(
    kind: OperatorKind,
    shard: &ShardInfo,
    nodes: &[NodeInfo],
    view: Option<&ShardView>,
    replicas: usize,
) -> Result<(), Status> {
    let up = |id: u64| nodes.iter().any(|n| n.id == id && n.state.takes_replicas());
    let refuse = |field: &str, why: String| {
        Err(ApiError::failed_precondition(format!("{field}: {why}")).into())
    };
    match kind {
        OperatorKind::MoveReplica { to, .. } | OperatorKind::AddReplica { to } if !up(to) => {
            refuse(
                "to_node",
                format!("node {to} is not an up node that takes replicas"),
            )
        }
        OperatorKind::MoveReplica { from, .. } if !shard.is_voter(from) => refuse(
            "from_node",
            format!("node {from} holds no voter of shard {}", shard.id),
        ),
        OperatorKind::MoveReplica { to, .. } | OperatorKind::AddReplica { to }
            if shard.is_member(to) =>
        {
            refuse(
                "to_node",
                format!("node {to} already holds a replica of shard {}", shard.id),
            )
        }
        OperatorKind::RemoveReplica { from } if !shard.is_member(from) => refuse(
            "from_node",
            format!("node {from} holds no replica of shard {}", shard.id),
        ),
        OperatorKind::RemoveReplica { from }
            if shard.is_voter(from) && shard.voters.len() <= replicas =>
        {
            refuse(
                "from_node",
                format!(
                    "shard {} has {} voters and needs {replicas}: removing one is left to the scheduler's repairs (move it instead)",
                    shard.id,
                    shard.voters.len()
                ),
            )
        }
        OperatorKind::TransferLeader { to, .. } if !shard.is_voter(to) => refuse(
            "to_node",
            format!("node {to} holds no voter of shard {}", shard.id),
        ),
        _ if view.is_none() => Err(ApiError::unavailable(format!(
            "shard {}: no recent report from its leader; retry shortly",
            shard.id
        )).into()),
        _ => Ok(()),
    }
}

impl Coordinator {
    /// Every node with its replica and leader counts, size and disk.
    pub async fn node_statuses(&self) -> Result<Vec<NodeStatus>, Status> {
        let nodes = self
            .handle
            .read(META_GROUP, |sm| {
                sm.nodes
                    .values()
                    .map(|n| {
                        let shards = sm.shards_of(n.id);
                        let learners = shards.iter().filter(|s| !s.is_voter(n.id)).count();
                        (n.clone(), shards.len(), learners)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| self.map_request(e))?;
        let seen = self.reports.last_heard();
        let leaders = self.reports.leader_counts();
        Ok(nodes
            .into_iter()
            .map(|(n, replicas, learners)| {
                let figures = self.reports.node(n.id).unwrap_or_default();
                NodeStatus {
                    id: n.id,
                    address: n.address.clone(),
                    zone: n.zone.clone(),
                    state: node_state(n.state) as i32,
                    seconds_since_heartbeat: seen
                        .get(&n.id)
                        .map_or(-1.0, |t| t.elapsed().as_secs_f64()),
                    http_address: n.http_address.clone(),
                    peer_address: n.peer().to_string(),
                    replica_count: replicas as u32,
                    leader_count: leaders.get(&n.id).copied().unwrap_or(0) as u32,
                    size_bytes: figures.used_bytes,
                    disk_capacity_bytes: figures.disk_capacity,
                    disk_available_bytes: figures.disk_available,
                    learner_count: learners as u32,
                    insecure: n.certificate_name.is_empty(),
                    certificate_name: n.certificate_name.clone(),
                }
            })
            .collect())
    }

    fn shard_detail(&self, info: &ShardInfo, operator: u64) -> ShardDetail {
        let view = self.reports.views().remove(&info.id);
        let (age, view) = match view {
            Some((age, v)) => (Some(age), Some(v)),
            None => (None, None),
        };
        let replicas = info
            .replicas
            .iter()
            .map(|n| {
                let role = if info.learners.contains(n) {
                    "learner"
                } else if info.voters.contains(n) {
                    "voter"
                } else {
                    "outgoing"
                };
                let own = self.reports.replica(info.id, *n);
                let follower = view.as_ref().and_then(|v| v.followers.get(n));
                ShardReplica {
                    node_id: *n,
                    role: role.into(),
                    leader: view.as_ref().is_some_and(|v| v.leader == *n),
                    matched: follower.map_or(
                        view.as_ref()
                            .filter(|v| v.leader == *n)
                            .map_or(0, |v| v.last_index),
                        |f| f.matched,
                    ),
                    lag: view.as_ref().and_then(|v| v.lag(*n)).unwrap_or(0),
                    progress: follower
                        .map(|f| {
                            if f.snapshot {
                                "snapshot"
                            } else if f.replicating {
                                "replicate"
                            } else {
                                "probe"
                            }
                        })
                        .unwrap_or_default()
                        .into(),
                    applied_index: own.map_or(0, |r| r.applied),
                    node_up: self.reports.alive(*n),
                }
            })
            .collect();
        ShardDetail {
            id: info.id,
            epoch: info.epoch,
            replicas,
            leader: view.as_ref().map_or(0, |v| v.leader),
            term: view.as_ref().map_or(0, |v| v.term),
            commit_index: view.as_ref().map_or(0, |v| v.commit),
            last_index: view.as_ref().map_or(0, |v| v.last_index),
            size_bytes: view.as_ref().map_or(0, |v| v.bytes),
            writes_per_sec: view.as_ref().map_or(0.0, |v| v.writes_per_sec),
            operator_id: operator,
            report_age_ms: age.map_or(-1, |a| a.as_millis() as i64),
        }
    }

    pub async fn list_shards(&self) -> Result<ListShardsResponse, Status> {
        let (shards, ops) = self
            .handle
            .read(META_GROUP, |sm| {
                let ops: Vec<(u32, u64)> = sm
                    .operators
                    .in_flight
                    .values()
                    .map(|o| (o.shard, o.id))
                    .collect();
                (sm.shards.values().cloned().collect::<Vec<_>>(), ops)
            })
            .await
            .map_err(|e| self.map_request(e))?;
        let op_of = |s: u32| ops.iter().find(|(sh, _)| *sh == s).map_or(0, |(_, id)| *id);
        Ok(ListShardsResponse {
            shards: shards
                .iter()
                .map(|s| self.shard_detail(s, op_of(s.id)))
                .collect(),
        })
    }

    pub async fn get_shard(&self, id: u32) -> Result<ShardDetail, Status> {
        let found = self
            .handle
            .read(META_GROUP, move |sm| {
                let count = sm.shards.len();
                let op = sm.operators.on_shard(id).map_or(0, |o| o.id);
                (sm.shards.get(&id).cloned(), count, op)
            })
            .await
            .map_err(|e| self.map_request(e))?;
        match found {
            (Some(info), _, op) => Ok(self.shard_detail(&info, op)),
            (None, count, _) => Err(ApiError::not_found(format!(
                "id: no shard {id}; the cluster has shards 0 to {}",
                count.saturating_sub(1)
            ))
            .into()),
        }
    }

    pub async fn list_operators(
        &self,
        include_finished: bool,
    ) -> Result<ListOperatorsResponse, Status> {
        let operators = self
            .handle
            .read(META_GROUP, move |sm| {
                let mut all: Vec<OperatorInfo> = Vec::new();
                if include_finished {
                    all.extend(sm.operators.finished.iter().map(operator_info));
                }
                all.extend(sm.operators.in_flight.values().map(operator_info));
                all
            })
            .await
            .map_err(|e| self.map_request(e))?;
        Ok(ListOperatorsResponse { operators })
    }

    pub async fn create_operator(
        &self,
        req: CreateOperatorRequest,
        audit: AuditEntry,
    ) -> Result<OperatorInfo, Status> {
        let kind = kind_of(&req)?;
        let shard = req.shard;
        let (info, nodes, count, replicas) = self
            .handle
            .read(META_GROUP, move |sm| {
                (
                    sm.shards.get(&shard).cloned(),
                    sm.nodes.values().cloned().collect::<Vec<_>>(),
                    sm.shards.len(),
                    sm.cluster.as_ref().map_or(0, |c| c.replicas) as usize,
                )
            })
            .await
            .map_err(|e| self.map_request(e))?;
        let Some(info) = info else {
            return Err(ApiError::not_found(format!(
                "shard: no shard {shard}; the cluster has shards 0 to {}",
                count.saturating_sub(1)
            ))
            .into());
        };
        let view = self.reports.fresh_view(shard);
        check_manual(kind, &info, &nodes, view.as_ref(), replicas)?;
        let kind = match kind {
            OperatorKind::TransferLeader { from: 0, to } => OperatorKind::TransferLeader {
                from: view.as_ref().map_or(0, |v| v.leader),
                to,
            },
            k => k,
        };
        let (epoch, bytes) = view
            .as_ref()
            .map_or((info.epoch, 0), |v| (v.epoch, v.bytes));
        let op = Operator::new(shard, kind, Reason::Manual, epoch, bytes, now_ms());
        let cmd = Command::CreateOperator(op.clone());
        match self.propose_audited(audit, cmd).await? {
            Reply::OperatorCreated { id } => Ok(operator_info(&Operator { id, ..op })),
            other => Err(unexpected("create operator", other)),
        }
    }

    pub async fn cancel_operator(
        &self,
        id: u64,
        audit: AuditEntry,
    ) -> Result<OperatorInfo, Status> {
        let cmd = Command::CancelOperator {
            id,
            at_ms: now_ms(),
        };
        match self.propose_audited(audit, cmd).await? {
            Reply::Operator(op) => Ok(operator_info(&op)),
            other => Err(unexpected("cancel operator", other)),
        }
    }

    async fn node_change(
        &self,
        cmd: Command,
        id: u64,
        audit: AuditEntry,
    ) -> Result<NodeStatus, Status> {
        match self.propose_audited(audit, cmd).await? {
            Reply::Node(_) => self
                .node_statuses()
                .await?
                .into_iter()
                .find(|n| n.id == id)
                .ok_or_else(|| ApiError::not_found(format!("id: no node {id}")).into()),
            other => Err(unexpected("node change", other)),
        }
    }

    pub async fn drain_node(&self, id: u64, audit: AuditEntry) -> Result<NodeStatus, Status> {
        let cmd = Command::DrainNode {
            node_id: id,
            at_ms: now_ms(),
        };
        self.node_change(cmd, id, audit).await
    }

    pub async fn remove_node(&self, id: u64, audit: AuditEntry) -> Result<NodeStatus, Status> {
        let cmd = Command::RemoveNode {
            node_id: id,
            at_ms: now_ms(),
        };
        self.node_change(cmd, id, audit).await
    }

    pub async fn set_cluster_config(
        &self,
        req: SetClusterConfigRequest,
        audit: AuditEntry,
    ) -> Result<ClusterConfig, Status> {
        if let Some(ms) = req.max_down_time_ms {
            self.propose_audited(audit, Command::SetMaxDownTime { ms })
                .await?;
        }
        let settings = self
            .handle
            .read(META_GROUP, |sm| sm.settings.clone())
            .await
            .map_err(|e| self.map_request(e))?;
        Ok(self.cluster_config(&settings))
    }

    pub fn cluster_config(&self, settings: &Settings) -> ClusterConfig {
        let s = self.config.scheduler;
        ClusterConfig {
            max_down_time_ms: settings
                .max_down_time_ms
                .unwrap_or(s.max_down_time.as_millis() as u64),
            max_operators: s.max_operators as u32,
            max_snapshots_per_node: s.max_snapshots_per_node as u32,
        }
    }

    /// The scheduler's progress for `cluster status`, with the settings in force.
    pub async fn rebalance_progress(&self) -> Result<(RebalanceProgress, ClusterConfig), Status> {
        let (in_flight, totals, settings) = self
            .handle
            .read(META_GROUP, |sm| {
                (
                    sm.operators.in_flight.len(),
                    sm.operators.totals.clone(),
                    sm.settings.clone(),
                )
            })
            .await
            .map_err(|e| self.map_request(e))?;
        let p = self.progress.lock().map(|p| p.clone()).unwrap_or_default();
        let progress = RebalanceProgress {
            operators_in_flight: in_flight as u32,
            operators_done: totals.done,
            operators_failed: totals.failed + totals.rolled_back,
            operators_planned: p.planned as u32,
            bytes_moved: totals.bytes_moved,
            balanced: p.balanced && in_flight == 0,
            replica_spread: p.replica_spread as u32,
            leader_spread: p.leader_spread as u32,
            under_replicated: p.under_replicated as u32,
        };
        Ok((progress, self.cluster_config(&settings)))
    }
}
