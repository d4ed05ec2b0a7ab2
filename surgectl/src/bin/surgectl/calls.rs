//! What every command shares to reach the cluster: the clients, and how a failed call reads.

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{bail, Context as _};
use surge_client::retry::{is_unreachable, UNREACHABLE_METADATA};
use surge_client::{CoordinatorChannel, MetaClient, OrderClient};
use surge_grpc::tls::{ClusterTls, Transport};
use surge_grpc::v1::admin_service_client::AdminServiceClient;

/// How this run calls the cluster, from `--ca`, `--cert`, `--key` and `--insecure`; set once
/// at start.
#[derive(Clone, Debug, Default)]
pub(crate) struct TransportArgs {
    pub(crate) ca: Option<PathBuf>,
    pub(crate) cert_and_key: Option<(PathBuf, PathBuf)>,
    pub(crate) insecure: bool,
    pub(crate) token: Option<String>,
    pub(crate) token_file: Option<PathBuf>,
}

static TRANSPORT: OnceLock<TransportArgs> = OnceLock::new();

/// Records this run's transport flags (once, before any call).
pub(crate) fn set_transport(args: TransportArgs) {
    let _ = TRANSPORT.set(args);
}

/// TLS verified against `--ca` (with `--cert` presented when given), or plaintext with
/// `--insecure`. Read when a command first calls the cluster, so commands that call nothing
/// (`dev up`, `cert`) need neither.
pub(crate) fn transport() -> anyhow::Result<Transport> {
    let args = TRANSPORT.get().cloned().unwrap_or_default();
    if args.insecure {
        return Ok(Transport::Plaintext);
    }
    let Some(ca) = args.ca else {
        bail!(
            "--ca: missing; the cluster serves TLS: pass --ca CA.pem (or SURGE_CA; `surgectl dev up` \
             prints the exports), or --insecure for a cluster that runs with insecure = true"
        );
    };
    let tls = ClusterTls::load(
        &ca,
        args.cert_and_key
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path())),
    )?;
    Ok(Transport::tls(tls))
}

/// The operator token from --token, or else from --token-file, if any.
fn operator_token() -> anyhow::Result<Option<String>> {
    let args = TRANSPORT.get().cloned().unwrap_or_default();
    if args.token.is_some() {
        return Ok(args.token);
    }
    if let Some(path) = args.token_file {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("--token-file: cannot read {}", path.display()))?;
        return Ok(Some(text.trim().to_string()));
    }
    Ok(args.token)
}

/// A client of the coordinators at `coordinators`, with the operator token when one is given.
pub(crate) fn meta_client(coordinators: &[String]) -> anyhow::Result<MetaClient> {
    let client = MetaClient::new(coordinators.to_vec())
        .map_err(|s| anyhow::anyhow!(s.message().to_string()))?
        .with_transport(transport()?);
    match operator_token()? {
        Some(token) => client
            .with_token(&token)
            .map_err(|s| anyhow::anyhow!("--token: {}", s.message())),
        None => Ok(client),
    }
}

/// An order client that finds the cluster through the nodes at `nodes`.
pub(crate) fn order_client(nodes: &[String], api_key: &str) -> anyhow::Result<OrderClient> {
    Ok(OrderClient::new(nodes.to_vec(), api_key)
        .map_err(|s| anyhow::anyhow!(s.message().to_string()))?
        .with_transport(transport()?))
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
    F: Fn(AdminServiceClient<CoordinatorChannel>, Req) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    meta_client(coordinators)?
        .call(|ch| f(AdminServiceClient::new(ch), req.clone()))
        .await
        .map_err(status_error)
        .with_context(|| what.to_string())
}
