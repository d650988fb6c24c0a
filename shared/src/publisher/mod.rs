//! The change feed: the table's stream turned into one EventBridge event per effective record
//! change. [`change`] decides (pure) which writes are changes; [`feed`] builds the events,
//! batches them within EventBridge's limits and publishes them in stream order, stopping at the
//! first change it could not publish so the stream resumes from it; [`run`] is one invocation
//! over a stream batch, and [`bus`] the EventBridge adapter.
//!
//! Uses [`crate::records`] (the item layout), [`crate::config`], [`crate::invocation`] (the time
//! left), [`crate::collection`] and [`crate::observability`].

pub mod bus;
pub mod change;
pub mod feed;
pub mod run;

pub use run::{publish_metrics, publish_until, AwsPublisher, PublishReport, Publisher};
