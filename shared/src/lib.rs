//! Receiving Protime webhook events into DynamoDB, keeping the subscriptions alive, keeping
//! the copy complete through Protime's delta, and publishing its changes to EventBridge.
//!
//! Everything that is logic lives here; the Lambda functions in `functions/` only wire it up.
//!
//! # Layout
//!
//! One folder per concern; each `mod.rs` says what it holds and what it may use. Every import
//! runs downhill, in this order from the top:
//!
//! - [`receiver`], [`renewer`], [`publisher`]: one function each — the HTTP handler with its
//!   `lastEventAt` note; the pure renewal plan, a renewer run and the subscription state items;
//!   the change feed (which table writes are record changes, their EventBridge events).
//! - [`config`]: the functions' settings from environment variables, defaults defined once,
//!   read into the types of the folders below.
//! - [`sync`]: the syncer's run (initial loads through delta, deltaLinks followed every run,
//!   full passes, checkpoints and leases, kept pages), its request and report, its settings,
//!   its pure cursor/phase rules, and the delta round a renewer's recovery follows.
//! - [`protime`]: Protime's API: errors, model, pages, credentials, the traits the renewer and
//!   the syncer use, the HTTP client behind them (in-memory fakes in `testing`).
//! - [`records`]: event parsing, exact JSON, the `changeVersion` order key, the item layout,
//!   the read indexes' keys, queries through them and their one-off migration, and one
//!   capability trait each for the conditional store, the stored heads, the quarantine and the
//!   set-aside marks.
//! - [`signing`] (independent of `records`): webhook signing keys — the HMAC, the cached reader,
//!   the writer — used by the receiver, the renewer and the CLI.
//! - [`redact`] (pure): delta and skip tokens out of any text a Protime message brings in.
//! - [`invocation`]: a function's life in Lambda: the start-up every binary shares, an
//!   invocation's time (its deadline budget), the lease length without one, lease owners; and
//!   the crate-private poison-tolerant `lock` the signing-key cache and the fakes share.
//! - [`aws`], [`observability`], [`collection`]: the SDK configuration every client shares,
//!   logging and CloudWatch metrics, the 18 collections.
//!
//! Beside them: [`contract`] (the names the template relies on, and the AWS capabilities each
//! function composes) and, for tests only, `testing` (in-memory fakes of Protime and every
//! store; the `test-util` feature exports it).
//!
//! Pure modules — [`signing::signature`], [`records::event`], [`records::order`],
//! [`renewer::plan`], [`sync::plan`], [`protime::page`] — import no AWS or HTTP client code.

pub mod aws;
pub mod collection;
pub mod config;
pub mod contract;
pub mod invocation;
pub mod observability;
pub mod protime;
pub mod publisher;
pub mod receiver;
pub mod records;
pub mod redact;
pub mod renewer;
pub mod signing;
pub mod sync;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use collection::Collection;
