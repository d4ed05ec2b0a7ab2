//! Which failures are worth retrying, and for how long.

use std::time::Duration;

use surge_grpc::{retryable_code, ApiError};
use tokio::time::Instant;
use tonic::Status;

/// A bounded retry: exponential backoff between attempts, an attempt cap and a total deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub max_attempts: u32,
    pub deadline: Duration,
    /// Give up this early when no address has answered at all (every one refused the
    /// connection or timed out): nothing is running there, and waiting out `deadline` only
    /// hides that. None: retry until `deadline`. (Followed by `MetaClient`; order calls
    /// retry on other nodes until `deadline`.)
    pub unreachable_after: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            max_attempts: 60,
            deadline: Duration::from_secs(15),
            unreachable_after: Some(Duration::from_secs(3)),
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

/// One call's retry budget under a policy: the client's one place that counts attempts, keeps
/// the deadline and sleeps between attempts. A retried call is `loop { try; tries.again(..) }`:
///
/// ```ignore
/// let mut tries = Tries::new(&policy);
/// loop {
///     match call().await {
///         Ok(v) => return Ok(v),
///         Err(status) if is_retryable(&status) => tries.again(status, pause).await?,
///         Err(status) => return Err(status),
///     }
/// }
/// ```
pub struct Tries {
    policy: RetryPolicy,
    started: Instant,
    attempt: u32,
}

impl Tries {
    pub fn new(policy: &RetryPolicy) -> Tries {
        Tries {
            policy: *policy,
            started: Instant::now(),
            attempt: 0,
        }
    }

    /// Attempts that failed so far (0 during the first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Time since the first attempt started.
    pub fn waited(&self) -> Duration {
        self.started.elapsed()
    }

    /// The backoff after the failures so far, every `per_step` failures doubling it.
    pub fn backoff(&self, per_step: u32) -> Duration {
        self.policy.backoff(self.attempt / per_step.max(1))
    }

    /// An attempt failed transiently with `status`: Err(status) if the policy's attempts or
    /// deadline are spent (the call answers that), else Ok after sleeping `pause`.
    /// A pause the server asked for (`x-surge-retry-after-ms`) is kept if it is longer.
    pub async fn again(&mut self, status: Status, pause: Duration) -> Result<(), Status> {
        let pause = pause.max(retry_after(&status).unwrap_or_default());
        self.attempt += 1;
        if self.attempt >= self.policy.max_attempts || self.waited() >= self.policy.deadline {
            return Err(status);
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        Ok(())
    }
}

/// True for failures that say "not here / not now" rather than "no": the same request may
/// succeed on another process or a moment later. Every surge call is idempotent or carries a
/// token that makes it so. A server's refusal is judged by its code alone
/// ([`surge_grpc::retryable_code`]: UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED); a failure made
/// here, where no server answered (a refused connection, a broken stream, a timeout), carries
/// its cause as the status's source and is retried too. Never by a message's text.
pub fn is_retryable(status: &Status) -> bool {
    retryable_code(status.code()) || no_answer_cause(status).is_some()
}

/// The least pause a server asked for before a retry (`x-surge-retry-after-ms`), capped at
/// [`MAX_RETRY_AFTER`] so a bad value cannot stall the caller.
pub fn retry_after(status: &Status) -> Option<Duration> {
    ApiError::from_status(status)
        .retry_after
        .map(|d| d.min(MAX_RETRY_AFTER))
}

/// The longest server-asked pause the client honours at once.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Metadata key on the status a client gives up with when no address answered.
pub const UNREACHABLE_METADATA: &str = "surge-unreachable";

/// Why a call got no answer from the server — a refused connection, a timeout — or None when
/// the server answered (with any status). Client-side failures carry the transport error as
/// their source; the innermost cause is the one a person can act on.
pub fn no_answer_cause(status: &Status) -> Option<String> {
    let mut cause: &dyn std::error::Error = std::error::Error::source(status)?;
    while let Some(next) = cause.source() {
        cause = next;
    }
    Some(cause.to_string())
}

/// The status for "none of `tried` answered": UNAVAILABLE, naming every address and its cause,
/// marked with [`UNREACHABLE_METADATA`] (its value says what was called, e.g. "coordinators").
pub fn unreachable(what: &str, tried: &[(String, String)], waited: Duration) -> Status {
    let list: Vec<String> = tried.iter().map(|(a, c)| format!("{a} ({c})")).collect();
    let mut status = Status::unavailable(format!(
        "no {what} answered in {:.1} s: {}",
        waited.as_secs_f64(),
        list.join(", ")
    ));
    if let Ok(v) = what.parse() {
        status.metadata_mut().insert(UNREACHABLE_METADATA, v);
    }
    status
}

/// True for a status made by [`unreachable`].
pub fn is_unreachable(status: &Status) -> bool {
    status.metadata().get(UNREACHABLE_METADATA).is_some()
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
        assert!(is_retryable(&Status::resource_exhausted("x")));
        assert!(is_retryable(&Status::aborted("epoch moved")));
        assert!(!is_retryable(&Status::invalid_argument("shards: 0")));
        assert!(!is_retryable(&Status::already_exists("init")));
        assert!(!is_retryable(&Status::failed_precondition("quorum")));
        // The text does not matter: a server's INTERNAL saying "transport" is final.
        assert!(!is_retryable(&Status::internal("transport error")));
        assert!(!is_retryable(&Status::unknown("transport error")));
        // A failure made here, with no server answer, is retried whatever its code.
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(is_retryable(&Status::from_error(Box::new(io))));
    }

    #[test]
    fn a_server_asked_pause_is_read_and_capped() {
        let s: Status = ApiError::overloaded("租户限流", Some(Duration::from_millis(300))).into();
        assert_eq!(retry_after(&s), Some(Duration::from_millis(300)));
        let s: Status = ApiError::overloaded("x", Some(Duration::from_secs(3600))).into();
        assert_eq!(retry_after(&s), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&Status::unavailable("x")), None);
    }

    #[tokio::test(start_paused = true)]
    async fn tries_wait_at_least_the_pause_the_server_asked_for() {
        let mut tries = Tries::new(&RetryPolicy::default());
        let s: Status = ApiError::overloaded("x", Some(Duration::from_millis(700))).into();
        let before = Instant::now();
        tries
            .again(s, Duration::from_millis(50))
            .await
            .expect("retry");
        assert_eq!(before.elapsed(), Duration::from_millis(700));
    }

    #[test]
    fn a_server_answer_is_not_a_missing_answer() {
        assert_eq!(no_answer_cause(&Status::unavailable("no leader yet")), None);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let status = Status::from_error(Box::new(io));
        assert_eq!(no_answer_cause(&status).as_deref(), Some("refused"));
    }

    #[test]
    fn the_unreachable_status_names_every_address() {
        let tried = vec![
            ("127.0.0.1:1".to_string(), "Connection refused".to_string()),
            ("127.0.0.1:2".to_string(), "timed out".to_string()),
        ];
        let s = unreachable("coordinators", &tried, Duration::from_millis(3100));
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert_eq!(
            s.message(),
            "no coordinators answered in 3.1 s: 127.0.0.1:1 (Connection refused), 127.0.0.1:2 (timed out)"
        );
        assert!(is_unreachable(&s));
        assert!(!is_unreachable(&Status::unavailable("x")));
    }

    #[tokio::test(start_paused = true)]
    async fn tries_stop_at_the_attempt_cap_with_the_last_status() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let mut tries = Tries::new(&policy);
        let mut calls = 0;
        let last = loop {
            calls += 1;
            let status = Status::unavailable(format!("attempt {}", tries.attempt()));
            let pause = tries.backoff(1);
            if let Err(last) = tries.again(status, pause).await {
                break last;
            }
        };
        assert_eq!(calls, 3);
        assert_eq!(last.message(), "attempt 2");
    }

    #[tokio::test(start_paused = true)]
    async fn tries_stop_at_the_deadline() {
        let policy = RetryPolicy {
            max_attempts: 1000,
            deadline: Duration::from_secs(2),
            ..RetryPolicy::default()
        };
        let mut tries = Tries::new(&policy);
        let mut calls = 0u32;
        while tries
            .again(Status::unavailable("down"), Duration::from_millis(500))
            .await
            .is_ok()
        {
            calls += 1;
        }
        // Pauses at 0.5, 1.0, 1.5 and 2.0 s; the attempt after the last one is refused.
        assert_eq!(calls, 4);
        assert!(tries.waited() >= Duration::from_secs(2));
        assert_eq!(tries.backoff(1), Duration::from_millis(500));
    }
}
