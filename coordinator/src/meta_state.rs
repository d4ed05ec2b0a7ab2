//! [`MetaState`]: the coordinator's replicated state machine.
//!
//! Sans-IO: commands come in with leader-stamped times; each apply mutates the in-memory maps
//! and stages the changed rows into the batch the peer writes together with the applied index.
//! Rows live in the `meta` family under group 0, so a Raft snapshot carries them as they are.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use surge_raftstore::raft::eraftpb::{ConfChangeType, ConfChangeV2, ConfState};
use surge_raftstore::{keys, Cf, Engine, EngineError, StateMachine, WriteBatch};
use tracing::warn;

use crate::meta::{
    ClusterInfo, Command, CoordinatorInfo, MetaError, NodeInfo, NodeState, Output, Reply,
    ShardInfo, TenantInfo,
};
use crate::waybills::{LeaseRecord, WaybillLedger, WaybillRange};

/// The coordinator's Raft group.
pub const META_GROUP: u64 = 0;

const CLUSTER_KEY: &[u8] = b"cluster";
const COORD_PREFIX: &[u8] = b"coord/";
const NODE_PREFIX: &[u8] = b"node/";
const SHARD_PREFIX: &[u8] = b"shard/";
const INSTANCE_PREFIX: &[u8] = b"instance/";
const NEXT_NODE_KEY: &[u8] = b"seq/node";
const TENANT_PREFIX: &[u8] = b"tenant/";
const NEXT_TENANT_KEY: &[u8] = b"seq/tenant";
const RANGE_PREFIX: &[u8] = b"waybill-range/";
const LEASE_PREFIX: &[u8] = b"waybill-lease/";
const NEXT_RANGE_KEY: &[u8] = b"seq/waybill-range";

fn lease_key(shard: u32, tenant: u64, carrier: &str) -> Vec<u8> {
    let mut suffix = LEASE_PREFIX.to_vec();
    suffix.extend_from_slice(&shard.to_be_bytes());
    suffix.extend_from_slice(&tenant.to_be_bytes());
    suffix.extend_from_slice(carrier.as_bytes());
    keys::data_key(META_GROUP, &suffix)
}

fn id_key(prefix: &[u8], id: u64) -> Vec<u8> {
    let mut suffix = prefix.to_vec();
    suffix.extend_from_slice(&id.to_be_bytes());
    keys::data_key(META_GROUP, &suffix)
}

fn named_key(prefix: &[u8], name: &str) -> Vec<u8> {
    let mut suffix = prefix.to_vec();
    suffix.extend_from_slice(name.as_bytes());
    keys::data_key(META_GROUP, &suffix)
}

fn put_json<T: Serialize>(batch: &mut WriteBatch, key: Vec<u8>, value: &T) {
    // Serializing these plain records cannot fail; an empty value would fail loudly on reload.
    batch.put(Cf::Meta, key, serde_json::to_vec(value).unwrap_or_default());
}

/// Cluster metadata, replicated through the coordinators' Raft group.
pub struct MetaState<E: Engine> {
    engine: Arc<E>,
    pub cluster: Option<ClusterInfo>,
    pub coordinators: BTreeMap<u64, CoordinatorInfo>,
    pub nodes: BTreeMap<u64, NodeInfo>,
    pub shards: BTreeMap<u32, ShardInfo>,
    pub tenants: BTreeMap<u64, TenantInfo>,
    pub waybills: WaybillLedger,
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

    /// The shards placed on `node_id`.
    pub fn shards_of(&self, node_id: u64) -> Vec<&ShardInfo> {
        self.shards
            .values()
            .filter(|s| s.replicas.contains(&node_id))
            .collect()
    }

    fn apply_command(&mut self, cmd: Command, batch: &mut WriteBatch) -> Output {
        match cmd {
            Command::InitCluster {
                cluster_id,
                shards,
                replicas,
                token,
                at_ms,
            } => {
                if let Some(existing) = &self.cluster {
                    if !token.is_empty() && existing.init_token == token {
                        return Ok(Reply::Initialized(existing.clone()));
                    }
                    return Err(MetaError::AlreadyInitialized {
                        cluster_id: existing.cluster_id.clone(),
                    });
                }
                let info = ClusterInfo {
                    cluster_id,
                    shards,
                    replicas,
                    created_at_ms: at_ms,
                    init_token: token,
                };
                put_json(batch, keys::data_key(META_GROUP, CLUSTER_KEY), &info);
                for id in 0..shards {
                    let shard = ShardInfo {
                        id,
                        epoch: 1,
                        replicas: Vec::new(),
                    };
                    put_json(batch, id_key(SHARD_PREFIX, u64::from(id)), &shard);
                    self.shards.insert(id, shard);
                }
                self.cluster = Some(info.clone());
                Ok(Reply::Initialized(info))
            }
            Command::RegisterNode {
                instance_id,
                address,
                http_address,
                zone,
                at_ms,
            } => {
                let Some(cluster) = &self.cluster else {
                    return Err(MetaError::NotInitialized);
                };
                let cluster_id = cluster.cluster_id.clone();
                if let Some(&node_id) = self.instances.get(&instance_id) {
                    return Ok(Reply::Registered {
                        node_id,
                        cluster_id,
                    });
                }
                let node_id = self.next_node_id;
                self.next_node_id += 1;
                let node = NodeInfo {
                    id: node_id,
                    instance_id: instance_id.clone(),
                    address,
                    http_address,
                    zone,
                    state: NodeState::Up,
                    registered_at_ms: at_ms,
                    state_changed_at_ms: at_ms,
                };
                put_json(batch, id_key(NODE_PREFIX, node_id), &node);
                put_json(batch, named_key(INSTANCE_PREFIX, &instance_id), &node_id);
                put_json(
                    batch,
                    keys::data_key(META_GROUP, NEXT_NODE_KEY),
                    &self.next_node_id,
                );
                self.nodes.insert(node_id, node);
                self.instances.insert(instance_id, node_id);
                Ok(Reply::Registered {
                    node_id,
                    cluster_id,
                })
            }
            Command::UpdateNodeAddress {
                node_id,
                address,
                http_address,
            } => {
                let node = self
                    .nodes
                    .get_mut(&node_id)
                    .ok_or(MetaError::UnknownNode(node_id))?;
                node.address = address;
                node.http_address = http_address;
                put_json(batch, id_key(NODE_PREFIX, node_id), node);
                Ok(Reply::Done)
            }
            Command::SetNodeState {
                node_id,
                state,
                at_ms,
            } => {
                let node = self
                    .nodes
                    .get_mut(&node_id)
                    .ok_or(MetaError::UnknownNode(node_id))?;
                if node.state != state {
                    node.state = state;
                    node.state_changed_at_ms = at_ms;
                    put_json(batch, id_key(NODE_PREFIX, node_id), node);
                }
                Ok(Reply::Done)
            }
            Command::CreateTenant {
                name,
                key_hash,
                at_ms,
            } => {
                if let Some(existing) = self.tenants.values().find(|t| t.name == name) {
                    // A retry carries the same key: the same answer, not a second tenant.
                    if existing.key_hashes.contains(&key_hash) {
                        return Ok(Reply::TenantCreated {
                            tenant_id: existing.id,
                        });
                    }
                    return Err(MetaError::TenantExists {
                        name,
                        id: existing.id,
                    });
                }
                let tenant = TenantInfo {
                    id: self.next_tenant_id,
                    name,
                    created_at_ms: at_ms,
                    key_hashes: vec![key_hash],
                    rules_toml: String::new(),
                    rules_version: 0,
                };
                self.next_tenant_id += 1;
                put_json(batch, id_key(TENANT_PREFIX, tenant.id), &tenant);
                put_json(
                    batch,
                    keys::data_key(META_GROUP, NEXT_TENANT_KEY),
                    &self.next_tenant_id,
                );
                let tenant_id = tenant.id;
                self.tenants.insert(tenant_id, tenant);
                Ok(Reply::TenantCreated { tenant_id })
            }
            Command::SetTenantRules {
                tenant_id,
                rules_toml,
            } => {
                let tenant = self
                    .tenants
                    .get_mut(&tenant_id)
                    .ok_or_else(|| MetaError::UnknownTenant(tenant_id.to_string()))?;
                if tenant.rules_toml != rules_toml || tenant.rules_version == 0 {
                    tenant.rules_toml = rules_toml;
                    tenant.rules_version += 1;
                    put_json(batch, id_key(TENANT_PREFIX, tenant_id), &*tenant);
                }
                Ok(Reply::RulesSet {
                    version: tenant.rules_version,
                })
            }
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
                        keys::data_key(META_GROUP, NEXT_RANGE_KEY),
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
                // Validate everything before touching anything: a bad placement changes nothing.
                for (shard, replicas) in &assignments {
                    if !self.shards.contains_key(shard) {
                        return Err(MetaError::UnknownShard(*shard));
                    }
                    for (i, node) in replicas.iter().enumerate() {
                        if !self.nodes.contains_key(node) || replicas[..i].contains(node) {
                            return Err(MetaError::BadPlacement {
                                shard: *shard,
                                node: *node,
                            });
                        }
                    }
                }
                // Initial placement only: a shard placed meanwhile (by an earlier leader whose
                // command this one did not see yet) keeps its replicas.
                for (shard_id, replicas) in assignments {
                    if let Some(shard) = self.shards.get_mut(&shard_id) {
                        if shard.replicas.is_empty() {
                            shard.replicas = replicas;
                            shard.epoch += 1;
                            put_json(batch, id_key(SHARD_PREFIX, u64::from(shard_id)), shard);
                        }
                    }
                }
                Ok(Reply::Done)
            }
        }
    }

    fn scan_rows<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        mut each: impl FnMut(T),
    ) -> Result<(), EngineError> {
        let start = keys::data_key(META_GROUP, prefix);
        let end = keys::prefix_end(&start);
        let mut failure = None;
        self.engine.scan(
            Cf::Meta,
            &start,
            &end,
            &mut |k, v| match serde_json::from_slice(v) {
                Ok(row) => {
                    each(row);
                    true
                }
                Err(e) => {
                    failure = Some(EngineError::Corrupt {
                        cf: Cf::Meta,
                        key: k.to_vec(),
                        reason: e.to_string(),
                    });
                    false
                }
            },
        )?;
        failure.map_or(Ok(()), Err)
    }

    fn get_row<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, EngineError> {
        let full = keys::data_key(META_GROUP, key);
        match self.engine.get(Cf::Meta, &full)? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| EngineError::Corrupt {
                    cf: Cf::Meta,
                    key: full,
                    reason: e.to_string(),
                }),
            None => Ok(None),
        }
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

    fn on_conf_change(
        &mut self,
        index: u64,
        cc: &ConfChangeV2,
        _cs: &ConfState,
        batch: &mut WriteBatch,
    ) {
        for change in cc.get_changes() {
            match change.get_change_type() {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                    if cc.context.is_empty() {
                        continue;
                    }
                    match serde_json::from_slice::<CoordinatorInfo>(&cc.context) {
                        Ok(info) if info.id == change.node_id => {
                            put_json(batch, id_key(COORD_PREFIX, info.id), &info);
                            self.coordinators.insert(info.id, info);
                        }
                        Ok(_) | Err(_) => warn!(
                            index,
                            node = change.node_id,
                            "conf change without a usable address"
                        ),
                    }
                }
                ConfChangeType::RemoveNode => {
                    batch.delete(Cf::Meta, id_key(COORD_PREFIX, change.node_id));
                    self.coordinators.remove(&change.node_id);
                }
            }
        }
    }

    fn reload(&mut self) -> Result<(), EngineError> {
        self.cluster = self.get_row(CLUSTER_KEY)?;
        self.next_node_id = self.get_row(NEXT_NODE_KEY)?.unwrap_or(1);
        let mut coordinators = BTreeMap::new();
        self.scan_rows(COORD_PREFIX, |c: CoordinatorInfo| {
            coordinators.insert(c.id, c);
        })?;
        let mut nodes = BTreeMap::new();
        self.scan_rows(NODE_PREFIX, |n: NodeInfo| {
            nodes.insert(n.id, n);
        })?;
        let mut shards = BTreeMap::new();
        self.scan_rows(SHARD_PREFIX, |s: ShardInfo| {
            shards.insert(s.id, s);
        })?;
        let mut tenants = BTreeMap::new();
        self.scan_rows(TENANT_PREFIX, |t: TenantInfo| {
            tenants.insert(t.id, t);
        })?;
        self.tenants = tenants;
        let mut waybills = WaybillLedger::default();
        self.scan_rows(RANGE_PREFIX, |r: WaybillRange| {
            waybills.ranges.insert(r.id, r);
        })?;
        self.scan_rows(LEASE_PREFIX, |l: LeaseRecord| {
            waybills
                .leases
                .insert((l.shard, l.tenant_id, l.carrier.clone()), l);
        })?;
        waybills.next_range_id = self.get_row(NEXT_RANGE_KEY)?.unwrap_or(1);
        self.waybills = waybills;
        self.next_tenant_id = self.get_row(NEXT_TENANT_KEY)?.unwrap_or(1);
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
mod tests {
    use super::*;
    use surge_raftstore::MemEngine;

    fn apply(sm: &mut MetaState<MemEngine>, cmd: Command) -> Output {
        let mut batch = WriteBatch::default();
        let out = sm.apply(1, &serde_json::to_vec(&cmd).unwrap_or_default(), &mut batch);
        sm.engine
            .write(&batch, true)
            .unwrap_or_else(|e| panic!("{e}"));
        out
    }

    fn init(token: &str) -> Command {
        Command::InitCluster {
            cluster_id: "c1".into(),
            shards: 4,
            replicas: 3,
            token: token.into(),
            at_ms: 5,
        }
    }

    fn register(instance: &str) -> Command {
        Command::RegisterNode {
            instance_id: instance.into(),
            address: "127.0.0.1:1".into(),
            http_address: String::new(),
            zone: "z".into(),
            at_ms: 6,
        }
    }

    #[test]
    fn init_runs_once_and_a_retry_with_the_same_token_succeeds(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let mut sm = MetaState::load(Arc::new(MemEngine::new()))?;
        assert!(matches!(
            apply(&mut sm, init("t1")),
            Ok(Reply::Initialized(_))
        ));
        assert!(matches!(
            apply(&mut sm, init("t1")),
            Ok(Reply::Initialized(_))
        ));
        assert_eq!(
            apply(&mut sm, init("t2")),
            Err(MetaError::AlreadyInitialized {
                cluster_id: "c1".into()
            })
        );
        assert_eq!(sm.shards.len(), 4);
        Ok(())
    }

    #[test]
    fn registration_is_idempotent_per_instance_and_survives_reload(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let engine = Arc::new(MemEngine::new());
        let mut sm = MetaState::load(engine.clone())?;
        assert_eq!(
            apply(&mut sm, register("a")),
            Err(MetaError::NotInitialized)
        );
        apply(&mut sm, init("t"))?;
        let first = apply(&mut sm, register("a"))?;
        assert_eq!(apply(&mut sm, register("a"))?, first);
        assert_eq!(
            apply(&mut sm, register("b"))?,
            Reply::Registered {
                node_id: 2,
                cluster_id: "c1".into()
            }
        );
        let reloaded = MetaState::load(engine)?;
        assert_eq!(reloaded.nodes, sm.nodes);
        assert_eq!(reloaded.shards, sm.shards);
        assert_eq!(reloaded.next_node_id, 3);
        Ok(())
    }

    #[test]
    fn a_tenant_is_created_once_and_a_retry_with_its_key_succeeds(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let engine = Arc::new(MemEngine::new());
        let mut sm = MetaState::load(engine.clone())?;
        let create = |key: &str| Command::CreateTenant {
            name: "acme".into(),
            key_hash: key.into(),
            at_ms: 7,
        };
        assert_eq!(
            apply(&mut sm, create("h1"))?,
            Reply::TenantCreated { tenant_id: 1 }
        );
        assert_eq!(
            apply(&mut sm, create("h1"))?,
            Reply::TenantCreated { tenant_id: 1 }
        );
        assert_eq!(
            apply(&mut sm, create("h2")),
            Err(MetaError::TenantExists {
                name: "acme".into(),
                id: 1
            })
        );
        let other = Command::CreateTenant {
            name: "globex".into(),
            key_hash: "h3".into(),
            at_ms: 8,
        };
        assert_eq!(
            apply(&mut sm, other)?,
            Reply::TenantCreated { tenant_id: 2 }
        );
        let reloaded = MetaState::load(engine)?;
        assert_eq!(reloaded.tenants, sm.tenants);
        assert_eq!(reloaded.next_tenant_id, 3);
        assert_eq!(reloaded.tenants[&1].key_hashes, vec!["h1".to_string()]);
        Ok(())
    }

    #[test]
    fn unknown_nodes_and_bad_placements_change_nothing() -> Result<(), Box<dyn std::error::Error>> {
        let mut sm = MetaState::load(Arc::new(MemEngine::new()))?;
        apply(&mut sm, init("t"))?;
        apply(&mut sm, register("a"))?;
        let before = sm.shards.clone();
        assert_eq!(
            apply(
                &mut sm,
                Command::SetNodeState {
                    node_id: 9,
                    state: NodeState::Down,
                    at_ms: 1
                }
            ),
            Err(MetaError::UnknownNode(9))
        );
        let bad = Command::PlaceShards {
            assignments: vec![(0, vec![1]), (1, vec![1, 1])],
        };
        assert_eq!(
            apply(&mut sm, bad),
            Err(MetaError::BadPlacement { shard: 1, node: 1 })
        );
        assert_eq!(sm.shards, before);
        let good = Command::PlaceShards {
            assignments: vec![(0, vec![1])],
        };
        apply(&mut sm, good)?;
        assert_eq!(sm.shards[&0].epoch, 2);
        Ok(())
    }
}
