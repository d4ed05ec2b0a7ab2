//! Tier 3: the documented size limits hold end to end on real processes, for a client built
//! with gRPC's defaults (4 MiB per received message). A `SubmitOrders` batch of orders near
//! the 64 KiB limit, 6 MiB in all, is accepted (the servers decode what the limits allow);
//! listing those orders in pages of up to 1000 arrives in pages that such a client can read,
//! covering every order exactly once.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{eventually, wait_for_intake, DevCluster};
use prost::Message as _;
use surge_client::sample;
use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::submit_result::Outcome;
use surge_grpc::v1::{ListOrdersRequest, Order, OrderLine, OrderStatus, SubmitOrdersRequest};
use surge_proto::validate::{self, MAX_ORDER_BYTES};
use tonic::metadata::MetadataValue;

/// Orders in the batch; at about 60 KiB each, the request is about 6 MiB.
const ORDERS: u64 = 100;

/// An order just under the 64 KiB limit: long Chinese titles on as many lines as fit.
fn large_order(n: u64) -> Order {
    let mut order = sample::order("large", n);
    order.buyer_remark = "双十一大促，请尽快发货，谢谢！".into();
    let line = |i: u64| OrderLine {
        sku: format!("SKU-{n:04}-{i:03}-{}", "X".repeat(100)),
        // 84 three-byte characters: within the 256-byte string limit.
        title: format!("{}{i:03}", "保温杯不锈钢真空双层办公室礼盒装".repeat(5)),
        quantity: 1,
        unit_price_cents: 1990,
        weight_grams: 350,
    };
    order.lines.clear();
    for i in 0.. {
        order.lines.push(line(i));
        if order.encoded_len() > MAX_ORDER_BYTES - 1024 || order.lines.len() >= validate::MAX_LINES
        {
            order.lines.pop();
            break;
        }
    }
    let goods: i64 = order
        .lines
        .iter()
        .map(|l| l.quantity * l.unit_price_cents)
        .sum();
    let totals = order.totals.get_or_insert_with(Default::default);
    totals.goods_cents = goods;
    totals.payable_cents = goods + totals.shipping_cents - totals.discount_cents;
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_and_pages_as_large_as_the_limits_allow_go_through() {
    let cluster = DevCluster::start(4);
    let meta = cluster.client();
    let key = meta.create_tenant("large").await.expect("tenant").api_key;
    let client = cluster.order_client(cluster.node_addresses(), &key);
    wait_for_intake(&client).await;

    let orders: Vec<Order> = (0..ORDERS).map(large_order).collect();
    for o in &orders {
        validate::order(o).expect("a valid order");
    }
    let request = SubmitOrdersRequest {
        orders: orders.clone(),
    };
    let bytes = request.encoded_len();
    assert!(bytes > 6 << 20, "the batch is {bytes} bytes");

    // One batch, to one node, with a plain tonic client.
    let node = cluster.node_addresses()[0].clone();
    let channel = cluster
        .client_transport()
        .endpoint(&node)
        .expect("endpoint")
        .timeout(Duration::from_secs(30))
        .connect_lazy();
    let mut raw = OrderServiceClient::new(channel);
    let auth = MetadataValue::try_from(format!("Bearer {key}")).expect("key");
    let accepted = eventually(Duration::from_secs(60), "the large batch accepted", || {
        let (mut raw, auth, request) = (raw.clone(), auth.clone(), request.clone());
        async move {
            let mut call = tonic::Request::new(request);
            call.metadata_mut().insert("authorization", auth);
            match raw.submit_orders(call).await {
                Ok(resp) => {
                    let results = resp.into_inner().results;
                    results.len() == ORDERS as usize
                        && results
                            .iter()
                            .all(|r| matches!(r.outcome, Some(Outcome::Accepted(_))))
                }
                Err(status) => {
                    // Only "not now" may be retried; a size refusal fails the test at once.
                    assert!(
                        surge_grpc::retryable_code(status.code()),
                        "a {bytes}-byte batch refused: {status:?}"
                    );
                    false
                }
            }
        }
    })
    .await;
    println!("a {bytes}-byte batch of {ORDERS} orders accepted within {accepted:?}");

    // Without rules the orders stop at APPROVED; list them in pages of up to 1000 with a
    // client that keeps gRPC's default receive limit.
    let want: BTreeSet<String> = orders.iter().map(|o| o.external_order_id.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let pages = loop {
        let listed = list_approved(&mut raw, &auth).await;
        let Some((seen, pages)) = listed else {
            // Not now (a leader moving): list again.
            assert!(Instant::now() < deadline, "no complete listing in time");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "an order listed twice");
        if unique == want {
            break pages;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {ORDERS} orders listed",
            unique.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(pages >= 2, "6 MiB of orders cannot fit one page ({pages})");
    println!("{ORDERS} orders listed in {pages} pages");
}

/// Every APPROVED order's external id, in pages of up to 1000, and the number of pages; None
/// when a page was refused "not now" (a retryable code). Any other failure, such as a page
/// over the client's 4 MiB receive limit (OUT_OF_RANGE), fails the test.
async fn list_approved(
    raw: &mut OrderServiceClient<tonic::transport::Channel>,
    auth: &MetadataValue<tonic::metadata::Ascii>,
) -> Option<(Vec<String>, usize)> {
    let mut token = String::new();
    let mut seen = Vec::new();
    for pages in 1..=100 {
        let mut call = tonic::Request::new(ListOrdersRequest {
            status: OrderStatus::Approved as i32,
            page_size: 1000,
            page_token: token.clone(),
            ..Default::default()
        });
        call.metadata_mut().insert("authorization", auth.clone());
        let page = match raw.list_orders(call).await {
            Ok(page) => page.into_inner(),
            Err(status) if surge_grpc::retryable_code(status.code()) => return None,
            Err(status) => panic!("a page: {status:?}"),
        };
        seen.extend(
            page.orders
                .into_iter()
                .filter_map(|v| v.order.map(|o| o.external_order_id)),
        );
        if page.next_page_token.is_empty() {
            return Some((seen, pages));
        }
        token = page.next_page_token;
    }
    panic!("the pages do not end");
}
