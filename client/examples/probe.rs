#[tokio::main]
async fn main() {
    let key = std::fs::read_to_string("/tmp/qs/key").unwrap();
    let c = surge_client::OrderClient::new(vec!["127.0.0.1:7201".into()], key.trim()).unwrap();
    for _ in 0..2 {
        let a = c.submit(surge_client::sample::order("probe", 1)).await;
        println!("{a:?}");
    }
    let v = c.get_by_external("jd", "probe-1").await;
    println!("{v:?}");
    let v = c.get_by_external("jd", "qs-1").await;
    println!("{:?}", v.map(|o| o.order_id));
}
