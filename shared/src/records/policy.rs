//! What the copy keeps of a record's personal data: the field policy (`FIELD_POLICY`), applied
//! to every record after its signature is verified and before it is stored, so a dropped field
//! is never in the table, an index or the change feed; and how long a tombstone is kept
//! (`TOMBSTONE_RETENTION_DAYS`). See `docs/personal-data.md`.
//!
//! A policy is a comma-separated list of `<collection>.<field>=<action>`: the field a dotted path
//! into nested objects (an array on the way applies the rest of the path to each element), the
//! action `drop` (the field is removed) or `hash` (its value becomes
//! `hmac-sha256:<43 base64url characters>`, an HMAC-SHA256 under the deployment's field hash key:
//! equal values give equal hashes within a deployment, so joins still work, and a short value
//! such as a birth date cannot be recovered by trying every candidate without the key). A field
//! a record lacks is fine; `null` stays `null`. Hashing a value already hashed leaves it alone,
//! so applying a policy twice changes nothing the second time.

use super::event::Event;
use super::item::attr;
use super::json::Json;
use crate::collection::Collection;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// The policy when `FIELD_POLICY` is unset: the terminal PIN code is a credential, not data.
pub const DEFAULT_FIELD_POLICY: &str = "people.pinCode=drop";
/// `TOMBSTONE_RETENTION_DAYS` when unset: see `docs/personal-data.md`.
pub const DEFAULT_TOMBSTONE_RETENTION_DAYS: u64 = 35;
/// What a hashed value starts with.
pub const HASH_PREFIX: &str = "hmac-sha256:";
/// The member of the signing-keys secret holding the field hash key (the renewer generates it).
pub const HASH_KEY_MEMBER: &str = "fieldHashKey";
/// The shortest field hash key accepted, in bytes.
pub const MIN_HASH_KEY_BYTES: usize = 32;

/// What a rule does to its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldAction {
    Drop,
    Hash,
}

/// One entry of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRule {
    pub collection: Collection,
    /// The dotted path, split.
    pub path: Vec<String>,
    pub action: FieldAction,
}

/// The field policy: its rules, in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPolicy {
    rules: Vec<FieldRule>,
}

/// A malformed entry of `FIELD_POLICY`: the entry as written and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("FIELD_POLICY entry {entry:?}: {problem}")]
pub struct PolicyError {
    pub entry: String,
    pub problem: &'static str,
}

impl std::str::FromStr for FieldPolicy {
    type Err = PolicyError;

    /// `none` (or nothing) is the empty policy; otherwise entries joined by commas.
    fn from_str(text: &str) -> Result<FieldPolicy, PolicyError> {
        let mut rules: Vec<FieldRule> = Vec::new();
        if matches!(text.trim(), "" | "none") {
            return Ok(FieldPolicy { rules });
        }
        for entry in text.split(',').map(str::trim) {
            let rule = rule(entry)?;
            let same = |r: &&FieldRule| r.collection == rule.collection && overlaps(&r.path, &rule.path);
            if rules.iter().any(|r| same(&r)) {
                return Err(PolicyError { entry: entry.into(), problem: "names a field another entry names" });
            }
            rules.push(rule);
        }
        Ok(FieldPolicy { rules })
    }
}

/// Whether one path is the other or lies inside it (`a` and `a.b`).
fn overlaps(a: &[String], b: &[String]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

fn rule(entry: &str) -> Result<FieldRule, PolicyError> {
    let bad = |problem| PolicyError { entry: entry.into(), problem };
    // As the template's condition reads it: "=hash" exactly, no space inside an entry.
    if entry.contains(char::is_whitespace) {
        return Err(bad("no space inside an entry"));
    }
    let (target, action) = entry.split_once('=').ok_or(bad("expected <collection>.<field>=drop|hash"))?;
    let action = match action {
        "drop" => FieldAction::Drop,
        "hash" => FieldAction::Hash,
        _ => return Err(bad("the action must be drop or hash")),
    };
    let (collection, field) = target.split_once('.').ok_or(bad("expected <collection>.<field>=drop|hash"))?;
    let collection: Collection = collection.parse().map_err(|_| bad("not one of the 18 collections"))?;
    let path: Vec<String> = field.split('.').map(str::to_owned).collect();
    if path.iter().any(String::is_empty) {
        return Err(bad("a field name is empty"));
    }
    if path.len() == 1 && matches!(path[0].as_str(), "id" | "changeVersion") {
        return Err(bad("id and changeVersion identify the record and are always kept"));
    }
    if path[0] == "date" && collection.is_dated() {
        return Err(bad(
            "a dated record's date places it in the sync's windows, the sweep and the indexes: it is always kept",
        ));
    }
    Ok(FieldRule { collection, path, action })
}

impl FieldPolicy {
    pub fn rules(&self) -> &[FieldRule] {
        &self.rules
    }

    /// Whether a rule names a field of `collection`.
    pub fn names(&self, collection: Collection) -> bool {
        self.rules.iter().any(|r| r.collection == collection)
    }

    /// Whether any rule hashes (the functions then need the field hash key).
    pub fn hashes(&self) -> bool {
        self.rules.iter().any(|r| r.action == FieldAction::Hash)
    }

    /// The policy as `FIELD_POLICY` spells it (`none` when empty).
    pub fn to_setting(&self) -> String {
        if self.rules.is_empty() {
            return "none".into();
        }
        let entry = |r: &FieldRule| {
            let action = if r.action == FieldAction::Drop { "drop" } else { "hash" };
            format!("{}.{}={action}", r.collection.as_str(), r.path.join("."))
        };
        self.rules.iter().map(entry).collect::<Vec<_>>().join(",")
    }

    /// Applies the rules of `collection` to `data` (a record's fields). Without a hash key, a
    /// field to hash is dropped: its value is never kept in the clear.
    pub fn apply(&self, collection: Collection, data: &mut Vec<(String, Json)>, key: Option<&HashKey>) {
        for rule in self.rules.iter().filter(|r| r.collection == collection) {
            apply_path(data, &rule.path, rule.action, key);
        }
    }

    /// The event as it may be kept: borrowed when no rule of its collection changes it.
    pub fn event<'a>(&self, collection: Collection, event: &'a Event, key: Option<&HashKey>) -> Cow<'a, Event> {
        if !self.rules.iter().any(|r| r.collection == collection) {
            return Cow::Borrowed(event);
        }
        let mut kept = event.clone();
        self.apply(collection, &mut kept.data, key);
        if kept == *event {
            Cow::Borrowed(event)
        } else {
            Cow::Owned(kept)
        }
    }
}

fn apply_path(fields: &mut Vec<(String, Json)>, path: &[String], action: FieldAction, key: Option<&HashKey>) {
    let Some((name, rest)) = path.split_first() else { return };
    let Some(at) = fields.iter().position(|(k, _)| k == name) else { return };
    if rest.is_empty() {
        match (action, key) {
            (FieldAction::Hash, Some(key)) => key.hash_in_place(&mut fields[at].1),
            _ => {
                fields.remove(at);
            }
        }
        return;
    }
    apply_inside(&mut fields[at].1, rest, action, key);
}

fn apply_inside(value: &mut Json, path: &[String], action: FieldAction, key: Option<&HashKey>) {
    match value {
        Json::Object(fields) => apply_path(fields, path, action, key),
        Json::Array(items) => items.iter_mut().for_each(|item| apply_inside(item, path, action, key)),
        _ => {}
    }
}

/// What a store keeps of a record: the field policy, with the key its `hash` rules use, and how
/// long a tombstone stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPolicy {
    pub fields: FieldPolicy,
    /// Loaded at start when the policy hashes ([`FieldPolicy::hashes`]).
    pub hash_key: Option<HashKey>,
    /// `TOMBSTONE_RETENTION_DAYS`: a tombstone's `expiresAt` is this many days after it is
    /// written; 0 keeps tombstones for ever.
    pub tombstone_days: u64,
}

impl Default for DataPolicy {
    /// The defaults of an unset environment: [`DEFAULT_FIELD_POLICY`], kept tombstones
    /// [`DEFAULT_TOMBSTONE_RETENTION_DAYS`] days.
    fn default() -> Self {
        DataPolicy {
            fields: DEFAULT_FIELD_POLICY.parse().expect("the default policy parses"),
            hash_key: None,
            tombstone_days: DEFAULT_TOMBSTONE_RETENTION_DAYS,
        }
    }
}

impl DataPolicy {
    /// The event as it may be kept ([`FieldPolicy::event`]).
    pub fn event<'a>(&self, collection: Collection, event: &'a Event) -> Cow<'a, Event> {
        self.fields.event(collection, event, self.hash_key.as_ref())
    }

    /// How long a tombstone is kept (at most a century); `None`: for ever.
    pub fn tombstone_retention(&self) -> Option<chrono::Duration> {
        let days = i64::try_from(self.tombstone_days).unwrap_or(i64::MAX).min(36_500);
        (days > 0).then(|| chrono::Duration::days(days))
    }

    /// Marks `item`, if it is a tombstone, with its `expiresAt` counted from `now`.
    pub fn expire(&self, item: &mut HashMap<String, AttributeValue>, now: DateTime<Utc>) {
        let tombstone = item.get(attr::DELETED) == Some(&AttributeValue::Bool(true));
        let Some(retention) = self.tombstone_retention().filter(|_| tombstone) else { return };
        let at = (now + retention).timestamp();
        item.insert(attr::EXPIRES_AT.into(), AttributeValue::N(at.to_string()));
    }
}

impl PartialEq for HashKey {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for HashKey {}

/// The deployment's field hash key (the signing-keys secret's `fieldHashKey` member). Never
/// shown by `Debug`.
#[derive(Clone)]
pub struct HashKey(Vec<u8>);

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(<redacted>)")
    }
}

impl HashKey {
    /// The key from its text; `None` when shorter than [`MIN_HASH_KEY_BYTES`].
    pub fn new(text: &str) -> Option<HashKey> {
        (text.len() >= MIN_HASH_KEY_BYTES).then(|| HashKey(text.as_bytes().to_vec()))
    }

    /// `hmac-sha256:<base64url of HMAC-SHA256(key, the value's canonical text)>` ([`canonical`]):
    /// a value hashes alike whether it came in an event or was read back from the table.
    pub fn hash(&self, value: &Json) -> String {
        let text = canonical(value);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(text.as_bytes());
        let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{HASH_PREFIX}{digest}")
    }

    fn hash_in_place(&self, value: &mut Json) {
        let hashed = match &*value {
            Json::Null => return,
            Json::String(s) if is_hash(s) => return,
            other => self.hash(other),
        };
        *value = Json::String(hashed);
    }
}

/// The text a value is hashed as: a string itself, a number in its shortest exact decimal form
/// (`25.50`, `2.55e1` and `25.5` alike, as DynamoDB gives it back), `true`/`false`, and an array
/// or object as JSON of those, an object's members sorted by name.
pub fn canonical(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Number(n) => canonical_number(n),
        Json::Bool(b) => b.to_string(),
        Json::Null => "null".into(),
        Json::Array(items) => {
            let items: Vec<String> = items.iter().map(nested).collect();
            format!("[{}]", items.join(","))
        }
        Json::Object(fields) => {
            let mut fields: Vec<&(String, Json)> = fields.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            let fields: Vec<String> =
                fields.iter().map(|(k, v)| format!("{}:{}", Json::String(k.clone()), nested(v))).collect();
            format!("{{{}}}", fields.join(","))
        }
    }
}

/// A value inside an array or object: strings quoted as JSON.
fn nested(value: &Json) -> String {
    match value {
        Json::String(_) => value.to_string(),
        other => canonical(other),
    }
}

/// A JSON number's shortest exact decimal text: no exponent, no leading or trailing zeros, no
/// `+`, `0` for any zero. Text that is no number is kept as it is.
fn canonical_number(text: &str) -> String {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => match e.parse::<i64>() {
            Ok(e) => (m, e),
            Err(_) => return text.to_owned(),
        },
        None => (digits, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_only = whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits_only {
        return text.to_owned();
    }
    // All the digits, and where the point goes among them.
    let all: String = format!("{whole}{fraction}");
    let point = whole.len() as i64 + exponent;
    let first = all.bytes().position(|b| b != b'0');
    let Some(first) = first else { return "0".into() };
    let last = all.bytes().rposition(|b| b != b'0').unwrap_or(first);
    let significant = &all[first..=last];
    let point = point - first as i64; // the point's place counted from the first significant digit
    let body = if point <= 0 {
        format!("0.{}{significant}", "0".repeat((-point) as usize))
    } else if point as usize >= significant.len() {
        format!("{significant}{}", "0".repeat(point as usize - significant.len()))
    } else {
        format!("{}.{}", &significant[..point as usize], &significant[point as usize..])
    };
    if negative {
        format!("-{body}")
    } else {
        body
    }
}

/// Whether `text` is a value this policy hashed.
pub fn is_hash(text: &str) -> bool {
    text.strip_prefix(HASH_PREFIX)
        .is_some_and(|d| d.len() == 43 && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

#[cfg(test)]
mod tests;
