//! The change feed: the table's stream turned into one EventBridge event per effective record
//! change. [`change`] decides (pure) which writes are changes; [`feed`] builds the events,
//! batches them within EventBridge's limits and publishes them in stream order, stopping at the
//! first change it could not publish so the stream resumes from it.
//!
//! May use [`crate::records`] (the item layout); nothing above it.

pub mod change;
pub mod feed;
