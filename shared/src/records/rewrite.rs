//! What is already stored, brought under a new field policy (`protime-webhooks
//! apply-field-policy`): each record item whose fields the policy would change (or a tombstone
//! written before tombstones expired, which gets its `expiresAt`) is written again
//! at the same `changeVersion`, its fields dropped or hashed, its `source` kept (a sweep's
//! tombstone must stay one, to heal), `policyAppliedAt` and a new `receivedAt` set (so the change
//! event it gives, `source: policy`, sorts after the last one: consumers drop or hash what they
//! kept), on condition that the item is still the one read. A second run finds nothing to change. The pass over the table is
//! [`super::migrate`]'s, resumable by its own positions ([`POSITION_PREFIX`]).

use super::index::{attr as index_attr, index_keys};
use super::item::{attr, attribute_value, json_value};
use super::json::Json;
use super::migrate::{
    item_id, record_of, unavailable, unchanged_since_read, ItemMigration, ItemOutcome, MigrationError,
};
use super::policy::DataPolicy;
use crate::collection::Collection;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// The partition key prefix of this pass's positions.
pub const POSITION_PREFIX: &str = "migration#field-policy#";

type Item = HashMap<String, AttributeValue>;

/// The pass that applies `policy` to every stored record.
pub struct ApplyPolicy<'a>(pub &'a DataPolicy);

impl ItemMigration for ApplyPolicy<'_> {
    fn positions(&self) -> &'static str {
        POSITION_PREFIX
    }

    /// The policy and retention it applies.
    fn fingerprint(&self) -> String {
        format!("{};{}", self.0.fields.to_setting(), self.0.tombstone_days)
    }

    async fn migrate(
        &self,
        client: &aws_sdk_dynamodb::Client,
        table: &str,
        item: &Item,
    ) -> Result<ItemOutcome, MigrationError> {
        let Some((collection, _)) = record_of(item) else { return Ok(ItemOutcome::NotARecord) };
        let Some(kept) = kept_item(self.0, collection, item) else { return Ok(ItemOutcome::Current) };
        let (condition, names, values) = unchanged_since_read(item);
        let written = client
            .put_item()
            .table_name(table)
            .set_item(Some(kept))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match written {
            Ok(_) => Ok(ItemOutcome::Updated),
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException") => {
                Ok(ItemOutcome::ChangedMeanwhile)
            }
            Err(e) => Err(unavailable("applying the field policy")(e)),
        }
    }
}

/// Applies `policy` to every record of `table` (see the module's docs); `progress` is called
/// with the counts so far after every page.
pub async fn apply_field_policy(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    policy: &DataPolicy,
    parallelism: super::migrate::Parallelism,
    progress: impl Fn(super::migrate::MigrationReport) + Sync,
) -> Result<super::migrate::MigrationReport, MigrationError> {
    super::migrate::run(client, table, &ApplyPolicy(policy), parallelism, progress).await
}

/// The item as `policy` keeps it, marked as a rewrite, or `None` when the policy changes none of
/// its fields (and it is no tombstone without `expiresAt`).
pub fn kept_item(policy: &DataPolicy, collection: Collection, item: &Item) -> Option<Item> {
    let tombstone = item.get(attr::DELETED) == Some(&AttributeValue::Bool(true));
    let unexpiring = tombstone && policy.tombstone_days > 0 && !item.contains_key(attr::EXPIRES_AT);
    let mut kept = match policed(policy, collection, item) {
        Some(kept) => kept,
        None if unexpiring => item.clone(),
        None => return None,
    };
    let now = super::store::received_now();
    kept.insert(attr::POLICY_APPLIED_AT.into(), AttributeValue::S(now.clone()));
    kept.insert(attr::RECEIVED_AT.into(), AttributeValue::S(now));
    if unexpiring {
        policy.expire(&mut kept, chrono::Utc::now());
    }
    Some(kept)
}

/// The item with `policy` applied to its fields, its index keys following them (a policy may
/// drop `person`), everything else as it was; `None` when the policy changes no field.
pub fn policed(policy: &DataPolicy, collection: Collection, item: &Item) -> Option<Item> {
    let is_data = |name: &str| !attr::RESERVED.contains(&name) && !matches!(name, attr::ID | attr::CHANGE_VERSION);
    let mut fields: Vec<(String, Json)> =
        item.iter().filter(|(name, _)| is_data(name)).map(|(name, value)| (name.clone(), json_value(value))).collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let before = fields.clone();
    policy.fields.apply(collection, &mut fields, policy.hash_key.as_ref());
    if fields == before {
        return None;
    }
    let tombstone = item.get(attr::DELETED) == Some(&AttributeValue::Bool(true));
    let mut kept: Item = item.iter().filter(|(name, _)| !is_data(name)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let keys = index_keys(collection, &item_id(item)?, &fields);
    let keys = if tombstone { keys.into_tombstone() } else { keys };
    kept.insert(index_attr::DATE_PARTITION.into(), AttributeValue::S(keys.date_partition));
    kept.insert(index_attr::DATE_SORT.into(), AttributeValue::S(keys.date_sort));
    match keys.person_partition {
        Some(person) => kept.insert(index_attr::PERSON_PARTITION.into(), AttributeValue::S(person)),
        None => kept.remove(index_attr::PERSON_PARTITION),
    };
    kept.extend(fields.iter().map(|(name, value)| (name.clone(), attribute_value(value))));
    Some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::event::parse_body;
    use crate::records::item::{record_item, Source};

    fn stored(body: &str) -> Item {
        record_item(
            Collection::People,
            &parse_body(body.as_bytes()).unwrap()[0],
            Source::Webhook,
            "2026-12-01T10:00:00Z",
        )
    }

    #[test]
    fn an_item_the_policy_changes_is_kept_at_its_version_and_one_it_does_not_is_left_alone() {
        let policy = DataPolicy { fields: "people.pinCode=drop".parse().unwrap(), hash_key: None, tombstone_days: 35 };
        let item = stored(r#"{"id":7,"changeVersion":"0000090200004BD00001","name":"Ann","pinCode":"1234"}"#);
        let kept = kept_item(&policy, Collection::People, &item).expect("a change");
        assert!(!kept.contains_key("pinCode"));
        assert_eq!(
            (kept["name"].clone(), kept["changeVersion"].clone()),
            (item["name"].clone(), item["changeVersion"].clone())
        );
        assert_eq!(kept["changeOrder"], item["changeOrder"]);
        assert_eq!(kept["source"], item["source"], "the version's own source");
        assert!(kept.contains_key(attr::POLICY_APPLIED_AT));
        assert_ne!(kept["receivedAt"], item["receivedAt"]);
        assert_eq!(kept[index_attr::DATE_PARTITION], item[index_attr::DATE_PARTITION]);
        assert_eq!(kept_item(&policy, Collection::People, &kept), None, "a second pass changes nothing");
        assert_eq!(record_of(&kept).map(|(c, _)| c), Some(Collection::People));
        // A tombstone from before tombstones expired gets its expiresAt, once.
        let gone = stored(r#"{"changeType":"Delete","data":{"id":8,"changeVersion":"0000090200004BD00002"}}"#);
        let expiring = kept_item(&policy, Collection::People, &gone).expect("an expiry");
        assert!(expiring.contains_key(attr::EXPIRES_AT));
        assert_eq!(kept_item(&policy, Collection::People, &expiring), None);
        let state = HashMap::from([(attr::PK.to_owned(), AttributeValue::S("sync#people".into()))]);
        assert_eq!(record_of(&state), None);
    }
}
