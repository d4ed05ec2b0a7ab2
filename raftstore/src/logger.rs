//! raft-rs logs through slog; this routes it into `log`, which `tracing-subscriber` picks up,
//! so raft's messages land in the same structured output as everything else.

use slog::Drain;

/// A slog logger for one group that forwards to the `log` facade (and from there to tracing).
pub fn raft_logger(group: u64) -> slog::Logger {
    slog::Logger::root(slog_stdlog::StdLog.fuse(), slog::o!("raft_group" => group))
}
