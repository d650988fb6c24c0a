//! The renewer: keeps every subscription alive.
//!
//! - [`plan`]: the renewal plan, a pure function of "now, what we want, what Protime reports,
//!   what we stored" to one action per subscription (no I/O, plain model types).
//! - [`handler`]: one invocation: the run within its deadline, its metrics, its answer.
//! - [`run`]: one scheduled run: plan, then intent → POST → key → state for each subscription.
//! - [`state`]: the subscription state items in the table, behind [`state::SubscriptionStore`].
//!
//! May use `config` (its settings), `protime` (through its traits), `records`, `sync` (the
//! delta round, the hand-off), `signing` (it writes the keys), `invocation`, `collection` and
//! `observability`.

pub mod handler;
pub mod plan;
pub mod run;
pub mod state;

pub use run::{
    client_options, run_metrics, AwsRenewer, Renewer, RenewerStores, RunError, RunReport, StrayReport,
    SubscriptionError, SubscriptionReport,
};
