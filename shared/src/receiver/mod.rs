//! The receiver: `POST /webhooks/{collection}` → signature → events → conditional store → answer.
//!
//! - [`handler`]: the HTTP handler and the one place where errors become statuses.
//! - `last_event`: the last event's time, noted on the subscription item once a minute.
//! - [`signature`]: the `Authorization` header and HMAC verification (pure: no AWS, no HTTP client).
//! - [`signing_keys`]: the cached per-collection keys, behind [`signing_keys::KeySource`], with
//!   the Secrets Manager reader (the renewer writes new keys: `renewer::keys`).
//!
//! May use `records` (parse, store and quarantine events), `collection` and `observability`.

pub mod handler;
pub(crate) mod last_event;
pub mod signature;
pub mod signing_keys;

pub use handler::{
    request_metrics, route_collection, AwsReceiver, EventOutcome, ItemOutcome, ReceiveError, Received, Receiver,
};
