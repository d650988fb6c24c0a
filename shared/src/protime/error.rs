//! What can go wrong talking to Protime.

/// What went wrong talking to Protime. Never holds a token, key or client secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtimeError {
    #[error("Protime answered {status}: {code} {message}{}", fmt_reasons(.reasons))]
    Api { status: u16, code: String, message: String, reasons: Vec<String> },
    #[error("the token endpoint refused the client credentials ({status}): {message}")]
    Auth { status: u16, message: String },
    /// The token endpoint refused the scopes asked for (`invalid_scope`): `scopes` are the ones
    /// found missing, or every scope asked for when Protime did not say which.
    #[error("the token endpoint refused the scopes {}: grant them to the API client in myProtime", .scopes.join(", "))]
    ScopeRefused { scopes: Vec<String> },
    /// A valid token without the scope the request needs (403; 401 "insufficient scope" on the
    /// webhook pages).
    #[error(
        "Protime answered {status}: the API client lacks the scope {scope}; grant it to the API client in myProtime"
    )]
    MissingScope { status: u16, scope: String },
    /// A model-validation error: a 400 with `validationErrors` and no `{"error":…}` wrapper.
    #[error("Protime refused the request as invalid ({status}): {}", .messages.join("; "))]
    Validation { status: u16, messages: Vec<String> },
    #[error("could not reach Protime: {0}")]
    Transport(String),
    #[error("Protime answered something unexpected: {0}")]
    InvalidResponse(String),
    #[error("the client settings are invalid: {0}")]
    InvalidSettings(String),
    #[error("the delta link has expired (410 Gone); start a new delta")]
    DeltaGone,
    #[error("another delta request is in progress (409 Conflict); retry later")]
    DeltaConflict,
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted { attempts: u32, last: Box<ProtimeError> },
}

fn fmt_reasons(reasons: &[String]) -> String {
    if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", reasons.join("; "))
    }
}
