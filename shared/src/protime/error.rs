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
    /// Protime asked to wait (`Retry-After` on a 429 or 503) longer than the call may still take
    /// (the retry policy's `max_elapsed`, or the deadline of [`within_deadline`](super::client::within_deadline)):
    /// given up at once rather than waited for in vain.
    #[error("{}", retry_later_sentence(*.status, .message, *.retry_after_secs, *.left_secs))]
    RetryAfterTooLong { status: u16, message: String, retry_after_secs: u64, left_secs: u64 },
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

/// "Protime is unavailable (503, maintenance): it asked to retry after 60 s, more than this run
/// has left (20 s); the next run tries again".
fn retry_later_sentence(status: u16, message: &str, retry_after_secs: u64, left_secs: u64) -> String {
    let what = match status {
        503 => "Protime is unavailable",
        429 => "Protime is rate limiting this client",
        _ => "Protime cannot answer now",
    };
    let detail = if message.is_empty() { String::new() } else { format!(", {message}") };
    format!(
        "{what} ({status}{detail}): it asked to retry after {retry_after_secs} s, more than this run has left \
         ({left_secs} s); the next run tries again"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_after_beyond_the_budget_reads_as_a_sentence() {
        let e = ProtimeError::RetryAfterTooLong {
            status: 503,
            message: "maintenance".into(),
            retry_after_secs: 60,
            left_secs: 20,
        };
        assert_eq!(
            e.to_string(),
            "Protime is unavailable (503, maintenance): it asked to retry after 60 s, more than this run has left \
             (20 s); the next run tries again"
        );
        let e =
            ProtimeError::RetryAfterTooLong { status: 429, message: String::new(), retry_after_secs: 5, left_secs: 1 };
        assert!(e.to_string().starts_with("Protime is rate limiting this client (429): it asked to retry after 5 s"));
    }
}
