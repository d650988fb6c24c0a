//! The item layout of a record: attribute names, the partition key, and the event's data
//! fields as native DynamoDB attributes.

use super::event::{ChangeType, Event, RecordId};
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

    pub const RESERVED: &[&str] = &[PK, COLLECTION, CHANGE_ORDER, RECEIVED_AT, SOURCE, DELETED, SHADOWED_FIELDS];
}

/// The partition key of a collection's subscription state item (the renewer writes it; the
/// receiver notes the time of the last event on it).
pub fn subscription_key(collection: Collection) -> String {
    format!("subscription#{}", collection.as_str())
}

/// The partition key of a record.
pub fn record_key(collection: Collection, id: &RecordId) -> String {
    format!("{}#{}", collection.as_str(), id.as_str())
}

/// Where a change came from, kept on the item for auditing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Webhook,
    /// A list page (re-sync, or a collection synced through its list endpoint).
    Resync,
    /// A delta page (initial load or changes since a deltaLink).
    Delta,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Resync => "resync",
            Source::Delta => "delta",
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
    item.insert(attr::DELETED.into(), AttributeValue::Bool(is_deletion(event)));
    item
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
    let size: usize = item.iter().map(|(name, value)| name.len() + value_size(value)).sum();
    (size > MAX_ITEM_BYTES).then_some("item_too_large")
}

fn has_empty_name(value: &AttributeValue) -> bool {
    match value {
        AttributeValue::M(fields) => fields.iter().any(|(name, v)| name.is_empty() || has_empty_name(v)),
        AttributeValue::L(items) => items.iter().any(has_empty_name),
        _ => false,
    }
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
    }

    #[test]
    fn a_soft_deleted_record_is_a_tombstone_with_its_fields_kept() {
        let e = event(r#"{"id":5,"changeVersion":"0000090200004BD0000A","status":"Deleted","timeOfDayInMinutes":480}"#);
        let item = record_item(Collection::Clockings, &e, Source::Webhook, "t");
        assert_eq!(item[attr::DELETED], AttributeValue::Bool(true));
        assert_eq!(item["status"], AttributeValue::S("Deleted".into()));
        assert_eq!(item["timeOfDayInMinutes"], AttributeValue::N("480".into()));
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
}
