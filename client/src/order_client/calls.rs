//! The single-order calls an ERP makes through [`OrderClient`]: submit, get (by order id or by
//! external id) and list, each sent to the shard's leader under the client's retry loop.

use super::*;

impl OrderClient {
    /// Submits one order and returns its acceptance (the original one for a retry).
    pub async fn submit(&self, order: Order) -> Result<Acceptance, Status> {
        let shard = self.shard_of(&order).await?;
        self.with_retry(|| {
            let order = order.clone();
            async move {
                let address = self.address_for(shard);
                let result = OrderServiceClient::new(self.channel(&address)?)
                    .submit_order(self.request(SubmitOrderRequest { order: Some(order) }))
                    .await;
                match result {
                    Ok(resp) => {
                        // A forwarded answer names the leader that gave it.
                        let leader = leader_of(resp.metadata()).unwrap_or(address);
                        let acceptance = resp.into_inner().acceptance.ok_or_else(|| {
                            Status::internal("the node answered without an acceptance")
                        })?;
                        self.note_leader(shard, &leader);
                        Ok(acceptance)
                    }
                    Err(status) => {
                        self.note_connection(&address, &status);
                        self.note_failure(Some(shard), &status);
                        if hint(&status).is_none() && is_retryable(&status) {
                            let _ = self.refresh().await;
                        }
                        Err(status)
                    }
                }
            }
        })
        .await
    }

    /// An order by id (linearizable).
    pub async fn get(&self, order_id: &str) -> Result<OrderView, Status> {
        let shard = order_id
            .split('-')
            .next()
            .and_then(|s| s.parse::<u32>().ok());
        self.with_retry(|| async move {
            let address = match shard {
                Some(s) => self.address_for(s),
                None => self.any_node(),
            };
            let result = OrderServiceClient::new(self.channel(&address)?)
                .get_order(self.request(GetOrderRequest {
                    order_id: order_id.to_string(),
                    stale_ok: false,
                }))
                .await;
            match result {
                Ok(r) => r
                    .into_inner()
                    .order
                    .ok_or_else(|| Status::internal("the node answered without an order")),
                Err(status) => {
                    self.note_connection(&address, &status);
                    self.note_failure(shard, &status);
                    Err(status)
                }
            }
        })
        .await
    }

    /// An order by its platform and external id.
    pub async fn get_by_external(
        &self,
        platform: &str,
        external_order_id: &str,
    ) -> Result<OrderView, Status> {
        let probe = Order {
            external_order_id: external_order_id.to_string(),
            ..Order::default()
        };
        let shard = self.shard_of(&probe).await?;
        self.with_retry(|| async move {
            let address = self.address_for(shard);
            let result = OrderServiceClient::new(self.channel(&address)?)
                .get_order_by_external_id(self.request(GetOrderByExternalIdRequest {
                    platform: platform.to_string(),
                    external_order_id: external_order_id.to_string(),
                    routing_key: String::new(),
                }))
                .await;
            match result {
                Ok(r) => r
                    .into_inner()
                    .order
                    .ok_or_else(|| Status::internal("the node answered without an order")),
                Err(status) => {
                    self.note_connection(&address, &status);
                    self.note_failure(Some(shard), &status);
                    Err(status)
                }
            }
        })
        .await
    }

    /// One page of orders by status and time (merged across shards by the node).
    pub async fn list(&self, request: ListOrdersRequest) -> Result<ListOrdersResponse, Status> {
        self.with_retry(|| {
            let request = request.clone();
            async move {
                let address = self.any_node();
                Ok(OrderServiceClient::new(self.channel(&address)?)
                    .list_orders(self.request(request))
                    .await?
                    .into_inner())
            }
        })
        .await
    }
}
