//! A function's life in Lambda, from its start to each invocation.
//!
//! - [`startup`]: the start-up the four function binaries (receiver, renewer, syncer,
//!   publisher) share: CA bundle, async runtime, logging.
//! - What an invocation may use: its time ([`time_left`]: the publisher; [`Budget`]: the renewer
//!   and the syncer), and the length ([`DEFAULT_LEASE`]) and owner ([`lease_owner`]) of the
//!   leases a renewer or syncer run holds.
//! - The crate-private poison-tolerant `lock` for the state an instance keeps behind a
//!   `std::sync::Mutex` (the signing-key cache, the in-memory fakes).
//!
//! Uses [`crate::aws`] and [`crate::observability`] only (the start-up).

mod budget;
mod mutex;
pub mod startup;

pub use budget::{lease_owner, time_left, Budget, DEFAULT_LEASE};
pub(crate) use mutex::lock;
