//! The record table: one item per Protime record, replaced only by a newer `changeVersion`.
//!
//! Every write is a single conditional PutItem, `attribute_not_exists(pk) OR changeOrder <
//! :order`, so duplicates, out-of-order delivery and concurrent writers (webhooks and re-sync)
//! all converge on the highest version without reads or locks.

use super::event::Event;
use super::item::{attr, record_item, Source};
use super::order::order_key;
use crate::collection::Collection;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use futures_util::stream::{FuturesOrdered, StreamExt};
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
}

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

/// Classifies a rejected write from the item DynamoDB returned (`ALL_OLD`).
pub(crate) fn rejected_outcome(old: Option<&HashMap<String, AttributeValue>>, order: &str) -> PutOutcome {
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
            Err(e) => Err(StoreError::Unavailable(DisplayErrorContext(e).to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_write_is_duplicate_only_for_the_same_version() {
        let old = HashMap::from([(attr::CHANGE_ORDER.to_string(), AttributeValue::S(order_key("5").into_owned()))]);
        assert_eq!(rejected_outcome(Some(&old), &order_key("5")), PutOutcome::Duplicate);
        assert_eq!(rejected_outcome(Some(&old), &order_key("4")), PutOutcome::Stale);
        assert_eq!(rejected_outcome(None, &order_key("4")), PutOutcome::Stale);
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
                && request.condition_expression() == Some("attribute_not_exists(#pk) OR #order < :order")
                && names == HashMap::from([("#pk".into(), "pk".into()), ("#order".into(), "changeOrder".into())])
                && values == HashMap::from([(":order".into(), AttributeValue::S(order.to_string()))])
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
