//! The item layout of a record: attribute names, the partition key, and the event's data
//! fields as native DynamoDB attributes.

use super::event::{ChangeType, Event, RecordId};
use super::index::{self, index_keys};
use super::json::Json;
use super::order::order_key;
use crate::collection::Collection;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

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
    /// `webhook`, `resync` or `delta`.
    pub const SOURCE: &str = "source";
    /// `true` on a tombstone: left by a Delete, or a record Protime soft-deleted
    /// (`"status": "Deleted"`, its fields kept).
    pub const DELETED: &str = "deleted";
    /// Data fields whose names clash with the attributes above are kept here, under their own names.
    pub const SHADOWED_FIELDS: &str = "shadowedFields";
    /// On a tombstone: when the table's TTL removes it (epoch seconds; `TOMBSTONE_RETENTION_DAYS`).
    pub const EXPIRES_AT: &str = "expiresAt";
    /// When `apply-field-policy` rewrote this version under a new field policy (its `source`
    /// stays the version's own); any later write replaces the whole item and drops it.
    pub const POLICY_APPLIED_AT: &str = "policyAppliedAt";

    pub const RESERVED: &[&str] = &[
        PK,
        COLLECTION,
        CHANGE_ORDER,
        RECEIVED_AT,
        SOURCE,
        DELETED,
        SHADOWED_FIELDS,
        EXPIRES_AT,
        POLICY_APPLIED_AT,
        super::index::attr::DATE_PARTITION,
        super::index::attr::DATE_SORT,
        super::index::attr::PERSON_PARTITION,
    ];
}

/// The partition key of a collection's subscription state item (the renewer writes it; the
/// receiver notes the time of the last event on it).
pub fn subscription_key(collection: Collection) -> String {
    format!("subscription#{}", collection.as_str())
}

/// The partition key of the renewer's run lease: the item that lets one renewer run at a time
/// without relying on the function's reserved concurrency.
pub const RENEWER_LEASE_KEY: &str = "renewer#lease";

/// The partition key of a record.
pub fn record_key(collection: Collection, id: &RecordId) -> String {
    format!("{}#{}", collection.as_str(), id.as_str())
}

/// Where a change came from, kept on the item for auditing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Webhook,
    /// A list page (a reconciliation, the history before a rolling window, or a collection
    /// synced through its list endpoint).
    Resync,
    /// A delta page (initial load or changes since a deltaLink).
    Delta,
    /// A tombstone the sweep after a full pass wrote: Protime no longer has the record.
    Sweep,
    /// In a change event only: the same version rewritten under a new field policy
    /// (`apply-field-policy`; the item keeps its own source and gets `policyAppliedAt`).
    Policy,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Resync => "resync",
            Source::Delta => "delta",
            Source::Sweep => "sweep",
            Source::Policy => "policy",
        }
    }
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
    let deleted = is_deletion(event);
    item.insert(attr::DELETED.into(), AttributeValue::Bool(deleted));
    // The read indexes, under the record's own fields; a tombstone leaves the live partitions
    // for the tombstone ones (decision 0010).
    let keys = index_keys(collection, &event.id, &event.data);
    let keys = if deleted { keys.into_tombstone() } else { keys };
    item.insert(index::attr::DATE_PARTITION.into(), AttributeValue::S(keys.date_partition));
    item.insert(index::attr::DATE_SORT.into(), AttributeValue::S(keys.date_sort));
    if let Some(person) = keys.person_partition {
        item.insert(index::attr::PERSON_PARTITION.into(), AttributeValue::S(person));
    }
    item
}

/// The tombstone of a stored live record Protime no longer has: the same item (its fields, id and
/// `changeVersion` kept) with `deleted`, `source = sweep`, `receivedAt` now, and its index keys
/// moved to the tombstone partitions.
pub fn sweep_tombstone(item: &HashMap<String, AttributeValue>, received_at: &str) -> HashMap<String, AttributeValue> {
    let mut tombstone = item.clone();
    tombstone.insert(attr::DELETED.into(), AttributeValue::Bool(true));
    tombstone.insert(attr::SOURCE.into(), AttributeValue::S(Source::Sweep.as_str().into()));
    tombstone.insert(attr::RECEIVED_AT.into(), AttributeValue::S(received_at.into()));
    for name in [index::attr::DATE_PARTITION, index::attr::PERSON_PARTITION] {
        if let Some(AttributeValue::S(live)) = tombstone.get(name) {
            if !live.starts_with(index::TOMBSTONE_PREFIX) {
                let moved = index::tombstone_partition(live);
                tombstone.insert(name.into(), AttributeValue::S(moved));
            }
        }
    }
    tombstone
}

/// A Delete, or an InsertOrUpdate of a record Protime soft-deleted (a clocking deleted in
/// myProtime keeps `"status": "Deleted"`): readers treat both kinds of deletion alike.
pub fn is_deletion(event: &Event) -> bool {
    event.change_type == ChangeType::Delete
        || event.data.iter().any(|(name, value)| name == "status" && matches!(value, Json::String(s) if s == "Deleted"))
}

/// DynamoDB's limits on an item: 400 KB, a partition key of at most 2048 bytes.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;

/// Why DynamoDB would refuse an item (`ValidationException`). Checked before writing: the local
/// emulator accepts some of these (an empty attribute name, for one), DynamoDB never does.
pub fn unstorable(item: &HashMap<String, AttributeValue>) -> Option<&'static str> {
    if let Some(AttributeValue::S(pk)) = item.get(attr::PK) {
        if pk.len() > MAX_PARTITION_KEY_BYTES {
            return Some("key_too_long");
        }
    }
    if item.keys().any(String::is_empty) || item.values().any(has_empty_name) {
        return Some("empty_attribute_name");
    }
    (item_size(item) > MAX_ITEM_BYTES).then_some("item_too_large")
}

fn has_empty_name(value: &AttributeValue) -> bool {
    match value {
        AttributeValue::M(fields) => fields.iter().any(|(name, v)| name.is_empty() || has_empty_name(v)),
        AttributeValue::L(items) => items.iter().any(has_empty_name),
        _ => false,
    }
}

/// An upper bound of an item's size as DynamoDB counts it (names and values).
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

/// An upper bound of an attribute value's size as DynamoDB counts it.
fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::M(fields) => 3 + fields.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        _ => 1,
    }
}

/// The record an item holds, as Protime sent it: `id`, `changeVersion`, then its fields by name
/// (those kept aside under `shadowedFields` back under their own names), and `"deleted": true`
/// on a tombstone. The table's bookkeeping attributes are left out; numbers keep their text.
pub fn record_json(item: &HashMap<String, AttributeValue>) -> Json {
    let mut fields: Vec<(String, Json)> = item
        .iter()
        .filter(|(name, _)| {
            !attr::RESERVED.contains(&name.as_str()) && !matches!(name.as_str(), attr::ID | attr::CHANGE_VERSION)
        })
        .map(|(name, value)| (name.clone(), json_value(value)))
        .collect();
    if let Some(AttributeValue::M(shadowed)) = item.get(attr::SHADOWED_FIELDS) {
        fields.extend(shadowed.iter().map(|(name, value)| (name.clone(), json_value(value))));
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let mut record = Vec::with_capacity(fields.len() + 3);
    for name in [attr::ID, attr::CHANGE_VERSION] {
        if let Some(value) = item.get(name) {
            record.push((name.to_owned(), json_value(value)));
        }
    }
    record.extend(fields);
    if item.get(attr::DELETED) == Some(&AttributeValue::Bool(true)) {
        record.push((attr::DELETED.to_owned(), Json::Bool(true)));
    }
    Json::Object(record)
}

/// A native DynamoDB attribute as JSON, the inverse of [`attribute_value`] (sets, which the
/// store never writes, as arrays; binary as base64 text).
pub fn json_value(value: &AttributeValue) -> Json {
    use base64::Engine as _;
    match value {
        AttributeValue::Null(_) => Json::Null,
        AttributeValue::Bool(b) => Json::Bool(*b),
        AttributeValue::N(n) => Json::Number(n.clone()),
        AttributeValue::S(s) => Json::String(s.clone()),
        AttributeValue::L(items) => Json::Array(items.iter().map(json_value).collect()),
        AttributeValue::M(fields) => {
            let mut fields: Vec<(String, Json)> = fields.iter().map(|(k, v)| (k.clone(), json_value(v))).collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Object(fields)
        }
        AttributeValue::Ss(items) => Json::Array(items.iter().cloned().map(Json::String).collect()),
        AttributeValue::Ns(items) => Json::Array(items.iter().cloned().map(Json::Number).collect()),
        AttributeValue::B(blob) => Json::String(base64::engine::general_purpose::STANDARD.encode(blob.as_ref())),
        AttributeValue::Bs(blobs) => Json::Array(
            blobs.iter().map(|b| Json::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()))).collect(),
        ),
        _ => Json::Null,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::event::parse_body;

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
        // A live record is in both read indexes.
        assert_eq!(item[index::attr::DATE_PARTITION], AttributeValue::S("paid-presences#2025-01#2".into()));
        assert_eq!(item[index::attr::DATE_SORT], AttributeValue::S("2025-01-02#00000000000000000042".into()));
        assert_eq!(item[index::attr::PERSON_PARTITION], AttributeValue::S("paid-presences#123".into()));
    }

    #[test]
    fn a_soft_deleted_record_is_a_tombstone_with_its_fields_kept() {
        let e = event(r#"{"id":5,"changeVersion":"0000090200004BD0000A","status":"Deleted","timeOfDayInMinutes":480}"#);
        let item = record_item(Collection::Clockings, &e, Source::Webhook, "t");
        assert_eq!(item[attr::DELETED], AttributeValue::Bool(true));
        assert_eq!(item["status"], AttributeValue::S("Deleted".into()));
        assert_eq!(item["timeOfDayInMinutes"], AttributeValue::N("480".into()));
        // A tombstone is in the tombstone partitions (this one has no date: undated).
        assert_eq!(item[index::attr::DATE_PARTITION], AttributeValue::S("deleted#clockings#undated#5".into()));
        let live = event(r#"{"id":5,"changeVersion":"1","status":"AccessOk"}"#);
        assert_eq!(
            record_item(Collection::AccessClockings, &live, Source::Webhook, "t")[attr::DELETED],
            AttributeValue::Bool(false)
        );
    }

    #[test]
    fn a_delete_is_a_tombstone() {
        let e = event(r#"{"changeType":"Delete","data":{"id":"a","changeVersion":"3"}}"#);
        let item = record_item(Collection::Breaks, &e, Source::Resync, "t");
        assert_eq!(item[attr::DELETED], AttributeValue::Bool(true));
        assert_eq!(item[attr::ID], AttributeValue::S("a".into()));
        assert_eq!(item[attr::SOURCE], AttributeValue::S("resync".into()));
        // A Delete carries no date or person: its tombstone is undated, in no person's partition.
        let partition = item[index::attr::DATE_PARTITION].as_s().unwrap();
        assert!(partition.starts_with("deleted#breaks#undated#"), "{partition}");
        assert!(!item.contains_key(index::attr::PERSON_PARTITION));
    }

    #[test]
    fn an_items_record_is_the_event_as_protime_sent_it() {
        let e = event(
            r#"{"id":42,"changeVersion":"10","person":{"id":123},"n":1.50,"big":12345678901234567890123,"source":"t"}"#,
        );
        let item = record_item(Collection::Clockings, &e, Source::Webhook, "t");
        assert_eq!(
            record_json(&item).to_string(),
            r#"{"id":42,"changeVersion":"10","big":12345678901234567890123,"n":1.50,"person":{"id":123},"source":"t"}"#
        );
        let gone = event(r#"{"changeType":"Delete","data":{"id":"a","changeVersion":"3"}}"#);
        let item = record_item(Collection::Breaks, &gone, Source::Webhook, "t");
        assert_eq!(record_json(&item).to_string(), r#"{"id":"a","changeVersion":"3","deleted":true}"#);
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
    fn items_dynamodb_would_refuse_are_recognised_before_writing() {
        let ok = record_item(
            Collection::Clockings,
            &event(r#"{"id":1,"changeVersion":"1","a":{"b":1}}"#),
            Source::Webhook,
            "t",
        );
        assert_eq!(unstorable(&ok), None);
        let empty = event(r#"{"id":1,"changeVersion":"1","a":{"":1}}"#);
        assert_eq!(
            unstorable(&record_item(Collection::Clockings, &empty, Source::Webhook, "t")),
            Some("empty_attribute_name")
        );
        let top = event(r#"{"id":1,"changeVersion":"1","":true}"#);
        assert_eq!(
            unstorable(&record_item(Collection::Clockings, &top, Source::Webhook, "t")),
            Some("empty_attribute_name")
        );
        let long_id = event(&format!(r#"{{"id":"{}","changeVersion":"1"}}"#, "x".repeat(2100)));
        assert_eq!(
            unstorable(&record_item(Collection::Clockings, &long_id, Source::Webhook, "t")),
            Some("key_too_long")
        );
        // Events over 350 KB are refused before an item is built; the item check is the backstop.
        let mut big = ok.clone();
        big.insert("a".into(), AttributeValue::S("x".repeat(MAX_ITEM_BYTES)));
        assert_eq!(unstorable(&big), Some("item_too_large"));
    }

    proptest::proptest! {
        /// Whatever the record holds, its item's index keys are those its id, date and person
        /// give, in the live or the tombstone partitions; fields named like the index
        /// attributes are kept aside, never taken for keys.
        #[test]
        fn an_items_index_keys_come_from_its_id_date_and_person_only(
            integer_id in proptest::prelude::any::<bool>(),
            id in 0u64..u64::MAX,
            day in proptest::option::of(0u32..4000),
            person in proptest::option::of(0u32..100_000),
            clash in proptest::sample::select(index::attr::ALL.to_vec()),
            clash_value in "[a-z#0-9-]{0,20}",
            deleted in proptest::prelude::any::<bool>(),
        ) {
            let mut body = serde_json::json!({"changeVersion": "1", clash: clash_value});
            body["id"] = if integer_id { serde_json::json!(id) } else { serde_json::json!(format!("r-{id}")) };
            if let Some(day) = day {
                let date = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(day.into());
                body["date"] = serde_json::json!(date.to_string());
            }
            if let Some(person) = person {
                body["person"] = serde_json::json!({"id": person});
            }
            if deleted {
                body["status"] = serde_json::json!("Deleted");
            }
            let e = event(&body.to_string());
            let item = record_item(Collection::Clockings, &e, Source::Delta, "t");
            let keys = index_keys(Collection::Clockings, &e.id, &e.data);
            let keys = if deleted { keys.into_tombstone() } else { keys };
            proptest::prop_assert_eq!(item[index::attr::DATE_PARTITION].as_s().unwrap(), &keys.date_partition);
            proptest::prop_assert_eq!(item[index::attr::DATE_SORT].as_s().unwrap(), &keys.date_sort);
            proptest::prop_assert_eq!(
                item.get(index::attr::PERSON_PARTITION).map(|v| v.as_s().unwrap().clone()),
                keys.person_partition.clone()
            );
            proptest::prop_assert_eq!(keys.person_partition.is_some(), person.is_some());
            proptest::prop_assert_eq!(keys.date_partition.contains("#undated#"), day.is_none());
            proptest::prop_assert_eq!(keys.date_partition.starts_with(index::TOMBSTONE_PREFIX), deleted);
            let AttributeValue::M(shadowed) = &item[attr::SHADOWED_FIELDS] else { panic!("the clash is kept aside") };
            proptest::prop_assert_eq!(&shadowed[clash], &AttributeValue::S(clash_value));
        }
    }
}
