//! Which failures are worth retrying, and for how long.

use std::time::Duration;

use tonic::{Code, Status};

/// A bounded retry: exponential backoff between attempts, an attempt cap and a total deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub max_attempts: u32,
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            max_attempts: 60,
            deadline: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt` (0-based), doubling up to the cap.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// True for failures that say "not here / not now" rather than "no": the same request may
/// succeed on another coordinator or a moment later. Every surge admin call is idempotent
/// or carries a token that makes it so.
pub fn is_retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::ResourceExhausted | Code::Cancelled
    ) || (status.code() == Code::Unknown && status.message().contains("transport"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_millis(50));
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(10), Duration::from_millis(500));
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn only_transient_codes_are_retried() {
        assert!(is_retryable(&Status::unavailable("x")));
        assert!(!is_retryable(&Status::invalid_argument("shards: 0")));
        assert!(!is_retryable(&Status::already_exists("init")));
        assert!(!is_retryable(&Status::failed_precondition("quorum")));
    }
}
