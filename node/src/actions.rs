//! Proposing lifecycle actions to a local shard leader, and the one place their outcomes become
//! gRPC answers (DESIGN.md §9: FAILED_PRECONDITION for an illegal transition).

use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message as _;
use surge_grpc::ApiError;
use surge_proto::v1::shard_command::Command as ShardCmd;
use surge_proto::v1::{ActionBatch, OrderAction, ShardCommand};
use surge_raftstore::RequestError;
use surge_shard::{ActionOutcome, Applied, RefuseCode};
use tonic::Status;

use crate::replicas::ShardHandle;

/// Milliseconds since the Unix epoch: the leader's stamp on the entries it proposes.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Why a local proposal of actions failed.
#[derive(Debug)]
pub enum ProposeError {
    Request(RequestError),
    Apply(String),
}

/// Proposes `items` on `shard` (which this node must lead) and waits for their outcomes.
pub async fn propose(
    handle: &ShardHandle,
    shard: u32,
    items: Vec<OrderAction>,
) -> Result<Vec<ActionOutcome>, ProposeError> {
    let cmd = ShardCommand {
        command: Some(ShardCmd::Actions(ActionBatch {
            at_ms: now_ms(),
            items,
        })),
    };
    match handle.propose(u64::from(shard), cmd.encode_to_vec()).await {
        Ok(Ok(Applied::Actions(outcomes))) => Ok(outcomes),
        Ok(Ok(other)) => Err(ProposeError::Apply(format!("unexpected answer {other:?}"))),
        Ok(Err(e)) => Err(ProposeError::Apply(e)),
        Err(e) => Err(ProposeError::Request(e)),
    }
}

/// A refused action as the caller sees it.
pub fn refusal_status(code: RefuseCode, message: String) -> Status {
    match code {
        RefuseCode::NotFound => ApiError::not_found(message).into(),
        RefuseCode::FailedPrecondition => ApiError::failed_precondition(message).into(),
        // The shard words these "field: why".
        RefuseCode::InvalidArgument => match message.split_once(": ") {
            Some((field, why)) => ApiError::invalid_argument(field, why).into(),
            None => ApiError::invalid_argument("request", message).into(),
        },
    }
}

/// The single outcome of a one-action proposal.
pub fn single(mut outcomes: Vec<ActionOutcome>) -> Result<ActionOutcome, Status> {
    outcomes
        .pop()
        .ok_or_else(|| ApiError::internal("no outcome for the action").into())
}
