//! Tier 3: orders flow from intake to printed labels at two stations on real processes
//! (3 coordinators, 3 nodes, RocksDB on disk) while shard leaders are killed -9 and restarted.
//!
//! Afterwards: every order that was not cancelled has exactly one bound waybill and a printed
//! label; no number is bound twice anywhere; every job was printed once, apart from one
//! explicit reprint; cancels racing with printing got definitive answers and intercepted orders
//! have their labels voided; and a watcher that reconnected (to another node, with its cursor)
//! saw every transition, none out of order and none twice.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, DevCluster};
use surge_client::{sample, MetaClient, OrderClient};
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::print_service_client::PrintServiceClient;
use surge_grpc::v1::{
    AddWaybillRangeRequest, CancelAnswer, CancelOrderRequest, OrderEvent, OrderStatus as S,
    ReleaseHoldRequest, ReprintRequest, SetTenantRulesRequest, WatchOrdersRequest,
    WaybillStatusRequest,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const ORDERS: u64 = 1200;
const TENANT: &str = "pipeline";

fn rules() -> String {
    common::example_rules()
}

async fn setup(meta: &MetaClient) -> String {
    let key = common::tenant_with_rules(meta, TENANT, &rules()).await;
    for (carrier, prefix) in [("SF", "SF"), ("ZTO", "ZT")] {
        common::add_range(meta, TENANT, carrier, prefix, (1, 50_000)).await;
    }
    key
}

/// A test printer: a TCP listener that keeps every connection's bytes.
async fn printer() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut data = String::new();
                if conn.read_to_string(&mut data).await.is_ok() {
                    sink.lock().expect("lock").push(data);
                }
            });
        }
    });
    (address, received)
}

fn station(cluster: &DevCluster, key: &str, name: &str, sink: &[&str]) -> Child {
    let nodes: Vec<String> = cluster.node_addresses();
    let log = std::fs::File::create(cluster.dir.path().join(format!("{name}.log"))).expect("log");
    cluster
        .surgectl()
        .args(["-o", "json", "--nodes", &nodes.join(","), "station", "run"])
        .args([
            "--tenant",
            TENANT,
            "--station",
            name,
            "--exit-after-idle",
            "20",
        ])
        .args(sink)
        .env("SURGE_API_KEY", key)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("station")
}

/// Watches the tenant's events; after `reconnect_after` events it drops the stream and resumes
/// from its cursor at the next node.
async fn watch(
    client: Arc<OrderClient>,
    nodes: Vec<String>,
    events: Arc<Mutex<Vec<OrderEvent>>>,
    reconnect_after: usize,
) {
    let mut cursor = String::new();
    let mut node = 0;
    let mut reconnected = false;
    let deadline = Instant::now() + Duration::from_secs(240);
    while Instant::now() < deadline {
        let Ok((ch, req)) = client.stream_request(
            &nodes[node % nodes.len()],
            WatchOrdersRequest {
                cursor: cursor.clone(),
            },
        ) else {
            return;
        };
        let Ok(resp) = OrderServiceClient::new(ch).watch_orders(req).await else {
            node += 1;
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        };
        let mut stream = resp.into_inner();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), stream.message()).await;
            let Ok(Ok(Some(batch))) = next else { break };
            events.lock().expect("lock").extend(batch.events);
            cursor = batch.cursor;
            if !reconnected && events.lock().expect("lock").len() >= reconnect_after {
                reconnected = true;
                break; // a disconnect: resume from the cursor elsewhere
            }
        }
        node += 1;
    }
}

/// A bad rules file, an unknown carrier, an overlapping range and an illegal transition: each
/// a clear error naming what is wrong, and nothing changed.
async fn bad_input_changes_nothing(meta: &MetaClient, client: &OrderClient) {
    use tonic::Code;
    let admin = |req: SetTenantRulesRequest| async move {
        common::admin(meta, req.clone(), |mut c, r| async move {
            c.set_tenant_rules(r).await
        })
        .await
    };
    let broken = rules().replace("hold_unpaid = true", "hold_unpaid = yes");
    let err = admin(SetTenantRulesRequest {
        tenant: TENANT.into(),
        rules_toml: broken,
    })
    .await
    .expect_err("a rules file with an error");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("line 13") && err.message().contains("review.hold_unpaid"),
        "names line and key: {}",
        err.message()
    );
    let unknown = rules().replace("default_carrier = \"ZTO\"", "default_carrier = \"DHL\"");
    let err = admin(SetTenantRulesRequest {
        tenant: TENANT.into(),
        rules_toml: unknown,
    })
    .await
    .expect_err("an unknown carrier in the rules");
    assert!(
        err.message().contains("allocation.default_carrier"),
        "{}",
        err.message()
    );
    let get = surge_grpc::v1::GetTenantRulesRequest {
        tenant: TENANT.into(),
    };
    let kept = common::admin(
        meta,
        get,
        |mut c, r| async move { c.get_tenant_rules(r).await },
    )
    .await
    .expect("rules");
    assert_eq!(
        (kept.version, kept.rules_toml),
        (1, rules()),
        "the rules in force stay"
    );

    let range = |carrier: &str, from: u64, to: u64| AddWaybillRangeRequest {
        tenant: TENANT.into(),
        carrier: carrier.into(),
        prefix: if carrier == "SF" {
            "SF".into()
        } else {
            "ZT".into()
        },
        from,
        to,
    };
    for (req, code, says) in [
        (
            range("DHL", 1, 10),
            Code::InvalidArgument,
            "carrier: unknown carrier \"DHL\"",
        ),
        (
            range("SF", 49_000, 60_000),
            Code::InvalidArgument,
            "overlaps range 1",
        ),
        (range("SF", 10, 5), Code::InvalidArgument, "to:"),
    ] {
        let err = common::admin(meta, req.clone(), |mut c, r| async move {
            c.add_waybill_range(r).await
        })
        .await
        .expect_err("a bad range");
        assert_eq!(err.code(), code, "{}", err.message());
        assert!(err.message().contains(says), "{}", err.message());
    }
    let ranges = common::admin(
        meta,
        WaybillStatusRequest {
            tenant: TENANT.into(),
        },
        |mut c, r| async move { c.waybill_status(r).await },
    )
    .await
    .expect("status")
    .ranges;
    assert_eq!(ranges.len(), 2, "no range was added");

    // An illegal transition: packing an order that has no label yet. The order is held for
    // a remark (sample 10), so it stays where it is.
    let a = client
        .submit(sample::order("bad-input", 10))
        .await
        .expect("submit");
    let req = surge_grpc::v1::ConfirmPackedRequest {
        order_id: a.order_id.clone(),
    };
    let err = client
        .on_order(&a.order_id, req, |ch, r| async move {
            OrderServiceClient::new(ch).confirm_packed(r).await
        })
        .await
        .expect_err("packing an unprinted order");
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(err.message().contains("not allowed"), "{}", err.message());
    let after = client.get(&a.order_id).await.expect("get");
    assert!(
        after.status() < S::Packed,
        "nothing moved: {:?}",
        after.status()
    );
    assert!(!after.history.iter().any(|t| t.action == "pack"));
    // Cancel it so that the rest of the test sees only its own orders.
    let req = CancelOrderRequest {
        order_id: a.order_id.clone(),
        reason: "test order".into(),
    };
    client
        .on_order(&a.order_id, req, |ch, r| async move {
            OrderServiceClient::new(ch).cancel_order(r).await
        })
        .await
        .expect("cancel");
}

/// A range too small for the orders: the orders it cannot cover are held ("no waybill
/// numbers"), not failed, and a metric counts it; a new range releases them.
async fn exhausted_ranges_hold_orders_until_numbers_arrive(
    cluster: &DevCluster,
    meta: &MetaClient,
    nodes: &[String],
) {
    let rules = "[[carriers]]\nname = \"ZTO\"\ncost_cents = 600\ndays = 3\n\n[allocation]\ndefault_carrier = \"ZTO\"\n";
    let key = common::tenant_with_rules(meta, "tiny", rules).await;
    common::add_range(meta, "tiny", "ZTO", "TINY", (1, 5)).await;
    cluster.wait_for_rules("tiny", 1).await;
    let client = cluster.order_client(nodes.to_vec(), &key);
    let mut ids = Vec::new();
    for n in 1..=12u64 {
        // Orders without a remark (n % 10 != 0), so review passes.
        let a = client
            .submit(sample::order("tiny", n))
            .await
            .expect("submit");
        ids.push(a.order_id);
    }
    let held_for_numbers = |o: &surge_grpc::v1::OrderView| {
        o.holds
            .iter()
            .any(|h| h.code == "waybill" && h.detail.contains("no waybill numbers"))
    };
    // The 5 numbers go to one shard as one block: its orders bind (up to 5), the other
    // shards' orders are held.
    eventually(
        Duration::from_secs(60),
        "orders bound or held for numbers",
        || async {
            let mut bound = 0;
            let mut held = 0;
            for id in &ids {
                let Ok(o) = client.get(id).await else {
                    return false;
                };
                bound += usize::from(!o.waybill.is_empty());
                held += usize::from(held_for_numbers(&o));
            }
            (1..=5).contains(&bound) && held > 0 && bound + held == ids.len()
        },
    )
    .await;
    let mut exhausted = 0.0;
    for n in &cluster.file.nodes {
        let (_, metrics) = common::http_get(&n.http_address, "/metrics").await;
        exhausted += metrics
            .lines()
            .find_map(|l| l.strip_prefix("surge_waybill_exhausted_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    assert!(
        exhausted >= 1.0,
        "surge_waybill_exhausted_total counts the exhausted range"
    );
    common::add_range(meta, "tiny", "ZTO", "TINY", (6, 1000)).await;
    eventually(
        Duration::from_secs(60),
        "held orders to bind once numbers arrive",
        || async {
            let mut numbers = BTreeSet::new();
            for id in &ids {
                let Ok(o) = client.get(id).await else {
                    return false;
                };
                if o.waybill.is_empty() || held_for_numbers(&o) {
                    return false;
                }
                numbers.insert(o.waybill);
            }
            numbers.len() == ids.len()
        },
    )
    .await;
}

fn order_statuses_in(events: &[OrderEvent]) -> BTreeMap<String, Vec<&OrderEvent>> {
    let mut by_order: BTreeMap<String, Vec<&OrderEvent>> = BTreeMap::new();
    for e in events {
        by_order.entry(e.order_id.clone()).or_default().push(e);
    }
    by_order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn labels_print_once_across_leader_kills_and_nothing_is_lost() {
    let mut cluster = DevCluster::start(8);
    let meta = cluster.client();
    let key = setup(&meta).await;
    let nodes: Vec<String> = cluster.node_addresses();
    let client = Arc::new(
        cluster
            .order_client(nodes.clone(), &key)
            .with_call_timeout(Duration::from_secs(3)),
    );
    common::wait_for_intake(&client).await;
    cluster.wait_for_rules(TENANT, 1).await;

    bad_input_changes_nothing(&meta, &client).await;
    // A station started for another tenant than its key's refuses to run.
    let wrong = cluster
        .surgectl()
        .args(["--nodes", &nodes.join(","), "station", "run"])
        .args([
            "--tenant",
            "someone-else",
            "--station",
            "dock-x",
            "--out-dir",
        ])
        .arg(cluster.dir.path().join("wrong"))
        .env("SURGE_API_KEY", &key)
        .output()
        .expect("station");
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success(),
        "a station for the wrong tenant ran"
    );
    assert!(err.contains("belongs to tenant \"pipeline\""), "{err}");

    let events = Arc::new(Mutex::new(Vec::new()));
    let watcher = tokio::spawn(watch(client.clone(), nodes.clone(), events.clone(), 2000));
    let (printer_address, printed_tcp) = printer().await;
    let out_dir = cluster.dir.path().join("labels");
    let mut stations = vec![
        station(&cluster, &key, "dock-a", &["--printer", &printer_address]),
        station(
            &cluster,
            &key,
            "dock-b",
            &["--out-dir", out_dir.to_str().expect("utf-8")],
        ),
    ];

    // Intake in batches, while the node leading the most shards is killed -9 and restarted, twice.
    let submitter = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for start in (0..ORDERS).step_by(100) {
                let orders = (start..start + 100)
                    .map(|n| sample::order("pipe", n))
                    .collect();
                for r in client.submit_batch(orders).await.expect("batch") {
                    match r.outcome {
                        Some(surge_grpc::v1::submit_result::Outcome::Accepted(a)) => {
                            ids.push(a.order_id)
                        }
                        other => panic!("order {} not accepted: {other:?}", r.index),
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            ids
        })
    };
    let started = Instant::now();
    for at in [3u64, 10] {
        tokio::time::sleep(Duration::from_secs(at).saturating_sub(started.elapsed())).await;
        let map = client.refresh().await.expect("map");
        let mut led: HashMap<u64, usize> = HashMap::new();
        for s in &map.shards {
            *led.entry(s.leader).or_default() += 1;
        }
        let (leader, _) = led.into_iter().max_by_key(|(_, n)| *n).expect("a leader");
        let address = map
            .nodes
            .iter()
            .find(|n| n.id == leader)
            .expect("address")
            .address
            .clone();
        let entry = cluster
            .file
            .nodes
            .iter()
            .find(|n| n.grpc_address == address)
            .expect("entry")
            .clone();
        eprintln!(
            "{:?}: kill -9 {} (node {leader})",
            started.elapsed(),
            entry.name
        );
        cluster.kill9(&entry);
        // It comes back once its shards are led elsewhere.
        eventually(
            Duration::from_secs(30),
            "every shard led by a live node",
            || async {
                client
                    .refresh()
                    .await
                    .is_ok_and(|m| m.shards.iter().all(|s| s.leader != 0 && s.leader != leader))
            },
        )
        .await;
        cluster.restart(&entry.name);
    }
    let ids = submitter.await.expect("submitter");
    assert_eq!(ids.len() as u64, ORDERS);

    // Cancels racing with printing: every answer is definitive.
    let mut cancelled = BTreeMap::new();
    for id in ids.iter().step_by(97) {
        let req = CancelOrderRequest {
            order_id: id.clone(),
            reason: "buyer asked".into(),
        };
        let resp = client
            .on_order(id, req, |ch, r| async move {
                OrderServiceClient::new(ch).cancel_order(r).await
            })
            .await
            .expect("cancel answered");
        assert_eq!(
            resp.answer(),
            CancelAnswer::Stopped,
            "{id}: nothing has shipped"
        );
        let view = resp.order.expect("order");
        if resp.intercepted {
            assert!(view.waybill_voided, "{id}: an intercepted label is voided");
        } else {
            assert_eq!(view.status(), S::Cancelled);
        }
        cancelled.insert(id.clone(), resp.intercepted);
    }

    // Orders the review held: the merchant releases those held for a buyer remark and cancels
    // the one whose receiver is on the block list.
    let blocked = Arc::new(Mutex::new(BTreeSet::new()));
    eventually(
        Duration::from_secs(60),
        "review holds to be resolved",
        || async {
            let held: Vec<_> = common::list_status(&client, S::Received).await;
            for o in &held {
                let id = o.order_id.clone();
                if o.holds.iter().any(|h| h.code == "blocked") {
                    let req = CancelOrderRequest {
                        order_id: id.clone(),
                        reason: "receiver on the block list".into(),
                    };
                    let resp = client
                        .on_order(&id, req, |ch, r| async move {
                            OrderServiceClient::new(ch).cancel_order(r).await
                        })
                        .await
                        .expect("cancel a blocked order");
                    assert_eq!(resp.answer(), CancelAnswer::Stopped);
                    blocked.lock().expect("lock").insert(id);
                } else if o.holds.iter().any(|h| h.code == "remark") {
                    let req = ReleaseHoldRequest {
                        order_id: id.clone(),
                        code: "remark".into(),
                        reason: "remark read".into(),
                    };
                    let _ = client
                        .on_order(&id, req, |ch, r| async move {
                            OrderServiceClient::new(ch).release_hold(r).await
                        })
                        .await;
                }
            }
            held.is_empty()
        },
    )
    .await;
    let blocked = blocked.lock().expect("lock").clone();
    assert!(
        !blocked.is_empty(),
        "sample order 13's receiver is on the block list"
    );
    for id in blocked {
        cancelled.insert(id, false);
    }

    let live: BTreeSet<String> = ids
        .iter()
        .filter(|id| !cancelled.contains_key(*id))
        .cloned()
        .collect();
    eventually(
        Duration::from_secs(120),
        "every live order to be printed",
        || async {
            let printed = common::list_status(&client, S::LabelPrinted).await;
            printed
                .iter()
                .filter(|o| live.contains(&o.order_id))
                .count()
                == live.len()
        },
    )
    .await;

    // One explicit reprint.
    let reprinted = live.iter().next().expect("an order").clone();
    let req = ReprintRequest {
        order_id: reprinted.clone(),
        reason: "label torn".into(),
    };
    client
        .on_order(&reprinted, req, |ch, r| async move {
            PrintServiceClient::new(ch).reprint(r).await
        })
        .await
        .expect("reprint");
    eventually(Duration::from_secs(60), "the reprint to print", || async {
        client
            .get(&reprinted)
            .await
            .is_ok_and(|o| o.history.last().is_some_and(|t| t.action == "reprinted"))
    })
    .await;

    // Stations exit once idle; collect what they printed.
    let mut reports = Vec::new();
    for s in &mut stations {
        let out = std::mem::replace(s, Command::new("true").spawn().expect("true"))
            .wait_with_output()
            .expect("station");
        assert!(
            out.status.success(),
            "station failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        reports.push(String::from_utf8_lossy(&out.stdout).to_string());
    }
    eprintln!("station reports: {reports:?}");
    let mut printed: Vec<(String, String, u32)> = Vec::new(); // (job, waybill, reprint)
    for data in printed_tcp.lock().expect("lock").iter() {
        let labels = surge_label::check_zpl(data).expect("well-formed ZPL");
        assert_eq!(labels.len(), 1);
        printed.push((
            String::new(),
            labels[0].waybills[0].clone(),
            u32::from(data.contains("REPRINT")),
        ));
    }
    let log = std::fs::read_to_string(out_dir.join("printed.log")).unwrap_or_default();
    for line in log.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let zpl =
            std::fs::read_to_string(out_dir.join(format!("{}.zpl", f[0]))).expect("label file");
        surge_label::check_zpl(&zpl).expect("well-formed ZPL");
        printed.push((
            f[0].to_string(),
            f[3].to_string(),
            f[4].parse().expect("reprint"),
        ));
    }
    let jobs: Vec<&String> = printed
        .iter()
        .map(|p| &p.0)
        .filter(|j| !j.is_empty())
        .collect();
    assert_eq!(
        jobs.len(),
        jobs.iter().collect::<BTreeSet<_>>().len(),
        "a job printed twice at dock-b"
    );

    // Every live order: one waybill, bound to no other order, printed exactly once (plus the
    // one reprint).
    let mut by_waybill: HashMap<String, String> = HashMap::new();
    let mut voided = BTreeSet::new();
    for id in ids.iter() {
        let o = client.get(id).await.expect("get");
        if cancelled.contains_key(id) {
            if !o.waybill.is_empty() {
                assert!(
                    o.waybill_voided,
                    "{id}: a cancelled order's waybill is voided"
                );
                voided.insert(o.waybill);
            }
            continue;
        }
        assert_eq!(o.status(), S::LabelPrinted, "{id}");
        assert!(!o.waybill.is_empty(), "{id} has no waybill");
        if let Some(other) = by_waybill.insert(o.waybill.clone(), id.clone()) {
            panic!("waybill {} bound to {other} and {id}", o.waybill);
        }
    }
    let mut times: HashMap<&str, (u32, u32)> = HashMap::new();
    for (_, waybill, reprint) in &printed {
        let e = times.entry(waybill.as_str()).or_default();
        if *reprint > 0 {
            e.1 += 1
        } else {
            e.0 += 1
        }
    }
    let reprinted_waybill = client.get(&reprinted).await.expect("get").waybill;
    for (waybill, id) in &by_waybill {
        let (first, again) = times.get(waybill.as_str()).copied().unwrap_or_default();
        let want_again = u32::from(*waybill == reprinted_waybill);
        assert_eq!(
            (first, again),
            (1, want_again),
            "order {id} waybill {waybill}: printed {first}+{again} times"
        );
    }
    for (waybill, (first, again)) in &times {
        if !by_waybill.contains_key(*waybill) {
            // Printed before a cancel voided it (an intercept, or a cancel racing the print).
            assert!(
                voided.contains(*waybill),
                "label {waybill} belongs to no order"
            );
            assert_eq!(
                (*first, *again),
                (1, 0),
                "voided label {waybill} printed twice"
            );
        }
    }

    // The coordinators' count agrees (shard leaders report it with their heartbeats): every
    // leased number is bound, voided or still free.
    let (live_n, voided_n) = (by_waybill.len() as u64, voided.len() as u64);
    eventually(
        Duration::from_secs(20),
        "waybill counts to add up",
        || async {
            let Ok(status) = common::admin(
                &meta,
                WaybillStatusRequest {
                    tenant: TENANT.into(),
                },
                |mut c, r| async move { c.waybill_status(r).await },
            )
            .await
            else {
                return false;
            };
            let sum = |f: fn(&surge_grpc::v1::WaybillRangeStatus) -> u64| -> u64 {
                status.ranges.iter().map(f).sum()
            };
            let whole = status
                .ranges
                .iter()
                .all(|r| r.free + r.leased + r.bound + r.voided == r.to - r.from + 1);
            eprintln!("waybill status: {:?}", status.ranges);
            whole && sum(|r| r.bound) == live_n && sum(|r| r.voided) == voided_n
        },
    )
    .await;

    // The watcher, which reconnected once, saw every transition in order, none twice.
    let mut histories: HashMap<String, Vec<String>> = HashMap::new();
    for id in &ids {
        let history = client.get(id).await.expect("get").history;
        histories.insert(id.clone(), history.into_iter().map(|t| t.action).collect());
    }
    eventually(
        Duration::from_secs(60),
        "the watcher to see every recorded transition",
        || async {
            let events = events.lock().expect("lock");
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for e in events.iter() {
                *seen.entry(e.order_id.as_str()).or_default() += 1;
            }
            histories
                .iter()
                .all(|(id, h)| seen.get(id.as_str()).copied().unwrap_or(0) >= h.len())
        },
    )
    .await;
    watcher.abort();
    let events = events.lock().expect("lock").clone();
    let keys: BTreeSet<(u32, u64, u32)> =
        events.iter().map(|e| (e.shard, e.index, e.pos)).collect();
    assert_eq!(keys.len(), events.len(), "an event delivered twice");
    let by_order = order_statuses_in(&events);
    for id in &ids {
        let seen = by_order
            .get(id)
            .unwrap_or_else(|| panic!("no events for {id}"));
        assert_eq!(seen[0].to(), S::Received, "{id} starts at intake");
        for w in seen.windows(2) {
            assert!(
                (w[0].index, w[0].pos) < (w[1].index, w[1].pos),
                "{id}: out of order"
            );
            assert_eq!(
                w[0].to, w[1].from,
                "{id}: a gap between {} and {}",
                w[0].action, w[1].action
            );
        }
        let actions: Vec<&str> = seen.iter().map(|e| e.action.as_str()).collect();
        let recorded: Vec<&str> = histories[id].iter().map(String::as_str).collect();
        assert_eq!(actions, recorded, "{id}: the stream and the history differ");
    }
    exhausted_ranges_hold_orders_until_numbers_arrive(&cluster, &meta, &nodes).await;
    eprintln!(
        "{} orders, {} cancelled ({} intercepted), {} labels printed, {} events watched",
        ids.len(),
        cancelled.len(),
        cancelled.values().filter(|i| **i).count(),
        printed.len(),
        events.len()
    );
}
