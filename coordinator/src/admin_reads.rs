//! The answers of AdminService's wider reads: `cluster status` (every coordinator asked at
//! its peer port), and the tenant list.

use std::time::Duration;

use futures::future::join_all;
use surge_grpc::v1::coordinator_peer_service_client::CoordinatorPeerServiceClient;
use surge_grpc::v1::{
    ClusterStatusResponse, CoordinatorStatus, ListTenantsResponse, LocalStatusRequest, TenantInfo,
};
use tonic::{Request, Status};

use crate::admin_service::AdminApi;
use crate::meta::CoordinatorInfo;
use crate::meta_state::META_GROUP;
use crate::node_service::shard_status;

impl AdminApi {
    /// Coordinator `id`'s own status, asked at its peer port.
    async fn peer_status(&self, id: u64, info: Option<CoordinatorInfo>) -> CoordinatorStatus {
        let info = info.unwrap_or(CoordinatorInfo {
            id,
            address: String::new(),
            http_address: String::new(),
            peer_address: String::new(),
        });
        let unreachable = CoordinatorStatus {
            id,
            address: info.address.clone(),
            peer_address: info.peer().to_string(),
            role: "unreachable".into(),
            ..Default::default()
        };
        let Ok(channel) = self.coordinator.channel(info.peer()) else {
            return unreachable;
        };
        let mut client = CoordinatorPeerServiceClient::new(channel);
        let mut request = Request::new(LocalStatusRequest {});
        request.set_timeout(Duration::from_millis(800));
        match tokio::time::timeout(Duration::from_secs(1), client.local_status(request)).await {
            Ok(Ok(resp)) => resp.into_inner(),
            _ => unreachable,
        }
    }

    pub(crate) async fn status(&self) -> Result<ClusterStatusResponse, Status> {
        let c = &self.coordinator;
        let (cluster, members, shards) = c
            .handle
            .read(META_GROUP, |sm| {
                (
                    sm.cluster.clone(),
                    sm.coordinators.clone(),
                    sm.shards.clone(),
                )
            })
            .await
            .map_err(|e| c.map_request(e))?;
        let voters = c
            .handle
            .inspect(META_GROUP, |p| {
                let cs = p.conf_state();
                let mut ids: Vec<u64> = cs
                    .voters
                    .iter()
                    .chain(&cs.voters_outgoing)
                    .chain(&cs.learners)
                    .copied()
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            })
            .await
            .map_err(|e| c.map_request(e))?;
        let mut coordinators = Vec::with_capacity(voters.len());
        let mut lookups = Vec::new();
        for id in voters {
            if id == c.config.id {
                coordinators.push(c.local_status().await?);
            } else {
                let info = members.get(&id).cloned().or_else(|| c.info_of(id));
                lookups.push(self.peer_status(id, info));
            }
        }
        coordinators.extend(join_all(lookups).await);
        coordinators.sort_by_key(|s| s.id);
        let nodes = c.node_statuses().await?;
        let (rebalance, config) = c.rebalance_progress().await?;
        let leaders = c.reports.leaders();
        Ok(ClusterStatusResponse {
            initialized: cluster.is_some(),
            cluster_id: cluster
                .as_ref()
                .map(|i| i.cluster_id.clone())
                .unwrap_or_default(),
            shard_count: cluster.as_ref().map_or(0, |i| i.shards),
            replicas: cluster.as_ref().map_or(0, |i| i.replicas),
            leader_id: c.config.id,
            coordinators,
            nodes,
            shards: shards
                .values()
                .map(|s| shard_status(s, leaders.get(&s.id).copied().unwrap_or(0)))
                .collect(),
            rebalance: Some(rebalance),
            config: Some(config),
        })
    }

    pub(crate) async fn tenants(&self) -> Result<ListTenantsResponse, Status> {
        let c = &self.coordinator;
        let tenants = c
            .handle
            .read(META_GROUP, |sm| {
                sm.tenants
                    .values()
                    .map(|t| TenantInfo {
                        id: t.id,
                        name: t.name.clone(),
                        created_at_ms: t.created_at_ms,
                        api_keys: t.live_keys().count() as u32,
                        limits: Some(crate::tenant_key_ops::limits_msg(&t.limits)),
                    })
                    .collect()
            })
            .await
            .map_err(|e| c.map_request(e))?;
        Ok(ListTenantsResponse { tenants })
    }
}
