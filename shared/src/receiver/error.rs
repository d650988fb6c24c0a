//! Why a request was not acknowledged: [`ReceiveError`], and the one place where each of its
//! variants becomes an HTTP status and a stable code.

use crate::records::event::EventError;
use crate::records::quarantine::QuarantineError;
use crate::records::StoreError;
use crate::signing::keys::VerifyError;
use crate::signing::signature::SignatureError;
use lambda_http::http::StatusCode;

/// Why a request was not acknowledged. Each variant maps to exactly one status, here only.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("only POST is accepted")]
    MethodNotAllowed,
    #[error("no such route; events are posted to /webhooks/{{collection}}")]
    NoRoute,
    #[error("unknown collection {0:?}")]
    UnknownCollection(String),
    /// Over the limit, and not (correctly) signed.
    #[error("the body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// Over the limit and correctly signed, with no quarantine to keep it in.
    #[error("the body is larger than {0} bytes")]
    SignedBodyTooLarge(usize),
    #[error("the signature is missing, malformed or wrong")]
    Unauthorized(VerifyError),
    #[error("{0}")]
    InvalidEvent(EventError),
    /// DynamoDB can never store this record, and no quarantine is configured.
    #[error("the event can never be stored ({0})")]
    Unstorable(&'static str),
    #[error("the quarantine is unavailable; retry later")]
    QuarantineUnavailable(QuarantineError),
    #[error("storage is unavailable; retry later")]
    KeysUnavailable(VerifyError),
    #[error("storage is unavailable; retry later")]
    StoreUnavailable(StoreError),
    #[error("the invocation ran out of time before every event was stored; retry later")]
    OutOfTime,
}

impl ReceiveError {
    /// Refused before a signature was verified: anyone on the internet can cause these, so
    /// they are counted apart (`UnverifiedRequests`) from what Protime's signed requests meet.
    pub fn is_unverified(&self) -> bool {
        matches!(
            self,
            ReceiveError::MethodNotAllowed
                | ReceiveError::NoRoute
                | ReceiveError::UnknownCollection(_)
                | ReceiveError::BodyTooLarge(_)
        )
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ReceiveError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ReceiveError::NoRoute | ReceiveError::UnknownCollection(_) => StatusCode::NOT_FOUND,
            ReceiveError::BodyTooLarge(_) | ReceiveError::SignedBodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ReceiveError::InvalidEvent(e) if e.is_too_large() => StatusCode::PAYLOAD_TOO_LARGE,
            ReceiveError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ReceiveError::InvalidEvent(_) | ReceiveError::Unstorable(_) => StatusCode::BAD_REQUEST,
            ReceiveError::KeysUnavailable(_)
            | ReceiveError::StoreUnavailable(_)
            | ReceiveError::QuarantineUnavailable(_)
            | ReceiveError::OutOfTime => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable code for the answer body, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ReceiveError::MethodNotAllowed => "method_not_allowed",
            ReceiveError::NoRoute => "no_route",
            ReceiveError::UnknownCollection(_) => "unknown_collection",
            ReceiveError::BodyTooLarge(_) | ReceiveError::SignedBodyTooLarge(_) => "body_too_large",
            ReceiveError::InvalidEvent(e) if e.is_too_large() => "event_too_large",
            ReceiveError::Unauthorized(_) => "invalid_signature",
            ReceiveError::InvalidEvent(_) => "invalid_event",
            ReceiveError::Unstorable(_) => "unstorable_event",
            ReceiveError::QuarantineUnavailable(_) => "quarantine_unavailable",
            ReceiveError::KeysUnavailable(_) => "keys_unavailable",
            ReceiveError::StoreUnavailable(_) => "store_unavailable",
            ReceiveError::OutOfTime => "out_of_time",
        }
    }
}

impl From<SignatureError> for ReceiveError {
    fn from(e: SignatureError) -> Self {
        ReceiveError::Unauthorized(e.into())
    }
}
