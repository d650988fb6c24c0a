//! The record table: one item per Protime record, replaced only by a newer `changeVersion` —
//! or at the same version by a Delete over a live record, by a record over the sweep's
//! tombstone, and by the sweep's tombstone (written by `sync::sweep`) over a record still as read.
//!
//! Every write here is a conditional PutItem, `attribute_not_exists(pk) OR changeOrder <
//! :order` or one of the first two same-version cases, so duplicates, out-of-order delivery and
//! concurrent writers (webhooks, the syncer, the renewer's delta round) all converge on the
//! highest version without reads or locks. A refused write returns the item that won
//! (`ALL_OLD`), which tells a duplicate from a stale event (see
//! `docs/decisions/0007-all-old-instead-of-a-read.md`), or shows an item an earlier release
//! keyed, which a second write replaces on condition that its key is unchanged.

use super::event::{ChangeType, Event};
use super::item::{attr, record_item, Source};
use super::order::{is_current_order_key, order_key};
use super::policy::DataPolicy;
use crate::collection::Collection;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::future::Future;

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

/// A write was not decided; the caller must not acknowledge the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The table could not be reached or refused for a passing reason (throttling, outage).
    #[error("the record table is unavailable: {0}")]
    Unavailable(String),
    /// DynamoDB can never store this record (`ValidationException`, or a limit checked before
    /// writing); retrying cannot help.
    #[error("the record can never be stored ({reason}): {message}")]
    Rejected { reason: &'static str, message: String },
}

impl StoreError {
    pub(crate) fn rejected_item(item: &HashMap<String, AttributeValue>) -> Option<StoreError> {
        super::item::unstorable(item)
            .map(|reason| StoreError::Rejected { reason, message: "it exceeds a DynamoDB item limit".into() })
    }
}

/// Conditional writes of records: the one capability every writer has. Reading heads
/// ([`super::heads::StoredHeads`]) and noting events (`receiver::last_event::EventNotes`) are
/// capabilities of their own, so each function composes only what it calls.
pub trait RecordStore: Send + Sync {
    fn put(
        &self,
        collection: Collection,
        event: &Event,
        source: Source,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;

    /// The event as [`RecordStore::put`] would keep it (under the store's field policy), to
    /// check before writing; as it is by default.
    fn kept<'a>(&self, _collection: Collection, event: &'a Event) -> std::borrow::Cow<'a, Event> {
        std::borrow::Cow::Borrowed(event)
    }
}

impl<T: RecordStore> RecordStore for std::sync::Arc<T> {
    fn put(
        &self,
        collection: Collection,
        event: &Event,
        source: Source,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send {
        (**self).put(collection, event, source)
    }

    fn kept<'a>(&self, collection: Collection, event: &'a Event) -> std::borrow::Cow<'a, Event> {
        (**self).kept(collection, event)
    }
}

/// Writes every event with at most `concurrency` writes in flight; the results are in the
/// events' order. A slow write does not hold the others back: the window refills as soon as any
/// write finishes.
pub async fn put_all<S: RecordStore>(
    store: &S,
    collection: Collection,
    events: &[Event],
    source: Source,
    concurrency: usize,
) -> Vec<Result<PutOutcome, StoreError>> {
    // A loop rather than `stream::buffer_unordered` with a closure: the closure's future trips
    // the compiler's higher-ranked lifetime check when the caller must be `Send`.
    let mut pending = FuturesUnordered::new();
    let mut results: Vec<Option<Result<PutOutcome, StoreError>>> = vec![None; events.len()];
    for (index, event) in events.iter().enumerate() {
        if pending.len() >= concurrency.max(1) {
            if let Some((done, result)) = pending.next().await {
                results[done] = Some(result);
            }
        }
        pending.push(async move { (index, store.put(collection, event, source).await) });
    }
    while let Some((done, result)) = pending.next().await {
        results[done] = Some(result);
    }
    results.into_iter().map(|r| r.unwrap_or_else(|| Err(StoreError::Unavailable("write not run".into())))).collect()
}

/// The condition of a write: the record is new, or this version is newer, or the stored item is
/// a tombstone the sweep wrote at this version (Protime returned the record after all: it heals).
/// A Delete also wins at the same version as a live record (it becomes a tombstone).
const WRITE_CONDITION: &str =
    "attribute_not_exists(#pk) OR #order < :order OR (#order = :order AND #source = :sweep AND #deleted = :true)";
const DELETE_CONDITION: &str =
    "attribute_not_exists(#pk) OR #order < :order OR (#order = :order AND #deleted <> :true)";
/// The condition of the second write over an item whose key an earlier release wrote: that
/// exact key is still there (see [`super::order::is_current_order_key`]).
const LEGACY_CONDITION: &str = "#order = :seen";
/// Second writes over an earlier release's key before giving up (another writer kept winning).
const LEGACY_ATTEMPTS: usize = 3;

/// The stored head of a record, as far as ordering goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHead {
    /// The order key under the current rule (recomputed for an earlier release's key).
    pub order: String,
    /// The `changeOrder` attribute exactly as stored.
    pub raw: String,
    pub deleted: bool,
    /// A tombstone the sweep wrote (`source = sweep`): the record returns at the same version.
    pub swept: bool,
}

impl StoredHead {
    pub(crate) fn of(item: &HashMap<String, AttributeValue>) -> Option<StoredHead> {
        let raw = item.get(attr::CHANGE_ORDER)?.as_s().ok()?.clone();
        let order = if is_current_order_key(&raw) {
            raw.clone()
        } else {
            order_key(item.get(attr::CHANGE_VERSION)?.as_s().ok()?).into_owned()
        };
        let deleted = matches!(item.get(attr::DELETED), Some(AttributeValue::Bool(true)));
        let swept = deleted
            && item.get(attr::SOURCE).and_then(|s| s.as_s().ok()).map(String::as_str) == Some(Source::Sweep.as_str());
        Some(StoredHead { order, raw, deleted, swept })
    }

    /// The rule the conditions express: a newer version wins; at the same version, a Delete wins
    /// over a live record, and anything but a Delete over a sweep's tombstone (it heals).
    pub fn yields_to(&self, order: &str, deleting: bool) -> bool {
        let same = self.order == order;
        self.order.as_str() < order || (same && deleting && !self.deleted) || (same && !deleting && self.swept)
    }
}

/// Classifies a rejected write from the item DynamoDB returned (`ALL_OLD`).
pub(crate) fn rejected_outcome(old: Option<&HashMap<String, AttributeValue>>, order: &str) -> PutOutcome {
    match old.and_then(StoredHead::of) {
        Some(head) if head.order == order => PutOutcome::Duplicate,
        _ => PutOutcome::Stale,
    }
}

/// The DynamoDB adapter.
#[derive(Debug, Clone)]
pub struct DynamoRecordStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    policy: std::sync::Arc<DataPolicy>,
}

impl DynamoRecordStore {
    /// A store under the default [`DataPolicy`] (an unset environment's).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoRecordStore { client, table: table.into(), policy: Default::default() }
    }

    /// The same store keeping records under `policy` (the function's `FIELD_POLICY` and
    /// `TOMBSTONE_RETENTION_DAYS`).
    pub fn with_policy(self, policy: std::sync::Arc<DataPolicy>) -> Self {
        DynamoRecordStore { policy, ..self }
    }

    pub(crate) fn policy(&self) -> &DataPolicy {
        &self.policy
    }

    pub(crate) fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    pub(crate) fn table(&self) -> &str {
        &self.table
    }
}

pub(crate) fn received_now() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

impl DynamoRecordStore {
    /// One conditional PutItem; `Err(Ok(old item))` when the condition failed.
    async fn put_once(
        &self,
        item: HashMap<String, AttributeValue>,
        order: &str,
        deleting: bool,
        legacy: Option<&str>,
    ) -> Result<(), Result<Option<HashMap<String, AttributeValue>>, StoreError>> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .expression_attribute_names("#order", attr::CHANGE_ORDER)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let request = match legacy {
            Some(seen) => request
                .condition_expression(LEGACY_CONDITION)
                .expression_attribute_values(":seen", AttributeValue::S(seen.to_owned())),
            None => {
                let request = request
                    .expression_attribute_names("#pk", attr::PK)
                    .expression_attribute_values(":order", AttributeValue::S(order.to_owned()));
                if deleting {
                    request
                        .condition_expression(DELETE_CONDITION)
                        .expression_attribute_names("#deleted", attr::DELETED)
                        .expression_attribute_values(":true", AttributeValue::Bool(true))
                } else {
                    request
                        .condition_expression(WRITE_CONDITION)
                        .expression_attribute_names("#source", attr::SOURCE)
                        .expression_attribute_names("#deleted", attr::DELETED)
                        .expression_attribute_values(":sweep", AttributeValue::S(Source::Sweep.as_str().into()))
                        .expression_attribute_values(":true", AttributeValue::Bool(true))
                }
            }
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) => {
                let PutItemError::ConditionalCheckFailedException(failed) = e.into_err() else {
                    unreachable!("matched above")
                };
                Err(Ok(failed.item))
            }
            Err(e) if e.code() == Some("ValidationException") => Err(Err(StoreError::Rejected {
                reason: "dynamodb_validation",
                message: DisplayErrorContext(e).to_string(),
            })),
            Err(e) => Err(Err(StoreError::Unavailable(DisplayErrorContext(e).to_string()))),
        }
    }
}

impl RecordStore for DynamoRecordStore {
    fn kept<'a>(&self, collection: Collection, event: &'a Event) -> std::borrow::Cow<'a, Event> {
        self.policy.event(collection, event)
    }

    async fn put(&self, collection: Collection, event: &Event, source: Source) -> Result<PutOutcome, StoreError> {
        let order = order_key(&event.change_version);
        let deleting = event.change_type == ChangeType::Delete;
        let kept = self.policy.event(collection, event);
        let mut item = record_item(collection, &kept, source, &received_now());
        self.policy.expire(&mut item, chrono::Utc::now());
        if let Some(rejected) = StoreError::rejected_item(&item) {
            return Err(rejected);
        }
        let mut legacy: Option<String> = None;
        for _ in 0..=LEGACY_ATTEMPTS {
            let old = match self.put_once(item.clone(), &order, deleting, legacy.as_deref()).await {
                Ok(()) => return Ok(PutOutcome::Stored),
                Err(Err(unavailable)) => return Err(unavailable),
                Err(Ok(old)) => old,
            };
            // An item an earlier release wrote compares by another rule; decide in code and
            // write over exactly that key, once it is certain this version is newer. If another
            // writer replaced that key meanwhile (our second write failed on it) and its version
            // is still older than ours, the ordinary condition decides again.
            match old.as_ref().and_then(StoredHead::of) {
                Some(head) if head.yields_to(&order, deleting) => {
                    legacy = (!is_current_order_key(&head.raw)).then_some(head.raw)
                }
                _ => return Ok(rejected_outcome(old.as_ref(), &order)),
            }
        }
        Err(StoreError::Unavailable("the record kept changing while its earlier key was replaced".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(version: &str, deleted: bool) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (attr::CHANGE_ORDER.to_string(), AttributeValue::S(order_key(version).into_owned())),
            (attr::CHANGE_VERSION.to_string(), AttributeValue::S(version.into())),
            (attr::DELETED.to_string(), AttributeValue::Bool(deleted)),
        ])
    }

    #[test]
    fn rejected_write_is_duplicate_only_for_the_same_version() {
        let old = head("5", false);
        assert_eq!(rejected_outcome(Some(&old), &order_key("5")), PutOutcome::Duplicate);
        assert_eq!(rejected_outcome(Some(&old), &order_key("4")), PutOutcome::Stale);
        assert_eq!(rejected_outcome(None, &order_key("4")), PutOutcome::Stale);
    }

    #[test]
    fn a_delete_at_the_stored_version_wins_over_a_live_record_only() {
        let live = StoredHead::of(&head("5", false)).unwrap();
        assert!(live.yields_to(&order_key("5"), true));
        assert!(!live.yields_to(&order_key("5"), false), "an update at the same version is a duplicate");
        let tombstone = StoredHead::of(&head("5", true)).unwrap();
        assert!(!tombstone.yields_to(&order_key("5"), true), "a second Delete is a duplicate");
        assert!(tombstone.yields_to(&order_key("6"), false));
        assert!(!live.yields_to(&order_key("4"), true));
    }

    #[test]
    fn a_sweep_tombstone_heals_at_its_version_and_a_protime_tombstone_does_not() {
        let mut swept = head("5", true);
        swept.insert(attr::SOURCE.into(), AttributeValue::S("sweep".into()));
        let swept = StoredHead::of(&swept).unwrap();
        assert!(swept.swept && swept.yields_to(&order_key("5"), false), "Protime still has it: live again");
        assert!(!swept.yields_to(&order_key("5"), true), "a Delete at that version changes nothing");
        assert!(!swept.yields_to(&order_key("4"), false));
        let mut deleted = head("5", true);
        deleted.insert(attr::SOURCE.into(), AttributeValue::S("delta".into()));
        let deleted = StoredHead::of(&deleted).unwrap();
        assert!(!deleted.swept && !deleted.yields_to(&order_key("5"), false), "Protime's own deletion stays");
    }

    #[test]
    fn an_earlier_releases_key_is_compared_by_its_change_version() {
        // Earlier releases padded decimal versions to 40 and kept others raw.
        let mut decimal = head("5", false);
        decimal.insert(attr::CHANGE_ORDER.into(), AttributeValue::S(format!("{:0>40}", "5")));
        let stored = StoredHead::of(&decimal).unwrap();
        assert_eq!((stored.order.as_str(), stored.raw.len()), (order_key("5").as_ref(), 40));
        assert!(stored.yields_to(&order_key("6"), false));
        let mut lettered = head("0000090200004BD0000A", false);
        lettered.insert(attr::CHANGE_ORDER.into(), AttributeValue::S("0000090200004BD0000A".into()));
        let stored = StoredHead::of(&lettered).unwrap();
        assert!(stored.yields_to(&order_key("00000902000050000000"), false));
        assert!(!stored.yields_to(&order_key("00000902000049999999"), false));
    }

    /// The rule as the in-memory store applies it (the DynamoDB condition is checked against
    /// moto in the integration tests).
    mod order_of_arrival {
        use super::*;
        use crate::records::event::parse_body;
        use crate::testing::MemoryRecordStore;
        use proptest::prelude::*;

        fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
            tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
        }

        fn change(version: &str, delete: bool) -> Event {
            let body = if delete {
                format!(r#"{{"changeType":"Delete","data":{{"id":1,"changeVersion":"{version}"}}}}"#)
            } else {
                format!(r#"{{"id":1,"changeVersion":"{version}","v":"{version}"}}"#)
            };
            parse_body(body.as_bytes()).unwrap().remove(0)
        }

        fn put(store: &MemoryRecordStore, version: &str, delete: bool) -> PutOutcome {
            block_on(store.put(Collection::Clockings, &change(version, delete), Source::Webhook)).unwrap()
        }

        fn deleted(store: &MemoryRecordStore) -> Option<AttributeValue> {
            store.attribute(Collection::Clockings, "1", attr::DELETED)
        }

        #[tokio::test(start_paused = true)]
        async fn a_slow_write_does_not_hold_back_the_writes_behind_it() {
            let store = MemoryRecordStore::default();
            store.delays.lock().unwrap().insert("1".into(), 1000);
            let events: Vec<Event> = (1..=5)
                .map(|id| parse_body(format!(r#"{{"id":{id},"changeVersion":"1"}}"#).as_bytes()).unwrap().remove(0))
                .collect();
            let results = put_all(&store, Collection::Clockings, &events, Source::Webhook, 2).await;
            assert!(results.iter().all(|r| *r == Ok(PutOutcome::Stored)), "{results:?}");
            let order = store.journal.lines();
            assert_eq!(
                order.last().map(String::as_str),
                Some("store put 1"),
                "the slow write finishes last: {order:?}"
            );
            assert_eq!(order.len(), 5);
        }

        #[test]
        fn a_delete_at_the_same_version_as_the_live_record_wins() {
            let store = MemoryRecordStore::default();
            assert_eq!(put(&store, "0000090200004BD0000A", false), PutOutcome::Stored);
            assert_eq!(put(&store, "0000090200004BD0000A", true), PutOutcome::Stored);
            assert_eq!(deleted(&store), Some(AttributeValue::Bool(true)));
        }

        #[test]
        fn an_update_at_the_same_version_after_the_delete_is_a_duplicate() {
            let store = MemoryRecordStore::default();
            assert_eq!(put(&store, "0000090200004BD0000A", true), PutOutcome::Stored);
            assert_eq!(put(&store, "0000090200004BD0000A", false), PutOutcome::Duplicate);
            assert_eq!(put(&store, "0000090200004BD0000A", true), PutOutcome::Duplicate);
            assert_eq!(deleted(&store), Some(AttributeValue::Bool(true)));
        }

        /// Fixed-width (20) upper-case hex versions; about half are all digits.
        fn versions() -> impl Strategy<Value = Vec<String>> {
            proptest::collection::vec(prop_oneof!["[0-9]{20}", "[0-9A-F]{20}"], 1..12)
        }

        proptest! {
            #[test]
            fn the_stored_version_is_the_greatest_whatever_the_arrival_order(
                (versions, arrivals) in versions().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
            ) {
                let store = MemoryRecordStore::default();
                for v in &arrivals {
                    put(&store, v, false);
                }
                let greatest = versions.iter().max().cloned();
                prop_assert_eq!(store.change_version(Collection::Clockings, "1"), greatest.clone());
                let field = store.attribute(Collection::Clockings, "1", "v");
                prop_assert_eq!(field, greatest.map(AttributeValue::S));
            }
        }
    }

    /// The request-shape tests: what the adapter sends, checked without any service.
    mod request_shape {
        use super::*;
        use crate::records::event::parse_body;
        use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
        use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
        use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule};

        fn client(rule: &Rule) -> aws_sdk_dynamodb::Client {
            let config = aws_sdk_dynamodb::Config::builder()
                .behavior_version_latest()
                .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("id", "secret", None, None, "test"))
                .http_client(aws_smithy_mocks::create_mock_http_client())
                .interceptor(MockResponseInterceptor::new().with_rule(rule))
                .build();
            aws_sdk_dynamodb::Client::from_conf(config)
        }

        fn event() -> Event {
            parse_body(br#"{"id":7,"changeVersion":"0000090200004BD0000A","date":"2026-01-02"}"#).unwrap().remove(0)
        }

        /// The one conditional PutItem every record write is.
        fn is_the_conditional_put(request: &aws_sdk_dynamodb::operation::put_item::PutItemInput) -> bool {
            let order = order_key("0000090200004BD0000A");
            let names = request.expression_attribute_names().cloned().unwrap_or_default();
            let values = request.expression_attribute_values().cloned().unwrap_or_default();
            let item = request.item().cloned().unwrap_or_default();
            request.table_name() == Some("records")
                && request.condition_expression() == Some(WRITE_CONDITION)
                && names
                    == HashMap::from([
                        ("#pk".into(), "pk".into()),
                        ("#order".into(), "changeOrder".into()),
                        ("#source".into(), "source".into()),
                        ("#deleted".into(), "deleted".into()),
                    ])
                && values
                    == HashMap::from([
                        (":order".into(), AttributeValue::S(order.to_string())),
                        (":sweep".into(), AttributeValue::S("sweep".into())),
                        (":true".into(), AttributeValue::Bool(true)),
                    ])
                && request.return_values_on_condition_check_failure()
                    == Some(&ReturnValuesOnConditionCheckFailure::AllOld)
                && item.get(attr::PK) == Some(&AttributeValue::S("clockings#7".into()))
                && item.get(attr::CHANGE_ORDER) == Some(&AttributeValue::S(order.to_string()))
                && item.get(attr::CHANGE_VERSION) == Some(&AttributeValue::S("0000090200004BD0000A".into()))
        }

        #[tokio::test]
        async fn a_record_write_is_one_put_conditional_on_a_newer_order_key_returning_the_old_item() {
            let rule = mock!(aws_sdk_dynamodb::Client::put_item)
                .match_requests(is_the_conditional_put)
                .then_output(|| PutItemOutput::builder().build());
            let store = DynamoRecordStore::new(client(&rule), "records");
            let outcome = store.put(Collection::Clockings, &event(), Source::Webhook).await;
            assert_eq!(outcome, Ok(PutOutcome::Stored));
            assert_eq!(rule.num_calls(), 1);
        }

        fn failed_with(item: HashMap<String, AttributeValue>) -> PutItemError {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().set_item(Some(item)).build(),
            )
        }

        #[tokio::test]
        async fn a_newer_version_racing_another_writer_over_an_earlier_releases_key_is_still_stored() {
            // Stored by an earlier release: version 5 under its raw key. Another writer replaces
            // it with version 6 between our two writes; ours (version 7) must still win.
            let mut legacy = super::head("0000090200004BD00005", false);
            legacy.insert(attr::CHANGE_ORDER.into(), AttributeValue::S("0000090200004BD00005".into()));
            let (legacy_a, replaced) = (legacy.clone(), super::head("0000090200004BD00006", false));
            let rule = mock!(aws_sdk_dynamodb::Client::put_item)
                .sequence()
                .error(move || failed_with(legacy_a.clone()))
                .error(move || failed_with(replaced.clone()))
                .output(|| PutItemOutput::builder().build())
                .build();
            let store = DynamoRecordStore::new(client(&rule), "records");
            let event = parse_body(br#"{"id":7,"changeVersion":"0000090200004BD00007"}"#).unwrap().remove(0);
            assert_eq!(store.put(Collection::Clockings, &event, Source::Webhook).await, Ok(PutOutcome::Stored));
            assert_eq!(rule.num_calls(), 3, "ordinary write, write over the earlier key, ordinary write again");
        }

        #[tokio::test]
        async fn a_validation_exception_is_a_rejected_record_and_any_other_error_is_unavailable() {
            // moto never answers ValidationException for an item the checks before the write
            // let through; DynamoDB does (e.g. a limit it applies that the checks do not know).
            // Rejected is what the receiver and the syncer quarantine; Unavailable is a 503.
            use aws_smithy_types::error::ErrorMetadata;
            let refused = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
                PutItemError::generic(
                    ErrorMetadata::builder().code("ValidationException").message("Item size has exceeded").build(),
                )
            });
            let store = DynamoRecordStore::new(client(&refused), "records");
            match store.put(Collection::Clockings, &event(), Source::Webhook).await {
                Err(StoreError::Rejected { reason, message }) => {
                    assert_eq!(reason, "dynamodb_validation");
                    assert!(message.contains("Item size has exceeded"), "{message}");
                }
                other => panic!("expected Rejected, got {other:?}"),
            }
            assert_eq!(refused.num_calls(), 1, "a refused record is not retried");

            let denied = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
                PutItemError::generic(
                    ErrorMetadata::builder().code("AccessDeniedException").message("not authorized").build(),
                )
            });
            let store = DynamoRecordStore::new(client(&denied), "records");
            let outcome = store.put(Collection::Clockings, &event(), Source::Webhook).await;
            assert!(matches!(outcome, Err(StoreError::Unavailable(_))), "{outcome:?}");
        }

        #[tokio::test]
        async fn a_failed_condition_is_told_apart_by_the_old_item_it_returns() {
            for (stored, expected) in
                [("0000090200004BD0000A", PutOutcome::Duplicate), ("0000090200004BD0000B", PutOutcome::Stale)]
            {
                let old = HashMap::from([(
                    attr::CHANGE_ORDER.to_string(),
                    AttributeValue::S(order_key(stored).into_owned()),
                )]);
                let rule = mock!(aws_sdk_dynamodb::Client::put_item).match_requests(is_the_conditional_put).then_error(
                    move || {
                        PutItemError::ConditionalCheckFailedException(
                            ConditionalCheckFailedException::builder().set_item(Some(old.clone())).build(),
                        )
                    },
                );
                let store = DynamoRecordStore::new(client(&rule), "records");
                let outcome = store.put(Collection::Clockings, &event(), Source::Webhook).await;
                assert_eq!(outcome, Ok(expected), "stored {stored}");
            }
        }
    }
}
