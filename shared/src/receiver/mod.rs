//! The receiver: `POST /webhooks/{collection}` → signature → events → conditional store → answer.
//!
//! - [`handler`]: the HTTP handler and the one place where errors become statuses.
//! - [`last_event`]: the last event's time, noted on the subscription item once a minute, behind
//!   [`last_event::EventNotes`].
//!
//! May use `config` (its settings), `signing` (keys and verification), `records` (parse, store
//! and quarantine events), `collection`, `aws` and `observability`.

pub mod handler;
pub mod last_event;

pub use handler::{
    request_metrics, route_collection, AwsReceiver, EventOutcome, ItemOutcome, ReceiveError, Received, Receiver,
};
