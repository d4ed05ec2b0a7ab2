//! `surgectl`: the operator's shell for a surge cluster.

mod access_cmd;
mod admin;
mod calls;
mod cert_cmd;
mod cli;
mod cli_access;
mod dev;
mod dev_children;
mod dev_configs;
mod dev_ports;
mod elastic;
mod elastic_output;
mod human;
mod order_actions;
mod order_view;
mod orders;
mod output;
mod platform_io;
mod station_run;
mod tenant_admin;
mod watch;

use std::path::PathBuf;

use clap::Parser;
use surge_proto::v1::AddCoordinatorRequest;

use crate::cli::*;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    calls::set_transport(calls::TransportArgs {
        ca: cli.ca.clone(),
        cert_and_key: cli.cert.clone().zip(cli.key.clone()),
        insecure: cli.insecure,
        token: cli.token.clone(),
        token_file: cli.token_file.clone(),
    });
    let result = match cli.command {
        Command::Cluster(ClusterCmd::Init {
            shards,
            replicas,
            save_token,
        }) => admin::init(&cli.coordinators, cli.output, shards, replicas, save_token).await,
        Command::Token(cmd) => access_cmd::token(&cli.coordinators, cli.output, cmd).await,
        Command::Audit(AuditCmd::List { limit, before }) => {
            access_cmd::audit_list(&cli.coordinators, cli.output, limit, before).await
        }
        Command::Cluster(ClusterCmd::Status {
            wait_balanced,
            timeout,
        }) => {
            let waited = if wait_balanced {
                elastic::wait_balanced(&cli.coordinators, timeout).await
            } else {
                Ok(())
            };
            match waited {
                Ok(()) => admin::status(&cli.coordinators, cli.output).await,
                Err(e) => Err(e),
            }
        }
        Command::Cluster(ClusterCmd::Set { name, value }) => {
            elastic::cluster_set(&cli.coordinators, cli.output, &name, &value).await
        }
        Command::Node(NodeCmd::List) => admin::node_list(&cli.coordinators, cli.output).await,
        Command::Node(NodeCmd::Drain { id, wait, timeout }) => {
            elastic::node_drain(&cli.coordinators, cli.output, id, wait, timeout).await
        }
        Command::Node(NodeCmd::Remove { id }) => {
            elastic::node_remove(&cli.coordinators, cli.output, id).await
        }
        Command::Shard(ShardCmd::List) => elastic::shard_list(&cli.coordinators, cli.output).await,
        Command::Shard(ShardCmd::Show { id }) => {
            elastic::shard_show(&cli.coordinators, cli.output, id).await
        }
        Command::Shard(ShardCmd::Verify { ids }) => {
            elastic::shard_verify(&cli.coordinators, cli.output, ids).await
        }
        Command::Operator(OperatorCmd::List { all }) => {
            elastic::operator_list(&cli.coordinators, cli.output, all).await
        }
        Command::Operator(OperatorCmd::Add {
            kind,
            shard,
            from,
            to,
        }) => {
            let req = surge_proto::v1::CreateOperatorRequest {
                shard,
                kind,
                from_node: from,
                to_node: to,
            };
            elastic::operator_add(&cli.coordinators, cli.output, req).await
        }
        Command::Operator(OperatorCmd::Cancel { id }) => {
            elastic::operator_cancel(&cli.coordinators, cli.output, id).await
        }
        Command::Coordinator(CoordinatorCmd::Add {
            id,
            address,
            peer_address,
            http_address,
        }) => {
            let req = AddCoordinatorRequest {
                id,
                address,
                http_address,
                peer_address,
            };
            admin::coordinator_add(&cli.coordinators, cli.output, req).await
        }
        Command::Coordinator(CoordinatorCmd::Remove { id }) => {
            admin::coordinator_remove(&cli.coordinators, cli.output, id).await
        }
        Command::Tenant(TenantCmd::Create { name }) => {
            admin::tenant_create(&cli.coordinators, cli.output, name).await
        }
        Command::Tenant(TenantCmd::Limits(cmd)) => {
            tenant_admin::limits(&cli.coordinators, cli.output, cmd).await
        }
        Command::Tenant(TenantCmd::Key(cmd)) => {
            access_cmd::tenant_key(&cli.coordinators, cli.output, cmd).await
        }
        Command::Tenant(TenantCmd::List) => admin::tenant_list(&cli.coordinators, cli.output).await,
        Command::Tenant(TenantCmd::Rules(RulesCmd::Set { tenant, file })) => {
            tenant_admin::rules_set(&cli.coordinators, tenant, file).await
        }
        Command::Tenant(TenantCmd::Rules(RulesCmd::Get { tenant })) => {
            tenant_admin::rules_get(&cli.coordinators, tenant).await
        }
        Command::Waybill(WaybillCmd::AddRange {
            tenant,
            carrier,
            prefix,
            from,
            to,
        }) => {
            let req = surge_proto::v1::AddWaybillRangeRequest {
                tenant,
                carrier,
                prefix,
                from,
                to,
            };
            tenant_admin::waybill_add(&cli.coordinators, cli.output, req).await
        }
        Command::Waybill(WaybillCmd::Status { tenant }) => {
            tenant_admin::waybill_status(&cli.coordinators, cli.output, tenant).await
        }
        Command::Station(StationCmd::Run {
            tenant,
            station,
            printer,
            out_dir,
            window,
            exit_after_idle,
        }) => match cli.api_key.as_deref() {
            None => Err(no_key()),
            Some(key) => {
                let args = station_run::StationArgs {
                    tenant,
                    station,
                    printer,
                    out_dir,
                    window,
                    exit_after_idle,
                };
                station_run::station_run(&cli.nodes, key, cli.output, args).await
            }
        },
        Command::Label(cmd) => match cli.api_key.as_deref() {
            None => Err(no_key()),
            Some(key) => match cmd {
                LabelCmd::Get { order_id, pdf, out } => {
                    order_actions::label(&cli.nodes, key, order_id, pdf, out).await
                }
                LabelCmd::Reprint { order_id, reason } => {
                    order_actions::reprint(&cli.nodes, key, order_id, reason).await
                }
            },
        },
        Command::Order(cmd) => match cli.api_key.as_deref() {
            None => Err(no_key()),
            Some(key) => match cmd {
                OrderCmd::Burst { count, batch, run } => {
                    orders::burst(&cli.nodes, key, cli.output, count, batch, run).await
                }
                OrderCmd::Get { order_id } => {
                    order_actions::get(&cli.nodes, key, cli.output, &order_id).await
                }
                OrderCmd::Import {
                    platform,
                    file,
                    batch,
                } => {
                    platform_io::import(&cli.nodes, key, cli.output, &platform, &file, batch).await
                }
                OrderCmd::ExportShipments {
                    platform,
                    carrier_codes,
                    out,
                    idle_seconds,
                } => {
                    platform_io::export_shipments(
                        &cli.nodes,
                        key,
                        &platform,
                        &carrier_codes,
                        out.as_deref(),
                        idle_seconds,
                    )
                    .await
                }
                OrderCmd::Hold {
                    order_id,
                    code,
                    reason,
                } => {
                    let act = order_actions::Act::Hold { code, reason };
                    order_actions::act(&cli.nodes, key, cli.output, order_id, act).await
                }
                OrderCmd::Release {
                    order_id,
                    code,
                    reason,
                } => {
                    let act = order_actions::Act::Release { code, reason };
                    order_actions::act(&cli.nodes, key, cli.output, order_id, act).await
                }
                OrderCmd::Pack { order_id } => {
                    order_actions::act(
                        &cli.nodes,
                        key,
                        cli.output,
                        order_id,
                        order_actions::Act::Pack,
                    )
                    .await
                }
                OrderCmd::Ship {
                    order_id,
                    weight_grams,
                } => {
                    let act = order_actions::Act::Ship { weight_grams };
                    order_actions::act(&cli.nodes, key, cli.output, order_id, act).await
                }
                OrderCmd::Route {
                    order_id,
                    waybill,
                    sorting_code,
                    destination,
                } => {
                    let act = order_actions::Act::Route {
                        waybill,
                        sorting_code,
                        destination,
                    };
                    order_actions::act(&cli.nodes, key, cli.output, order_id, act).await
                }
                OrderCmd::Tally => orders::tally(&cli.nodes, key, cli.output).await,
                OrderCmd::Cancel { order_id, reason } => {
                    order_actions::cancel(&cli.nodes, key, cli.output, order_id, reason).await
                }
                OrderCmd::Watch {
                    cursor,
                    max_events,
                    seconds,
                } => watch::watch(&cli.nodes, key, cursor, max_events, seconds).await,
                OrderCmd::List { status, limit } => {
                    orders::list(&cli.nodes, key, cli.output, status.into(), limit).await
                }
            },
        },
        Command::Dev(DevCmd::Up(args)) => dev::up(args, cli.output).await,
        Command::Dev(DevCmd::AddNode(args)) => dev::add_node(args, cli.output).await,
        Command::Cert(CertCmd::Init {
            dir,
            coordinator_count,
            node_count,
            hosts,
            cluster,
        }) => cert_cmd::init(
            cli.output,
            &dir,
            &cluster,
            (coordinator_count, node_count),
            &hosts,
        ),
        Command::Cert(CertCmd::Issue {
            dir,
            node,
            coordinator,
            operator,
            hosts,
        }) => cert_cmd::issue(cli.output, &dir, (node, coordinator, operator), &hosts),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Most orders one list call returns.
pub(crate) const MAX_PAGE: u32 = 1000;

fn no_key() -> anyhow::Error {
    anyhow::anyhow!(
        "--api-key (or SURGE_API_KEY) is needed for order calls; `surgectl tenant create NAME` prints one"
    )
}

/// Where `dev up` finds the server binaries: next to this executable.
pub(crate) fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("surgectl has no parent directory"))?;
    let path = dir.join(name);
    if !path.exists() {
        anyhow::bail!(
            "{} not found next to surgectl; build it with `cargo build --workspace --bins`",
            path.display()
        );
    }
    Ok(path)
}
