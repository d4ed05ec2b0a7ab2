//! The node's shard replicas: which it runs, created and removed only on the coordinator's
//! word (heartbeat assignments), never because a Raft message arrived for an unknown shard.
//!
//! Each replica has a record in the data dir (`meta` family, node-local key range): its shard,
//! the epoch it was created at and whether it is a tombstone. A tombstone is never recreated by
//! an assignment of the same or an older epoch, so a removed replica stays removed.
//!
//! A replica goes when the routing table shows its shard at a newer epoch without this node,
//! or when a member of the shard tells it (a tombstone notice) that it is no member as of an
//! epoch newer than its own: its rows are deleted by range and the tombstone written in the
//! same synced batch. A replica created at a later epoch records that epoch, so messages from
//! before it (a removed incarnation's old peers) are refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use surge_proto::v1::ShardStatus;
use surge_raftstore::snapshot_worker::SnapshotWorker;
use surge_raftstore::{
    keys, logger, Cf, Engine, EngineError, GroupStorage, Peer, PeerError, RaftConfig, RaftHandle,
    RequestError, WriteBatch,
};
use surge_rocks::RocksEngine;
use tracing::{info, warn};

use surge_shard::ShardSm;

/// The epoch of a shard's first placement (epoch 1 is "not placed yet"): the replicas named
/// at this epoch found the group together from the same initial state. A replica assigned at a
/// later epoch starts empty and is caught up by a snapshot from the leader.
pub const FOUNDING_EPOCH: u64 = 2;

pub type ShardPeer = Peer<RocksEngine, ShardSm<RocksEngine>>;
pub type ShardHandle = RaftHandle<RocksEngine, ShardSm<RocksEngine>>;

/// What the node remembers about one of its replicas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaMeta {
    pub shard: u32,
    pub epoch: u64,
    pub replicas: Vec<u64>,
    pub tombstone: bool,
}

const REPLICA_PREFIX: &[u8] = b"replica/";

fn meta_key(shard: u32) -> Vec<u8> {
    let mut suffix = REPLICA_PREFIX.to_vec();
    suffix.extend_from_slice(&shard.to_be_bytes());
    keys::data_key(u64::MAX, &suffix)
}

fn stage_meta(meta: &ReplicaMeta, batch: &mut WriteBatch) {
    let value = serde_json::to_vec(meta).unwrap_or_default();
    batch.put(Cf::META, meta_key(meta.shard), value);
}

/// Every replica record in the data dir.
pub fn load_all<E: Engine + ?Sized>(engine: &E) -> Result<Vec<ReplicaMeta>, EngineError> {
    let start = keys::data_key(u64::MAX, REPLICA_PREFIX);
    let end = keys::prefix_end(&start);
    let mut out = Vec::new();
    let mut bad = None;
    engine.scan(Cf::META, &start, &end, &mut |k, v| {
        match serde_json::from_slice::<ReplicaMeta>(v) {
            Ok(m) => out.push(m),
            Err(e) => {
                bad = Some(EngineError::Corrupt {
                    cf: Cf::META,
                    key: k.to_vec(),
                    reason: e.to_string(),
                });
                return false;
            }
        }
        true
    })?;
    match bad {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Snapshots being built at once in this process (each holds a shard's rows in memory).
const SNAPSHOTS_BUILDING: usize = 2;

/// Drops built snapshots nobody took in time (the heartbeat loop calls it).
pub fn purge_snapshots() {
    snapshot_worker().purge_expired();
}

/// The process's snapshot builder: every replica's snapshots are built off the Raft loop.
fn snapshot_worker() -> Arc<SnapshotWorker> {
    static WORKER: OnceLock<Arc<SnapshotWorker>> = OnceLock::new();
    WORKER
        .get_or_init(|| SnapshotWorker::new(SNAPSHOTS_BUILDING))
        .clone()
}

/// Opens (and, for a founding replica without state, bootstraps) the peer of `meta`.
pub fn open_peer(
    engine: &Arc<RocksEngine>,
    node_id: u64,
    meta: &ReplicaMeta,
    config: &RaftConfig,
) -> Result<ShardPeer, PeerError> {
    let group = u64::from(meta.shard);
    let mut storage = GroupStorage::open(engine.clone(), group)?;
    let mut batch = WriteBatch::default();
    if !storage.is_initialized() {
        if meta.epoch == FOUNDING_EPOCH {
            storage.stage_bootstrap(&meta.replicas, FOUNDING_EPOCH, &mut batch);
        } else {
            storage.stage_creation_epoch(meta.epoch, &mut batch);
        }
    } else {
        storage.stage_legacy_epoch(FOUNDING_EPOCH, &mut batch);
    }
    stage_meta(meta, &mut batch);
    engine.write(&batch, true)?;
    storage.set_snapshot_worker(snapshot_worker());
    let sm = ShardSm::new(meta.shard, engine.clone());
    Peer::open(node_id, storage, sm, config, &logger::raft_logger(group))
}

/// The live set of replicas and the reconciliation with the coordinator's assignments.
pub struct Replicas {
    engine: Arc<RocksEngine>,
    node_id: u64,
    config: RaftConfig,
    handle: ShardHandle,
    known: Mutex<HashMap<u32, ReplicaMeta>>,
    /// Held across every decision to create or destroy a replica and its execution, so two
    /// of them (a heartbeat's reconcile, tombstone notices) never interleave: a notice about
    /// an older replica must not destroy the new one created in between.
    lifecycle: tokio::sync::Mutex<()>,
}

impl Replicas {
    pub fn new(
        engine: Arc<RocksEngine>,
        node_id: u64,
        config: RaftConfig,
        handle: ShardHandle,
        known: Vec<ReplicaMeta>,
    ) -> Replicas {
        Replicas {
            engine,
            node_id,
            config,
            handle,
            known: Mutex::new(known.into_iter().map(|m| (m.shard, m)).collect()),
            lifecycle: tokio::sync::Mutex::new(()),
        }
    }

    fn known(&self) -> HashMap<u32, ReplicaMeta> {
        self.known.lock().map(|k| k.clone()).unwrap_or_default()
    }

    fn remember(&self, meta: ReplicaMeta) {
        if let Ok(mut k) = self.known.lock() {
            k.insert(meta.shard, meta);
        }
    }

    /// The record of `shard`'s replica here, live or tombstone.
    pub fn record(&self, shard: u32) -> Option<ReplicaMeta> {
        self.known.lock().ok()?.get(&shard).cloned()
    }

    /// The shards this node runs a live replica of.
    pub fn live(&self) -> Vec<ReplicaMeta> {
        let mut live: Vec<ReplicaMeta> = self
            .known()
            .into_values()
            .filter(|m| !m.tombstone)
            .collect();
        live.sort_by_key(|m| m.shard);
        live
    }

    /// Brings the local replicas in line with `assigned` (this node's placements) and
    /// `routes` (every shard's epoch and replicas).
    pub async fn reconcile(
        &self,
        assigned: &[ShardStatus],
        routes: &HashMap<u32, (u64, Vec<u64>)>,
    ) {
        let _lifecycle = self.lifecycle.lock().await;
        let known = self.known();
        for a in assigned {
            if !a.replicas.contains(&self.node_id) {
                continue;
            }
            match known.get(&a.id) {
                Some(m) if m.tombstone && m.epoch >= a.epoch => continue,
                Some(m) if !m.tombstone => continue,
                _ => {}
            }
            let meta = ReplicaMeta {
                shard: a.id,
                epoch: a.epoch,
                replicas: a.replicas.clone(),
                tombstone: false,
            };
            if let Err(e) = self.create(meta).await {
                warn!(shard = a.id, error = %e, "could not create a replica");
            }
        }
        for (shard, m) in known.iter().filter(|(_, m)| !m.tombstone) {
            let Some((epoch, replicas)) = routes.get(shard) else {
                continue;
            };
            let current = self
                .handle
                .status(u64::from(*shard))
                .map_or(m.epoch, |s| s.epoch.max(m.epoch));
            if *epoch > current && !replicas.contains(&self.node_id) {
                if let Err(e) = self.destroy(m, *epoch).await {
                    warn!(shard, error = %e, "could not remove a replica");
                }
            }
        }
    }

    async fn create(&self, meta: ReplicaMeta) -> Result<(), RequestError> {
        let engine = self.engine.clone();
        let config = self.config.clone();
        let node_id = self.node_id;
        let opened = {
            let meta = meta.clone();
            tokio::task::spawn_blocking(move || open_peer(&engine, node_id, &meta, &config))
                .await
                .map_err(|e| RequestError::Failed(e.to_string()))?
        };
        let peer = opened.map_err(|e| RequestError::Failed(e.to_string()))?;
        self.handle.create(peer).await?;
        info!(shard = meta.shard, epoch = meta.epoch, replicas = ?meta.replicas, "replica created");
        self.remember(meta);
        Ok(())
    }

    /// A member of `shard` says this node's replica is no member as of `epoch`: destroy it if
    /// it is older than that (a notice about an older incarnation changes nothing). With
    /// `older_incarnation`, this node's id (re)joined the shard at `epoch`: a replica created
    /// before that is an older incarnation and goes, with a tombstone just below `epoch` so
    /// the assignment of the new one creates it afresh.
    pub async fn on_tombstone(&self, shard: u32, epoch: u64, older_incarnation: bool) {
        let _lifecycle = self.lifecycle.lock().await;
        let Some(meta) = self.record(shard).filter(|m| !m.tombstone) else {
            return;
        };
        let (stale, tombstone_at) = if older_incarnation {
            (meta.epoch < epoch, epoch.saturating_sub(1))
        } else {
            let local = self
                .handle
                .status(u64::from(shard))
                .map_or(meta.epoch, |s| s.epoch.max(meta.epoch));
            (local < epoch, epoch)
        };
        if !stale {
            return;
        }
        info!(
            shard,
            created_at = meta.epoch,
            epoch,
            older_incarnation,
            "told this replica was removed; destroying it"
        );
        if let Err(e) = self.destroy(&meta, tombstone_at).await {
            warn!(shard, error = %e, "could not remove a replica");
        }
    }

    async fn destroy(&self, meta: &ReplicaMeta, epoch: u64) -> Result<(), RequestError> {
        let tombstone = ReplicaMeta {
            epoch,
            tombstone: true,
            ..meta.clone()
        };
        let mut extra = WriteBatch::default();
        stage_meta(&tombstone, &mut extra);
        self.handle.destroy(u64::from(meta.shard), extra).await?;
        snapshot_worker().forget(u64::from(meta.shard));
        info!(shard = meta.shard, epoch, "replica removed; tombstone kept");
        self.remember(tombstone);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_raftstore::raft::eraftpb::{Message, MessageType};
    use surge_raftstore::{raft_loop, MessageSink, RaftLoop};

    struct Nowhere;

    impl MessageSink for Nowhere {
        fn send(
            &self,
            _group: u64,
            _epoch: u64,
            _msg: surge_raftstore::raft::eraftpb::Message,
        ) -> bool {
            false
        }
    }

    fn status(shard: u32, epoch: u64, replicas: &[u64]) -> ShardStatus {
        ShardStatus {
            id: shard,
            epoch,
            replicas: replicas.to_vec(),
            ..ShardStatus::default()
        }
    }

    #[tokio::test]
    async fn a_removed_replica_stays_removed() -> Result<(), EngineError> {
        let dir = tempfile::tempdir().map_err(|e| EngineError::Backend(e.to_string()))?;
        let engine = Arc::new(RocksEngine::open(dir.path(), &crate::families())?);
        let config = RaftConfig::default();
        let (raft_loop, handle) = RaftLoop::new(Vec::new(), Arc::new(Nowhere), config.clone());
        let thread = raft_loop::spawn(raft_loop);
        let replicas = Replicas::new(engine.clone(), 1, config, handle.clone(), Vec::new());

        // Placed here at the founding epoch: created, bootstrapped.
        let placed = vec![status(5, FOUNDING_EPOCH, &[1, 2, 3])];
        let routes = HashMap::from([(5, (FOUNDING_EPOCH, vec![1, 2, 3]))]);
        replicas.reconcile(&placed, &routes).await;
        assert_eq!(replicas.live().len(), 1);
        assert!(handle.status(5).is_some());

        // Moved away at a later epoch: destroyed, rows deleted, tombstone kept.
        let moved = HashMap::from([(5, (FOUNDING_EPOCH + 1, vec![2, 3, 4]))]);
        replicas.reconcile(&[], &moved).await;
        assert!(replicas.live().is_empty());
        assert!(handle.status(5).is_none());
        assert!(!GroupStorage::open(engine.clone(), 5)?.is_initialized());
        let records = load_all(engine.as_ref())?;
        assert!(records.iter().any(|m| m.shard == 5 && m.tombstone));

        // A stale assignment and a message for the shard do not bring it back.
        replicas.reconcile(&placed, &routes).await;
        let mut msg = Message::default();
        msg.set_msg_type(MessageType::MsgHeartbeat);
        msg.from = 2;
        msg.to = 1;
        msg.term = 9;
        handle.step(5, FOUNDING_EPOCH + 5, msg);
        let _ = handle.statuses();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            handle.status(5).is_none(),
            "a message resurrected the replica"
        );
        assert!(
            replicas.live().is_empty(),
            "a stale assignment resurrected it"
        );
        assert!(!GroupStorage::open(engine.clone(), 5)?.is_initialized());

        // A new placement at a newer epoch creates a fresh (empty) replica again.
        let back = vec![status(5, FOUNDING_EPOCH + 2, &[1, 2, 3])];
        replicas.reconcile(&back, &HashMap::new()).await;
        assert_eq!(replicas.live().len(), 1);
        handle.stop();
        let _ = thread.join();
        Ok(())
    }

    #[tokio::test]
    async fn a_tombstone_notice_removes_only_an_older_replica() -> Result<(), EngineError> {
        let dir = tempfile::tempdir().map_err(|e| EngineError::Backend(e.to_string()))?;
        let engine = Arc::new(RocksEngine::open(dir.path(), &crate::families())?);
        let config = RaftConfig::default();
        let (raft_loop, handle) = RaftLoop::new(Vec::new(), Arc::new(Nowhere), config.clone());
        let thread = raft_loop::spawn(raft_loop);
        let replicas = Replicas::new(engine.clone(), 1, config, handle.clone(), Vec::new());
        let placed = vec![status(5, FOUNDING_EPOCH, &[1, 2, 3])];
        replicas.reconcile(&placed, &HashMap::new()).await;
        assert_eq!(replicas.live().len(), 1);

        // A notice at the replica's own epoch (or older) is about an older incarnation.
        replicas.on_tombstone(5, FOUNDING_EPOCH, false).await;
        assert_eq!(replicas.live().len(), 1, "a notice at our epoch removed us");
        // A notice from a newer epoch: removed, tombstoned at that epoch.
        replicas.on_tombstone(5, FOUNDING_EPOCH + 3, false).await;
        assert!(replicas.live().is_empty());
        assert!(handle.status(5).is_none());
        assert_eq!(
            replicas.record(5).map(|m| (m.tombstone, m.epoch)),
            Some((true, FOUNDING_EPOCH + 3))
        );
        // An assignment older than the tombstone does not bring it back.
        replicas
            .reconcile(
                &[status(5, FOUNDING_EPOCH + 2, &[1, 2, 3])],
                &HashMap::new(),
            )
            .await;
        assert!(replicas.live().is_empty());
        handle.stop();
        let _ = thread.join();
        Ok(())
    }

    #[test]
    fn replica_records_round_trip() -> Result<(), EngineError> {
        let dir = tempfile::tempdir().map_err(|e| EngineError::Backend(e.to_string()))?;
        let engine = Arc::new(RocksEngine::open(dir.path(), &crate::families())?);
        let meta = ReplicaMeta {
            shard: 3,
            epoch: FOUNDING_EPOCH,
            replicas: vec![1, 2, 3],
            tombstone: false,
        };
        let peer = open_peer(&engine, 1, &meta, &RaftConfig::default())
            .map_err(|e| EngineError::Backend(e.to_string()))?;
        assert_eq!(peer.conf_state().voters, vec![1, 2, 3]);
        drop(peer);
        let later = ReplicaMeta {
            shard: 4,
            epoch: FOUNDING_EPOCH + 1,
            ..meta.clone()
        };
        let peer = open_peer(&engine, 1, &later, &RaftConfig::default())
            .map_err(|e| EngineError::Backend(e.to_string()))?;
        assert!(
            peer.conf_state().voters.is_empty(),
            "a later replica waits for a snapshot"
        );
        let mut all = load_all(engine.as_ref())?;
        all.sort_by_key(|m| m.shard);
        assert_eq!(all, vec![meta, later]);
        Ok(())
    }
}
