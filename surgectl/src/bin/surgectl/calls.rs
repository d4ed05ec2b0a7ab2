//! What every command shares to reach the cluster: the clients, and how a failed call reads.

use anyhow::Context as _;
use surge_client::retry::{is_unreachable, UNREACHABLE_METADATA};
use surge_client::{MetaClient, OrderClient};
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use tonic::transport::Channel;

/// A client of the coordinators at `coordinators`.
pub(crate) fn meta_client(coordinators: &[String]) -> anyhow::Result<MetaClient> {
    MetaClient::new(coordinators.to_vec()).map_err(|s| anyhow::anyhow!(s.message().to_string()))
}

/// An order client that finds the cluster through the nodes at `nodes`.
pub(crate) fn order_client(nodes: &[String], api_key: &str) -> anyhow::Result<OrderClient> {
    OrderClient::new(nodes.to_vec(), api_key).map_err(|s| anyhow::anyhow!(s.message().to_string()))
}

/// A failed call as a person reads it: the message and its code; when nothing answered at
/// all, also how to start a cluster or point surgectl at one.
pub(crate) fn status_error(s: tonic::Status) -> anyhow::Error {
    if !is_unreachable(&s) {
        return anyhow::anyhow!("{} ({:?})", s.message(), s.code());
    }
    let what = s
        .metadata()
        .get(UNREACHABLE_METADATA)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("coordinators");
    let (flag, env) = if what == "nodes" {
        ("--nodes", "SURGE_NODES")
    } else {
        ("--coordinators", "SURGE_COORDINATORS")
    };
    anyhow::anyhow!(
        "{}\nIs a cluster running there? Start a local one with `surgectl dev up`, or point \
         surgectl at yours with {flag} HOST:PORT,... (or {env}).",
        s.message()
    )
}

/// One AdminService call through a fresh client of `coordinators`: `f` gets a client and a
/// copy of `req` on each attempt; a failure reads as `what: <status_error>`.
pub(crate) async fn admin<Req, T, F, Fut>(
    coordinators: &[String],
    what: &str,
    req: Req,
    f: F,
) -> anyhow::Result<T>
where
    Req: Clone,
    F: Fn(AdminServiceClient<Channel>, Req) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    meta_client(coordinators)?
        .call(|ch| f(AdminServiceClient::new(ch), req.clone()))
        .await
        .map_err(status_error)
        .with_context(|| what.to_string())
}
