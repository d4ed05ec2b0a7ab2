//! The event half of `OrderService`: `ReadEvents` (one shard's events after a position) and
//! `WatchOrders` (every shard's, as a stream with a resumable cursor). Every answer is cut to
//! [`MAX_REPLY_BYTES`], so a client with gRPC's default 4 MiB receive limit always advances.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use surge_grpc::v1::order_service_client::OrderServiceClient;
use surge_grpc::v1::{
    OrderEvent, ReadEventsRequest, ReadEventsResponse, WatchOrdersRequest, WatchOrdersResponse,
};
use surge_grpc::ApiError;
use surge_proto::limits::{self, MAX_REPLY_BYTES};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::dispatch::{forward_failed, is_forwarded, Target};
use crate::order_api::{Need, OrderApi};
use crate::order_service::field_error;

pub type WatchStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<WatchOrdersResponse, Status>> + Send>>;

/// Most events per `ReadEvents` answer and per shard in one watch poll.
const EVENTS_PER_READ: u32 = 500;
/// How often an idle watch looks for new events.
const WATCH_POLL: Duration = Duration::from_millis(200);
/// A watch position: per shard, the last (index, pos) delivered. Encoded
/// `"<shard>.<index>.<pos>,..."` over the shards that have one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchCursor(pub BTreeMap<u32, (u64, u32)>);

impl WatchCursor {
    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(s, (i, p))| format!("{s}.{i}.{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn decode(text: &str) -> Option<WatchCursor> {
        let mut map = BTreeMap::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let mut it = part.split('.');
            let shard = it.next()?.parse().ok()?;
            let index = it.next()?.parse().ok()?;
            let pos = it.next()?.parse().ok()?;
            if it.next().is_some() {
                return None;
            }
            map.insert(shard, (index, pos));
        }
        Some(WatchCursor(map))
    }

    pub fn advance(&mut self, e: &OrderEvent) {
        let at = self.0.entry(e.shard).or_default();
        *at = (*at).max((e.index, e.pos));
    }
}

/// One poll's events (500 of every shard at most) as watch messages of at most `budget` bytes
/// of events each, every one with the cursor after its last event, so a client that stops
/// after any message resumes without a gap.
fn messages(
    events: Vec<OrderEvent>,
    cursor: &mut WatchCursor,
    budget: usize,
) -> Vec<WatchOrdersResponse> {
    let mut out = Vec::new();
    let mut rest = events;
    while !rest.is_empty() {
        let mut part = rest;
        rest = limits::fit(&mut part, budget);
        for e in &part {
            cursor.advance(e);
        }
        out.push(WatchOrdersResponse {
            events: part,
            cursor: cursor.encode(),
        });
    }
    out
}

impl OrderApi {
    /// Events of one shard after `after`: from a local replica (any replica holds a prefix of
    /// the shard's events in log order, so this never skips one), else from the shard's leader.
    async fn shard_events<U>(
        &self,
        original: &Request<U>,
        tenant: u64,
        shard: u32,
        after: (u64, u32),
    ) -> Result<Vec<OrderEvent>, Status> {
        let group = u64::from(shard);
        if self.handle.status(group).is_some() {
            let events = self
                .handle
                .inspect(group, move |peer| {
                    peer.sm.events(tenant, after, EVENTS_PER_READ as usize)
                })
                .await
                .map_err(|e| self.map_request(shard, e))?
                .map_err(ApiError::internal)?;
            let mut events = events.map_err(|t| {
                ApiError::out_of_range(format!(
                    "cursor: shard {shard}'s events before {}.{} are past retention and were deleted; start again from an empty cursor",
                    t.below.0, t.below.1
                ))
            })?;
            // The rest is read from where this answer ends.
            let _rest = limits::fit(&mut events, MAX_REPLY_BYTES);
            return Ok(events);
        }
        if is_forwarded(original) {
            return Err(self.unavailable(shard).into());
        }
        let Target::Remote { address, peer } = self.target(shard) else {
            return Err(self.unavailable(shard).into());
        };
        let req = ReadEventsRequest {
            shard,
            after_index: after.0,
            after_pos: after.1,
            limit: EVENTS_PER_READ,
        };
        OrderServiceClient::new(self.channel(&peer)?)
            .read_events(self.forward_request(original, req))
            .await
            .map(|r| r.into_inner().events)
            .map_err(|s| forward_failed(s, &address))
    }

    pub(crate) async fn read_events_call(
        &self,
        request: Request<ReadEventsRequest>,
    ) -> Result<Response<ReadEventsResponse>, Status> {
        let tenant = self.tenant(&request, Need::Read).await?;
        self.admit_read(&request, tenant)?;
        let req = *request.get_ref();
        if req.shard >= self.shard_count() {
            return Err(field_error("shard", format!("no shard {}", req.shard)));
        }
        let events = self
            .shard_events(
                &request,
                tenant,
                req.shard,
                (req.after_index, req.after_pos),
            )
            .await?;
        Ok(Response::new(ReadEventsResponse { events }))
    }

    pub(crate) async fn watch_orders_call(
        &self,
        request: Request<WatchOrdersRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let tenant = self.tenant(&request, Need::Read).await?;
        let mut cursor = WatchCursor::decode(&request.get_ref().cursor)
            .ok_or_else(|| field_error("cursor", "not a cursor this service issued"))?;
        // Held by the stream's task: the tenant's stream count drops when it ends.
        let slot = self.open_stream(&request, tenant)?;
        let key = OrderApi::key_of(&request);
        let (tx, rx) = mpsc::channel(8);
        let api = self.clone();
        // A bare request carrying only the caller's key, for the reads this stream makes.
        let mut probe = Request::new(());
        if let Some(v) = request.metadata().get(surge_proto::auth::AUTHORIZATION) {
            probe
                .metadata_mut()
                .insert(surge_proto::auth::AUTHORIZATION, v.clone());
        }
        tokio::spawn(async move {
            let _slot = slot;
            loop {
                if let Err(refused) = api.still_granted(&key, Need::Read) {
                    let _ = tx.send(Err(refused)).await;
                    return;
                }
                let mut events = Vec::new();
                for shard in 0..api.shard_count() {
                    let after = cursor.0.get(&shard).copied().unwrap_or_default();
                    // A shard that cannot be read now is read on a later poll, from the same
                    // position: the stream waits rather than skipping. A cursor past retention
                    // ends the stream: resuming would skip deleted events.
                    match api.shard_events(&probe, tenant, shard, after).await {
                        Ok(found) => events.extend(found),
                        Err(s) if s.code() == tonic::Code::OutOfRange => {
                            let _ = tx.send(Err(s)).await;
                            return;
                        }
                        Err(_) => {}
                    }
                }
                if events.is_empty() {
                    if tx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(WATCH_POLL).await;
                    continue;
                }
                for msg in messages(events, &mut cursor, MAX_REPLY_BYTES) {
                    if tx.send(Ok(msg)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_cursors_round_trip_and_only_move_forward() {
        let mut c = WatchCursor::default();
        assert_eq!(c.encode(), "");
        let e = |shard, index, pos| OrderEvent {
            shard,
            index,
            pos,
            ..OrderEvent::default()
        };
        c.advance(&e(3, 10, 2));
        c.advance(&e(0, 7, 0));
        c.advance(&e(3, 9, 5));
        assert_eq!(c.encode(), "0.7.0,3.10.2");
        assert_eq!(WatchCursor::decode(&c.encode()), Some(c));
        for bad in ["x", "1.2", "1.2.3.4", "a.b.c"] {
            assert_eq!(WatchCursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_large_poll_goes_as_messages_within_the_budget_each_with_its_cursor() {
        use prost::Message as _;
        // Two shards' events, with long Chinese external ids.
        let events: Vec<OrderEvent> = (0..400u64)
            .map(|n| OrderEvent {
                shard: (n / 200) as u32,
                index: 10 + n % 200,
                external_order_id: format!("天猫-{n}-{}", "订".repeat(40)),
                ..OrderEvent::default()
            })
            .collect();
        let budget = 8 * 1024;
        let mut cursor = WatchCursor::default();
        let msgs = messages(events.clone(), &mut cursor, budget);
        let total: usize = events.iter().map(|e| e.encoded_len()).sum();
        assert!(msgs.len() > total / budget, "{} messages", msgs.len());
        let mut seen = Vec::new();
        let mut replay = WatchCursor::default();
        for m in &msgs {
            assert!(m.encoded_len() <= budget + 256, "{}", m.encoded_len());
            for e in &m.events {
                replay.advance(e);
            }
            // Each message's cursor is the position after its own last event.
            assert_eq!(m.cursor, replay.encode());
            seen.extend(m.events.iter().cloned());
        }
        assert_eq!(seen, events, "every event once, in order");
        assert_eq!(cursor.encode(), "0.209.0,1.209.0");
        assert!(messages(Vec::new(), &mut cursor, budget).is_empty());
    }
}
