//! Protime's answers read in Protime's terms: its error bodies (`{"error":{…}}`, the bare
//! `validationErrors` of a model-validation error, OAuth2 errors of the token endpoint), the
//! scope a refusal is about, `Retry-After`, and transport failures without the request's URL.

use super::error::ProtimeError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Deserialize;
use std::time::Duration;

/// At most this many validation messages are kept from one answer.
pub(super) const MAX_VALIDATION_MESSAGES: usize = 5;

/// Each message Protime sends is kept up to this many characters.
pub(super) const MAX_MESSAGE_CHARS: usize = 200;

/// An OAuth2 error of the token endpoint: `{"error":"invalid_scope","error_description":…}`.
#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    reasons: Option<serde_json::Value>,
}

/// A transport failure, without the request's URL: reqwest names it in its message, and a
/// deltaLink's query holds the delta token.
pub(super) fn transport(error: reqwest::Error) -> ProtimeError {
    ProtimeError::Transport(error.without_url().to_string())
}

pub(super) fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After` in seconds (the form Protime uses); an HTTP date falls back to backoff.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Protime's `{"error":{"code","message","reasons"}}`, a model-validation error (a 400 with
/// `validationErrors` and no wrapper: [`ProtimeError::Validation`]), or the status alone if the
/// body is neither. Protime's words are shortened and redacted (they may quote the request's
/// URL, a deltaLink's token with it).
pub(super) fn api_error(status: StatusCode, body: &[u8]) -> ProtimeError {
    if let Some(messages) = validation_messages(body) {
        return ProtimeError::Validation { status: status.as_u16(), messages };
    }
    let (code, message, reasons) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => {
            let reasons = match error.reasons {
                Some(serde_json::Value::Array(items)) => {
                    items.iter().map(|r| r.as_str().map(str::to_owned).unwrap_or_else(|| r.to_string())).collect()
                }
                Some(serde_json::Value::Null) | None => Vec::new(),
                Some(other) => vec![other.to_string()],
            };
            let reasons = reasons.iter().map(|r| shorten(r)).collect();
            (shorten(&error.code), shorten(&error.message), reasons)
        }
        Err(_) => (status.canonical_reason().unwrap_or("error").to_owned(), String::new(), Vec::new()),
    };
    ProtimeError::Api { status: status.as_u16(), code, message, reasons }
}

/// Redacted, and cut to [`MAX_MESSAGE_CHARS`] characters (`…` marks a cut).
pub(super) fn shorten(text: &str) -> String {
    let text = crate::redact::redact(text.trim());
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The messages of a model-validation error: a JSON object with `validationErrors` (any case)
/// and no `{"error":{…}}` wrapper. Each item may be a string, or an object whose message is
/// its `message`, `errorMessage`, `description`, `detail`, `title` or `reason` (prefixed with
/// its `propertyName`, `field`, `property`, `memberName`, `name` or `path` when it has one); a
/// map of field → messages is read likewise. At most [`MAX_VALIDATION_MESSAGES`], the last
/// saying how many more there were.
pub(super) fn validation_messages(body: &[u8]) -> Option<Vec<String>> {
    let serde_json::Value::Object(map) = serde_json::from_slice::<serde_json::Value>(body).ok()? else {
        return None;
    };
    if map.get("error").is_some_and(serde_json::Value::is_object) {
        return None;
    }
    let errors = map.iter().find(|(k, _)| k.eq_ignore_ascii_case("validationErrors")).map(|(_, v)| v)?;
    let mut messages: Vec<String> = match errors {
        serde_json::Value::Array(items) => items.iter().map(|item| validation_message(None, item)).collect(),
        serde_json::Value::Object(fields) => fields
            .iter()
            .flat_map(|(field, v)| match v {
                serde_json::Value::Array(items) => {
                    items.iter().map(|item| validation_message(Some(field), item)).collect::<Vec<_>>()
                }
                other => vec![validation_message(Some(field), other)],
            })
            .collect(),
        other => vec![validation_message(None, other)],
    };
    messages.retain(|m| !m.is_empty());
    if messages.len() > MAX_VALIDATION_MESSAGES {
        let more = messages.len() - (MAX_VALIDATION_MESSAGES - 1);
        messages.truncate(MAX_VALIDATION_MESSAGES - 1);
        messages.push(format!("and {more} more"));
    }
    Some(messages)
}

/// One validation message, shortened and redacted.
pub(super) fn validation_message(field: Option<&str>, item: &serde_json::Value) -> String {
    fn first<'a>(object: &'a serde_json::Map<String, serde_json::Value>, names: &[&str]) -> Option<&'a str> {
        names
            .iter()
            .find_map(|name| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str()))
    }
    let (field, text) = match item {
        serde_json::Value::String(text) => (field.map(str::to_owned), text.clone()),
        serde_json::Value::Object(object) => {
            let own_field = first(object, &["propertyName", "field", "property", "memberName", "name", "path"]);
            let text = first(object, &["message", "errorMessage", "description", "detail", "title", "reason"])
                .map(str::to_owned)
                .unwrap_or_else(|| item.to_string());
            (own_field.or(field).map(str::to_owned), text)
        }
        serde_json::Value::Null => return String::new(),
        other => (field.map(str::to_owned), other.to_string()),
    };
    match field.filter(|f| !f.is_empty()) {
        Some(field) => shorten(&format!("{field}: {text}")),
        None => shorten(&text),
    }
}

/// A 403: a valid token without the scope the request needs.
pub(super) fn forbidden(body: &[u8], scope: Option<String>) -> ProtimeError {
    match scope {
        Some(scope) => ProtimeError::MissingScope { status: 403, scope },
        None => api_error(StatusCode::FORBIDDEN, body),
    }
}

/// A second 401, after a new token: "insufficient scope" (the webhook pages' 401, in the body or
/// the `WWW-Authenticate` header) names the scope; anything else says the token was refused.
pub(super) fn refused_token(headers: &HeaderMap, body: &[u8], scope: Option<&str>) -> ProtimeError {
    let says_scope = |text: &str| {
        let text = text.to_ascii_lowercase();
        text.contains("insufficient scope") || text.contains("insufficient_scope")
    };
    let challenge = headers.get(reqwest::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some(scope) = scope.filter(|_| says_scope(&String::from_utf8_lossy(body)) || says_scope(challenge)) {
        return ProtimeError::MissingScope { status: 401, scope: scope.to_owned() };
    }
    let (code, said, reasons) = match api_error(StatusCode::UNAUTHORIZED, body) {
        ProtimeError::Api { code, message, reasons, .. } => (code, message, reasons),
        _ => ("Unauthorized".to_owned(), String::new(), Vec::new()),
    };
    let said = if said.is_empty() { String::new() } else { format!(" (Protime: {said})") };
    let scope = scope.map(|s| format!(" and holds the scope {s}")).unwrap_or_default();
    ProtimeError::Api {
        status: 401,
        code,
        message: format!(
            "the access token was refused even after a new one was fetched{said}; check that the API client is \
             active in myProtime{scope}, and that the token URL and the API base belong to the same tenant"
        ),
        reasons,
    }
}

/// An error answer of the token endpoint (retryable ones aside): OAuth2's
/// `{"error":"invalid_scope","error_description":…}`, or Protime's own error body.
pub(super) fn token_error(status: StatusCode, body: &[u8], asked: &[String]) -> ProtimeError {
    let check_credentials = "check clientId and clientSecret in the Protime credentials secret";
    if let Ok(OAuthError { error, error_description }) = serde_json::from_slice::<OAuthError>(body) {
        let description = error_description.as_deref().map(shorten).unwrap_or_default();
        return match error.as_str() {
            "invalid_scope" => {
                let named = named_scopes(&description);
                ProtimeError::ScopeRefused { scopes: if named.is_empty() { asked.to_vec() } else { named } }
            }
            "invalid_client" | "unauthorized_client" => {
                ProtimeError::Auth { status: status.as_u16(), message: format!("{error}; {check_credentials}") }
            }
            _ => {
                let error = shorten(&error);
                let message = if description.is_empty() { error } else { format!("{error}: {description}") };
                let message = if status == StatusCode::UNAUTHORIZED {
                    format!("{message}; {check_credentials}")
                } else {
                    message
                };
                ProtimeError::Auth { status: status.as_u16(), message }
            }
        };
    }
    let message = match api_error(status, body) {
        ProtimeError::Api { code, message, .. } if !message.is_empty() => format!("{code} {message}"),
        ProtimeError::Api { code, .. } => code,
        other => other.to_string(),
    };
    let message = if status == StatusCode::UNAUTHORIZED { format!("{message}; {check_credentials}") } else { message };
    ProtimeError::Auth { status: status.as_u16(), message }
}

/// The scopes an `invalid_scope` description names (`connector-protimeapi-…` words).
pub(super) fn named_scopes(description: &str) -> Vec<String> {
    let mut named: Vec<String> = Vec::new();
    for word in
        description.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '\'' | '"' | '(' | ')' | '[' | ']'))
    {
        let word = word.trim_end_matches(['.', ':']);
        if word.starts_with("connector-protimeapi-") && !named.iter().any(|n| n == word) {
            named.push(word.to_owned());
        }
    }
    named
}

/// The client secret out of an error, should a token endpoint ever quote it back.
pub(super) fn scrub(error: ProtimeError, secret: &str) -> ProtimeError {
    if secret.is_empty() {
        return error;
    }
    let clean = |text: String| text.replace(secret, "[redacted]");
    match error {
        ProtimeError::Auth { status, message } => ProtimeError::Auth { status, message: clean(message) },
        ProtimeError::ScopeRefused { scopes } => {
            ProtimeError::ScopeRefused { scopes: scopes.into_iter().map(clean).collect() }
        }
        other => other,
    }
}
