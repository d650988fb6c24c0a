//! Receiving Protime webhook events into DynamoDB, keeping the subscriptions alive, and keeping
//! the copy complete through Protime's delta.
//!
//! Everything that is logic lives here; the Lambda functions in `functions/` only wire it up.
//!
//! # Layout
//!
//! One folder per concern; each `mod.rs` says what it holds and what it may use.
//!
//! - [`receiver`]: the HTTP handler, signature verification, the signing-key cache.
//! - [`records`]: event parsing, exact JSON, the `changeVersion` order key, the item layout, the
//!   conditional store and the quarantine.
//! - [`renewer`]: the pure renewal plan, a renewer run, the subscription state items, the key
//!   writer.
//! - [`sync`]: the sync engine (initial loads through delta, deltaLinks followed every run,
//!   checkpoints and leases), its pure cursor/phase rules, and the renewer's re-sync.
//! - [`protime`]: Protime's API: model, client, credentials, and the traits the renewer and
//!   re-sync use, with in-memory fakes behind the `test-util` feature.
//! - [`aws`]: the SDK configuration every client shares.
//! - [`config`]: the functions' settings from environment variables, defaults defined once.
//! - [`observability`]: logging and CloudWatch metrics.
//!
//! Crate-wide, at the top: [`collection`] (the 18 collections), [`contract`] (the names the
//! template relies on), [`startup`] (the start-up every binary shares) and, for tests only,
//! `testing` (in-memory fakes of Protime and every store; the `test-util` feature exports it).
//!
//! Pure modules — [`receiver::signature`], [`records::event`], [`records::order`],
//! [`renewer::plan`], [`sync::plan`] — import no AWS or HTTP client code.

pub mod aws;
pub mod collection;
pub mod config;
pub mod contract;
pub mod observability;
pub mod protime;
pub mod receiver;
pub mod records;
pub mod renewer;
pub mod startup;
pub mod sync;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use collection::Collection;
