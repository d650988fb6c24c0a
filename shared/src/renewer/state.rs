//! Subscription state in the record table, one item per collection under
//! `subscription#<collection>`. The renewer is its only writer, one run at a time (the receiver
//! only sets `lastEventAt` on an existing item): each run takes the lease on `renewer#lease`
//! first (a conditional UpdateItem, as the sync's leases).
//!
//! Items go through serde ([`serde_dynamo`]): the attributes are [`SubscriptionState`]'s fields
//! in camelCase beside `pk`, `collection` and `updatedAt`. An item that cannot be read is never
//! taken for "no renewal in flight": it loads as [`SubscriptionState::unreadable`], which the
//! plan renews, so a fresh key is stored.

use crate::collection::Collection;
use crate::records::heads::{batch_get, BatchGetError};
use crate::records::item::attr;
pub use crate::records::item::{subscription_key, RENEWER_LEASE_KEY};
use crate::renewer::plan::SubscriptionState;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;

/// BatchGetItem rounds for keys DynamoDB leaves unprocessed, with a growing pause between them.
const UNPROCESSED_KEY_ROUNDS: u32 = 5;

/// The run lease's attributes on [`RENEWER_LEASE_KEY`] (`leaseUntil` in epoch milliseconds, a
/// number, so the condition compares numerically), as on the sync state items.
const LEASE_OWNER: &str = "leaseOwner";
const LEASE_UNTIL: &str = "leaseUntil";

fn is_condition_failure(e: &aws_sdk_dynamodb::error::SdkError<UpdateItemError>) -> bool {
    matches!(e.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_)))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("reading the subscription state: {0}")]
    Load(String),
    #[error("DynamoDB left subscription state keys unprocessed after {UNPROCESSED_KEY_ROUNDS} rounds")]
    UnprocessedKeys,
    #[error("writing the subscription state: {0}")]
    Save(String),
    #[error("encoding the subscription state: {0}")]
    Encode(String),
}

pub trait SubscriptionStore: Send + Sync {
    /// Takes the renewer's run lease for `owner` until `until` if it is free, expired at `now` or
    /// already `owner`'s; `false` when another run holds it. Two runs at once could each renew a
    /// subscription and store their keys in the wrong order (the one Protime signs with lost).
    fn take_run_lease(
        &self,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;
    /// Frees the run lease if `owner` still holds it.
    fn release_run_lease(&self, owner: &str) -> impl Future<Output = Result<(), StateError>> + Send;
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

impl SubscriptionState {
    /// What an item that cannot be read stands for: a renewal that may be in flight, so the key
    /// we hold is unconfirmed and the next plan renews.
    pub fn unreadable() -> Self {
        SubscriptionState { renewing_since: Some(DateTime::UNIX_EPOCH), ..Default::default() }
    }
}

/// The item as stored.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateItem {
    pk: String,
    collection: String,
    updated_at: DateTime<Utc>,
    #[serde(flatten)]
    state: SubscriptionState,
}

pub fn state_item(
    collection: Collection,
    state: &SubscriptionState,
) -> Result<HashMap<String, AttributeValue>, StateError> {
    let item = StateItem {
        pk: subscription_key(collection),
        collection: collection.as_str().to_owned(),
        updated_at: Utc::now(),
        state: state.clone(),
    };
    serde_dynamo::to_item(item).map_err(|e| StateError::Encode(e.to_string()))
}

/// The state an item holds, or [`SubscriptionState::unreadable`] if it cannot be read.
pub fn state_from_item(item: HashMap<String, AttributeValue>) -> SubscriptionState {
    match serde_dynamo::from_item::<_, StateItem>(item) {
        Ok(stored) => stored.state,
        Err(e) => {
            tracing::error!(error = %e, "unreadable subscription state; treating it as a renewal in flight");
            SubscriptionState::unreadable()
        }
    }
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

impl SubscriptionStore for DynamoSubscriptionStore {
    async fn take_run_lease(&self, owner: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool, StateError> {
        let taken = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::PK, AttributeValue::S(RENEWER_LEASE_KEY.to_owned()))
            .update_expression("SET #owner = :owner, #until = :until, #updated = :updated")
            .condition_expression("attribute_not_exists(#until) OR #until < :now OR #owner = :owner")
            .expression_attribute_names("#owner", LEASE_OWNER)
            .expression_attribute_names("#until", LEASE_UNTIL)
            .expression_attribute_names("#updated", "updatedAt")
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .expression_attribute_values(":until", AttributeValue::N(until.timestamp_millis().to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp_millis().to_string()))
            .expression_attribute_values(
                ":updated",
                AttributeValue::S(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            )
            .send()
            .await;
        match taken {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(StateError::Save(format!("taking the renewer's run lease: {}", DisplayErrorContext(e)))),
        }
    }

    async fn release_run_lease(&self, owner: &str) -> Result<(), StateError> {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::PK, AttributeValue::S(RENEWER_LEASE_KEY.to_owned()))
            .update_expression("REMOVE #owner, #until")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", LEASE_OWNER)
            .expression_attribute_names("#until", LEASE_UNTIL)
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .send()
            .await;
        match released {
            // Taken over after it expired: the other run's now, nothing to free.
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(StateError::Save(format!("releasing the renewer's run lease: {}", DisplayErrorContext(e)))),
        }
    }

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
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| StateError::Load(e.to_string()))?;
        let items =
            batch_get(&self.client, &self.table, request, UNPROCESSED_KEY_ROUNDS).await.map_err(|(_, e)| match e {
                BatchGetError::Failed(message) => StateError::Load(message),
                BatchGetError::Unprocessed(_) => StateError::UnprocessedKeys,
            })?;
        for item in items {
            let collection = item.get(attr::COLLECTION).and_then(|v| v.as_s().ok()).and_then(|s| s.parse().ok());
            if let Some(collection) = collection {
                states.insert(collection, state_from_item(item));
            }
        }
        Ok(states)
    }

    async fn save(&self, collection: Collection, state: &SubscriptionState) -> Result<(), StateError> {
        let update = state_update(collection, state)?;
        self.client
            .update_item()
            .table_name(&self.table)
            .key(attr::PK, AttributeValue::S(subscription_key(collection)))
            .update_expression(update.expression)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StateError::Save(DisplayErrorContext(e).to_string()))
    }
}

/// The attributes the renewer writes besides `pk`, `collection` and `updatedAt`: every field of
/// [`SubscriptionState`] but `lastEventAt`, which the receiver notes and the renewer never
/// writes (a test keeps this list complete).
pub const RENEWER_ATTRIBUTES: &[&str] = &[
    "webhookId",
    "status",
    "validUntil",
    "destinationUrl",
    "externalReferences",
    "renewingSince",
    "lastRenewedAt",
    "lastResyncAt",
    "lastSeenEnabledAt",
    "lastError",
];

/// The receiver's attribute on the same item.
const RECEIVER_ATTRIBUTE: &str = "lastEventAt";

/// An `UpdateItem` of the renewer's attributes: each set, or removed when the state has none,
/// and nothing else touched, so the receiver's `lastEventAt` note survives a save.
pub struct StateUpdate {
    pub expression: String,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

pub fn state_update(collection: Collection, state: &SubscriptionState) -> Result<StateUpdate, StateError> {
    let mut item = state_item(collection, state)?;
    item.remove(attr::PK);
    item.remove(RECEIVER_ATTRIBUTE);
    let mut item: Vec<(String, AttributeValue)> = item.into_iter().collect();
    item.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut names, mut values) = (HashMap::new(), HashMap::new());
    let mut sets = Vec::new();
    for (i, (name, value)) in item.iter().enumerate() {
        names.insert(format!("#s{i}"), name.clone());
        values.insert(format!(":s{i}"), value.clone());
        sets.push(format!("#s{i} = :s{i}"));
    }
    let mut removes = Vec::new();
    for (i, name) in RENEWER_ATTRIBUTES.iter().filter(|n| !item.iter().any(|(k, _)| k == *n)).enumerate() {
        names.insert(format!("#r{i}"), (*name).to_owned());
        removes.push(format!("#r{i}"));
    }
    let mut expression = format!("SET {}", sets.join(", "));
    if !removes.is_empty() {
        expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    Ok(StateUpdate { expression, names, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protime::WebhookStatus;
    use chrono::TimeZone;

    #[test]
    fn state_round_trips_through_an_item() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let state = SubscriptionState {
            webhook_id: Some("w1".into()),
            status: Some(WebhookStatus::Enabled),
            valid_until: Some(t),
            destination_url: Some("https://x/webhooks/breaks".into()),
            external_references: Some(String::new()),
            renewing_since: None,
            last_renewed_at: Some(t),
            last_resync_at: None,
            last_seen_enabled_at: Some(t),
            last_error: Some("boom".into()),
            last_event_at: Some(t),
        };
        let item = state_item(Collection::Breaks, &state).unwrap();
        assert_eq!(item[attr::PK], AttributeValue::S("subscription#breaks".into()));
        assert_eq!(item[attr::COLLECTION], AttributeValue::S("breaks".into()));
        assert_eq!(item["status"], AttributeValue::S("Enabled".into()));
        assert_eq!(item["validUntil"], AttributeValue::S("2026-01-02T03:04:05Z".into()));
        assert!(!item.contains_key("renewingSince"));
        assert_eq!(state_from_item(item), state);
    }

    #[test]
    fn a_save_sets_or_removes_every_renewer_attribute_and_never_the_receivers() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let full = SubscriptionState {
            webhook_id: Some("w".into()),
            status: Some(WebhookStatus::Enabled),
            valid_until: Some(t),
            destination_url: Some("u".into()),
            external_references: Some(String::new()),
            renewing_since: Some(t),
            last_renewed_at: Some(t),
            last_resync_at: Some(t),
            last_seen_enabled_at: Some(t),
            last_error: Some("e".into()),
            last_event_at: Some(t),
        };
        // Every field the state has is a renewer attribute, but the receiver's note.
        let mut fields: Vec<String> = state_item(Collection::Breaks, &full).unwrap().into_keys().collect();
        fields.retain(|f| ![attr::PK, attr::COLLECTION, "updatedAt", RECEIVER_ATTRIBUTE].contains(&f.as_str()));
        fields.sort();
        let mut listed: Vec<String> = RENEWER_ATTRIBUTES.iter().map(|a| a.to_string()).collect();
        listed.sort();
        assert_eq!(fields, listed);
        let update = state_update(Collection::Breaks, &full).unwrap();
        assert!(!update.names.values().any(|n| n == RECEIVER_ATTRIBUTE), "{}", update.expression);
        assert!(!update.expression.contains("REMOVE"));
        let sparse = SubscriptionState { webhook_id: Some("w".into()), ..Default::default() };
        let update = state_update(Collection::Breaks, &sparse).unwrap();
        let removed: Vec<&String> =
            update.expression.split(" REMOVE ").nth(1).unwrap().split(", ").map(|n| &update.names[n]).collect();
        assert_eq!(removed.len(), RENEWER_ATTRIBUTES.len() - 1);
        assert!(!removed.iter().any(|n| *n == "webhookId" || *n == RECEIVER_ATTRIBUTE));
    }

    #[test]
    fn items_written_before_serde_still_read() {
        let item = HashMap::from([
            (attr::PK.to_owned(), AttributeValue::S("subscription#breaks".into())),
            (attr::COLLECTION.to_owned(), AttributeValue::S("breaks".into())),
            ("updatedAt".to_owned(), AttributeValue::S("2026-01-02T03:04:05.000Z".into())),
            ("webhookId".to_owned(), AttributeValue::S("w1".into())),
            ("status".to_owned(), AttributeValue::S("Disabled".into())),
            ("validUntil".to_owned(), AttributeValue::S("2026-01-02T03:04:05.123Z".into())),
        ]);
        let state = state_from_item(item);
        assert_eq!(state.webhook_id.as_deref(), Some("w1"));
        assert_eq!(state.status, Some(WebhookStatus::Disabled));
        assert_eq!(state.valid_until, Some(Utc.timestamp_millis_opt(1_767_323_045_123).unwrap()));
        assert_eq!(state.renewing_since, None);
    }

    #[test]
    fn an_unreadable_renewing_since_is_never_read_as_no_renewal_in_flight() {
        let item = HashMap::from([
            (attr::PK.to_owned(), AttributeValue::S("subscription#breaks".into())),
            (attr::COLLECTION.to_owned(), AttributeValue::S("breaks".into())),
            ("updatedAt".to_owned(), AttributeValue::S("2026-01-02T03:04:05Z".into())),
            ("webhookId".to_owned(), AttributeValue::S("w1".into())),
            ("renewingSince".to_owned(), AttributeValue::S("yesterday-ish".into())),
        ]);
        let state = state_from_item(item);
        assert!(state.renewing_since.is_some(), "{state:?}");
        assert_eq!(state, SubscriptionState::unreadable());
    }
}
