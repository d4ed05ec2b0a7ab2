//! `CoordinatorPeerService`: what a coordinator tells its peers about itself.

use std::sync::Arc;

use surge_grpc::v1::coordinator_peer_service_server::CoordinatorPeerService;
use surge_grpc::v1::{CoordinatorStatus, LocalStatusRequest};
use tonic::{Request, Response, Status};

use crate::coordinator::Coordinator;

pub struct PeerApi {
    pub coordinator: Arc<Coordinator>,
}

#[tonic::async_trait]
impl CoordinatorPeerService for PeerApi {
    async fn local_status(
        &self,
        _request: Request<LocalStatusRequest>,
    ) -> Result<Response<CoordinatorStatus>, Status> {
        self.coordinator.local_status().await.map(Response::new)
    }
}
