//! [`Coordinator`]: the shared state behind the coordinator's gRPC services and scheduler.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::access::AuditEntry;
use surge_grpc::tls::Transport;
use surge_grpc::ApiError;
use surge_proto::v1::CoordinatorStatus;
use surge_raftstore::raft::StateRole;
use surge_raftstore::transport::SharedClusterId;
use surge_raftstore::{RaftHandle, RequestError};
use surge_rocks::RocksEngine;
use tonic::transport::Channel;
use tonic::Status;

use crate::config::Config;
use crate::error;
use crate::meta::{Command, CoordinatorInfo, Output, Reply};
use crate::meta_state::{MetaState, META_GROUP};
use crate::reports::Reports;

/// How far the cluster is from balanced, as the scheduler's last plan saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub planned: usize,
    pub under_replicated: usize,
    pub replica_spread: usize,
    pub leader_spread: usize,
    /// The plan started nothing and foresaw nothing more.
    pub balanced: bool,
}

pub type MetaHandle = RaftHandle<RocksEngine, MetaState<RocksEngine>>;

/// Coordinator id → addresses, refreshed from the replicated state.
pub type AddressBook = Arc<RwLock<BTreeMap<u64, CoordinatorInfo>>>;

/// Everything the services share.
pub struct Coordinator {
    pub config: Config,
    pub handle: MetaHandle,
    pub book: AddressBook,
    pub cluster_id: SharedClusterId,
    /// What heartbeats told this process while it leads: liveness, shards as their leaders
    /// see them, nodes' figures. Hints and scheduling input, never state.
    pub reports: Reports,
    /// When this process last became the leader (its clock, ms); 0 while it does not lead.
    pub leading_since_ms: AtomicU64,
    /// The scheduler's last plan, for `cluster status`.
    pub progress: Mutex<Progress>,
    /// Shard → waybill usage its leader last reported (with its term); not state.
    pub waybill_usage: Mutex<HashMap<u32, (u64, Vec<surge_proto::v1::RangeUsage>)>>,
    /// TLS with this coordinator's certificate, or plaintext (`insecure = true`).
    pub transport: Transport,
    channels: Mutex<HashMap<String, Channel>>,
}

/// The local Raft view used to route a request.
#[derive(Clone, Copy, Debug)]
pub struct LocalView {
    pub is_leader: bool,
    pub leader_id: u64,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Coordinator {
    pub fn new(
        config: Config,
        handle: MetaHandle,
        book: AddressBook,
        cluster_id: SharedClusterId,
        transport: Transport,
    ) -> Coordinator {
        Coordinator {
            transport,
            config,
            handle,
            book,
            cluster_id,
            reports: Reports::default(),
            leading_since_ms: AtomicU64::new(0),
            progress: Mutex::new(Progress::default()),
            waybill_usage: Mutex::new(HashMap::new()),
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// Coordinator `id`'s client port (AdminService), as operators and hints name it.
    pub fn address_of(&self, id: u64) -> Option<String> {
        self.book
            .read()
            .ok()
            .and_then(|b| b.get(&id).map(|c| c.address.clone()))
    }

    /// Coordinator `id`'s addresses, as the book has them.
    pub fn info_of(&self, id: u64) -> Option<CoordinatorInfo> {
        self.book.read().ok().and_then(|b| b.get(&id).cloned())
    }

    /// Coordinator `id`'s peer port (NodeService, status calls).
    pub fn peer_address_of(&self, id: u64) -> Option<String> {
        self.book
            .read()
            .ok()
            .and_then(|b| b.get(&id).map(|c| c.peer().to_string()))
    }

    /// When this process became the leader, or now if it does not lead.
    pub fn leading_since_ms(&self) -> u64 {
        match self.leading_since_ms.load(Ordering::Relaxed) {
            0 => now_ms(),
            t => t,
        }
    }

    pub fn map_request(&self, err: RequestError) -> ApiError {
        err.into_api("the coordinator group", |id| self.address_of(id))
    }

    pub async fn local_view(&self) -> Result<LocalView, Status> {
        self.handle
            .inspect(META_GROUP, |p| LocalView {
                is_leader: p.is_leader(),
                leader_id: p.leader_id(),
            })
            .await
            .map_err(|e| self.map_request(e).into())
    }

    /// A cached, lazily connected channel to `address`.
    pub fn channel(&self, address: &str) -> Result<Channel, Status> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = channels.get(address) {
            return Ok(c.clone());
        }
        let endpoint = self
            .transport
            .endpoint(address)
            .map_err(|e| ApiError::internal(format!("bad coordinator address {address}: {e}")))?
            .connect_timeout(Duration::from_millis(500));
        let channel = endpoint.connect_lazy();
        channels.insert(address.to_string(), channel.clone());
        Ok(channel)
    }

    /// Proposes a command stamped now and returns its reply.
    pub async fn propose(&self, cmd: Command) -> Result<Reply, Status> {
        let data = serde_json::to_vec(&cmd).map_err(ApiError::internal)?;
        let out: Output = self
            .handle
            .propose(META_GROUP, data)
            .await
            .map_err(|e| self.map_request(e))?;
        Ok(out.map_err(error::from_meta)?)
    }

    /// Proposes an admin change together with its audit record (one log entry).
    pub async fn propose_audited(&self, audit: AuditEntry, cmd: Command) -> Result<Reply, Status> {
        self.propose(Command::Audited {
            audit,
            command: Box::new(cmd),
        })
        .await
    }

    /// This process's own view of the group, for `cluster status`.
    pub async fn local_status(&self) -> Result<CoordinatorStatus, Status> {
        let id = self.config.id;
        let address = self.config.advertise_address.clone();
        let http_address = self.config.advertise_http.clone();
        let peer_address = self.config.advertise_peer.clone();
        let insecure = !self.transport.is_tls();
        let cluster_id = self
            .cluster_id
            .read()
            .map(|c| c.clone())
            .unwrap_or_default();
        self.handle
            .inspect(META_GROUP, move |p| {
                let cs = p.conf_state();
                let voter = cs.voters.contains(&id) || cs.voters_outgoing.contains(&id);
                let role = match p.role() {
                    StateRole::Leader => "leader",
                    StateRole::Candidate => "candidate",
                    StateRole::PreCandidate => "pre_candidate",
                    StateRole::Follower if cs.learners.contains(&id) => "learner",
                    StateRole::Follower if !voter => "non_member",
                    StateRole::Follower => "follower",
                };
                CoordinatorStatus {
                    id,
                    address,
                    role: role.to_string(),
                    term: p.term(),
                    commit_index: p.commit_index(),
                    applied_index: p.applied_index(),
                    voter,
                    http_address,
                    peer_address,
                    insecure,
                    cluster_id,
                }
            })
            .await
            .map_err(|e| self.map_request(e).into())
    }

    /// Reloads the address book and cluster id from the local state machine.
    pub async fn refresh_from_state(&self) {
        let Ok((coords, cluster_id)) = self
            .handle
            .inspect(META_GROUP, |p| {
                (
                    p.sm.coordinators.clone(),
                    p.sm.cluster_id().map(str::to_string),
                )
            })
            .await
        else {
            return;
        };
        if let Ok(mut book) = self.book.write() {
            for (id, info) in coords {
                book.insert(id, info);
            }
        }
        if let Some(cid) = cluster_id {
            if let Ok(mut shared) = self.cluster_id.write() {
                if *shared != cid {
                    *shared = cid;
                }
            }
        }
    }
}
