//! [`Stats`]: what one run of the membership simulation did, counted so the tests can assert
//! that moves, snapshots, refusals, notices and faults really happened.

surge_sim::counters! {
    pub(crate) struct Stats {
        acked, moves_started, moves_done, changes_proposed, auto_leaves, transfers,
        stale_directives, epoch_rejections, busy_rejections, replicas_created, recreated,
        coordinator_destroys, snapshots_sent, snapshots_installed, stale_refusals,
        older_incarnation_refusals, refused_before_creation, no_group, late_for_removed,
        notices_sent, notice_destroys, notices_ignored, crashes, partitions, dropped,
        duplicated, delayed,
    }
}
