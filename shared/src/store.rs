//! The record table: one item per Protime record, replaced only by a newer `changeVersion`.
//!
//! Every write is a single conditional PutItem, `attribute_not_exists(pk) OR changeOrder <
//! :order`, so duplicates, out-of-order delivery and concurrent writers (webhooks and re-sync)
//! all converge on the highest version without reads or locks.

use crate::collection::Collection;
use crate::event::{ChangeType, Event, RecordId};
use crate::json::Json;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use futures_util::stream::{FuturesOrdered, StreamExt};
use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;

/// Attribute names of a record item. `id`, `changeVersion` and the data fields sit beside them.
pub mod attr {
    /// Partition key: `<collection>#<id>` for records, `subscription#<collection>` for state.
    pub const PK: &str = "pk";
    pub const COLLECTION: &str = "collection";
    pub const ID: &str = "id";
    pub const CHANGE_VERSION: &str = "changeVersion";
    /// The comparable form of `changeVersion` (see [`super::order_key`]).
    pub const CHANGE_ORDER: &str = "changeOrder";
    pub const RECEIVED_AT: &str = "receivedAt";
    /// `webhook` or `resync`.
    pub const SOURCE: &str = "source";
    /// `true` on a tombstone left by a Delete.
    pub const DELETED: &str = "deleted";
    /// Data fields whose names clash with the attributes above are kept here, under their own names.
    pub const SHADOWED_FIELDS: &str = "shadowedFields";

    pub const RESERVED: &[&str] = &[PK, COLLECTION, CHANGE_ORDER, RECEIVED_AT, SOURCE, DELETED, SHADOWED_FIELDS];
}

/// Purely decimal versions up to this many digits compare numerically once zero-padded.
pub const ORDER_WIDTH: usize = 40;

/// The comparable form of a changeVersion: a purely decimal version is left-padded with zeros
/// to [`ORDER_WIDTH`] so that "10" sorts after "9"; anything else compares as the raw string.
pub fn order_key(change_version: &str) -> Cow<'_, str> {
    let decimal = !change_version.is_empty() && change_version.bytes().all(|b| b.is_ascii_digit());
    if decimal && change_version.len() < ORDER_WIDTH {
        Cow::Owned(format!("{change_version:0>ORDER_WIDTH$}"))
    } else {
        Cow::Borrowed(change_version)
    }
}

/// The partition key of a record.
pub fn record_key(collection: Collection, id: &RecordId) -> String {
    format!("{}#{}", collection.as_str(), id.as_str())
}

/// Where a change came from, kept on the item for auditing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Webhook,
    Resync,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Resync => "resync",
        }
    }
}

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Written: the record was new or this version is newer.
    Stored,
    /// The stored item already has this exact version.
    Duplicate,
    /// The stored item has a newer version; nothing changed.
    Stale,
}

impl PutOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PutOutcome::Stored => "stored",
            PutOutcome::Duplicate => "duplicate",
            PutOutcome::Stale => "stale",
        }
    }
}

/// The table could not be written; the caller must not acknowledge the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the record table is unavailable: {0}")]
pub struct StoreError(pub String);

/// Conditional writes of records.
pub trait RecordStore: Send + Sync {
    fn put(
        &self,
        collection: Collection,
        event: &Event,
        source: Source,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;
}

/// Writes every event with at most `concurrency` writes in flight; the results are in the
/// events' order.
pub async fn put_all<S: RecordStore>(
    store: &S,
    collection: Collection,
    events: &[Event],
    source: Source,
    concurrency: usize,
) -> Vec<Result<PutOutcome, StoreError>> {
    // A loop rather than `stream::buffered` with a closure: the closure's future trips the
    // compiler's higher-ranked lifetime check when the caller must be `Send`.
    let mut pending = FuturesOrdered::new();
    let mut results = Vec::with_capacity(events.len());
    for event in events {
        if pending.len() >= concurrency {
            results.extend(pending.next().await);
        }
        pending.push_back(store.put(collection, event, source));
    }
    while let Some(result) = pending.next().await {
        results.push(result);
    }
    results
}

/// Builds the item for an event: metadata, then the data fields as native attributes.
pub fn record_item(
    collection: Collection,
    event: &Event,
    source: Source,
    received_at: &str,
) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::with_capacity(event.data.len() + 8);
    let mut shadowed = HashMap::new();
    for (name, value) in &event.data {
        if attr::RESERVED.contains(&name.as_str()) {
            shadowed.insert(name.clone(), attribute_value(value));
        } else {
            item.insert(name.clone(), attribute_value(value));
        }
    }
    if !shadowed.is_empty() {
        item.insert(attr::SHADOWED_FIELDS.into(), AttributeValue::M(shadowed));
    }
    item.insert(attr::PK.into(), AttributeValue::S(record_key(collection, &event.id)));
    item.insert(attr::COLLECTION.into(), AttributeValue::S(collection.as_str().into()));
    item.insert(
        attr::ID.into(),
        match &event.id {
            RecordId::Number(n) => AttributeValue::N(n.clone()),
            RecordId::String(s) => AttributeValue::S(s.clone()),
        },
    );
    item.insert(attr::CHANGE_VERSION.into(), AttributeValue::S(event.change_version.clone()));
    item.insert(attr::CHANGE_ORDER.into(), AttributeValue::S(order_key(&event.change_version).into_owned()));
    item.insert(attr::RECEIVED_AT.into(), AttributeValue::S(received_at.into()));
    item.insert(attr::SOURCE.into(), AttributeValue::S(source.as_str().into()));
    item.insert(attr::DELETED.into(), AttributeValue::Bool(event.change_type == ChangeType::Delete));
    item
}

/// A JSON value as a native DynamoDB attribute (numbers keep their exact text).
pub fn attribute_value(value: &Json) -> AttributeValue {
    match value {
        Json::Null => AttributeValue::Null(true),
        Json::Bool(b) => AttributeValue::Bool(*b),
        Json::Number(n) => AttributeValue::N(n.clone()),
        Json::String(s) => AttributeValue::S(s.clone()),
        Json::Array(items) => AttributeValue::L(items.iter().map(attribute_value).collect()),
        Json::Object(fields) => {
            AttributeValue::M(fields.iter().map(|(k, v)| (k.clone(), attribute_value(v))).collect())
        }
    }
}

/// Classifies a rejected write from the item DynamoDB returned (`ALL_OLD`).
fn rejected_outcome(old: Option<&HashMap<String, AttributeValue>>, order: &str) -> PutOutcome {
    match old.and_then(|item| item.get(attr::CHANGE_ORDER)) {
        Some(AttributeValue::S(stored)) if stored == order => PutOutcome::Duplicate,
        _ => PutOutcome::Stale,
    }
}

/// The DynamoDB adapter.
#[derive(Debug, Clone)]
pub struct DynamoRecordStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoRecordStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoRecordStore { client, table: table.into() }
    }
}

pub(crate) fn received_now() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

impl RecordStore for DynamoRecordStore {
    async fn put(&self, collection: Collection, event: &Event, source: Source) -> Result<PutOutcome, StoreError> {
        let order = order_key(&event.change_version);
        let item = record_item(collection, event, source, &received_now());
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #order < :order")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#order", attr::CHANGE_ORDER)
            .expression_attribute_values(":order", AttributeValue::S(order.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Stored),
            Err(SdkError::ServiceError(e)) if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) => {
                let PutItemError::ConditionalCheckFailedException(failed) = e.into_err() else {
                    unreachable!("matched above")
                };
                Ok(rejected_outcome(failed.item(), &order))
            }
            Err(e) => Err(StoreError(DisplayErrorContext(e).to_string())),
        }
    }
}

/// An in-memory store with the same condition, for unit tests of the callers.
#[cfg(test)]
pub(crate) mod memory {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct MemoryRecordStore {
        pub items: Mutex<HashMap<String, HashMap<String, AttributeValue>>>,
        pub fail: std::sync::atomic::AtomicBool,
    }

    impl RecordStore for MemoryRecordStore {
        async fn put(&self, collection: Collection, event: &Event, source: Source) -> Result<PutOutcome, StoreError> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError("injected failure".into()));
            }
            let order = order_key(&event.change_version);
            let key = record_key(collection, &event.id);
            let mut items = self.items.lock().unwrap();
            if let Some(old) = items.get(&key) {
                match old.get(attr::CHANGE_ORDER) {
                    Some(AttributeValue::S(stored)) if stored.as_str() < order.as_ref() => {}
                    _ => return Ok(rejected_outcome(Some(old), &order)),
                }
            }
            items.insert(key, record_item(collection, event, source, "now"));
            Ok(PutOutcome::Stored)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_body;
    use proptest::prelude::*;

    #[test]
    fn decimal_versions_compare_numerically() {
        assert!(order_key("9") < order_key("10"));
        assert!(order_key("99999") < order_key("100000"));
        assert_eq!(order_key("7").len(), ORDER_WIDTH);
        assert_eq!(order_key("007"), order_key("007"));
    }

    #[test]
    fn non_decimal_versions_compare_as_plain_strings() {
        assert_eq!(order_key("AAAAAAAB"), "AAAAAAAB");
        assert_eq!(order_key("1.5"), "1.5");
        assert_eq!(order_key("-3"), "-3");
        assert!(order_key("2024-01-02T10:00:00Z") < order_key("2024-01-02T10:00:01Z"));
        let long = "1".repeat(ORDER_WIDTH);
        assert_eq!(order_key(&long), long);
    }

    proptest! {
        #[test]
        fn order_of_decimal_versions_is_numeric_order(a in 0u128..u128::MAX, b in 0u128..u128::MAX) {
            let (ka, kb) = (order_key(&a.to_string()).into_owned(), order_key(&b.to_string()).into_owned());
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        }
    }

    fn event(body: &str) -> Event {
        parse_body(body.as_bytes()).unwrap().remove(0)
    }

    #[test]
    fn item_has_metadata_and_native_data_attributes() {
        let e = event(
            r#"{"id":42,"changeVersion":"10","person":{"id":123},"date":"2025-01-02","minutes":[1,2],"ok":true,"none":null}"#,
        );
        let item = record_item(Collection::PaidPresences, &e, Source::Webhook, "2026-01-01T00:00:00Z");
        assert_eq!(item[attr::PK], AttributeValue::S("paid-presences#42".into()));
        assert_eq!(item[attr::COLLECTION], AttributeValue::S("paid-presences".into()));
        assert_eq!(item[attr::ID], AttributeValue::N("42".into()));
        assert_eq!(item[attr::CHANGE_VERSION], AttributeValue::S("10".into()));
        assert_eq!(item[attr::CHANGE_ORDER], AttributeValue::S(order_key("10").into_owned()));
        assert_eq!(item[attr::RECEIVED_AT], AttributeValue::S("2026-01-01T00:00:00Z".into()));
        assert_eq!(item[attr::SOURCE], AttributeValue::S("webhook".into()));
        assert_eq!(item[attr::DELETED], AttributeValue::Bool(false));
        assert_eq!(item["person"], AttributeValue::M(HashMap::from([("id".into(), AttributeValue::N("123".into()))])));
        assert_eq!(
            item["minutes"],
            AttributeValue::L(vec![AttributeValue::N("1".into()), AttributeValue::N("2".into())])
        );
        assert_eq!(item["ok"], AttributeValue::Bool(true));
        assert_eq!(item["none"], AttributeValue::Null(true));
        assert!(!item.contains_key(attr::SHADOWED_FIELDS));
    }

    #[test]
    fn a_delete_is_a_tombstone() {
        let e = event(r#"{"changeType":"Delete","data":{"id":"a","changeVersion":"3"}}"#);
        let item = record_item(Collection::Breaks, &e, Source::Resync, "t");
        assert_eq!(item[attr::DELETED], AttributeValue::Bool(true));
        assert_eq!(item[attr::ID], AttributeValue::S("a".into()));
        assert_eq!(item[attr::SOURCE], AttributeValue::S("resync".into()));
    }

    #[test]
    fn data_fields_named_like_metadata_are_kept_aside_not_lost() {
        let e = event(r#"{"id":1,"changeVersion":"1","source":"terminal","deleted":"no","pk":7}"#);
        let item = record_item(Collection::Clockings, &e, Source::Webhook, "t");
        assert_eq!(item[attr::SOURCE], AttributeValue::S("webhook".into()));
        let AttributeValue::M(shadowed) = &item[attr::SHADOWED_FIELDS] else { panic!("map expected") };
        assert_eq!(shadowed["source"], AttributeValue::S("terminal".into()));
        assert_eq!(shadowed["deleted"], AttributeValue::S("no".into()));
        assert_eq!(shadowed["pk"], AttributeValue::N("7".into()));
    }

    #[test]
    fn rejected_write_is_duplicate_only_for_the_same_version() {
        let old = HashMap::from([(attr::CHANGE_ORDER.to_string(), AttributeValue::S(order_key("5").into_owned()))]);
        assert_eq!(rejected_outcome(Some(&old), &order_key("5")), PutOutcome::Duplicate);
        assert_eq!(rejected_outcome(Some(&old), &order_key("4")), PutOutcome::Stale);
        assert_eq!(rejected_outcome(None, &order_key("4")), PutOutcome::Stale);
    }
}
