//! `ReplicaService`: questions about this node's own replicas, answered from its engine off
//! the Raft loop — for now the digest `surgectl shard verify` compares across replicas.

use std::sync::Arc;

use surge_grpc::v1::replica_service_server::ReplicaService;
use surge_grpc::v1::{ReplicaDigestRequest, ReplicaDigestResponse};
use surge_grpc::ApiError;
use surge_raftstore::digest::group_digest;
use surge_rocks::RocksEngine;
use tonic::{Request, Response, Status};

use crate::replicas::Replicas;

pub struct ReplicaApi {
    pub node_id: u64,
    pub engine: Arc<RocksEngine>,
    pub replicas: Arc<Replicas>,
}

#[tonic::async_trait]
impl ReplicaService for ReplicaApi {
    async fn replica_digest(
        &self,
        request: Request<ReplicaDigestRequest>,
    ) -> Result<Response<ReplicaDigestResponse>, Status> {
        let shard = request.get_ref().shard;
        if !self.replicas.live().iter().any(|m| m.shard == shard) {
            return Err(ApiError::not_found(format!(
                "shard: node {} holds no replica of shard {shard}",
                self.node_id
            ))
            .into());
        }
        let engine = self.engine.clone();
        let digest =
            tokio::task::spawn_blocking(move || group_digest(engine.as_ref(), u64::from(shard)))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
                .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(Response::new(ReplicaDigestResponse {
            node_id: self.node_id,
            shard,
            applied_index: digest.applied_index,
            epoch: digest.epoch,
            digest: digest.hex(),
            rows: digest.rows,
            bytes: digest.bytes,
        }))
    }
}
