//! Raft timing and limits, identical on every process (DESIGN.md §8).

use std::time::Duration;

use raft::ReadOnlyOption;

/// The knobs every group on a process shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftConfig {
    /// One logical clock tick.
    pub tick: Duration,
    /// Leader heartbeat interval, in ticks.
    pub heartbeat_ticks: usize,
    /// Base election timeout in ticks; raft-rs randomizes it to [base, 2 × base).
    pub election_ticks: usize,
    pub max_inflight_msgs: usize,
    pub max_size_per_msg: u64,
    /// Compact once this many applied entries sit in the log.
    pub log_gc_threshold: u64,
    /// How long a proposal or read waits for its outcome before answering "unknown".
    pub request_timeout: Duration,
    /// Snapshot data this process sends per second, all transfers together (TiKV's
    /// `snap-io-max-bytes-per-sec`), so moving replicas never starves intake of disk and
    /// network.
    pub snapshot_bytes_per_sec: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            tick: Duration::from_millis(100),
            heartbeat_ticks: 2,
            election_ticks: 10,
            max_inflight_msgs: 256,
            max_size_per_msg: 1 << 20,
            log_gc_threshold: 1024,
            request_timeout: Duration::from_secs(5),
            snapshot_bytes_per_sec: 100 << 20,
        }
    }
}

impl RaftConfig {
    /// The raft-rs configuration for peer `id`: check-quorum and pre-vote on, ReadIndex safe.
    pub fn to_raft(&self, id: u64) -> raft::Config {
        raft::Config {
            id,
            election_tick: self.election_ticks,
            heartbeat_tick: self.heartbeat_ticks,
            max_inflight_msgs: self.max_inflight_msgs,
            max_size_per_msg: self.max_size_per_msg,
            max_committed_size_per_ready: 16 << 20,
            // Bounds the proposals a leader accepts ahead of commit.
            max_uncommitted_size: 64 << 20,
            check_quorum: true,
            pre_vote: true,
            read_only_option: ReadOnlyOption::Safe,
            skip_bcast_commit: false,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_design_timers() {
        let c = RaftConfig::default();
        let raft = c.to_raft(1);
        assert!(raft.validate().is_ok());
        assert_eq!(c.tick * c.election_ticks as u32, Duration::from_secs(1));
        assert_eq!(raft.min_election_tick(), 10);
        assert_eq!(raft.max_election_tick(), 20);
        assert!(raft.check_quorum && raft.pre_vote);
    }
}
