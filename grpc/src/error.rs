//! The one error vocabulary of every surge service: an [`ApiError`] of an [`ErrorKind`], and the
//! one mapping from it to a gRPC status (code, message, metadata) and to a batch item's
//! [`Rejection`]. Servers build refusals only through it, so a code means the same thing on
//! every service; clients decide retries by [`retryable_code`], never by a message's text.
//!
//! The rule a client in any language applies (`surge.proto` states it too): UNAVAILABLE,
//! RESOURCE_EXHAUSTED and ABORTED are "not here / not now" and worth a retry, after
//! `x-surge-retry-after-ms` when present and at `x-surge-leader` when it names a leader; every
//! other code is final.

use std::fmt;
use std::time::Duration;

use surge_proto::{
    EXISTING_ORDER_METADATA, FIELD_METADATA, LEADER_HINT_METADATA, RETRY_AFTER_METADATA,
};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use crate::v1::{ErrorCode, Rejection};

/// What kind of refusal an [`ApiError`] is; each has one gRPC code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A field of the request is wrong (the field is named).
    InvalidArgument,
    /// What the request names does not exist.
    NotFound,
    /// It exists already (a tenant, an initialised cluster, an external id under another payload).
    AlreadyExists,
    /// The state forbids it (an order that shipped, a node that still holds replicas).
    FailedPrecondition,
    /// Past the end, e.g. a watch cursor behind what is kept.
    OutOfRange,
    /// No credential, or an unknown one.
    Unauthenticated,
    /// The credential may not do this.
    PermissionDenied,
    /// This process does not lead what the call needs; the leader is named when known.
    NotLeader,
    /// Not now: no leader, a process stopping, an outcome unknown after a timeout.
    Unavailable,
    /// Raced with a concurrent change (a membership change in flight, an epoch that moved on).
    Aborted,
    /// Over a limit or too much in flight; a pause is named when known.
    Overloaded,
    /// A failure of the serving process, not of the request.
    Internal,
}

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::InvalidArgument,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::FailedPrecondition,
        ErrorKind::OutOfRange,
        ErrorKind::Unauthenticated,
        ErrorKind::PermissionDenied,
        ErrorKind::NotLeader,
        ErrorKind::Unavailable,
        ErrorKind::Aborted,
        ErrorKind::Overloaded,
        ErrorKind::Internal,
    ];

    /// The gRPC status code of this kind.
    pub fn code(self) -> Code {
        match self {
            ErrorKind::InvalidArgument => Code::InvalidArgument,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::AlreadyExists => Code::AlreadyExists,
            ErrorKind::FailedPrecondition => Code::FailedPrecondition,
            ErrorKind::OutOfRange => Code::OutOfRange,
            ErrorKind::Unauthenticated => Code::Unauthenticated,
            ErrorKind::PermissionDenied => Code::PermissionDenied,
            ErrorKind::NotLeader | ErrorKind::Unavailable => Code::Unavailable,
            ErrorKind::Aborted => Code::Aborted,
            ErrorKind::Overloaded => Code::ResourceExhausted,
            ErrorKind::Internal => Code::Internal,
        }
    }

    /// The proto enum of this kind, as a [`Rejection`] carries it: the same number as
    /// [`ErrorKind::code`].
    pub fn wire(self) -> ErrorCode {
        ErrorCode::try_from(self.code() as i32).unwrap_or(ErrorCode::Unspecified)
    }

    /// True when the same request may succeed later or elsewhere.
    pub fn retryable(self) -> bool {
        retryable_code(self.code())
    }

    /// The kind a status or rejection of `code` is read as (a leader hint makes UNAVAILABLE
    /// [`ErrorKind::NotLeader`]). Codes surge never answers with become the nearest kind:
    /// a deadline, a cancel or an unknown failure mean the outcome is unknown, so Unavailable.
    fn of_code(code: Code, has_leader: bool) -> ErrorKind {
        match code {
            Code::InvalidArgument => ErrorKind::InvalidArgument,
            Code::NotFound => ErrorKind::NotFound,
            Code::AlreadyExists => ErrorKind::AlreadyExists,
            Code::FailedPrecondition => ErrorKind::FailedPrecondition,
            Code::OutOfRange => ErrorKind::OutOfRange,
            Code::Unauthenticated => ErrorKind::Unauthenticated,
            Code::PermissionDenied => ErrorKind::PermissionDenied,
            Code::Unavailable if has_leader => ErrorKind::NotLeader,
            Code::Aborted => ErrorKind::Aborted,
            Code::ResourceExhausted => ErrorKind::Overloaded,
            // A refusal without a code is the server's fault.
            Code::Ok | Code::Internal | Code::DataLoss | Code::Unimplemented => ErrorKind::Internal,
            Code::Cancelled | Code::Unknown | Code::DeadlineExceeded | Code::Unavailable => {
                ErrorKind::Unavailable
            }
        }
    }
}

/// True for the codes a refusal is worth retrying on: UNAVAILABLE, RESOURCE_EXHAUSTED and
/// ABORTED. The one retry rule; every surge write is idempotent, so a retry is safe.
pub fn retryable_code(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::ResourceExhausted | Code::Aborted
    )
}

/// True for an [`ErrorCode`] a batch item is worth retrying on (the same rule).
pub fn retryable_wire(code: i32) -> bool {
    retryable_code(Code::from_i32(code))
}

/// A refusal, as every surge service answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// The refused field (`order.lines[0].quantity`), for InvalidArgument.
    pub field: Option<String>,
    /// The leader's address, for NotLeader.
    pub leader: Option<String>,
    /// The order that holds the external id, for AlreadyExists on intake.
    pub existing_order_id: Option<String>,
    /// The least pause before a retry, for Overloaded.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            field: None,
            leader: None,
            existing_order_id: None,
            retry_after: None,
        }
    }

    /// `field` is wrong because of `reason`; the message reads "field: reason".
    pub fn invalid_argument(field: impl Into<String>, reason: impl fmt::Display) -> ApiError {
        let field = field.into();
        let mut e = ApiError::new(ErrorKind::InvalidArgument, format!("{field}: {reason}"));
        e.field = Some(field);
        e
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, message)
    }

    pub fn already_exists(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::AlreadyExists, message)
    }

    pub fn failed_precondition(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::FailedPrecondition, message)
    }

    pub fn out_of_range(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::OutOfRange, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Unauthenticated, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::PermissionDenied, message)
    }

    /// Not the leader; `leader` is its address when known (without one this is plain
    /// Unavailable: there is nowhere better to go yet).
    pub fn not_leader(message: impl Into<String>, leader: Option<&str>) -> ApiError {
        match leader.filter(|a| !a.is_empty()) {
            Some(address) => {
                let mut e = ApiError::new(ErrorKind::NotLeader, message);
                e.leader = Some(address.to_string());
                e
            }
            None => ApiError::unavailable(message),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Unavailable, message)
    }

    pub fn aborted(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Aborted, message)
    }

    /// Over a limit; retry after `retry_after` when given.
    pub fn overloaded(message: impl Into<String>, retry_after: Option<Duration>) -> ApiError {
        let mut e = ApiError::new(ErrorKind::Overloaded, message);
        e.retry_after = retry_after;
        e
    }

    pub fn internal(message: impl fmt::Display) -> ApiError {
        ApiError::new(ErrorKind::Internal, message.to_string())
    }

    /// The same refusal naming the order that holds the external id.
    pub fn with_existing_order(mut self, order_id: impl Into<String>) -> ApiError {
        self.existing_order_id = Some(order_id.into()).filter(|s| !s.is_empty());
        self
    }

    /// The same refusal with the field renamed, e.g. `order.x` → `orders[3].x` in a batch.
    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub fn code(&self) -> Code {
        self.kind.code()
    }

    pub fn retryable(&self) -> bool {
        self.kind.retryable()
    }

    /// The status a service answers with: the kind's code, the message and the metadata of
    /// every detail that is set.
    pub fn into_status(self) -> Status {
        let mut status = Status::new(self.kind.code(), self.message);
        let md = status.metadata_mut();
        put(md, LEADER_HINT_METADATA, self.leader.as_deref());
        put(md, FIELD_METADATA, self.field.as_deref());
        put(
            md,
            EXISTING_ORDER_METADATA,
            self.existing_order_id.as_deref(),
        );
        let after = self.retry_after.map(|d| d.as_millis().to_string());
        put(md, RETRY_AFTER_METADATA, after.as_deref());
        status
    }

    /// Reads a status (a server's answer, or one a client made) back into a refusal.
    pub fn from_status(status: &Status) -> ApiError {
        let md = status.metadata();
        let leader = get(md, LEADER_HINT_METADATA);
        // A status made from a local failure (no server answered) carries its cause.
        let code = if std::error::Error::source(status).is_some() {
            Code::Unavailable
        } else {
            status.code()
        };
        ApiError {
            kind: ErrorKind::of_code(code, leader.is_some()),
            message: status.message().to_string(),
            field: get(md, FIELD_METADATA),
            leader,
            existing_order_id: get(md, EXISTING_ORDER_METADATA),
            retry_after: get(md, RETRY_AFTER_METADATA)
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis),
        }
    }

    /// The refusal as one item of a batch answers it.
    pub fn rejection(&self) -> Rejection {
        Rejection {
            code: self.kind.wire() as i32,
            message: self.message.clone(),
            field: self.field.clone().unwrap_or_default(),
            existing_order_id: self.existing_order_id.clone().unwrap_or_default(),
            retry_after_ms: self
                .retry_after
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
        }
    }

    /// A batch item's refusal as the single-order call answers it.
    pub fn from_rejection(rejection: &Rejection) -> ApiError {
        ApiError {
            kind: ErrorKind::of_code(Code::from_i32(rejection.code), false),
            message: rejection.message.clone(),
            field: Some(rejection.field.clone()).filter(|s| !s.is_empty()),
            leader: None,
            existing_order_id: Some(rejection.existing_order_id.clone()).filter(|s| !s.is_empty()),
            retry_after: Some(rejection.retry_after_ms)
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
        }
    }
}

fn put(md: &mut MetadataMap, key: &'static str, value: Option<&str>) {
    if let Some(v) = value.and_then(|v| MetadataValue::try_from(v).ok()) {
        md.insert(key, v);
    }
}

fn get(md: &MetadataMap, key: &str) -> Option<String> {
    md.get(key)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.message, self.kind.code())
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        e.into_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One refusal of each kind, with every detail its kind can carry.
    fn sample(kind: ErrorKind) -> ApiError {
        let e = ApiError::new(kind, "订单被拒绝: 测试");
        match kind {
            ErrorKind::InvalidArgument => {
                ApiError::invalid_argument("order.lines[0].quantity", "必须大于 0")
            }
            ErrorKind::NotLeader => ApiError::not_leader("not the leader", Some("10.0.0.2:7000")),
            ErrorKind::Overloaded => {
                ApiError::overloaded("too much", Some(Duration::from_millis(250)))
            }
            ErrorKind::AlreadyExists => e.with_existing_order("o-3-17"),
            _ => e,
        }
    }

    /// The table: every kind, its code, whether a client retries it, and the metadata it carries.
    #[test]
    fn every_kind_maps_to_one_code_and_its_metadata() {
        let table: [(ErrorKind, Code, bool, &[&str]); 12] = [
            (
                ErrorKind::InvalidArgument,
                Code::InvalidArgument,
                false,
                &[FIELD_METADATA],
            ),
            (ErrorKind::NotFound, Code::NotFound, false, &[]),
            (
                ErrorKind::AlreadyExists,
                Code::AlreadyExists,
                false,
                &[EXISTING_ORDER_METADATA],
            ),
            (
                ErrorKind::FailedPrecondition,
                Code::FailedPrecondition,
                false,
                &[],
            ),
            (ErrorKind::OutOfRange, Code::OutOfRange, false, &[]),
            (
                ErrorKind::Unauthenticated,
                Code::Unauthenticated,
                false,
                &[],
            ),
            (
                ErrorKind::PermissionDenied,
                Code::PermissionDenied,
                false,
                &[],
            ),
            (
                ErrorKind::NotLeader,
                Code::Unavailable,
                true,
                &[LEADER_HINT_METADATA],
            ),
            (ErrorKind::Unavailable, Code::Unavailable, true, &[]),
            (ErrorKind::Aborted, Code::Aborted, true, &[]),
            (
                ErrorKind::Overloaded,
                Code::ResourceExhausted,
                true,
                &[RETRY_AFTER_METADATA],
            ),
            (ErrorKind::Internal, Code::Internal, false, &[]),
        ];
        assert_eq!(
            table.map(|row| row.0),
            ErrorKind::ALL,
            "the table covers every kind"
        );
        let all_keys = [
            LEADER_HINT_METADATA,
            FIELD_METADATA,
            EXISTING_ORDER_METADATA,
            RETRY_AFTER_METADATA,
        ];
        for (kind, code, retry, keys) in table {
            let e = sample(kind);
            assert_eq!(e.code(), code, "{kind:?}");
            assert_eq!(e.retryable(), retry, "{kind:?}");
            // The proto enum carries the gRPC number, so a client reads both alike.
            assert_eq!(kind.wire() as i32, code as i32, "{kind:?}");
            assert_eq!(retryable_wire(e.rejection().code), retry, "{kind:?}");
            let status = e.clone().into_status();
            assert_eq!(status.code(), code);
            assert_eq!(retryable_code(status.code()), retry);
            for key in all_keys {
                assert_eq!(
                    status.metadata().contains_key(key),
                    keys.contains(&key),
                    "{kind:?} and {key}"
                );
            }
            // A status and a rejection read back into the same refusal.
            assert_eq!(ApiError::from_status(&status), e, "{kind:?}");
            // A batch names the leader in `SubmitResult.leader`, not in the rejection.
            let mut want = e.clone();
            if kind == ErrorKind::NotLeader {
                want.kind = ErrorKind::Unavailable;
                want.leader = None;
            }
            assert_eq!(ApiError::from_rejection(&e.rejection()), want, "{kind:?}");
        }
    }

    #[test]
    fn details_read_back_from_metadata() {
        let status =
            ApiError::overloaded("租户 限流", Some(Duration::from_millis(1500))).into_status();
        assert_eq!(
            status
                .metadata()
                .get(RETRY_AFTER_METADATA)
                .and_then(|v| v.to_str().ok()),
            Some("1500")
        );
        let e = ApiError::invalid_argument("order.receiver.address", "不能为空");
        assert_eq!(e.message, "order.receiver.address: 不能为空");
        assert_eq!(e.rejection().field, "order.receiver.address");
    }

    #[test]
    fn a_not_leader_without_an_address_is_plain_unavailable() {
        let e = ApiError::not_leader("no leader yet", None);
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.retryable());
    }

    #[test]
    fn codes_surge_never_sends_read_as_unknown_outcomes() {
        for code in [Code::DeadlineExceeded, Code::Cancelled, Code::Unknown] {
            let e = ApiError::from_status(&Status::new(code, "x"));
            assert_eq!(e.kind, ErrorKind::Unavailable, "{code:?}");
        }
        // A local transport failure carries a source: no server answered.
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = ApiError::from_status(&Status::from_error(Box::new(io)));
        assert_eq!(e.kind, ErrorKind::Unavailable);
        // An unset code in a rejection is not read as success.
        let e = ApiError::from_rejection(&Rejection::default());
        assert_eq!(e.kind, ErrorKind::Internal);
    }
}
