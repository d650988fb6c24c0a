//! Protime records as the table keeps them: from the bytes of an event to one conditional write.
//!
//! - [`json`]: a JSON tree that keeps numbers exact and refuses what DynamoDB cannot hold (pure).
//! - [`event`]: the two event shapes and arrays of them (pure).
//! - [`order`]: the comparable form of a `changeVersion` (pure).
//! - [`index`]: the keys of the `byDate` and `byPerson` read indexes, from a record's fields (pure).
//! - [`policy`]: the field policy (drop or hash personal fields before anything is kept) and how
//!   long a tombstone is kept (pure).
//! - [`item`]: the item layout: attribute names, record keys, JSON → attribute values.
//! - [`heads`]: the stored order keys of a page's records in one read, behind
//!   [`heads::StoredHeads`] (sync skips unchanged ones).
//! - [`store`]: the [`store::RecordStore`] trait (conditional writes), its DynamoDB adapter and the
//!   bounded write loop.
//! - [`migrate`]: resumable passes over the table: the one-off migration that gives items stored
//!   before the indexes their keys, and ([`rewrite`]) a new field policy applied to what is stored.
//! - [`query`]: one collection by date, by person or whole, through the indexes (Query only).
//! - [`quarantine`]: where signed but unstorable bodies are kept, behind [`quarantine::Quarantine`],
//!   with its S3 adapter.
//! - [`set_aside`]: which version of a record the sync already set aside, behind
//!   [`set_aside::SetAsideMarks`], so it is not kept again.
//!
//! Used by the receiver, the renewer, the sync, the publisher and the CLI; uses nothing of theirs.

pub mod event;
pub mod heads;
pub mod index;
pub mod item;
pub mod json;
pub mod migrate;
pub mod order;
pub mod policy;
pub mod quarantine;
pub mod query;
pub mod rewrite;
pub mod set_aside;
pub mod store;

pub use event::{ChangeType, Event, RecordId};
pub use heads::StoredHeads;
pub use item::Source;
pub use order::order_key;
pub use store::{put_all, DynamoRecordStore, PutOutcome, RecordStore, StoreError, StoredHead};
