//! Copying Protime's records into the table outside of webhooks.
//!
//! - [`resync`]: re-sync windows and the list-to-store copy the renewer runs before it
//!   re-enables a Disabled subscription.
//!
//! Writes only through `records::store`, so synced records and webhook events converge.

pub mod resync;
