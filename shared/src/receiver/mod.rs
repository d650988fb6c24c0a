//! The receiver: `POST /webhooks/{collection}` → signature → events → conditional store → answer.
//!
//! - [`handler`]: the request's path top to bottom, and the [`Receiver`] that keeps its clients
//!   and caches across invocations.
//! - [`route`]: which collection a request is for.
//! - [`deadline`]: when the writes must be done by, so that a late request is answered 503.
//! - [`store`]: the conditional writes, the quarantine for what can never be stored, and the
//!   last event's note.
//! - [`outcome`]: what an acknowledged request did, event by event.
//! - [`error`]: why a request was not acknowledged, and the one place where errors become statuses.
//! - [`response`]: the JSON answer, acknowledged or refused.
//! - [`metrics`]: the request's metrics (EMF) and log lines.
//! - [`last_event`]: the last event's time, noted on the subscription item once a minute, behind
//!   [`last_event::EventNotes`].
//!
//! May use `config` (its settings), `signing` (keys and verification), `records` (parse, store
//! and quarantine events), `collection`, `aws` and `observability`.

pub mod deadline;
pub mod error;
#[cfg(test)]
mod fixtures;
pub mod handler;
pub mod last_event;
pub mod metrics;
pub mod outcome;
pub mod response;
pub mod route;
pub mod store;

pub use error::ReceiveError;
pub use handler::{AwsReceiver, Receiver};
pub use metrics::request_metrics;
pub use outcome::{EventOutcome, ItemOutcome, Received};
pub use route::route_collection;
