//! The signing-keys secret: one Secrets Manager secret (`SIGNING_KEYS_SECRET`) holding every
//! collection's key, so a deployment keeps two secrets whatever the number of collections.
//!
//! Its SecretString is a JSON object with one member per collection:
//!
//! ```json
//! {"clockings": {"key": "<the key exactly as Protime returned it>",
//!                "rotatedAt": "2026-12-07T10:00:00Z", "previousKey": "<the key before it>"}}
//! ```
//!
//! Only `key` is required. The renewer writes `rotatedAt` (when the key was stored, which starts
//! the previous key's grace) and `previousKey`; without them a reader takes the secret version's
//! creation time and the collection's key in the `AWSPREVIOUS` version. Members this project
//! does not know (top level or in a collection's object) are kept as they are by every write.
//! Neither `Debug` nor an error ever shows a key.

use crate::collection::Collection;
use crate::signing::signature::SigningKey;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

/// The local stack's and the tests' name for the secret; a deployed stack names its own.
pub const DEFAULT_SIGNING_KEYS_SECRET: &str = "protime-webhooks/signing-keys";

/// One collection's entry.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub key: SigningKey,
    /// `rotatedAt`, when present and readable.
    pub rotated_at: Option<SystemTime>,
    /// `previousKey`, when present.
    pub previous: Option<SigningKey>,
}

/// Why the secret, or one collection's entry in it, cannot be read. Never shows a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("its SecretString is not a JSON object")]
    NotAnObject,
    #[error("the member \"{0}\" is not an object with a string \"key\" (and optional string \"rotatedAt\" and \"previousKey\")")]
    Entry(Collection),
}

/// The parsed SecretString: every collection's entry, and the members as they were, for writing.
#[derive(Clone, Default)]
pub struct KeyDocument {
    members: Map<String, Value>,
    entries: HashMap<Collection, Result<StoredKey, DocumentError>>,
}

impl KeyDocument {
    /// Parses a SecretString. A collection whose entry is malformed is kept as an error of its
    /// own ([`KeyDocument::get`]): it does not stop the other collections' keys from working.
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let Ok(Value::Object(members)) = serde_json::from_str::<Value>(text) else {
            return Err(DocumentError::NotAnObject);
        };
        let entries = members
            .iter()
            .filter_map(|(name, value)| {
                let collection = name.parse::<Collection>().ok()?;
                Some((collection, entry(value).ok_or(DocumentError::Entry(collection))))
            })
            .collect();
        Ok(KeyDocument { members, entries })
    }

    /// The collection's entry: `Ok(None)` if it has none.
    pub fn get(&self, collection: Collection) -> Result<Option<StoredKey>, DocumentError> {
        self.entries.get(&collection).cloned().transpose()
    }

    /// The field hash key (the `fieldHashKey` member the stack generates), when there is one
    /// long enough.
    pub fn field_hash_key(&self) -> Option<crate::records::policy::HashKey> {
        let text = self.members.get(crate::records::policy::HASH_KEY_MEMBER)?.as_str()?;
        crate::records::policy::HashKey::new(text)
    }

    /// The collections with an entry (well formed or not).
    pub fn collections(&self) -> impl Iterator<Item = Collection> + '_ {
        self.entries.keys().copied()
    }

    /// The document with `key` as the collection's key, stored at `now`; the key it replaces
    /// becomes `previousKey`, and every other member is kept. The same key again changes
    /// nothing (its previous key and its grace stay as they were).
    pub fn with_key(mut self, collection: Collection, key: &SigningKey, now: SystemTime) -> Self {
        if matches!(self.get(collection), Ok(Some(stored)) if stored.key == *key) {
            return self;
        }
        let mut object = match self.members.remove(collection.as_str()) {
            Some(Value::Object(object)) => object,
            _ => Map::new(),
        };
        match object.remove("key") {
            Some(old @ Value::String(_)) => object.insert("previousKey".into(), old),
            _ => object.remove("previousKey"),
        };
        object.insert("key".into(), Value::String(key.expose().to_owned()));
        let rotated_at = DateTime::<Utc>::from(now).to_rfc3339_opts(SecondsFormat::Secs, true);
        object.insert("rotatedAt".into(), Value::String(rotated_at));
        let object = Value::Object(object);
        self.entries.insert(collection, entry(&object).ok_or(DocumentError::Entry(collection)));
        self.members.insert(collection.as_str().to_owned(), object);
        self
    }

    /// The document with a field hash key (`fieldHashKey`), every other member kept.
    pub fn with_hash_key(mut self, key: &str) -> Self {
        self.members.insert(crate::records::policy::HASH_KEY_MEMBER.into(), Value::String(key.to_owned()));
        self
    }

    /// The SecretString to write.
    pub fn render(&self) -> String {
        Value::Object(self.members.clone()).to_string()
    }
}

impl fmt::Debug for KeyDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.entries.keys().map(|c| c.as_str()).collect();
        names.sort_unstable();
        f.debug_struct("KeyDocument").field("collections", &names).finish_non_exhaustive()
    }
}

fn entry(value: &Value) -> Option<StoredKey> {
    let object = value.as_object()?;
    let key = object.get("key")?.as_str()?;
    let text = |name: &str| match object.get(name) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.as_str())),
        Some(_) => None,
    };
    let rotated_at = match text("rotatedAt")? {
        None => None,
        Some(s) => Some(SystemTime::from(DateTime::parse_from_rfc3339(s).ok()?)),
    };
    let previous = text("previousKey")?.map(SigningKey::new);
    Some(StoredKey { key: SigningKey::new(key), rotated_at, previous })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const C: Collection = Collection::Clockings;

    #[test]
    fn a_new_key_keeps_the_old_one_as_previous_and_every_other_member() {
        let text = r#"{"clockings":{"key":"old","note":"ours"},"people":{"key":"p"},"comment":"kept"}"#;
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        let document = KeyDocument::parse(text).unwrap().with_key(C, &SigningKey::new("new"), now);
        let stored = document.get(C).unwrap().unwrap();
        assert_eq!(stored.key, SigningKey::new("new"));
        assert_eq!(stored.previous, Some(SigningKey::new("old")));
        assert_eq!(stored.rotated_at, Some(now));
        let rendered: Value = serde_json::from_str(&document.render()).unwrap();
        assert_eq!(rendered["clockings"]["note"], "ours");
        assert_eq!(rendered["comment"], "kept");
        assert_eq!(rendered["people"], serde_json::json!({"key": "p"}));
    }

    #[test]
    fn storing_the_same_key_again_changes_nothing() {
        let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        let document = KeyDocument::default()
            .with_key(C, &SigningKey::new("old"), then)
            .with_key(C, &SigningKey::new("k"), then)
            .with_key(C, &SigningKey::new("k"), SystemTime::now());
        let stored = document.get(C).unwrap().unwrap();
        assert_eq!((stored.previous, stored.rotated_at), (Some(SigningKey::new("old")), Some(then)));
    }

    #[test]
    fn a_malformed_entry_is_an_error_of_its_collection_only() {
        let document = KeyDocument::parse(r#"{"clockings":{"key":5},"people":{"key":"p"},"other":1}"#).unwrap();
        assert_eq!(document.get(C), Err(DocumentError::Entry(C)));
        assert!(document.get(Collection::People).unwrap().is_some());
        assert_eq!(document.get(Collection::Absences), Ok(None));
        let bad_time = KeyDocument::parse(r#"{"clockings":{"key":"k","rotatedAt":"yesterday"}}"#).unwrap();
        assert_eq!(bad_time.get(C), Err(DocumentError::Entry(C)));
    }

    #[test]
    fn neither_debug_nor_an_error_shows_a_key() {
        let document = KeyDocument::parse(r#"{"clockings":{"key":"s3cr3t","previousKey":"0ld"}}"#).unwrap();
        let shown = format!("{document:?} {:?}", document.get(C));
        assert!(!shown.contains("s3cr3t") && !shown.contains("0ld"), "{shown}");
        assert_eq!(KeyDocument::parse("\"s3cr3t\"").unwrap_err().to_string(), "its SecretString is not a JSON object");
    }
}
