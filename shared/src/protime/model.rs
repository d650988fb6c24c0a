//! Protime's webhook resources as this project reads them.

use crate::signing::signature::SigningKey;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookStatus {
    Enabled,
    Disabled,
    /// Older API pages show it; treated as "needs a POST".
    Uninitialized,
    Other(String),
}

impl WebhookStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "Enabled" => WebhookStatus::Enabled,
            "Disabled" => WebhookStatus::Disabled,
            "Uninitialized" => WebhookStatus::Uninitialized,
            other => WebhookStatus::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            WebhookStatus::Enabled => "Enabled",
            WebhookStatus::Disabled => "Disabled",
            WebhookStatus::Uninitialized => "Uninitialized",
            WebhookStatus::Other(s) => s,
        }
    }
}

impl Serialize for WebhookStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WebhookStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| WebhookStatus::parse(&s))
    }
}

/// A webhook as `GET /webhooks` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub valid_until: DateTime<Utc>,
    pub status: WebhookStatus,
    pub destination_url: String,
    pub collection_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireWebhook {
    pub id: serde_json::Value,
    pub valid_until: DateTime<chrono::FixedOffset>,
    pub status: String,
    pub destination_url: String,
    pub collection_name: String,
}

impl From<WireWebhook> for Webhook {
    fn from(w: WireWebhook) -> Self {
        Webhook {
            id: id_text(&w.id),
            valid_until: w.valid_until.with_timezone(&Utc),
            status: WebhookStatus::parse(&w.status),
            destination_url: w.destination_url,
            collection_name: w.collection_name,
        }
    }
}

/// What a create or re-enable returns: the new key is only ever shown here.
#[derive(Debug, Clone)]
pub struct CreatedWebhook {
    pub id: String,
    pub valid_until: DateTime<Utc>,
    pub status: WebhookStatus,
    pub key: SigningKey,
}

/// The docs do not name the key's field; these are tried in order, case-insensitively.
pub const KEY_FIELDS: &[&str] = &["key", "webhookKey", "privateKey", "privateWebhookKey", "secret"];

/// A create/re-enable answer that cannot be used. Never quotes the body (it holds the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateAnswerError {
    #[error("the create answer is not a JSON object")]
    NotAnObject,
    #[error("the create answer has no webhook key (looked for {})", KEY_FIELDS.join(", "))]
    NoKey,
    #[error("the create answer has no id")]
    NoId,
    #[error("the create answer has no valid validUntil")]
    NoValidUntil,
}

/// Reads a create/re-enable answer. `location_id` is the id from the `Location` header, used
/// when the body has none.
pub fn parse_created(body: &[u8], location_id: Option<&str>) -> Result<CreatedWebhook, CreateAnswerError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| CreateAnswerError::NotAnObject)?;
    let object = value.as_object().ok_or(CreateAnswerError::NotAnObject)?;
    let find = |name: &str| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    let key = KEY_FIELDS
        .iter()
        .find_map(|name| find(name).and_then(|v| v.as_str()).filter(|s| !s.is_empty()))
        .ok_or(CreateAnswerError::NoKey)?;
    let id = find("id").map(id_text).or_else(|| location_id.map(str::to_owned)).ok_or(CreateAnswerError::NoId)?;
    let valid_until = find("validUntil")
        .and_then(|v| v.as_str())
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .ok_or(CreateAnswerError::NoValidUntil)?
        .with_timezone(&Utc);
    let status = find("status").and_then(|v| v.as_str()).map(WebhookStatus::parse).unwrap_or(WebhookStatus::Enabled);
    Ok(CreatedWebhook { id, valid_until, status, key: SigningKey::new(key) })
}

fn id_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_found_under_any_documented_name_in_any_case() {
        for field in ["key", "WebhookKey", "privatekey", "privateWebhookKey", "SECRET"] {
            let body = format!(r#"{{"id":"w1","validUntil":"2025-03-31T12:30:00+02:00","{field}":"k-123"}}"#);
            let created = parse_created(body.as_bytes(), None).unwrap();
            assert_eq!(created.key.expose(), "k-123", "{field}");
            assert_eq!(created.valid_until.to_rfc3339(), "2025-03-31T10:30:00+00:00");
            assert_eq!(created.status, WebhookStatus::Enabled);
        }
    }

    #[test]
    fn a_missing_key_is_an_error_that_does_not_echo_the_body() {
        let body = br#"{"id":"w1","validUntil":"2025-03-31T12:30:00Z","token":"do-not-show"}"#;
        let err = parse_created(body, None).unwrap_err();
        assert_eq!(err, CreateAnswerError::NoKey);
        assert!(!err.to_string().contains("do-not-show"), "{err}");
    }

    #[test]
    fn the_id_falls_back_to_the_location_header() {
        let body = br#"{"validUntil":"2025-03-31T12:30:00Z","key":"k"}"#;
        assert_eq!(parse_created(body, Some("from-location")).unwrap().id, "from-location");
        assert!(parse_created(body, None).is_err());
    }
}
