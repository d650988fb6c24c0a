//! Copying Protime's records into the table outside of webhooks: webhooks are the fast path,
//! this is the guarantee.
//!
//! - [`plan`]: the cursor, phase and lease rules as pure functions (no AWS or HTTP code).
//! - [`state`]: the sync state item per collection (`sync#<collection>`) and its lease.
//! - [`apply`]: one page of records into the table (skipping unchanged ones, quarantining
//!   what DynamoDB refuses).
//! - [`kept`]: a fetched page kept (in the sync item, or as an object) before it is applied.
//! - [`handler`]: one invocation: the payload as a request, the run within the deadline, its
//!   metrics and log line, the answer.
//! - [`request`] and [`report`]: what an invocation asks for, and what a run did (its metrics).
//! - [`run`]: the syncer's run: each collection under its lease, in parallel (bounded), its
//!   load or delta round, then its full passes; beside it `pages` (the one page loop: fetch or
//!   take the kept page, apply, move the cursor, checkpoint; each list of pages a `PageList`),
//!   `delta` (the delta round or load as such a list, and the catch-up before a load), `passes`
//!   (the sweep, and the reconciliation and the history as such lists) and `stop` (why
//!   following stopped).
//! - [`handoff`]: the renewer's delta round for a recovered subscription, or a full pass asked of
//!   the syncer.
//! - [`settings`]: [`SyncerConfig`], the syncer's settings (read from the environment by
//!   `config`, which sits above this folder).
//!
//! Writes records only through `records::store`, so synced records and webhook events converge.
//! May use `protime` (through its traits), `records`, `collection`, `invocation`, `aws` and `observability`;
//! never `config` (which reads into [`settings`]) nor a function's folder.

pub mod apply;
mod delta;
pub mod handler;
pub mod handoff;
pub mod kept;
mod pages;
mod passes;
pub mod plan;
pub mod report;
pub mod request;
pub mod run;
pub mod settings;
pub mod state;
mod stop;
pub mod sweep;

pub use crate::invocation::Budget;
pub use report::{sync_metrics, CollectionReport, Outcome, SweepVerdict, SyncReport};
pub use request::{SyncRequest, SyncRunError};
pub use run::{AwsSyncer, Syncer};
pub use settings::SyncerConfig;
