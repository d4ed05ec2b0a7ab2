//! Operator tokens on real processes: every AdminService call needs a token whose role covers
//! it (checked at the leader, also for calls a follower forwards); a node certificate cannot
//! call the admin API at all; a revoked token stops at once; every change is in the audit
//! trail with who made it and from where; no token is in clear in a data dir or log.

mod common;

use std::process::Output;

use common::{status, DevCluster};
use surge_client::MetaClient;
use surge_grpc::tls::{PeerIdentity, Role};
use surge_grpc::v1::admin_service_client::AdminServiceClient;
use surge_grpc::v1::{DrainNodeRequest, ListNodesRequest};
use tonic::Code;

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// surgectl with `token` instead of the dev cluster's admin token (SURGE_TOKEN wins over the
/// SURGE_TOKEN_FILE the dev cluster's environment has).
fn surgectl_as(cluster: &DevCluster, token: &str, args: &[&str]) -> Output {
    cluster
        .surgectl()
        .env("SURGE_TOKEN", token)
        .args(args)
        .output()
        .expect("surgectl")
}

fn create_token(cluster: &DevCluster, name: &str, role: &str) -> (u64, String) {
    let out = cluster
        .surgectl()
        .args([
            "-o", "json", "token", "create", "--name", name, "--role", role,
        ])
        .output()
        .expect("surgectl token create");
    let v = json(&out);
    let id = v["info"]["id"].as_u64().expect("id");
    (id, v["token"].as_str().expect("token").to_string())
}

async fn drain(client: &MetaClient, id: u64) -> Result<(), tonic::Status> {
    client
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .drain_node(DrainNodeRequest { id })
                .await
        })
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_need_a_token_whose_role_covers_them() {
    let cluster = DevCluster::start(4);
    let admin = cluster.client();
    let before = status(&admin).await.expect("admin status");

    // No token: refused, naming what is missing.
    let err = status(&cluster.client_with_token(""))
        .await
        .expect_err("a call without a token");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().starts_with("authorization:"), "{err:?}");
    let err = status(&cluster.client_with_token("sop_not-a-token-of-this-cluster-000000"))
        .await
        .expect_err("an unknown token");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    // Init needs no token, so once the cluster is initialized it answers without a log
    // entry: repeating it cannot flood the audit trail.
    for _ in 0..3 {
        let err = cluster
            .client_with_token("")
            .init_cluster(4, 1)
            .await
            .expect_err("a second init");
        assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    }

    // A node's certificate cannot call the admin API, even with the admin token.
    let token = cluster.file.admin_token().expect("file").expect("token");
    let as_node = MetaClient::new(cluster.file.coordinator_addresses())
        .expect("client")
        .with_transport(cluster.transport_as(&PeerIdentity::new(Role::Node, "node-1")))
        .with_token(&token)
        .expect("token");
    let err = status(&as_node).await.expect_err("a node certificate");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("node certificate"), "{err:?}");

    // A viewer reads (also through a follower, which forwards its token to the leader) but
    // cannot drain or set rules; an operator drains but makes no tokens.
    let (viewer_id, viewer) = create_token(&cluster, "杭州仓看板", "viewer");
    let (_, operator) = create_token(&cluster, "ops-oncall", "operator");
    let follower = before
        .coordinators
        .iter()
        .find(|c| c.id != before.leader_id)
        .expect("a follower");
    let through_follower = MetaClient::new(vec![follower.address.clone()])
        .expect("client")
        .with_transport(cluster.transport())
        .with_token(&viewer)
        .expect("token");
    let nodes = through_follower
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .list_nodes(ListNodesRequest {})
                .await
        })
        .await
        .expect("a viewer lists nodes through a follower");
    assert_eq!(nodes.nodes.len(), 3);
    let err = drain(&through_follower, 1)
        .await
        .expect_err("a viewer drains");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("DrainNode needs the operator role"),
        "{err:?}"
    );
    let rules = cluster.dir.path().join("rules.toml");
    std::fs::write(&rules, common::example_rules()).expect("rules");
    let rules = rules.to_string_lossy().to_string();
    let out = surgectl_as(
        &cluster,
        &viewer,
        &["tenant", "rules", "set", "--tenant", "x", &rules],
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SetTenantRules needs the operator role"),
        "{out:?}"
    );
    let out = surgectl_as(
        &cluster,
        &operator,
        &["token", "create", "--name", "x", "--role", "admin"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CreateToken needs the admin role"),
        "{out:?}"
    );
    let out = surgectl_as(
        &cluster,
        &operator,
        &["cluster", "set", "max-down-time", "10m"],
    );
    assert!(out.status.success(), "{out:?}");

    // Revoked: refused from the next call on.
    let out = cluster
        .surgectl()
        .args(["token", "revoke", &viewer_id.to_string()])
        .output()
        .expect("surgectl token revoke");
    assert!(out.status.success(), "{out:?}");
    let err = status(&cluster.client_with_token(&viewer))
        .await
        .expect_err("a revoked token");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // The last admin token cannot be revoked.
    let out = cluster
        .surgectl()
        .args(["token", "revoke", "1"])
        .output()
        .expect("surgectl token revoke");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("last admin token"),
        "{out:?}"
    );
    let listed = json(
        &cluster
            .surgectl()
            .args(["-o", "json", "token", "list", "--all"])
            .output()
            .expect("surgectl token list"),
    );
    let listed = listed.as_array().expect("tokens");
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed
        .iter()
        .all(|t| t.get("hash").is_none() && t.get("token").is_none()));

    // The audit trail: who, what, from where and the outcome, newest first; a refused change
    // is there with its reason.
    let audit = json(
        &cluster
            .surgectl()
            .args(["-o", "json", "audit", "list", "--limit", "20"])
            .output()
            .expect("surgectl audit list"),
    );
    let audit = audit.as_array().expect("records");
    let find = |action: &str| {
        audit
            .iter()
            .find(|r| r["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {audit:?}"))
    };
    assert_eq!(find("InitCluster")["actor"], "bootstrap");
    let inits = audit
        .iter()
        .filter(|r| r["action"] == "InitCluster")
        .count();
    assert_eq!(inits, 1, "only the init that made the cluster: {audit:?}");
    let created = find("CreateToken");
    assert!(created["actor"]
        .as_str()
        .is_some_and(|a| a.starts_with("token 1 (admin, admin)")));
    assert!(
        created["from"]
            .as_str()
            .is_some_and(|f| f.starts_with("127.0.0.1:")),
        "{created}"
    );
    assert!(audit.iter().any(|r| r["action"] == "CreateToken"
        && r["detail"]
            .as_str()
            .is_some_and(|d| d.contains("杭州仓看板"))));
    let set = find("SetClusterConfig");
    assert!(
        set["actor"]
            .as_str()
            .is_some_and(|a| a.contains("ops-oncall, operator")),
        "{set}"
    );
    let revoked = format!("token {viewer_id}");
    assert!(audit
        .iter()
        .any(|r| r["action"] == "RevokeToken" && r["detail"] == revoked && r["outcome"] == "ok"));
    let refused = audit
        .iter()
        .find(|r| r["action"] == "RevokeToken" && r["outcome"] != "ok")
        .unwrap_or_else(|| panic!("the refused revoke is not in {audit:?}"));
    assert!(refused["outcome"]
        .as_str()
        .is_some_and(|o| o.contains("last admin token")));
    let seqs: Vec<u64> = audit.iter().filter_map(|r| r["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");

    // No token in clear anywhere but the admin token file.
    common::assert_nowhere_in_clear(&cluster, &[token, viewer, operator]);
}
