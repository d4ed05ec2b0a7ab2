//! Changing the coordinator quorum through joint consensus.
//!
//! Add: the newcomer joins as a learner, catches up, then one `ConfChangeV2` with an explicit
//! transition promotes it (C_old,new), and the leader proposes leaving the joint configuration.
//! Remove: refused when the remaining voters could not form a quorum from the healthy ones;
//! a leader asked to remove itself first hands leadership to a caught-up voter.

use std::time::{Duration, Instant};

use surge_grpc::ApiError;
use surge_proto::v1::{AddCoordinatorRequest, MembershipResponse};
use surge_raftstore::raft::eraftpb::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
};
use tonic::Status;
use tracing::info;

use crate::coordinator::Coordinator;
use crate::meta::CoordinatorInfo;
use crate::meta_state::META_GROUP;

/// How long a learner may take to catch up before `add` gives up (the learner stays).
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// How far behind the commit index a learner may be when it is promoted.
const CATCH_UP_SLACK: u64 = 16;

fn single(id: u64, ty: ConfChangeType) -> ConfChangeSingle {
    let mut s = ConfChangeSingle {
        node_id: id,
        ..ConfChangeSingle::default()
    };
    s.set_change_type(ty);
    s
}

fn change(
    changes: Vec<ConfChangeSingle>,
    transition: ConfChangeTransition,
    context: Vec<u8>,
) -> ConfChangeV2 {
    let mut cc = ConfChangeV2::default();
    cc.set_changes(changes.into());
    cc.set_transition(transition);
    cc.context = context.into();
    cc
}

fn response(cs: &ConfState) -> MembershipResponse {
    let mut voters = cs.voters.clone();
    let mut learners = cs.learners.clone();
    voters.sort_unstable();
    learners.sort_unstable();
    MembershipResponse { voters, learners }
}

/// Facts about the group the leader checks before a change.
struct GroupView {
    is_leader: bool,
    cs: ConfState,
    commit: u64,
    /// `(peer, matched index, heard from lately)` for every tracked peer but this one.
    progress: Vec<(u64, u64, bool)>,
}

/// How recently the leader must have heard from a voter for it to count as healthy: within
/// two election timeouts.
pub(crate) fn alive_window(c: &Coordinator) -> Duration {
    c.config.raft.tick * (2 * c.config.raft.election_ticks) as u32
}

async fn view(c: &Coordinator) -> Result<GroupView, Status> {
    let alive = alive_window(c);
    c.handle
        .inspect(META_GROUP, move |p| GroupView {
            is_leader: p.is_leader(),
            cs: p.conf_state().clone(),
            commit: p.commit_index(),
            progress: p
                .node
                .raft
                .prs()
                .iter()
                .filter(|(id, _)| **id != p.id())
                .map(|(id, pr)| (*id, pr.matched, p.heard_within(*id, alive)))
                .collect(),
        })
        .await
        .map_err(|e| c.map_request(e).into())
}

async fn wait_joint_left(c: &Coordinator) -> Result<ConfState, Status> {
    let deadline = Instant::now() + c.config.raft.request_timeout * 2;
    loop {
        let v = view(c).await?;
        if v.cs.voters_outgoing.is_empty() {
            return Ok(v.cs);
        }
        if Instant::now() > deadline {
            return Err(ApiError::unavailable(
                "the joint configuration was not left in time; the leader keeps trying",
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Adds a coordinator: learner, catch up, joint promotion, leave joint.
pub async fn add(
    c: &Coordinator,
    req: AddCoordinatorRequest,
) -> Result<MembershipResponse, Status> {
    let id = req.id;
    let v = view(c).await?;
    if v.cs.voters.contains(&id) {
        return Ok(response(&v.cs));
    }
    let info = CoordinatorInfo {
        id,
        address: req.address,
        http_address: req.http_address,
        peer_address: req.peer_address,
    };
    let context = serde_json::to_vec(&info).map_err(|e| ApiError::internal(e.to_string()))?;
    if !v.cs.learners.contains(&id) {
        info!(id, address = %info.address, "adding coordinator as a learner");
        let cc = change(
            vec![single(id, ConfChangeType::AddLearnerNode)],
            ConfChangeTransition::Auto,
            context.clone(),
        );
        c.handle
            .conf_change(META_GROUP, cc)
            .await
            .map_err(|e| c.map_request(e))?;
    }
    if let Ok(mut book) = c.book.write() {
        book.insert(id, info.clone());
    }
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        let v = view(c).await?;
        if !v.is_leader {
            return Err(ApiError::unavailable("leadership changed during the add; retry").into());
        }
        let matched = v
            .progress
            .iter()
            .find(|(p, _, _)| *p == id)
            .map_or(0, |(_, m, _)| *m);
        if matched + CATCH_UP_SLACK >= v.commit && matched > 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(ApiError::unavailable(format!(
                "id: coordinator {id} at {} did not catch up within {}s (it stays a learner); is it running with join = true?",
                info.address,
                CATCH_UP_TIMEOUT.as_secs()
            )).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    info!(id, "promoting learner through a joint configuration");
    let cc = change(
        vec![single(id, ConfChangeType::AddNode)],
        ConfChangeTransition::Explicit,
        context,
    );
    c.handle
        .conf_change(META_GROUP, cc)
        .await
        .map_err(|e| c.map_request(e))?;
    wait_joint_left(c).await.map(|cs| response(&cs))
}

/// Removes a coordinator, refusing when that would leave no healthy quorum.
pub async fn remove(c: &Coordinator, id: u64) -> Result<MembershipResponse, Status> {
    let v = view(c).await?;
    let is_voter = v.cs.voters.contains(&id);
    if !is_voter && !v.cs.learners.contains(&id) {
        return Err(ApiError::not_found(format!(
            "id: coordinator {id} is not a member (voters {:?})",
            v.cs.voters
        ))
        .into());
    }
    if is_voter {
        let remaining: Vec<u64> = v.cs.voters.iter().copied().filter(|v| *v != id).collect();
        if remaining.is_empty() {
            return Err(
                ApiError::failed_precondition("id: cannot remove the last coordinator").into(),
            );
        }
        let healthy = remaining
            .iter()
            .filter(|r| {
                **r == c.config.id || v.progress.iter().any(|(p, _, active)| p == *r && *active)
            })
            .count();
        let quorum = remaining.len() / 2 + 1;
        if healthy < quorum {
            return Err(ApiError::failed_precondition(format!(
                "id: removing coordinator {id} would leave {healthy} healthy of {} voters; a quorum needs {quorum}",
                remaining.len()
            )).into());
        }
        if id == c.config.id {
            let target = v
                .progress
                .iter()
                .filter(|(p, _, active)| *active && remaining.contains(p))
                .max_by_key(|(_, matched, _)| *matched)
                .map(|(p, _, _)| *p);
            if let Some(target) = target {
                info!(
                    from = id,
                    to = target,
                    "transferring leadership before removing this coordinator"
                );
                c.handle
                    .transfer_leader(META_GROUP, target)
                    .map_err(|e| c.map_request(e))?;
            }
            return Err(ApiError::unavailable(
                "this coordinator is the leader being removed; leadership is moving, retry",
            )
            .into());
        }
    }
    info!(id, "removing coordinator through a joint configuration");
    let cc = change(
        vec![single(id, ConfChangeType::RemoveNode)],
        ConfChangeTransition::Explicit,
        Vec::new(),
    );
    c.handle
        .conf_change(META_GROUP, cc)
        .await
        .map_err(|e| c.map_request(e))?;
    wait_joint_left(c).await.map(|cs| response(&cs))
}
