//! Whether `--initialize` may found the coordinator group here. It may only on the group's
//! very first start: a coordinator that lost its disk and founded the group again would forget
//! its votes and could help elect two leaders in one term. So before founding, the other
//! initial peers are asked at their peer ports (briefly, each bounded) whether the cluster
//! already runs and is initialized; if one says so, this coordinator lost its data and must be replaced instead.
//! A peer that does not answer is taken as not started yet: on a first start all are new.

use std::time::Duration;

use surge_grpc::tls::Transport;
use surge_grpc::v1::coordinator_peer_service_client::CoordinatorPeerServiceClient;
use surge_grpc::v1::LocalStatusRequest;
use tracing::{info, warn};

use crate::meta::CoordinatorInfo;

/// How long one peer is given to connect and answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// The id of the cluster some other initial peer reports as running and initialized, if any.
pub async fn running_cluster(
    me: u64,
    peers: &[CoordinatorInfo],
    transport: &Transport,
) -> Option<(u64, String)> {
    for peer in peers.iter().filter(|p| p.id != me) {
        let Ok(endpoint) = transport.endpoint(peer.peer()) else {
            continue;
        };
        let endpoint = endpoint.connect_timeout(ASK_TIMEOUT).timeout(ASK_TIMEOUT);
        let answer = async {
            let channel = endpoint.connect().await.ok()?;
            CoordinatorPeerServiceClient::new(channel)
                .local_status(LocalStatusRequest {})
                .await
                .ok()
        };
        match tokio::time::timeout(ASK_TIMEOUT * 2, answer).await {
            Ok(Some(resp)) if !resp.get_ref().cluster_id.is_empty() => {
                let cluster_id = resp.into_inner().cluster_id;
                warn!(peer = peer.id, %cluster_id, "an initial peer already runs an initialized cluster");
                return Some((peer.id, cluster_id));
            }
            Ok(Some(_)) => info!(peer = peer.id, "an initial peer runs, not initialized yet"),
            _ => info!(
                peer = peer.id,
                "an initial peer did not answer; taken as not started"
            ),
        }
    }
    None
}
