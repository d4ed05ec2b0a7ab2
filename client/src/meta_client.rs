//! [`MetaClient`]: leader-following calls to the coordinator quorum.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use surge_grpc::tls::Transport;
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::{
    ClusterStatusRequest, ClusterStatusResponse, CreateTenantRequest, CreateTenantResponse,
    InitClusterRequest, InitClusterResponse,
};
use surge_proto::LEADER_HINT_METADATA;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use tracing::debug;

use crate::channels::ChannelCache;
use crate::retry::{is_retryable, no_answer_cause, unreachable, RetryPolicy, Tries};

/// Puts the operator token on every call: `authorization: Bearer <token>`.
#[derive(Clone, Default)]
pub struct BearerToken(Option<AsciiMetadataValue>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert(surge_proto::auth::AUTHORIZATION, value.clone());
        }
        Ok(request)
    }
}

/// What [`MetaClient::call`] hands its closure: a channel to one coordinator that carries the
/// operator token, if the client has one.
pub type CoordinatorChannel = InterceptedService<Channel, BearerToken>;

/// A fresh operator token made here, for `cluster init`: 256 random bits from the OS, hex.
pub use surge_proto::auth::new_operator_token;

/// A client of the coordinators.
pub struct MetaClient {
    token: BearerToken,
    addresses: Vec<String>,
    /// The coordinator that answered last (or that a hint named): tried first.
    preferred: Mutex<Option<String>>,
    channels: ChannelCache,
    policy: RetryPolicy,
    call_timeout: Duration,
}

impl MetaClient {
    /// A client over `addresses` (`host:port`, at least one).
    pub fn new(addresses: Vec<String>) -> Result<MetaClient, Status> {
        if addresses.is_empty() {
            return Err(Status::invalid_argument(
                "coordinators: at least one address is needed",
            ));
        }
        Ok(MetaClient {
            token: BearerToken::default(),
            addresses,
            preferred: Mutex::new(None),
            channels: ChannelCache::new("coordinators", Transport::Plaintext),
            policy: RetryPolicy::default(),
            call_timeout: Duration::from_secs(5),
        })
    }

    /// Calls over `transport` (TLS verified against the cluster CA) instead of plaintext.
    pub fn with_transport(mut self, transport: Transport) -> MetaClient {
        self.channels = ChannelCache::new("coordinators", transport);
        self
    }

    /// Sends `token` (an operator token) with every call; empty: none.
    pub fn with_token(mut self, token: &str) -> Result<MetaClient, Status> {
        if token.is_empty() {
            self.token = BearerToken::default();
            return Ok(self);
        }
        let value = format!("Bearer {token}").parse().map_err(|_| {
            Status::invalid_argument("token: only printable ASCII characters without spaces")
        })?;
        self.token = BearerToken(Some(value));
        Ok(self)
    }

    /// The transport this client calls over.
    pub fn transport(&self) -> &Transport {
        self.channels.transport()
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> MetaClient {
        self.policy = policy;
        self
    }

    pub fn with_call_timeout(mut self, timeout: Duration) -> MetaClient {
        self.call_timeout = timeout;
        self
    }

    fn channel(&self, address: &str) -> Result<CoordinatorChannel, Status> {
        let timeout = self.call_timeout;
        let channel = self.channels.get(address, |e| e.timeout(timeout))?;
        Ok(InterceptedService::new(channel, self.token.clone()))
    }

    /// The order to try coordinators in on attempt `attempt`: the preferred one first.
    fn target(&self, attempt: u32) -> String {
        let preferred = self.preferred.lock().ok().and_then(|p| p.clone());
        match preferred {
            Some(p) if attempt.is_multiple_of(2) => p,
            _ => self.addresses[attempt as usize % self.addresses.len()].clone(),
        }
    }

    /// Tries `address` first next time. A hint naming an address this client was not given
    /// is ignored: it is the leader's other port (a coordinator names its client port to
    /// operators and its peer port to nodes), and any coordinator forwards to the leader.
    fn prefer(&self, address: Option<String>) {
        let address = address.filter(|a| self.addresses.contains(a));
        if let Ok(mut p) = self.preferred.lock() {
            *p = address;
        }
    }

    /// Calls `f` on a coordinator, following leader hints and retrying transient failures
    /// until the policy's attempts or deadline run out. When no coordinator answers at all
    /// (each refused the connection or timed out), it gives up after the policy's
    /// `unreachable_after` with a status naming every address and its cause.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, Status>
    where
        F: Fn(CoordinatorChannel) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let mut tries = Tries::new(&self.policy);
        // Why each address gave no answer; emptied for good once any coordinator answers.
        let mut silent: Vec<(String, String)> = Vec::new();
        let mut answered = false;
        loop {
            let address = self.target(tries.attempt());
            let status = match f(self.channel(&address)?).await {
                Ok(resp) => {
                    self.prefer(Some(address));
                    return Ok(resp.into_inner());
                }
                Err(status) if !is_retryable(&status) => return Err(status),
                Err(status) => status,
            };
            let hint = status
                .metadata()
                .get(LEADER_HINT_METADATA)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            match no_answer_cause(&status) {
                Some(cause) if !answered => note_silent(&mut silent, address.clone(), cause),
                Some(_) => {}
                None => {
                    answered = true;
                    silent.clear();
                }
            }
            debug!(%address, code = ?status.code(), message = status.message(), "coordinator call failed; retrying");
            self.prefer(hint);
            let all_silent = !answered
                && self
                    .addresses
                    .iter()
                    .all(|a| silent.iter().any(|(s, _)| s == a));
            // With nobody answering, giving up names every address and its cause.
            let status = if all_silent {
                let waited = tries.waited();
                let gone = unreachable("coordinators", &silent, waited);
                if self
                    .policy
                    .unreachable_after
                    .is_some_and(|limit| waited >= limit)
                {
                    return Err(gone);
                }
                gone
            } else {
                status
            };
            // Each address is tried twice per backoff step: the preferred one, then another.
            let pause = tries.backoff(2);
            tries.again(status, pause).await?;
        }
    }

    /// The whole cluster picture (linearizable at the leader).
    pub async fn cluster_status(&self) -> Result<ClusterStatusResponse, Status> {
        self.call(|ch| async move {
            AdminServiceClient::new(ch)
                .cluster_status(ClusterStatusRequest {})
                .await
        })
        .await
    }

    /// Initializes the cluster. One request token and one first admin token (made here) serve
    /// every retry, so a retry after an ambiguous failure answers success rather than "already
    /// initialized", and the answer's admin token is the one the cluster recorded.
    pub async fn init_cluster(
        &self,
        shards: u32,
        replicas: u32,
    ) -> Result<InitClusterResponse, Status> {
        let token = uuid::Uuid::new_v4().to_string();
        let admin_token = new_operator_token();
        self.call(|ch| {
            let req = InitClusterRequest {
                shards,
                replicas,
                request_token: token.clone(),
                admin_token: admin_token.clone(),
            };
            async move { AdminServiceClient::new(ch).init_cluster(req).await }
        })
        .await
    }
}

impl MetaClient {
    /// Creates tenant `name` with its first API key (made by the cluster; in the answer, once).
    /// One request token serves every retry, so a retry after an ambiguous failure is the
    /// same tenant, with a fresh key in place of the one whose answer was lost.
    pub async fn create_tenant(&self, name: &str) -> Result<CreateTenantResponse, Status> {
        let token = uuid::Uuid::new_v4().to_string();
        self.call(|ch| {
            let req = CreateTenantRequest {
                name: name.to_string(),
                request_token: token.clone(),
                ..CreateTenantRequest::default()
            };
            async move { AdminServiceClient::new(ch).create_tenant(req).await }
        })
        .await
    }
}

/// Records why `address` gave no answer (its latest cause), keeping the addresses in the order
/// first tried.
fn note_silent(silent: &mut Vec<(String, String)>, address: String, cause: String) {
    match silent.iter_mut().find(|(a, _)| *a == address) {
        Some(entry) => entry.1 = cause,
        None => silent.push((address, cause)),
    }
}
