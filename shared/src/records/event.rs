//! Protime webhook events: one event or an array of them, each a delta item
//! `{"changeType","data":{…}}` or a flat record (an InsertOrUpdate).

use crate::records::json::{self, Json, JsonError};
use crate::records::order::ORDER_WIDTH;

/// An event's raw JSON may not exceed this, so that its item stays under DynamoDB's 400 KB.
pub const MAX_EVENT_BYTES: usize = 350 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    InsertOrUpdate,
    Delete,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::InsertOrUpdate => "InsertOrUpdate",
            ChangeType::Delete => "Delete",
        }
    }
}

/// A record's identifier: Protime ids are integers, but a string id is kept as a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordId {
    Number(String),
    String(String),
}

impl RecordId {
    pub fn as_str(&self) -> &str {
        match self {
            RecordId::Number(s) | RecordId::String(s) => s,
        }
    }
}

/// One change to one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub change_type: ChangeType,
    pub id: RecordId,
    /// As received (a JSON integer is kept as its digits).
    pub change_version: String,
    /// The record's fields, `id` and `changeVersion` included, in document order.
    pub data: Vec<(String, Json)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error(transparent)]
    Json(#[from] JsonError),
    #[error("the body must be an event object or an array of events")]
    NotAnEvent,
    #[error("the array holds no events")]
    EmptyBatch,
    #[error("changeType must be \"InsertOrUpdate\" or \"Delete\"")]
    InvalidChangeType,
    #[error("a delta item must carry a \"data\" object")]
    MissingData,
    #[error("\"id\" is required")]
    MissingId,
    #[error("\"id\" must be an integer or a non-empty string")]
    InvalidId,
    #[error("\"changeVersion\" is required")]
    MissingChangeVersion,
    #[error("\"changeVersion\" must be a non-empty string")]
    InvalidChangeVersion,
    #[error("\"changeVersion\" is longer than {ORDER_WIDTH} characters")]
    ChangeVersionTooLong,
    #[error("the event is larger than {MAX_EVENT_BYTES} bytes")]
    TooLarge,
    #[error("event {index}: {source}")]
    InBatch {
        index: usize,
        #[source]
        source: Box<EventError>,
    },
}

impl EventError {
    /// A stable name of what is wrong, for answers, metrics and quarantine metadata.
    pub fn reason(&self) -> &'static str {
        match self {
            EventError::Json(JsonError::Syntax(_)) => "not_json",
            EventError::Json(JsonError::TooDeep) => "too_deep",
            EventError::Json(JsonError::DuplicateKey(_)) => "duplicate_key",
            EventError::Json(JsonError::NumberOutOfRange(_)) => "number_out_of_range",
            EventError::NotAnEvent => "not_an_event",
            EventError::EmptyBatch => "empty_batch",
            EventError::InvalidChangeType => "invalid_change_type",
            EventError::MissingData => "missing_data",
            EventError::MissingId => "missing_id",
            EventError::InvalidId => "invalid_id",
            EventError::MissingChangeVersion => "missing_change_version",
            EventError::InvalidChangeVersion => "invalid_change_version",
            EventError::ChangeVersionTooLong => "change_version_too_long",
            EventError::TooLarge => "event_too_large",
            EventError::InBatch { source, .. } => source.reason(),
        }
    }

    /// Whether the request should be answered 413 rather than 400.
    pub fn is_too_large(&self) -> bool {
        match self {
            EventError::TooLarge => true,
            EventError::InBatch { source, .. } => source.is_too_large(),
            _ => false,
        }
    }
}

/// Parses a request body into its events. Either every event is valid or the body is
/// rejected as a whole, so a batch is never half-stored because of bad input.
pub fn parse_body(body: &[u8]) -> Result<Vec<Event>, EventError> {
    match split_body(body)? {
        Split::One(event) => event.map(|e| vec![e]),
        Split::Batch(items) => items
            .into_iter()
            .enumerate()
            .map(|(index, (_, event))| event.map_err(|e| EventError::InBatch { index, source: Box::new(e) }))
            .collect(),
    }
}

/// A body whose top level is usable, with each event parsed on its own.
#[derive(Debug)]
pub enum Split<'a> {
    /// A single event: the body is its JSON text.
    One(Result<Event, EventError>),
    /// An array: every item with its own JSON text, so one unstorable event can be set aside
    /// byte for byte while the others are stored.
    Batch(Vec<(&'a str, Result<Event, EventError>)>),
}

/// Splits a body into its events; `Err` only when the body itself is unusable (not JSON, or an
/// empty array).
pub fn split_body(body: &[u8]) -> Result<Split<'_>, EventError> {
    match json::split_top(body)? {
        json::Top::Array(items) => {
            if items.is_empty() {
                return Err(EventError::EmptyBatch);
            }
            let parse = |raw: &serde_json::value::RawValue| {
                check_size(raw.get().len()).and_then(|()| parse_event(json::parse_raw(raw, 1)?))
            };
            Ok(Split::Batch(items.into_iter().map(|raw| (raw.get(), parse(raw))).collect()))
        }
        json::Top::Value(raw) => {
            Ok(Split::One(check_size(body.len()).and_then(|()| parse_event(json::parse_raw(raw, 0)?))))
        }
    }
}

fn check_size(len: usize) -> Result<(), EventError> {
    if len > MAX_EVENT_BYTES {
        Err(EventError::TooLarge)
    } else {
        Ok(())
    }
}

/// Parses one event (either shape) from an already parsed value, e.g. a record of a list page.
pub fn parse_event(value: Json) -> Result<Event, EventError> {
    let Json::Object(fields) = value else {
        return Err(EventError::NotAnEvent);
    };
    let (change_type, data) = match fields.iter().position(|(k, _)| k == "changeType") {
        None => (ChangeType::InsertOrUpdate, fields),
        Some(_) => {
            let mut change_type = None;
            let mut data = None;
            for (key, value) in fields {
                match (key.as_str(), value) {
                    ("changeType", Json::String(s)) if s == "InsertOrUpdate" => {
                        change_type = Some(ChangeType::InsertOrUpdate)
                    }
                    ("changeType", Json::String(s)) if s == "Delete" => change_type = Some(ChangeType::Delete),
                    ("changeType", _) => return Err(EventError::InvalidChangeType),
                    ("data", Json::Object(d)) => data = Some(d),
                    ("data", _) => return Err(EventError::MissingData),
                    // Other envelope fields carry nothing we store.
                    _ => {}
                }
            }
            let change_type = change_type.ok_or(EventError::InvalidChangeType)?;
            (change_type, data.ok_or(EventError::MissingData)?)
        }
    };
    let id = match field(&data, "id") {
        None | Some(Json::Null) => return Err(EventError::MissingId),
        Some(id) => record_id(id)?,
    };
    let change_version = match field(&data, "changeVersion") {
        None | Some(Json::Null) => return Err(EventError::MissingChangeVersion),
        Some(version) => change_version(version)?,
    };
    if change_version.len() > ORDER_WIDTH {
        return Err(EventError::ChangeVersionTooLong);
    }
    Ok(Event { change_type, id, change_version, data })
}

/// What can still be read of a change that fails the strict rules: its type and its `id` and
/// `changeVersion`, each looked at alone (either shape, nothing else parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loose {
    pub change_type: ChangeType,
    pub id: Option<RecordId>,
    pub change_version: Option<String>,
}

/// Reads a change leniently (see [`Loose`]); `None` when it is not a JSON object of either
/// shape or its `changeType` is unknown.
pub fn loose_of(body: &[u8]) -> Option<Loose> {
    let (change_type, id, version) = loose_parts(body)?;
    let id = id.and_then(|id| record_id(&id).ok());
    let change_version = version.and_then(|v| change_version(&v).ok());
    Some(Loose { change_type, id, change_version })
}

/// A change's type, and its `id` and `changeVersion` values as parsed alone.
fn loose_parts(body: &[u8]) -> Option<(ChangeType, Option<Json>, Option<Json>)> {
    use serde_json::value::RawValue;
    #[derive(serde::Deserialize)]
    struct Fields<'a> {
        #[serde(rename = "changeType")]
        change_type: Option<String>,
        #[serde(borrow)]
        data: Option<&'a RawValue>,
        #[serde(borrow)]
        id: Option<&'a RawValue>,
        #[serde(rename = "changeVersion", borrow)]
        change_version: Option<&'a RawValue>,
    }
    let top: Fields<'_> = serde_json::from_slice(body).ok()?;
    let (change_type, fields) = match top.change_type.as_deref() {
        None => (ChangeType::InsertOrUpdate, top),
        Some("InsertOrUpdate") => (ChangeType::InsertOrUpdate, serde_json::from_str(top.data?.get()).ok()?),
        Some("Delete") => (ChangeType::Delete, serde_json::from_str(top.data?.get()).ok()?),
        Some(_) => return None,
    };
    let value = |raw: Option<&RawValue>| raw.and_then(|raw| json::parse_raw(raw, 1).ok());
    Some((change_type, value(fields.id), value(fields.change_version)))
}

/// The deletion a change carries, read leniently ([`loose_of`]), so a Delete whose other fields
/// cannot be stored (a duplicate key, a number out of range, too deep) still deletes its record.
/// `None` unless the body is one Delete change with a usable `id` and `changeVersion`.
pub fn delete_of(body: &[u8]) -> Option<Event> {
    let (ChangeType::Delete, Some(id), Some(version)) = loose_parts(body)? else { return None };
    let data = Json::Object(vec![("id".into(), id), ("changeVersion".into(), version)]);
    parse_event(Json::Object(vec![("changeType".into(), Json::String("Delete".into())), ("data".into(), data)])).ok()
}

/// Reads one record of a list or delta page from its own text: at most [`MAX_EVENT_BYTES`],
/// then the strict rules of [`json::parse_raw`] and [`parse_event`].
pub fn parse_record(raw: &serde_json::value::RawValue) -> Result<Event, EventError> {
    if raw.get().len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge);
    }
    parse_event(json::parse_raw(raw, 0)?)
}

fn record_id(value: &Json) -> Result<RecordId, EventError> {
    match value {
        Json::Number(n) if is_integer(n) => Ok(RecordId::Number(n.clone())),
        Json::String(s) if !s.is_empty() => Ok(RecordId::String(s.clone())),
        _ => Err(EventError::InvalidId),
    }
}

fn change_version(value: &Json) -> Result<String, EventError> {
    match value {
        Json::String(s) if !s.is_empty() => Ok(s.clone()),
        Json::Number(n) if is_integer(n) => Ok(n.clone()),
        _ => Err(EventError::InvalidChangeVersion),
    }
}

fn field<'a>(fields: &'a [(String, Json)], key: &str) -> Option<&'a Json> {
    fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn is_integer(n: &str) -> bool {
    let digits = n.strip_prefix('-').unwrap_or(n);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: &str) -> Result<Event, EventError> {
        parse_body(body.as_bytes()).map(|mut v| {
            assert_eq!(v.len(), 1);
            v.remove(0)
        })
    }

    #[test]
    fn flat_object_is_an_insert_or_update_that_keeps_every_field() {
        let e = one(r#"{"changeVersion":"12","id":5,"person":{"id":123,"externalReferences":{"@badge-number":"6767676"}},"newField":[true,null]}"#).unwrap();
        assert_eq!(e.change_type, ChangeType::InsertOrUpdate);
        assert_eq!(e.id, RecordId::Number("5".into()));
        assert_eq!(e.change_version, "12");
        let keys: Vec<&str> = e.data.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["changeVersion", "id", "person", "newField"]);
    }

    #[test]
    fn delta_items_of_both_change_types_parse() {
        let e = one(r#"{"changeType":"Delete","data":{"id":"abc","changeVersion":"3"}}"#).unwrap();
        assert_eq!(e.change_type, ChangeType::Delete);
        assert_eq!(e.id, RecordId::String("abc".into()));
        let e =
            one(r#"{"data":{"id":1,"changeVersion":"4","date":"2025-01-02"},"changeType":"InsertOrUpdate"}"#).unwrap();
        assert_eq!(e.change_type, ChangeType::InsertOrUpdate);
        assert_eq!(e.data.len(), 3);
    }

    #[test]
    fn an_array_body_yields_every_event_in_order() {
        let events = parse_body(
            br#"[{"id":1,"changeVersion":"1"},{"changeType":"Delete","data":{"id":2,"changeVersion":"9"}}]"#,
        )
        .unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id.as_str(), "1");
        assert_eq!(events[1].change_type, ChangeType::Delete);
    }

    #[test]
    fn one_invalid_item_rejects_the_whole_array() {
        let err = parse_body(br#"[{"id":1,"changeVersion":"1"},{"id":2}]"#).unwrap_err();
        assert_eq!(err, EventError::InBatch { index: 1, source: Box::new(EventError::MissingChangeVersion) });
        assert_eq!(err.to_string(), "event 1: \"changeVersion\" is required");
    }

    #[test]
    fn required_fields_and_types_are_checked() {
        assert_eq!(one(r#"{"changeVersion":"1"}"#), Err(EventError::MissingId));
        assert_eq!(one(r#"{"id":null,"changeVersion":"1"}"#), Err(EventError::MissingId));
        assert_eq!(one(r#"{"id":1.5,"changeVersion":"1"}"#), Err(EventError::InvalidId));
        assert_eq!(one(r#"{"id":"","changeVersion":"1"}"#), Err(EventError::InvalidId));
        assert_eq!(one(r#"{"id":{},"changeVersion":"1"}"#), Err(EventError::InvalidId));
        assert_eq!(one(r#"{"id":1}"#), Err(EventError::MissingChangeVersion));
        assert_eq!(one(r#"{"id":1,"changeVersion":""}"#), Err(EventError::InvalidChangeVersion));
        assert_eq!(one(r#"{"id":1,"changeVersion":true}"#), Err(EventError::InvalidChangeVersion));
        let longest = format!(r#"{{"id":1,"changeVersion":"{}"}}"#, "F".repeat(64));
        assert!(one(&longest).is_ok());
        let too_long = format!(r#"{{"id":1,"changeVersion":"{}"}}"#, "F".repeat(65));
        assert_eq!(one(&too_long), Err(EventError::ChangeVersionTooLong));
        assert_eq!(
            one(r#"{"changeType":"Upsert","data":{"id":1,"changeVersion":"1"}}"#),
            Err(EventError::InvalidChangeType)
        );
        assert_eq!(one(r#"{"changeType":"Delete"}"#), Err(EventError::MissingData));
        assert_eq!(one(r#"{"changeType":"Delete","data":[1]}"#), Err(EventError::MissingData));
    }

    #[test]
    fn string_and_integer_ids_and_versions_are_both_accepted() {
        let e = one(r#"{"id":"42","changeVersion":17}"#).unwrap();
        assert_eq!(e.id, RecordId::String("42".into()));
        assert_eq!(e.change_version, "17");
        let e = one(r#"{"id":-42,"changeVersion":"x"}"#).unwrap();
        assert_eq!(e.id, RecordId::Number("-42".into()));
    }

    #[test]
    fn non_events_are_rejected() {
        for body in ["", "null", "1", "\"x\"", "[1]", "[[]]", "{"] {
            assert!(parse_body(body.as_bytes()).is_err(), "{body}");
        }
        assert_eq!(parse_body(b"[]"), Err(EventError::EmptyBatch));
        assert_eq!(parse_body(b" [ ] "), Err(EventError::EmptyBatch));
    }

    #[test]
    fn an_event_over_the_item_limit_is_too_large() {
        let big = format!(r#"{{"id":1,"changeVersion":"1","blob":"{}"}}"#, "x".repeat(MAX_EVENT_BYTES));
        let err = one(&big).unwrap_err();
        assert!(err.is_too_large());
        let err = parse_body(format!("[{big}]").as_bytes()).unwrap_err();
        assert!(err.is_too_large());
        assert!(!EventError::MissingId.is_too_large());
    }
}
