//! [`OrderClient::submit_batch`]: a batch split by leader node, each part retried until every
//! order is accepted or refused for good, under the client's one retry loop.

use surge_grpc::retryable_wire;

use super::*;
use crate::retry::MAX_RETRY_AFTER;

impl OrderClient {
    /// Submits a batch: one call per leader node, each order retried until accepted, refused
    /// for good, or the deadline passes. Returns one result per order, in order.
    pub async fn submit_batch(&self, orders: Vec<Order>) -> Result<Vec<SubmitResult>, Status> {
        let mut results: Vec<Option<SubmitResult>> = vec![None; orders.len()];
        let mut pending: Vec<usize> = (0..orders.len()).collect();
        let routes = self.routes().await?;
        let shards: Vec<u32> = orders.iter().map(|o| shard_in(&routes, o)).collect();
        let mut tries = Tries::new(&self.policy);
        while !pending.is_empty() {
            let mut by_node: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for &i in &pending {
                by_node
                    .entry(self.address_for(shards[i]))
                    .or_default()
                    .push(i);
            }
            let calls = by_node.into_iter().map(|(address, idx)| {
                let batch: Vec<Order> = idx.iter().map(|&i| orders[i].clone()).collect();
                async move {
                    let result = match self.channel(&address) {
                        Ok(ch) => OrderServiceClient::new(ch)
                            .submit_orders(self.request(SubmitOrdersRequest { orders: batch }))
                            .await
                            .map(|r| r.into_inner()),
                        Err(e) => Err(e),
                    };
                    (address, idx, result)
                }
            });
            let mut again = Vec::new();
            let mut asked_pause = Duration::ZERO;
            let mut last_error = None;
            for (address, idx, result) in futures::future::join_all(calls).await {
                match result {
                    Ok(resp) => {
                        for r in resp.results {
                            let Some(&i) = idx.get(r.index as usize) else {
                                continue;
                            };
                            let transient = match &r.outcome {
                                Some(Outcome::Rejected(rej)) => {
                                    let pause = Duration::from_millis(rej.retry_after_ms)
                                        .min(MAX_RETRY_AFTER);
                                    asked_pause = asked_pause.max(pause);
                                    retryable_wire(rej.code)
                                }
                                Some(Outcome::Accepted(_)) => {
                                    // Forwarded orders name their shard's leader.
                                    let leader = if r.leader.is_empty() {
                                        &address
                                    } else {
                                        &r.leader
                                    };
                                    self.note_leader(shards[i], leader);
                                    false
                                }
                                None => true,
                            };
                            if transient {
                                self.note_failure(Some(shards[i]), &Status::unavailable(""));
                                again.push(i);
                            } else {
                                results[i] = Some(SubmitResult {
                                    index: i as u32,
                                    outcome: r.outcome,
                                    leader: r.leader,
                                });
                            }
                        }
                        // Anything the node did not answer for is retried.
                        for &i in &idx {
                            if results[i].is_none() && !again.contains(&i) {
                                again.push(i);
                            }
                        }
                    }
                    Err(status) if is_retryable(&status) => {
                        self.note_connection(&address, &status);
                        for &i in &idx {
                            self.note_failure(Some(shards[i]), &status);
                        }
                        again.extend(idx);
                        last_error = Some(status);
                    }
                    Err(status) => return Err(status),
                }
            }
            pending = again;
            if pending.is_empty() {
                break;
            }
            let status = last_error.unwrap_or_else(|| {
                Status::unavailable(format!(
                    "{} orders not accepted before the deadline",
                    pending.len()
                ))
            });
            let _ = self.refresh().await;
            let pause = tries.backoff(1).max(asked_pause);
            tries.again(status, pause).await?;
            self.count_retried(pending.len());
        }
        Ok(results.into_iter().flatten().collect())
    }
}
