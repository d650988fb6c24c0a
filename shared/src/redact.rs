//! Delta and skip tokens out of text: Protime's error messages, and errors that quote a page's
//! URL, can carry the opaque token of a deltaLink, which must never reach a log, an error, a
//! report or the sync state. Applied where a Protime message enters the library
//! (`protime::client`), and by the CLI on whatever it prints.

/// `text` with the value of every URL query parameter whose name contains `token` (a
/// deltaToken, a skip token) replaced by `[redacted]`: error messages can quote a page's URL.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['?', '&']) {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let name_end = rest.find(|c: char| c == '=' || c == '&' || c == '?' || c.is_whitespace()).unwrap_or(rest.len());
        if rest[name_end..].starts_with('=') && rest[..name_end].to_ascii_lowercase().contains("token") {
            out.push_str(&rest[..=name_end]);
            rest = &rest[name_end + 1..];
            let value_end = rest
                .find(|c: char| matches!(c, '&' | ')' | '"' | '\'' | ',' | '>' | ']') || c.is_whitespace())
                .unwrap_or(rest.len());
            out.push_str("[redacted]");
            rest = &rest[value_end..];
        }
    }
    out.push_str(rest);
    out
}

/// [`redact`] on every string of a JSON value.
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => *s = redact(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::redact;

    #[test]
    fn token_parameters_in_urls_are_redacted_and_nothing_else() {
        assert_eq!(
            redact("error sending request for url (https://h/delta/clockings?deltaToken=s3cr3t&x=1)"),
            "error sending request for url (https://h/delta/clockings?deltaToken=[redacted]&x=1)"
        );
        assert_eq!(redact("/a?page=2&$skipToken=abc def"), "/a?page=2&$skipToken=[redacted] def");
        assert_eq!(redact("Protime answered 409: what? & why"), "Protime answered 409: what? & why");
        assert_eq!(redact("x?token="), "x?token=[redacted]");
    }
}
