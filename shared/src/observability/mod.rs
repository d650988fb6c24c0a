//! What the functions tell CloudWatch.
//!
//! - [`logging`]: log format and level from Lambda's logging controls.
//! - [`metrics`]: Embedded Metric Format documents.
//!
//! Uses nothing else of the crate.

pub mod logging;
pub mod metrics;
