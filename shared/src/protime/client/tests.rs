//! Unit tests of `client`.

use super::*;
use crate::protime::answer::*;
use crate::protime::page::LinksFollowed;

#[test]
fn a_protime_error_that_quotes_a_delta_link_keeps_no_token() {
    let body = br#"{"error":{"code":"BadRequest","message":"invalid /delta/clockings?deltaToken=s3cr3t-t0ken","reasons":["at /delta/clockings?deltaToken=s3cr3t-t0ken&x=1"]}}"#;
    let error = api_error(StatusCode::BAD_REQUEST, body);
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains("s3cr3t-t0ken"), "{text}");
        assert!(text.contains("deltaToken=[redacted]"), "{text}");
    }
}

#[test]
fn protime_error_bodies_are_parsed() {
    let body = br#"{"error":{"code":"InvalidFilter","message":"The filter is invalid","reasons":["date range exceeds 1 year"]}}"#;
    let err = api_error(StatusCode::BAD_REQUEST, body);
    assert_eq!(
        err,
        ProtimeError::Api {
            status: 400,
            code: "InvalidFilter".into(),
            message: "The filter is invalid".into(),
            reasons: vec!["date range exceeds 1 year".into()]
        }
    );
    assert_eq!(
        err.to_string(),
        "Protime answered 400: InvalidFilter The filter is invalid (date range exceeds 1 year)"
    );
    let err = api_error(StatusCode::BAD_GATEWAY, b"<html>");
    assert!(matches!(err, ProtimeError::Api { status: 502, ref code, .. } if code == "Bad Gateway"));
}

#[test]
fn backoff_stays_within_its_bound() {
    let policy = RetryPolicy::default();
    for attempt in 1..40 {
        assert!(policy.backoff(attempt) <= policy.max_delay);
    }
    assert!(policy.backoff(1) <= Duration::from_millis(500));
}

#[test]
fn links_resolve_against_the_api_base() {
    let client = client();
    assert_eq!(
        client.resolve("/connector/protimeapi/api/v1/clockings?skip=2").unwrap().as_str(),
        "https://acme.myprotime.eu/connector/protimeapi/api/v1/clockings?skip=2"
    );
    assert_eq!(
        client.resolve("delta/clockings?deltaToken=x").unwrap().as_str(),
        "https://acme.myprotime.eu/connector/protimeapi/api/v1/delta/clockings?deltaToken=x"
    );
    assert_eq!(
        client.resolve("https://acme.myprotime.eu/connector/protimeapi/api/v1/x").unwrap().as_str(),
        "https://acme.myprotime.eu/connector/protimeapi/api/v1/x"
    );
    assert_eq!(
        client.list_url_with_references("people", None, false, "(people,@badge-number)"),
        "https://acme.myprotime.eu/connector/protimeapi/api/v1/people?externalReferences=%28people%2C%40badge-number%29"
    );
    assert_eq!(
        client.list_url("paid-presences", Some("date ge '2025-01-01'"), true),
        "https://acme.myprotime.eu/connector/protimeapi/api/v1/paid-presences?filter=date+ge+%272025-01-01%27&delta"
    );
}

#[test]
fn scopes_cover_webhooks_and_each_collection() {
    assert_eq!(
        scopes_for(["clockings"]),
        [
            "connector-protimeapi-webhooks.read",
            "connector-protimeapi-webhooks.write",
            "connector-protimeapi-clockings.read"
        ]
    );
}

fn client() -> ProtimeClient {
    ProtimeClient::new(
        ProtimeCredentials::new("acme", "myprotime.eu", "id", "secret"),
        ClientOptions::new(scopes_for(["clockings"]), "Acme"),
    )
    .unwrap()
}

#[test]
fn links_to_another_origin_are_never_followed_and_never_quoted() {
    let client = client();
    for link in [
        "https://evil.example/connector/protimeapi/api/v1/delta/clockings?deltaToken=s3cr3t",
        "http://acme.myprotime.eu/connector/protimeapi/api/v1/clockings?deltaToken=s3cr3t",
        "https://acme.myprotime.eu:8443/x?deltaToken=s3cr3t",
        "//evil.example/x?deltaToken=s3cr3t",
    ] {
        let err = client.resolve(link).unwrap_err().to_string();
        assert!(err.contains("another origin") && !err.contains("s3cr3t"), "{link}: {err}");
    }
}

#[tokio::test]
async fn a_transport_error_never_names_the_link_and_its_delta_token() {
    // Nothing listens on port 9 of 127.0.0.1: the connection is refused.
    let error = reqwest::Client::new().get("http://127.0.0.1:9/delta/clockings?deltaToken=s3cr3t").send().await;
    let text = transport(error.unwrap_err()).to_string();
    assert!(!text.contains("s3cr3t") && !text.contains("deltaToken"), "{text}");
}

#[test]
fn a_link_followed_twice_is_refused() {
    let mut followed = LinksFollowed::default();
    followed.first_time("/a?page=1").unwrap();
    followed.first_time("/a?page=2").unwrap();
    assert!(followed.first_time("/a?page=1").is_err());
}

#[test]
fn tokens_are_reused_until_a_minute_before_expiry_and_at_least_half_their_life() {
    assert_eq!(reuse_for(Duration::from_secs(1800)), Duration::from_secs(1740));
    assert_eq!(reuse_for(Duration::from_secs(90)), Duration::from_secs(45));
    assert_eq!(reuse_for(Duration::from_secs(30)), Duration::from_secs(15));
    assert_eq!(reuse_for(Duration::ZERO), Duration::ZERO);
    assert_eq!(reuse_for(Duration::from_secs(u64::MAX)), MAX_TOKEN_REUSE, "a garbage expires_in is capped");
}

#[test]
fn webhooks_listed_without_our_fields_are_skipped_not_fatal() {
    let body = serde_json::json!({"value": [
        {"id": "w1", "validUntil": "2026-03-01T00:00:00Z", "status": "Enabled",
         "destinationUrl": "https://x/webhooks/clockings", "collectionName": "clockings"},
        {"id": "w2", "status": "Uninitialized", "destinationUrl": null, "collectionName": "breaks"},
        {"id": "w3"},
    ]});
    let list: WebhookList = serde_json::from_value(body).unwrap();
    let read: Vec<Webhook> = list.value.into_iter().filter_map(readable_webhook).collect();
    assert_eq!(read.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), ["w1"]);
}

#[test]
fn the_scope_a_request_needs_follows_its_path() {
    let cases = [
        ("GET", "/webhooks", Some("connector-protimeapi-webhooks.read")),
        ("GET", "webhooks/abc-1?x=1", Some("connector-protimeapi-webhooks.read")),
        ("POST", "/webhooks?externalReferences=(people,@badge-number)", Some("connector-protimeapi-webhooks.write")),
        ("DELETE", "/webhooks/abc-1", Some("connector-protimeapi-webhooks.write")),
        ("GET", "/clockings?filter=date+ge+%272026-01-01%27&delta", Some("connector-protimeapi-clockings.read")),
        ("GET", "/paid-presences", Some("connector-protimeapi-paid-presences.read")),
        ("GET", "/delta/people?deltaToken=abc", Some("connector-protimeapi-people.read")),
        ("GET", "/delta", None),
        ("GET", "/", None),
        ("GET", "", None),
        ("GET", "/Odd Path", None),
    ];
    for (method, path, scope) in cases {
        assert_eq!(required_scope(method, path).as_deref(), scope, "{method} {path}");
    }
}

#[test]
fn validation_errors_are_read_in_either_shape_shortened_and_redacted() {
    let strings = br#"{"validationErrors":["The destination URL is invalid","Unknown collection at /delta/x?deltaToken=s3cr3t"]}"#;
    let err = api_error(StatusCode::BAD_REQUEST, strings);
    assert_eq!(
        err,
        ProtimeError::Validation {
            status: 400,
            messages: vec![
                "The destination URL is invalid".into(),
                "Unknown collection at /delta/x?deltaToken=[redacted]".into()
            ]
        }
    );
    let objects = br#"{"validationErrors":[{"propertyName":"destinationUrl","errorMessage":"must be https"},{"Message":"bad"},{"code":7}]}"#;
    let ProtimeError::Validation { messages, .. } = api_error(StatusCode::BAD_REQUEST, objects) else { panic!() };
    assert_eq!(messages, ["destinationUrl: must be https", "bad", r#"{"code":7}"#]);
    let map = br#"{"validationErrors":{"collectionName":["unknown","required"]}}"#;
    let ProtimeError::Validation { messages, .. } = api_error(StatusCode::BAD_REQUEST, map) else { panic!() };
    assert_eq!(messages, ["collectionName: unknown", "collectionName: required"]);

    let long = format!(r#"{{"validationErrors":["{}"],"title":"x"}}"#, "é".repeat(500));
    let ProtimeError::Validation { messages, .. } = api_error(StatusCode::BAD_REQUEST, long.as_bytes()) else {
        panic!()
    };
    assert_eq!(messages[0].chars().count(), MAX_MESSAGE_CHARS + 1, "cut, with … marking the cut");
    let many: Vec<String> = (1..=9).map(|i| format!("m{i}")).collect();
    let body = serde_json::json!({ "validationErrors": many }).to_string();
    let ProtimeError::Validation { messages, .. } = api_error(StatusCode::BAD_REQUEST, body.as_bytes()) else {
        panic!()
    };
    assert_eq!(messages, ["m1", "m2", "m3", "m4", "and 5 more"]);
    // Protime's wrapper wins: that is not a validation error.
    let wrapped = br#"{"error":{"code":"BadRequest","message":"x"},"validationErrors":["y"]}"#;
    assert!(matches!(api_error(StatusCode::BAD_REQUEST, wrapped), ProtimeError::Api { .. }));
    assert_eq!(
        api_error(StatusCode::BAD_REQUEST, br#"{"validationErrors":["a"]}"#).to_string(),
        "Protime refused the request as invalid (400): a"
    );
}

#[test]
fn token_endpoint_errors_say_which_scope_or_setting_to_fix() {
    let asked = scopes_for(["clockings"]);
    assert_eq!(
        token_error(StatusCode::BAD_REQUEST, br#"{"error":"invalid_scope"}"#, &asked),
        ProtimeError::ScopeRefused { scopes: asked.clone() },
        "no scope named: every scope asked for"
    );
    let named = br#"{"error":"invalid_scope","error_description":"Scopes not allowed: connector-protimeapi-clockings.read, 'connector-protimeapi-webhooks.write'."}"#;
    assert_eq!(
        token_error(StatusCode::BAD_REQUEST, named, &asked),
        ProtimeError::ScopeRefused {
            scopes: vec!["connector-protimeapi-clockings.read".into(), "connector-protimeapi-webhooks.write".into()]
        }
    );
    let err = token_error(StatusCode::BAD_REQUEST, br#"{"error":"invalid_client","error_description":"no"}"#, &asked);
    assert_eq!(
        err.to_string(),
        "the token endpoint refused the client credentials (400): invalid_client; check clientId and \
         clientSecret in the Protime credentials secret"
    );
    let err = token_error(StatusCode::UNAUTHORIZED, b"", &asked);
    assert!(matches!(&err, ProtimeError::Auth { status: 401, message } if message.contains("check clientId")), "{err}");
    let err = token_error(StatusCode::BAD_REQUEST, br#"{"error":"unsupported_grant_type"}"#, &asked);
    assert!(matches!(&err, ProtimeError::Auth { status: 400, message } if message == "unsupported_grant_type"));
    let quoted = br#"{"error":"invalid_request","error_description":"client_secret s3cr3t-value is malformed"}"#;
    let err = scrub(token_error(StatusCode::BAD_REQUEST, quoted, &asked), "s3cr3t-value");
    assert!(!format!("{err} {err:?}").contains("s3cr3t-value"), "{err}");
}

#[test]
fn a_second_401_names_the_scope_only_when_protime_says_insufficient_scope() {
    let clockings = Some("connector-protimeapi-clockings.read");
    let body = br#"{"error":{"code":"Unauthorized","message":"Insufficient scope"}}"#;
    assert_eq!(
        refused_token(&HeaderMap::new(), body, clockings),
        ProtimeError::MissingScope { status: 401, scope: "connector-protimeapi-clockings.read".into() }
    );
    let mut challenge = HeaderMap::new();
    challenge.insert(reqwest::header::WWW_AUTHENTICATE, "Bearer error=\"insufficient_scope\"".parse().unwrap());
    assert!(matches!(refused_token(&challenge, b"", clockings), ProtimeError::MissingScope { status: 401, .. }));
    let body = br#"{"error":{"code":"Unauthorized","message":"Missing or invalid access token"}}"#;
    let err = refused_token(&HeaderMap::new(), body, clockings);
    assert!(matches!(err, ProtimeError::Api { status: 401, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("refused even after a new one was fetched"), "{text}");
    assert!(text.contains("holds the scope connector-protimeapi-clockings.read"), "{text}");
    assert_eq!(
        forbidden(b"", None),
        ProtimeError::Api { status: 403, code: "Forbidden".into(), message: String::new(), reasons: vec![] }
    );
}

fn unavailable() -> ProtimeError {
    api_error(StatusCode::SERVICE_UNAVAILABLE, br#"{"error":{"code":"ServiceUnavailable","message":"maintenance"}}"#)
}

#[tokio::test]
async fn a_retry_after_beyond_the_time_left_gives_up_at_once() {
    let client = client();
    let started = Instant::now();
    let err = client.pause_or_give_up(1, started, (unavailable(), Some(Duration::from_secs(61)))).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "Protime is unavailable (503, maintenance): it asked to retry after 61 s, more than this run has left"
        ) && text.ends_with("s); the next run tries again"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "no wait");
    // A deadline shortens the time left below the policy's.
    let deadline = Instant::now() + Duration::from_secs(2);
    let err = within_deadline(
        deadline,
        client.pause_or_give_up(1, Instant::now(), (unavailable(), Some(Duration::from_secs(5)))),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProtimeError::RetryAfterTooLong { retry_after_secs: 5, left_secs: 1, .. }), "{err}");
    // One that fits is waited out.
    let waited = Instant::now();
    client.pause_or_give_up(1, Instant::now(), (unavailable(), Some(Duration::from_millis(50)))).await.unwrap();
    assert!(waited.elapsed() >= Duration::from_millis(50));
}

#[tokio::test]
async fn a_client_without_a_token_is_not_fresh() {
    assert!(!client().has_fresh_token().await);
}
