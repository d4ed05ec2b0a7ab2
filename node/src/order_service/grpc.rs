//! The `OrderService` methods: each checks its request, finds the shard and either serves it
//! here (the leader), forwards it once to the leader, or answers with a hint.

use surge_grpc::ErrorKind;

use crate::order_api::Need;

use super::*;

#[tonic::async_trait]
impl OrderService for OrderApi {
    async fn submit_order(
        &self,
        request: Request<SubmitOrderRequest>,
    ) -> Result<Response<SubmitOrderResponse>, Status> {
        let started = Instant::now();
        let result = async {
            let tenant = self.tenant(&request, Need::Orders).await?;
            let Some(order) = request.get_ref().order.clone() else {
                OrderMetrics::get().rejected("invalid");
                return Err(field_error("order", "required"));
            };
            if let Err(e) = validate::order(&order) {
                OrderMetrics::get().rejected("invalid");
                return Err(invalid(e));
            }
            let shard = self.shard_of_order(tenant, &order)?;
            let leader = self.forwards_to(&request, shard);
            let mut results = self
                .submit_shard(&request, tenant, shard, vec![order])
                .await?;
            match results.pop() {
                Some(Ok(acceptance)) => {
                    OrderMetrics::get().accepted(acceptance.duplicate, 1);
                    let response = Response::new(SubmitOrderResponse {
                        acceptance: Some(acceptance),
                    });
                    Ok(with_leader(response, leader.as_deref()))
                }
                Some(Err(rej)) => {
                    let refusal = ApiError::from_rejection(&rej);
                    OrderMetrics::get().rejected(rejected_label(refusal.kind));
                    Err(refusal.into())
                }
                None => Err(ApiError::internal("no result for the order").into()),
            }
        }
        .await;
        observe("SubmitOrder", started, &result);
        result
    }

    async fn submit_orders(
        &self,
        request: Request<SubmitOrdersRequest>,
    ) -> Result<Response<SubmitOrdersResponse>, Status> {
        let started = Instant::now();
        let result = async {
            let tenant = self.tenant(&request, Need::Orders).await?;
            let orders = &request.get_ref().orders;
            if orders.is_empty() {
                return Err(field_error("orders", "at least one order is required"));
            }
            if orders.len() > validate::MAX_BATCH {
                return Err(field_error(
                    "orders",
                    format!(
                        "at most {} orders per batch, got {}",
                        validate::MAX_BATCH,
                        orders.len()
                    ),
                ));
            }
            let mut results: Vec<Option<SubmitResult>> = vec![None; orders.len()];
            let mut by_shard: BTreeMap<u32, Vec<(usize, Order)>> = BTreeMap::new();
            for (i, order) in orders.iter().enumerate() {
                if let Err(e) = validate::order(order) {
                    OrderMetrics::get().rejected("invalid");
                    let refusal =
                        ApiError::invalid_argument(format!("orders[{i}].{}", e.field), e.reason);
                    results[i] = Some(SubmitResult {
                        index: i as u32,
                        outcome: Some(Outcome::Rejected(refusal.rejection())),
                        leader: String::new(),
                    });
                    continue;
                }
                let shard = self.shard_of_order(tenant, order)?;
                by_shard.entry(shard).or_default().push((i, order.clone()));
            }
            let calls = by_shard.into_iter().map(|(shard, items)| {
                let (indexes, orders): (Vec<usize>, Vec<Order>) = items.into_iter().unzip();
                let request = &request;
                async move {
                    let leader = self.forwards_to(request, shard).unwrap_or_default();
                    let outcome = self.submit_shard(request, tenant, shard, orders).await;
                    (indexes, leader, outcome)
                }
            });
            for (indexes, leader, outcome) in futures::future::join_all(calls).await {
                let outcomes = match outcome {
                    Ok(o) => o.into_iter().map(Some).collect::<Vec<_>>(),
                    Err(status) => {
                        let rej = ApiError::from_status(&status).rejection();
                        indexes.iter().map(|_| Some(Err(rej.clone()))).collect()
                    }
                };
                for (i, o) in indexes.into_iter().zip(outcomes) {
                    let outcome = match o {
                        Some(Ok(a)) => {
                            OrderMetrics::get().accepted(a.duplicate, 1);
                            Outcome::Accepted(a)
                        }
                        Some(Err(rej)) => {
                            let kind = ApiError::from_rejection(&rej).kind;
                            OrderMetrics::get().rejected(rejected_label(kind));
                            Outcome::Rejected(rej)
                        }
                        None => continue,
                    };
                    results[i] = Some(SubmitResult {
                        index: i as u32,
                        outcome: Some(outcome),
                        leader: leader.clone(),
                    });
                }
            }
            Ok(Response::new(SubmitOrdersResponse {
                results: results.into_iter().flatten().collect(),
            }))
        }
        .await;
        observe("SubmitOrders", started, &result);
        result
    }

    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<GetOrderResponse>, Status> {
        let started = Instant::now();
        let result = async {
            let tenant = self.tenant(&request, Need::Read).await?;
            let req = request.get_ref().clone();
            let shard = surge_shard::shard_of(&req.order_id)
                .filter(|s| *s < self.shard_count())
                .ok_or_else(|| {
                    field_error("order_id", format!("{:?} is not an order id", req.order_id))
                })?;
            let local = req.stale_ok && self.handle.status(u64::from(shard)).is_some();
            let found = match (local, self.target(shard)) {
                (true, _) | (_, Target::Local) => {
                    self.get_order_here(tenant, shard, req.order_id.clone(), req.stale_ok)
                        .await?
                }
                (false, Target::Remote { address, peer }) if !is_forwarded(&request) => {
                    OrderMetrics::get()
                        .forwarded
                        .with_label_values(&["get"])
                        .inc();
                    let fwd = self.forward_request(&request, req.clone());
                    return OrderServiceClient::new(self.channel(&peer)?)
                        .get_order(fwd)
                        .await
                        .map(|r| with_leader(r, Some(&address)));
                }
                (false, Target::Remote { address, .. }) => return Err(not_leader(&address).into()),
                (false, Target::Unknown) => return Err(self.unavailable(shard).into()),
            };
            found
                .map(|order| Response::new(GetOrderResponse { order: Some(order) }))
                .ok_or_else(|| {
                    ApiError::not_found(format!("order_id: no order {}", req.order_id)).into()
                })
        }
        .await;
        observe("GetOrder", started, &result);
        result
    }

    async fn get_order_by_external_id(
        &self,
        request: Request<GetOrderByExternalIdRequest>,
    ) -> Result<Response<GetOrderResponse>, Status> {
        let started = Instant::now();
        let result = async {
            let tenant = self.tenant(&request, Need::Read).await?;
            let req = request.get_ref().clone();
            if req.platform.is_empty() {
                return Err(field_error("platform", "required"));
            }
            if req.external_order_id.is_empty() {
                return Err(field_error("external_order_id", "required"));
            }
            let probe = Order {
                external_order_id: req.external_order_id.clone(),
                routing_key: req.routing_key.clone(),
                ..Order::default()
            };
            let shard = self.shard_of_order(tenant, &probe)?;
            match self.target(shard) {
                Target::Local => {
                    let (platform, ext) = (req.platform.clone(), req.external_order_id.clone());
                    let found = self
                        .read_shard(shard, false, move |sm| {
                            sm.get_by_external(tenant, &platform, &ext)
                        })
                        .await?
                        .flatten();
                    found
                        .map(|r| {
                            Response::new(GetOrderResponse {
                                order: Some(view_of(r)),
                            })
                        })
                        .ok_or_else(|| {
                            ApiError::not_found(format!(
                                "external_order_id: no order ({}, {})",
                                req.platform, req.external_order_id
                            ))
                            .into()
                        })
                }
                Target::Remote { address, peer } if !is_forwarded(&request) => {
                    OrderMetrics::get()
                        .forwarded
                        .with_label_values(&["get"])
                        .inc();
                    let fwd = self.forward_request(&request, req);
                    OrderServiceClient::new(self.channel(&peer)?)
                        .get_order_by_external_id(fwd)
                        .await
                        .map(|r| with_leader(r, Some(&address)))
                }
                Target::Remote { address, .. } => Err(not_leader(&address).into()),
                Target::Unknown => Err(self.unavailable(shard).into()),
            }
        }
        .await;
        observe("GetOrderByExternalId", started, &result);
        result
    }

    async fn list_orders(
        &self,
        request: Request<ListOrdersRequest>,
    ) -> Result<Response<ListOrdersResponse>, Status> {
        let started = Instant::now();
        let result = async {
            let tenant = self.tenant(&request, Need::Read).await?;
            self.admit_read(&request, tenant)?;
            let req = request.get_ref().clone();
            if req.status() == OrderStatus::Unspecified {
                return Err(field_error("status", "required"));
            }
            let page = match req.page_size {
                0 => DEFAULT_PAGE,
                n if n > MAX_PAGE => {
                    return Err(field_error(
                        "page_size",
                        format!("at most {MAX_PAGE}, got {n}"),
                    ))
                }
                n => n,
            } as usize;
            if req.to_ms != 0 && req.to_ms <= req.from_ms {
                return Err(field_error(
                    "to_ms",
                    "must be after from_ms (or 0 for no bound)",
                ));
            }
            let after =
                if req.page_token.is_empty() {
                    None
                } else {
                    Some(Cursor::decode(&req.page_token).ok_or_else(|| {
                        field_error("page_token", "not a token this service issued")
                    })?)
                };
            let count = self.shard_count();
            let shards: Vec<u32> = match req.only_shard {
                Some(s) if s < count => vec![s],
                Some(s) => return Err(field_error("only_shard", format!("no shard {s}"))),
                None => (0..count).collect(),
            };
            let calls = shards.iter().map(|&shard| {
                let (request, req, after) = (&request, &req, after.clone());
                async move {
                    self.list_shard(request, tenant, shard, req, after, page)
                        .await
                }
            });
            let mut merged = Vec::new();
            // A shard cut short by bytes has more orders after its last one, so nothing past
            // the earliest such last order may be in this page.
            let mut bound: Option<(u64, String)> = None;
            for r in futures::future::join_all(calls).await {
                let (orders, cut) = r?;
                if let Some(last) = orders.last().filter(|_| cut) {
                    let key = (last.accepted_at_ms, last.order_id.clone());
                    bound = Some(bound.map_or(key.clone(), |b| b.min(key)));
                }
                merged.extend(orders);
            }
            merged.sort_by(|a, b| {
                (a.accepted_at_ms, &a.order_id).cmp(&(b.accepted_at_ms, &b.order_id))
            });
            let mut more = bound.is_some();
            if let Some((at, id)) = &bound {
                merged.retain(|o| (o.accepted_at_ms, &o.order_id) <= (*at, id));
            }
            more |= merged.len() > page;
            merged.truncate(page);
            more |= !limits::fit(&mut merged, MAX_REPLY_BYTES).is_empty();
            let next_page_token = match merged.last() {
                Some(last) if more || merged.len() == page => Cursor {
                    at_ms: last.accepted_at_ms,
                    order_id: last.order_id.clone(),
                }
                .encode(),
                _ => String::new(),
            };
            Ok(Response::new(ListOrdersResponse {
                orders: merged,
                next_page_token,
            }))
        }
        .await;
        observe("ListOrders", started, &result);
        result
    }

    async fn get_shard_map(
        &self,
        request: Request<GetShardMapRequest>,
    ) -> Result<Response<ShardMap>, Status> {
        let tenant = self.tenant(&request, Need::Read).await?;
        let dir = self
            .directory
            .read()
            .map_err(|_| ApiError::internal("directory lock poisoned"))?
            .clone();
        let mut shards: Vec<ShardRoute> = dir
            .shards
            .values()
            .map(|s| {
                let mut route = s.clone();
                if let Some(st) = self.handle.status(u64::from(s.id)) {
                    if st.leader != 0 {
                        route.leader = st.leader;
                    }
                }
                route
            })
            .collect();
        shards.sort_by_key(|s| s.id);
        let mut nodes: Vec<NodeAddress> = dir
            .nodes
            .iter()
            // Clients get the client ports only: peer ports are for cluster members.
            .map(|(id, address)| NodeAddress {
                id: *id,
                address: address.clone(),
                peer_address: String::new(),
                certificate_name: String::new(),
            })
            .collect();
        nodes.sort_by_key(|n| n.id);
        Ok(Response::new(ShardMap {
            tenant_name: dir.names.get(&tenant).cloned().unwrap_or_default(),
            tenant_id: tenant,
            shard_count: dir.shard_count,
            shards,
            nodes,
        }))
    }

    async fn place_hold(
        &self,
        request: Request<PlaceHoldRequest>,
    ) -> Result<Response<OrderActionResponse>, Status> {
        let started = Instant::now();
        let result = self.place_hold_call(request).await;
        observe("PlaceHold", started, &result);
        result
    }

    async fn release_hold(
        &self,
        request: Request<ReleaseHoldRequest>,
    ) -> Result<Response<OrderActionResponse>, Status> {
        let started = Instant::now();
        let result = self.release_hold_call(request).await;
        observe("ReleaseHold", started, &result);
        result
    }

    async fn confirm_packed(
        &self,
        request: Request<ConfirmPackedRequest>,
    ) -> Result<Response<OrderActionResponse>, Status> {
        let started = Instant::now();
        let result = self.confirm_packed_call(request).await;
        observe("ConfirmPacked", started, &result);
        result
    }

    async fn confirm_shipped(
        &self,
        request: Request<ConfirmShippedRequest>,
    ) -> Result<Response<OrderActionResponse>, Status> {
        let started = Instant::now();
        let result = self.confirm_shipped_call(request).await;
        observe("ConfirmShipped", started, &result);
        result
    }

    async fn set_carrier_routing(
        &self,
        request: Request<SetCarrierRoutingRequest>,
    ) -> Result<Response<OrderActionResponse>, Status> {
        let started = Instant::now();
        let result = self.set_carrier_routing_call(request).await;
        observe("SetCarrierRouting", started, &result);
        result
    }

    async fn cancel_order(
        &self,
        request: Request<CancelOrderRequest>,
    ) -> Result<Response<CancelOrderResponse>, Status> {
        let started = Instant::now();
        let result = self.cancel_order_call(request).await;
        observe("CancelOrder", started, &result);
        result
    }

    async fn get_label(
        &self,
        request: Request<GetLabelRequest>,
    ) -> Result<Response<LabelDocument>, Status> {
        let started = Instant::now();
        let result = self.get_label_call(request).await;
        observe("GetLabel", started, &result);
        result
    }

    type WatchOrdersStream = crate::order_events::WatchStream;

    async fn watch_orders(
        &self,
        request: Request<WatchOrdersRequest>,
    ) -> Result<Response<Self::WatchOrdersStream>, Status> {
        self.watch_orders_call(request).await
    }

    async fn read_events(
        &self,
        request: Request<ReadEventsRequest>,
    ) -> Result<Response<ReadEventsResponse>, Status> {
        self.read_events_call(request).await
    }
}

/// The `rejected` metric's reason for a refused order.
fn rejected_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::AlreadyExists => "conflict",
        ErrorKind::InvalidArgument => "invalid",
        _ => "unavailable",
    }
}
