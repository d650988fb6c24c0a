//! One module per command.

pub mod apply_policy;
pub mod doctor;
pub mod get;
pub mod migrate;
pub mod pass;
pub mod quarantine;
pub mod query;
pub mod reconcile;
pub mod republish;
pub mod send;
pub mod status;
pub mod sync;
pub mod verify;
pub mod webhooks;
