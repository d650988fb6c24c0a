//! Copying Protime's records into the table outside of webhooks: webhooks are the fast path,
//! this is the guarantee.
//!
//! - [`plan`]: the cursor, phase and lease rules as pure functions (no AWS or HTTP code).
//! - [`state`]: the sync state item per collection (`sync#<collection>`) and its lease.
//! - [`apply`]: one page of records into the table (skipping unchanged ones, quarantining
//!   what DynamoDB refuses).
//! - [`kept`]: a fetched page kept (in the sync item, or as an object) before it is applied.
//! - [`engine`]: the syncer's run: initial loads through delta, deltaLinks followed every run,
//!   full passes that reconcile and sweep, resumable from checkpoints, collections in parallel.
//! - [`settings`]: [`SyncerConfig`], the syncer's settings (read from the environment by
//!   `config`, which sits above this folder).
//!
//! Writes records only through `records::store`, so synced records and webhook events converge.
//! May use `protime` (through its traits), `records`, `collection`, `aws` and `observability`;
//! never `config` (which reads into [`settings`]) nor a function's folder.

pub mod apply;
pub mod engine;
pub mod kept;
pub mod plan;
pub mod settings;
pub mod state;
pub mod sweep;

pub use engine::{
    AwsSyncer, Budget, CollectionReport, Outcome, SweepVerdict, SyncReport, SyncRequest, SyncRunError, Syncer,
};
pub use settings::SyncerConfig;
