//! Receiving Protime webhook events into DynamoDB and keeping the subscriptions alive.
//!
//! Everything that is logic lives here; the Lambda functions in `functions/` only wire it up.

pub mod aws;
pub mod collection;
pub mod config;
pub mod contract;
pub mod event;
pub mod json;
pub mod logging;
pub mod metrics;
pub mod protime;
pub mod receiver;
pub mod renewal;
pub mod renewer;
pub mod resync;
pub mod signature;
pub mod signing_keys;
pub mod startup;
pub mod store;
pub mod subscriptions;

pub use collection::Collection;
