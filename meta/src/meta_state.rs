//! [`MetaState`]: the coordinator's replicated state machine.
//!
//! Sans-IO: commands come in with leader-stamped times; each apply mutates the in-memory maps
//! and stages the changed rows into the batch the peer writes together with the applied index.
//! Rows live in the `meta` family under group 0 ([`crate::meta_rows`]), so a Raft snapshot
//! carries them as they are.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use surge_storage::{Cf, Engine, EngineError, MemberChange, Membership, StateMachine, WriteBatch};
use tracing::warn;

use crate::access::{AccessBook, AuditRecord, OperatorToken, TokenRole};
use crate::meta::{
    ClusterInfo, Command, CoordinatorInfo, MetaError, NodeInfo, NodeState, Output, Reply,
    ShardInfo, TenantInfo,
};
pub use crate::meta_rows::META_GROUP;
use crate::meta_rows::{
    get_row, id_key, lease_key, named_key, put_json, scan_rows, single_key, AUDIT_PREFIX,
    CLUSTER_KEY, COORD_PREFIX, FINISHED_PREFIX, INSTANCE_PREFIX, LEASE_PREFIX, NEXT_AUDIT_KEY,
    NEXT_NODE_KEY, NEXT_RANGE_KEY, NEXT_TENANT_KEY, NEXT_TOKEN_KEY, NODE_PREFIX, OPERATOR_PREFIX,
    OPERATOR_TOTALS_KEY, RANGE_PREFIX, SETTINGS_KEY, SHARD_PREFIX, TENANT_PREFIX, TOKEN_PREFIX,
};
use crate::node_rules;
use crate::operator::Operator;
use crate::operator_book::{Changed, OperatorBook};
use crate::waybills::{LeaseRecord, WaybillLedger, WaybillRange};

mod records;
mod tenants;

/// Cluster settings changed at run time (`surgectl cluster set`); unset ones take the
/// coordinator's configured default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub max_down_time_ms: Option<u64>,
}

/// Bounds `surgectl cluster set max-down-time` accepts.
pub const MIN_MAX_DOWN_TIME_MS: u64 = 1_000;
/// Most nodes (not removed) a cluster admits: registrations come from the network, so the
/// node table they grow is bounded.
pub const MAX_NODES: usize = 1024;
pub const MAX_MAX_DOWN_TIME_MS: u64 = 7 * 24 * 3_600_000;

/// Cluster metadata, replicated through the coordinators' Raft group.
pub struct MetaState<E: Engine> {
    engine: Arc<E>,
    pub cluster: Option<ClusterInfo>,
    pub coordinators: BTreeMap<u64, CoordinatorInfo>,
    pub nodes: BTreeMap<u64, NodeInfo>,
    pub shards: BTreeMap<u32, ShardInfo>,
    pub tenants: BTreeMap<u64, TenantInfo>,
    pub waybills: WaybillLedger,
    pub operators: OperatorBook,
    pub settings: Settings,
    pub access: AccessBook,
    instances: BTreeMap<String, u64>,
    next_node_id: u64,
    next_tenant_id: u64,
}

impl<E: Engine> MetaState<E> {
    /// Loads the state from the engine's rows.
    pub fn load(engine: Arc<E>) -> Result<MetaState<E>, EngineError> {
        let mut state = MetaState {
            engine,
            cluster: None,
            coordinators: BTreeMap::new(),
            nodes: BTreeMap::new(),
            shards: BTreeMap::new(),
            tenants: BTreeMap::new(),
            waybills: WaybillLedger::default(),
            operators: OperatorBook::default(),
            settings: Settings::default(),
            access: AccessBook::default(),
            instances: BTreeMap::new(),
            next_node_id: 1,
            next_tenant_id: 1,
        };
        state.reload()?;
        Ok(state)
    }

    /// Stages the rows for the coordinators a brand-new group starts with.
    pub fn stage_initial_coordinators(peers: &[CoordinatorInfo], batch: &mut WriteBatch) {
        for peer in peers {
            put_json(batch, id_key(COORD_PREFIX, peer.id), peer);
        }
    }

    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.cluster_id.as_str())
    }

    /// The shards with a replica (voter or learner) on `node_id`.
    pub fn shards_of(&self, node_id: u64) -> Vec<&ShardInfo> {
        self.shards
            .values()
            .filter(|s| s.is_member(node_id))
            .collect()
    }

    /// The ids the next node and tenant will get (tests check they survive a reload).
    pub fn next_ids(&self) -> (u64, u64) {
        (self.next_node_id, self.next_tenant_id)
    }

    fn apply_command(&mut self, cmd: Command, batch: &mut WriteBatch) -> Output {
        match cmd {
            Command::InitCluster {
                cluster_id,
                shards,
                replicas,
                token,
                at_ms,
                admin_token_hash,
            } => {
                let creates = self.cluster.is_none();
                let out = self.init_cluster(cluster_id, shards, replicas, token, at_ms, batch);
                // Only the init that creates the cluster makes a token: a retry (the same
                // request token) changes nothing, so knowing the token mints no admin.
                if creates && out.is_ok() && !admin_token_hash.is_empty() {
                    let by = "bootstrap".to_string();
                    let role = TokenRole::Admin;
                    let name = "admin".to_string();
                    self.access
                        .create_token(name, role, admin_token_hash, by, at_ms, batch)?;
                }
                out
            }
            Command::RegisterNode {
                instance_id,
                address,
                http_address,
                peer_address,
                zone,
                at_ms,
                certificate_name,
            } => {
                let addresses = [address, http_address, peer_address];
                let who = (instance_id, certificate_name);
                self.register_node(who, addresses, zone, at_ms, batch)
            }
            Command::UpdateNodeAddress {
                node_id,
                address,
                http_address,
                peer_address,
            } => {
                let node = self
                    .nodes
                    .get_mut(&node_id)
                    .ok_or(MetaError::UnknownNode(node_id))?;
                node.address = address;
                node.http_address = http_address;
                node.peer_address = peer_address;
                put_json(batch, id_key(NODE_PREFIX, node_id), node);
                Ok(Reply::Done)
            }
            Command::SetNodeState {
                node_id,
                state,
                at_ms,
            } => {
                node_rules::set_state(&mut self.nodes, node_id, state, at_ms)?;
                self.stage_node(node_id, batch)
            }
            Command::DrainNode { node_id, at_ms } => {
                let replicas = self.cluster.as_ref().map_or(0, |c| c.replicas) as usize;
                node_rules::drain(&mut self.nodes, replicas, node_id, at_ms)?;
                self.stage_node(node_id, batch)
            }
            Command::RemoveNode { node_id, at_ms } => {
                // Replicas it holds, and ones an operator is adding there.
                let incoming = self
                    .operators
                    .in_flight
                    .values()
                    .filter(|o| o.kind.to_node() == Some(node_id))
                    .count();
                let held = self.shards_of(node_id).len() + incoming;
                node_rules::remove(&mut self.nodes, held, node_id, at_ms)?;
                self.stage_node(node_id, batch)
            }
            cmd @ (Command::CreateTenant { .. }
            | Command::AddTenantKey { .. }
            | Command::RevokeTenantKey { .. }
            | Command::SetTenantLimits { .. }
            | Command::SetTenantRules { .. }) => self.apply_tenant(cmd, batch),
            Command::AddWaybillRange {
                tenant_id,
                carrier,
                prefix,
                from,
                to,
                at_ms,
            } => {
                if !self.tenants.contains_key(&tenant_id) {
                    return Err(MetaError::UnknownTenant(tenant_id.to_string()));
                }
                let before = self.waybills.ranges.len();
                let range = self
                    .waybills
                    .add_range(tenant_id, &carrier, &prefix, from, to, at_ms)?;
                if self.waybills.ranges.len() != before {
                    put_json(batch, id_key(RANGE_PREFIX, range.id), &range);
                    put_json(
                        batch,
                        single_key(NEXT_RANGE_KEY),
                        &self.waybills.next_range_id,
                    );
                }
                Ok(Reply::RangeAdded(range))
            }
            Command::LeaseWaybills {
                shard,
                tenant_id,
                carrier,
                seq,
            } => {
                let shards = self.cluster.as_ref().map_or(1, |c| c.shards);
                let (record, changed) = self
                    .waybills
                    .lease(shards, shard, tenant_id, &carrier, seq)?;
                if let Some(range) = changed.and_then(|id| self.waybills.ranges.get(&id)) {
                    put_json(batch, id_key(RANGE_PREFIX, range.id), range);
                    put_json(batch, lease_key(shard, tenant_id, &carrier), &record);
                }
                Ok(Reply::Leased(record))
            }
            Command::PlaceShards { assignments } => {
                let placed = node_rules::place(&mut self.shards, &self.nodes, assignments)?;
                for shard in placed {
                    if let Some(info) = self.shards.get(&shard) {
                        put_json(batch, id_key(SHARD_PREFIX, u64::from(shard)), info);
                    }
                }
                Ok(Reply::Done)
            }
            Command::UpdateShardMembership {
                shard,
                epoch,
                voters,
                learners,
                outgoing,
            } => {
                let info = self
                    .shards
                    .get_mut(&shard)
                    .ok_or(MetaError::UnknownShard(shard))?;
                if node_rules::update_membership(info, epoch, voters, learners, outgoing) {
                    put_json(batch, id_key(SHARD_PREFIX, u64::from(shard)), info);
                }
                Ok(Reply::Done)
            }
            Command::CreateOperator(op) => {
                if !self.shards.contains_key(&op.shard) {
                    return Err(MetaError::UnknownShard(op.shard));
                }
                let (id, changed) = self.operators.create(op)?;
                self.stage_operator(changed, batch);
                Ok(Reply::OperatorCreated { id })
            }
            Command::AdvanceOperator {
                id,
                step,
                note,
                at_ms,
            } => {
                let changed = self.operators.advance(id, step, note, at_ms)?;
                self.stage_operator(changed, batch);
                Ok(Reply::Done)
            }
            Command::FinishOperator {
                id,
                outcome,
                note,
                at_ms,
            } => {
                let changed = self.operators.finish(id, outcome, note, at_ms)?;
                self.stage_operator(changed, batch);
                Ok(Reply::Done)
            }
            Command::CancelOperator { id, .. } => {
                let (op, changed) = self.operators.cancel(id)?;
                self.stage_operator(changed, batch);
                Ok(Reply::Operator(Box::new(op)))
            }
            Command::CreateToken {
                name,
                role,
                hash,
                created_by,
                at_ms,
            } => self
                .access
                .create_token(name, role, hash, created_by, at_ms, batch),
            Command::RevokeToken { id, at_ms } => self.access.revoke_token(id, at_ms, batch),
            Command::Audited { audit, command } => {
                // An audit record never wraps another: what it describes is one change.
                let out = match *command {
                    Command::Audited { .. } | Command::Audit(_) => Err(MetaError::Undecodable(
                        "an audited command wraps another audit record".into(),
                    )),
                    inner => self.apply_command(inner, batch),
                };
                self.access.record(audit, &out, batch);
                out
            }
            Command::Audit(audit) => {
                self.access.record(audit, &Ok(Reply::Done), batch);
                Ok(Reply::Done)
            }
            Command::SetMaxDownTime { ms } => {
                if !(MIN_MAX_DOWN_TIME_MS..=MAX_MAX_DOWN_TIME_MS).contains(&ms) {
                    return Err(MetaError::BadSetting {
                        field: "max_down_time_ms".into(),
                        reason: format!(
                            "must be between {MIN_MAX_DOWN_TIME_MS} (1 s) and {MAX_MAX_DOWN_TIME_MS} (7 days), got {ms}"
                        ),
                    });
                }
                self.settings.max_down_time_ms = Some(ms);
                put_json(batch, single_key(SETTINGS_KEY), &self.settings);
                Ok(Reply::Done)
            }
        }
    }

    fn stage_node(&self, node_id: u64, batch: &mut WriteBatch) -> Output {
        let node = self
            .nodes
            .get(&node_id)
            .ok_or(MetaError::UnknownNode(node_id))?;
        put_json(batch, id_key(NODE_PREFIX, node_id), node);
        Ok(Reply::Node(Box::new(node.clone())))
    }

    fn stage_operator(&self, changed: Changed, batch: &mut WriteBatch) {
        match changed {
            Changed::Nothing => return,
            Changed::InFlight(id) => {
                if let Some(op) = self.operators.in_flight.get(&id) {
                    put_json(batch, id_key(OPERATOR_PREFIX, id), op);
                }
            }
            Changed::Finished { id, evicted } => {
                batch.delete(Cf::META, id_key(OPERATOR_PREFIX, id));
                if let Some(op) = self.operators.finished.back() {
                    put_json(batch, id_key(FINISHED_PREFIX, id), op);
                }
                if let Some(old) = evicted {
                    batch.delete(Cf::META, id_key(FINISHED_PREFIX, old));
                }
            }
        }
        put_json(
            batch,
            single_key(OPERATOR_TOTALS_KEY),
            &self.operators.totals,
        );
    }
}

impl<E: Engine> StateMachine for MetaState<E> {
    type Output = Output;

    fn apply(&mut self, _index: u64, data: &[u8], batch: &mut WriteBatch) -> Output {
        match serde_json::from_slice::<Command>(data) {
            Ok(cmd) => self.apply_command(cmd, batch),
            Err(e) => Err(MetaError::Undecodable(e.to_string())),
        }
    }

    fn on_conf_change(&mut self, index: u64, change: &Membership, batch: &mut WriteBatch) {
        for member in &change.changes {
            match *member {
                MemberChange::AddVoter(id) | MemberChange::AddLearner(id) => {
                    if change.context.is_empty() {
                        continue;
                    }
                    match serde_json::from_slice::<CoordinatorInfo>(&change.context) {
                        Ok(info) if info.id == id => {
                            put_json(batch, id_key(COORD_PREFIX, info.id), &info);
                            self.coordinators.insert(info.id, info);
                        }
                        Ok(_) | Err(_) => {
                            warn!(index, node = id, "conf change without a usable address")
                        }
                    }
                }
                MemberChange::Remove(id) => {
                    batch.delete(Cf::META, id_key(COORD_PREFIX, id));
                    self.coordinators.remove(&id);
                }
            }
        }
    }

    fn reload(&mut self) -> Result<(), EngineError> {
        let engine = self.engine.clone();
        let e = engine.as_ref();
        self.cluster = get_row(e, CLUSTER_KEY)?;
        self.settings = get_row(e, SETTINGS_KEY)?.unwrap_or_default();
        self.next_node_id = get_row(e, NEXT_NODE_KEY)?.unwrap_or(1);
        let mut coordinators = BTreeMap::new();
        scan_rows(e, COORD_PREFIX, |c: CoordinatorInfo| {
            coordinators.insert(c.id, c);
        })?;
        let mut nodes = BTreeMap::new();
        scan_rows(e, NODE_PREFIX, |n: NodeInfo| {
            nodes.insert(n.id, n);
        })?;
        let mut shards = BTreeMap::new();
        scan_rows(e, SHARD_PREFIX, |mut s: ShardInfo| {
            // Rows from before membership was recorded name voters only.
            if s.voters.is_empty() && s.learners.is_empty() {
                s.voters = s.replicas.clone();
            }
            shards.insert(s.id, s);
        })?;
        let mut tenants = BTreeMap::new();
        scan_rows(e, TENANT_PREFIX, |mut t: TenantInfo| {
            t.upgrade_legacy_keys();
            tenants.insert(t.id, t);
        })?;
        let mut waybills = WaybillLedger::default();
        scan_rows(e, RANGE_PREFIX, |r: WaybillRange| {
            waybills.ranges.insert(r.id, r);
        })?;
        scan_rows(e, LEASE_PREFIX, |l: LeaseRecord| {
            waybills
                .leases
                .insert((l.shard, l.tenant_id, l.carrier.clone()), l);
        })?;
        waybills.next_range_id = get_row(e, NEXT_RANGE_KEY)?.unwrap_or(1);
        let mut operators = OperatorBook::default();
        scan_rows(e, OPERATOR_PREFIX, |o: Operator| {
            operators.in_flight.insert(o.id, o);
        })?;
        scan_rows(e, FINISHED_PREFIX, |o: Operator| {
            operators.finished.push_back(o);
        })?;
        operators.totals = get_row(e, OPERATOR_TOTALS_KEY)?.unwrap_or_default();
        self.operators = operators;
        let mut tokens = Vec::new();
        scan_rows(e, TOKEN_PREFIX, |t: OperatorToken| tokens.push(t))?;
        let mut audit = Vec::new();
        scan_rows(e, AUDIT_PREFIX, |r: AuditRecord| audit.push(r))?;
        let (next_token, next_audit) = (get_row(e, NEXT_TOKEN_KEY)?, get_row(e, NEXT_AUDIT_KEY)?);
        self.access = AccessBook::from_rows(tokens, audit, next_token, next_audit);
        self.tenants = tenants;
        self.waybills = waybills;
        self.next_tenant_id = get_row(e, NEXT_TENANT_KEY)?.unwrap_or(1);
        self.instances = nodes
            .values()
            .map(|n: &NodeInfo| (n.instance_id.clone(), n.id))
            .collect();
        self.coordinators = coordinators;
        self.nodes = nodes;
        self.shards = shards;
        Ok(())
    }
}

#[cfg(test)]
#[path = "meta_state_tests.rs"]
mod tests;
