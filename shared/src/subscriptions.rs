//! Subscription state in the record table, one item per collection under
//! `subscription#<collection>`. The renewer is its only writer.

use crate::collection::Collection;
use crate::renewal::SubscriptionState;
use crate::store::attr;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;
use std::future::Future;

pub fn subscription_key(collection: Collection) -> String {
    format!("subscription#{}", collection.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subscription state is unavailable: {0}")]
pub struct StateError(pub String);

pub trait SubscriptionStore: Send + Sync {
    fn load(
        &self,
        collections: &[Collection],
    ) -> impl Future<Output = Result<HashMap<Collection, SubscriptionState>, StateError>> + Send;
    fn save(
        &self,
        collection: Collection,
        state: &SubscriptionState,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
}

#[derive(Debug, Clone)]
pub struct DynamoSubscriptionStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoSubscriptionStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoSubscriptionStore { client, table: table.into() }
    }
}

const WEBHOOK_ID: &str = "webhookId";
const STATUS: &str = "status";
const VALID_UNTIL: &str = "validUntil";
const DESTINATION_URL: &str = "destinationUrl";
const EXTERNAL_REFERENCES: &str = "externalReferences";
const RENEWING_SINCE: &str = "renewingSince";
const LAST_RENEWED_AT: &str = "lastRenewedAt";
const LAST_RESYNC_AT: &str = "lastResyncAt";
const LAST_SEEN_ENABLED_AT: &str = "lastSeenEnabledAt";
const LAST_ERROR: &str = "lastError";
const UPDATED_AT: &str = "updatedAt";

fn time(t: DateTime<Utc>) -> AttributeValue {
    AttributeValue::S(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

pub fn state_item(collection: Collection, state: &SubscriptionState) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        (attr::PK.to_owned(), AttributeValue::S(subscription_key(collection))),
        (attr::COLLECTION.to_owned(), AttributeValue::S(collection.as_str().into())),
        (UPDATED_AT.to_owned(), time(Utc::now())),
    ]);
    let mut text = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            item.insert(name.to_owned(), AttributeValue::S(v.clone()));
        }
    };
    text(WEBHOOK_ID, &state.webhook_id);
    text(STATUS, &state.status);
    text(DESTINATION_URL, &state.destination_url);
    text(EXTERNAL_REFERENCES, &state.external_references);
    text(LAST_ERROR, &state.last_error);
    for (name, value) in [
        (VALID_UNTIL, state.valid_until),
        (RENEWING_SINCE, state.renewing_since),
        (LAST_RENEWED_AT, state.last_renewed_at),
        (LAST_RESYNC_AT, state.last_resync_at),
        (LAST_SEEN_ENABLED_AT, state.last_seen_enabled_at),
    ] {
        if let Some(t) = value {
            item.insert(name.to_owned(), time(t));
        }
    }
    item
}

pub fn state_from_item(item: &HashMap<String, AttributeValue>) -> SubscriptionState {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let time =
        |name: &str| text(name).and_then(|s| DateTime::parse_from_rfc3339(&s).ok()).map(|t| t.with_timezone(&Utc));
    SubscriptionState {
        webhook_id: text(WEBHOOK_ID),
        status: text(STATUS),
        valid_until: time(VALID_UNTIL),
        destination_url: text(DESTINATION_URL),
        external_references: text(EXTERNAL_REFERENCES),
        renewing_since: time(RENEWING_SINCE),
        last_renewed_at: time(LAST_RENEWED_AT),
        last_resync_at: time(LAST_RESYNC_AT),
        last_seen_enabled_at: time(LAST_SEEN_ENABLED_AT),
        last_error: text(LAST_ERROR),
    }
}

impl SubscriptionStore for DynamoSubscriptionStore {
    async fn load(&self, collections: &[Collection]) -> Result<HashMap<Collection, SubscriptionState>, StateError> {
        let mut states = HashMap::new();
        // 18 collections fit one BatchGetItem (100 keys); unprocessed keys are asked again.
        let keys: Vec<_> = collections
            .iter()
            .map(|&c| HashMap::from([(attr::PK.to_owned(), AttributeValue::S(subscription_key(c)))]))
            .collect();
        if keys.is_empty() {
            return Ok(states);
        }
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| StateError(e.to_string()))?;
        for _ in 0..5 {
            let answer = self
                .client
                .batch_get_item()
                .request_items(&self.table, request.clone())
                .send()
                .await
                .map_err(|e| StateError(DisplayErrorContext(e).to_string()))?;
            for item in answer.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                let collection = item.get(attr::COLLECTION).and_then(|v| v.as_s().ok()).and_then(|s| s.parse().ok());
                if let Some(collection) = collection {
                    states.insert(collection, state_from_item(&item));
                }
            }
            match answer.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => request = rest,
                _ => return Ok(states),
            }
        }
        Err(StateError("DynamoDB kept returning unprocessed keys".into()))
    }

    async fn save(&self, collection: Collection, state: &SubscriptionState) -> Result<(), StateError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(state_item(collection, state)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StateError(DisplayErrorContext(e).to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn state_round_trips_through_an_item() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let state = SubscriptionState {
            webhook_id: Some("w1".into()),
            status: Some("Enabled".into()),
            valid_until: Some(t),
            destination_url: Some("https://x/webhooks/breaks".into()),
            external_references: Some(String::new()),
            renewing_since: None,
            last_renewed_at: Some(t),
            last_resync_at: None,
            last_seen_enabled_at: Some(t),
            last_error: Some("boom".into()),
        };
        let item = state_item(Collection::Breaks, &state);
        assert_eq!(item[attr::PK], AttributeValue::S("subscription#breaks".into()));
        assert!(!item.contains_key(RENEWING_SINCE));
        assert_eq!(state_from_item(&item), state);
    }
}
