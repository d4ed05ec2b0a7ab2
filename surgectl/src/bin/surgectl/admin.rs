//! The admin commands: each calls the coordinators through `MetaClient` and prints the result.

use anyhow::Context;
use std::time::Duration;

use surge_client::{MetaClient, RetryPolicy};
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::{
    AddCoordinatorRequest, ListNodesRequest, ListTenantsRequest, RemoveCoordinatorRequest,
};

use crate::calls::{meta_client as client, status_error};
use crate::output::{self, Format};

/// Membership changes wait for a learner to catch up: give them a longer call timeout.
fn membership_client(coordinators: &[String]) -> anyhow::Result<MetaClient> {
    let policy = RetryPolicy {
        deadline: Duration::from_secs(90),
        ..RetryPolicy::default()
    };
    Ok(client(coordinators)?
        .with_call_timeout(Duration::from_secs(60))
        .with_policy(policy))
}

pub(crate) async fn init(
    coordinators: &[String],
    format: Format,
    shards: u32,
    replicas: u32,
    save_token: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    if let Some(path) = &save_token {
        // Checked before init: a file in the way must not cost the token after it.
        if path.exists() {
            anyhow::bail!(
                "--save-token: {} exists; it is not overwritten",
                path.display()
            );
        }
    }
    let mut resp = client(coordinators)?
        .init_cluster(shards, replicas)
        .await
        .map_err(status_error)
        .context("cluster init")?;
    if let Some(path) = &save_token {
        match surgectl::dev_cluster::write_secret(path, &resp.admin_token) {
            Ok(()) => {
                resp.admin_token.clear();
                eprintln!("the first admin token is in {} (mode 0600)", path.display());
            }
            // The cluster is initialized: the token must not be lost with the file.
            Err(e) => eprintln!(
                "--save-token: cannot write {} ({e}); the token is printed instead",
                path.display()
            ),
        }
    }
    output::print_init(format, &resp);
    Ok(())
}

pub(crate) async fn status(coordinators: &[String], format: Format) -> anyhow::Result<()> {
    let resp = client(coordinators)?
        .cluster_status()
        .await
        .map_err(status_error)
        .context("cluster status")?;
    output::print_status(format, &resp);
    Ok(())
}

pub(crate) async fn node_list(coordinators: &[String], format: Format) -> anyhow::Result<()> {
    let resp = client(coordinators)?
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .list_nodes(ListNodesRequest {})
                .await
        })
        .await
        .map_err(status_error)
        .context("node list")?;
    output::print_nodes(format, &resp.nodes);
    Ok(())
}

pub(crate) async fn coordinator_add(
    coordinators: &[String],
    format: Format,
    req: AddCoordinatorRequest,
) -> anyhow::Result<()> {
    let resp = membership_client(coordinators)?
        .call(|ch| {
            let req = req.clone();
            async move { AdminServiceClient::new(ch).add_coordinator(req).await }
        })
        .await
        .map_err(status_error)
        .context("coordinator add")?;
    output::print_membership(format, &resp);
    Ok(())
}

pub(crate) async fn coordinator_remove(
    coordinators: &[String],
    format: Format,
    id: u64,
) -> anyhow::Result<()> {
    let resp = membership_client(coordinators)?
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .remove_coordinator(RemoveCoordinatorRequest { id })
                .await
        })
        .await
        .map_err(status_error)
        .context("coordinator remove")?;
    output::print_membership(format, &resp);
    Ok(())
}

pub(crate) async fn tenant_create(
    coordinators: &[String],
    format: Format,
    name: String,
) -> anyhow::Result<()> {
    // The cluster makes the key; the client's request token makes a retry the same tenant.
    let resp = client(coordinators)?
        .create_tenant(&name)
        .await
        .map_err(status_error)
        .context("tenant create")?;
    output::print_tenant_created(format, &resp);
    Ok(())
}

pub(crate) async fn tenant_list(coordinators: &[String], format: Format) -> anyhow::Result<()> {
    let resp = client(coordinators)?
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .list_tenants(ListTenantsRequest {})
                .await
        })
        .await
        .map_err(status_error)
        .context("tenant list")?;
    output::print_tenants(format, &resp.tenants);
    Ok(())
}
