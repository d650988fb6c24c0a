//! Protime's answers in Protime's terms, against the simulator: a missing scope names the scope,
//! validation errors keep their (redacted) messages, `Retry-After` is honoured within the time
//! the call has, the token's `expires_in` is what counts, a refused scope is named, and a warm
//! function's runs share one token.

use harness::simulator::{Fault, ScopeRefusal, Simulator, SimulatorConfig};
use harness::{fast_retries, put_secret, sdk_config, setup_config, shared_moto, unique};
use protime_webhooks::protime::client::{scopes_for, within_deadline, ClientOptions};
use protime_webhooks::protime::{Connect, CredentialsFromSecret, ProtimeClient, ProtimeCredentials, ProtimeError};
use serde_json::json;
use std::time::{Duration, Instant};

fn options(sim: &Simulator, scopes: Vec<String>) -> ClientOptions {
    let mut options = ClientOptions::new(scopes, "Test Company");
    options.api_base_url = Some(sim.api_base_url());
    options.token_url = Some(sim.token_url());
    fast_retries(&mut options);
    options
}

fn client_for(sim: &Simulator, collections: &[&str]) -> ProtimeClient {
    let options = options(sim, scopes_for(collections.iter().copied()));
    ProtimeClient::new(ProtimeCredentials::from_json(&sim.credentials_json()).unwrap(), options).unwrap()
}

fn scopes(names: &[&str]) -> Option<Vec<String>> {
    Some(names.iter().map(|s| s.to_string()).collect())
}

/// A people list: no filter needed.
async fn list_people(client: &ProtimeClient) -> Result<usize, ProtimeError> {
    let page = client.fetch_page(&client.list_url("people", None, false)).await?;
    Ok(page.read().map(|p| p.records.len()).unwrap_or_default())
}

#[tokio::test]
async fn a_403_on_one_collection_names_its_scope_while_another_collection_is_read() {
    let sim = Simulator::start(SimulatorConfig {
        granted_scopes: scopes(&[
            "connector-protimeapi-webhooks.read",
            "connector-protimeapi-webhooks.write",
            "connector-protimeapi-people.read",
        ]),
        ..Default::default()
    })
    .await;
    sim.seed("people", 2);
    let client = client_for(&sim, &["people", "counter-groups"]);

    assert_eq!(list_people(&client).await, Ok(2));
    let err = client.fetch_page(&client.list_url("counter-groups", None, false)).await.unwrap_err();
    assert_eq!(
        err,
        ProtimeError::MissingScope { status: 403, scope: "connector-protimeapi-counter-groups.read".into() }
    );
    assert_eq!(
        err.to_string(),
        "Protime answered 403: the API client lacks the scope connector-protimeapi-counter-groups.read; grant it \
         to the API client in myProtime"
    );
    assert_eq!(sim.count("GET", "/counter-groups"), 1, "a 403 is never retried");
    let granted = client.granted_scopes().await.unwrap();
    assert!(!granted.iter().any(|s| s == "connector-protimeapi-counter-groups.read"), "{granted:?}");
    assert_eq!(
        sim.issued_tokens().len(),
        1,
        "the token answer's scope said what it grants; no token was fetched again"
    );

    // A delta link of that collection needs the same scope.
    let err = client.fetch_page("delta/counter-groups?deltaToken=abc").await.unwrap_err();
    assert!(
        matches!(&err, ProtimeError::MissingScope { scope, .. } if scope == "connector-protimeapi-counter-groups.read")
    );
}

#[tokio::test]
async fn writing_webhooks_without_the_write_scope_names_it() {
    let sim = Simulator::start(SimulatorConfig {
        granted_scopes: scopes(&["connector-protimeapi-webhooks.read", "connector-protimeapi-clockings.read"]),
        ..Default::default()
    })
    .await;
    let client = client_for(&sim, &["clockings"]);
    assert_eq!(client.list_webhooks(None).await.unwrap(), []);
    let err = client.create_webhook("https://example.com/webhooks/clockings", "clockings", "").await.unwrap_err();
    assert_eq!(err, ProtimeError::MissingScope { status: 403, scope: "connector-protimeapi-webhooks.write".into() });

    // Granted later in myProtime: a new token carries it.
    sim.grant_scopes(None);
    sim.expire_tokens();
    client.create_webhook("https://example.com/webhooks/clockings", "clockings", "").await.unwrap();
}

#[tokio::test]
async fn a_second_401_saying_insufficient_scope_names_the_scope_any_other_says_what_to_check() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let client = client_for(&sim, &["people"]);
    for _ in 0..2 {
        let fault = Fault::Error { status: 401, message: "Insufficient scope".into(), reasons: vec![] };
        sim.inject_on("/people", fault);
    }
    assert_eq!(
        list_people(&client).await,
        Err(ProtimeError::MissingScope { status: 401, scope: "connector-protimeapi-people.read".into() })
    );
    assert_eq!(sim.issued_tokens().len(), 2, "one new token after the first 401");

    for _ in 0..2 {
        sim.inject_on("/people", Fault::Status { status: 401, retry_after_secs: None });
    }
    let err = list_people(&client).await.unwrap_err();
    assert!(matches!(err, ProtimeError::Api { status: 401, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("the access token was refused even after a new one was fetched"), "{text}");
    assert!(text.contains("holds the scope connector-protimeapi-people.read"), "{text}");
    for token in sim.issued_tokens() {
        assert!(!text.contains(&token));
    }
    assert_eq!(list_people(&client).await, Ok(0), "the next call starts with a new token");
}

#[tokio::test]
async fn validation_errors_come_through_shortened_and_redacted() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let client = client_for(&sim, &["clockings"]);
    let err = client.create_webhook("not a url", "timesheets", "").await.unwrap_err();
    assert_eq!(
        err,
        ProtimeError::Validation {
            status: 400,
            messages: vec![
                "destinationUrl: The destination URL is not a valid URL".into(),
                "collectionName: Unknown collection name".into()
            ]
        }
    );
    assert_eq!(sim.count("POST", "/webhooks"), 1, "a 400 is never retried");

    let long = "x".repeat(1000);
    sim.inject_on(
        "/people",
        Fault::Validation {
            messages: vec!["The link /delta/people?deltaToken=s3cr3t-delta is not valid".into(), long.clone()],
        },
    );
    let client = client_for(&sim, &["people"]);
    let err = list_people(&client).await.unwrap_err();
    let ProtimeError::Validation { status: 400, messages } = &err else { panic!("{err:?}") };
    assert_eq!(messages[0], "The link /delta/people?deltaToken=[redacted] is not valid");
    assert!(messages[1].chars().count() <= 201 && messages[1].ends_with('…'), "{}", messages[1]);
    assert!(!format!("{err} {err:?}").contains("s3cr3t-delta"));
}

#[tokio::test]
async fn a_503_with_a_short_retry_after_is_waited_out_and_the_call_succeeds() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    sim.seed("people", 1);
    let client = client_for(&sim, &["people"]);
    sim.maintenance(Duration::from_millis(1500), 1);
    let started = Instant::now();
    assert_eq!(list_people(&client).await, Ok(1));
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");
    let statuses: Vec<(String, u16)> = sim.seen().into_iter().map(|s| (s.path, s.status)).collect();
    assert_eq!(statuses.first(), Some(&("/token".to_owned(), 503)), "the token endpoint is under maintenance too");
    assert_eq!(statuses.last().map(|s| s.1), Some(200), "{statuses:?}");

    // A 429 with Retry-After likewise.
    sim.inject_on("/people", Fault::Status { status: 429, retry_after_secs: Some(1) });
    assert_eq!(list_people(&client).await, Ok(1));
}

#[tokio::test]
async fn a_long_maintenance_window_gives_up_at_once_with_a_sentence() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let mut options = options(&sim, scopes_for(["people"]));
    options.retry.max_elapsed = Duration::from_secs(5);
    let client = ProtimeClient::new(ProtimeCredentials::from_json(&sim.credentials_json()).unwrap(), options).unwrap();
    sim.maintenance(Duration::from_secs(600), 60);
    let started = Instant::now();
    let err = list_people(&client).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "no wait for a Retry-After beyond the time left");
    assert!(matches!(err, ProtimeError::RetryAfterTooLong { status: 503, retry_after_secs: 60, .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "Protime is unavailable (503, maintenance): it asked to retry after 60 s, more than this run has left"
        ),
        "{text}"
    );

    // A caller's deadline bounds a call the same way, whatever the policy allows.
    let client = client_for(&sim, &["people"]);
    sim.maintenance(Duration::from_secs(600), 10);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let err = within_deadline(deadline, list_people(&client)).await.unwrap_err();
    assert!(matches!(err, ProtimeError::RetryAfterTooLong { retry_after_secs: 10, .. }), "{err:?}");

    // Once the window is over, calls succeed.
    sim.advance(chrono::Duration::seconds(601));
    assert_eq!(list_people(&client).await, Ok(0));
}

#[tokio::test]
async fn a_304_is_an_unexpected_answer() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let client = client_for(&sim, &["people"]);
    sim.inject_on("/people", Fault::Body { status: 304, body: String::new() });
    let err = list_people(&client).await.unwrap_err();
    assert!(matches!(&err, ProtimeError::InvalidResponse(m) if m.contains("304")), "{err}");
}

#[tokio::test]
async fn a_short_expires_in_makes_the_client_fetch_a_new_token_after_it() {
    let sim =
        Simulator::start(SimulatorConfig { token_lifetime: chrono::Duration::seconds(2), ..Default::default() }).await;
    let client = client_for(&sim, &["people"]);
    list_people(&client).await.unwrap();
    list_people(&client).await.unwrap();
    assert_eq!(sim.issued_tokens().len(), 1, "reused within its life");
    // Reused for half of a life under a minute: past 1 s, a new one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    list_people(&client).await.unwrap();
    assert_eq!(sim.issued_tokens().len(), 2);
    assert!(sim.seen().iter().all(|s| s.status != 401), "never sent an expired token");
}

#[tokio::test]
async fn a_strictly_refused_scope_is_named() {
    let sim = Simulator::start(SimulatorConfig {
        granted_scopes: scopes(&["connector-protimeapi-webhooks.read", "connector-protimeapi-webhooks.write"]),
        scope_refusal: ScopeRefusal::Strict,
        ..Default::default()
    })
    .await;
    let client = client_for(&sim, &["people"]);
    let err = client.list_webhooks(None).await.unwrap_err();
    assert_eq!(err, ProtimeError::ScopeRefused { scopes: vec!["connector-protimeapi-people.read".into()] });
    assert_eq!(
        err.to_string(),
        "the token endpoint refused the scopes connector-protimeapi-people.read: grant them to the API client in \
         myProtime"
    );
    assert_eq!(sim.count("GET", "/webhooks"), 0);

    // Subset: the token comes with what is granted.
    let sim = Simulator::start(SimulatorConfig {
        granted_scopes: scopes(&["connector-protimeapi-webhooks.read"]),
        ..Default::default()
    })
    .await;
    let client = client_for(&sim, &["people"]);
    assert_eq!(client.granted_scopes().await.unwrap(), ["connector-protimeapi-webhooks.read"]);
    assert_eq!(client.requested_scopes().len(), 3);
}

#[tokio::test]
async fn wrong_client_credentials_say_to_check_the_secret_without_quoting_it() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let options = options(&sim, scopes_for(["people"]));
    let credentials = ProtimeCredentials::new("sim", "simulator.local", "sim-client", "wrong-s3cr3t");
    let err = ProtimeClient::new(credentials, options).unwrap().list_webhooks(None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the token endpoint refused the client credentials (401): invalid_client; check clientId and clientSecret \
         in the Protime credentials secret"
    );
    assert!(!format!("{err:?}").contains("wrong-s3cr3t"));
}

/// A `CredentialsFromSecret` on the shared emulator, its secret holding `credentials`.
async fn connector(sim: &Simulator, credentials: &str) -> (CredentialsFromSecret, aws_config::SdkConfig, String) {
    let moto = shared_moto();
    let setup = setup_config(&moto.endpoint()).await;
    let id = unique("protime-terms-credentials");
    put_secret(&setup, &id, credentials).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk_config(&moto.endpoint()).await);
    (CredentialsFromSecret::new(secrets, &id, options(sim, scopes_for(["people"]))), setup, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_runs_share_one_token_and_fetch_a_new_one_once_it_is_due() {
    let sim =
        Simulator::start(SimulatorConfig { token_lifetime: chrono::Duration::seconds(2), ..Default::default() }).await;
    let (protime, _, _) = connector(&sim, &sim.credentials_json()).await;
    let first = protime.connect().await.unwrap();
    list_people(&first).await.unwrap();
    let second = protime.connect().await.unwrap();
    list_people(&second).await.unwrap();
    assert_eq!(sim.issued_tokens().len(), 1, "two runs within the token's life: one token");
    assert!(std::sync::Arc::ptr_eq(&first, &second), "the same client");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let third = protime.connect().await.unwrap();
    list_people(&third).await.unwrap();
    assert_eq!(sim.issued_tokens().len(), 2, "a later run fetches a new token");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_credentials_are_picked_up_once_the_token_is_due() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let (protime, setup, id) = connector(&sim, &sim.credentials_json()).await;
    list_people(&protime.connect().await.unwrap()).await.unwrap();

    let mut rotated: serde_json::Value = serde_json::from_str(&sim.credentials_json()).unwrap();
    rotated["clientSecret"] = json!("rotated-s3cr3t");
    put_secret(&setup, &id, &rotated.to_string()).await;
    // Within the token's life the kept client goes on.
    list_people(&protime.connect().await.unwrap()).await.unwrap();
    assert_eq!(sim.issued_tokens().len(), 1);

    // Refused: the token is dropped, the next run reads the secret again and uses the new credentials.
    for _ in 0..2 {
        sim.inject_on("/people", Fault::Status { status: 401, retry_after_secs: None });
    }
    assert!(list_people(&protime.connect().await.unwrap()).await.is_err());
    let err = list_people(&protime.connect().await.unwrap()).await.unwrap_err();
    assert!(matches!(&err, ProtimeError::Auth { status: 401, .. }), "the rotated (wrong) secret is used: {err}");
    assert!(!format!("{err} {err:?}").contains("rotated-s3cr3t"));

    put_secret(&setup, &id, &sim.credentials_json()).await;
    assert_eq!(list_people(&protime.connect().await.unwrap()).await, Ok(0), "rotated back: works again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scope_granted_after_a_403_is_used_by_the_next_run() {
    let sim = Simulator::start(SimulatorConfig {
        granted_scopes: scopes(&["connector-protimeapi-webhooks.read"]),
        ..Default::default()
    })
    .await;
    let (protime, _, _) = connector(&sim, &sim.credentials_json()).await;
    let run = protime.connect().await.unwrap();
    let err = list_people(&run).await.unwrap_err();
    assert_eq!(err, ProtimeError::MissingScope { status: 403, scope: "connector-protimeapi-people.read".into() });
    run.list_webhooks(None).await.unwrap();
    assert_eq!(sim.issued_tokens().len(), 1, "the rest of the run keeps its token");

    sim.grant_scopes(None);
    assert_eq!(list_people(&protime.connect().await.unwrap()).await, Ok(0));
    assert_eq!(sim.issued_tokens().len(), 2, "the next run asked for a new token, which carries the scope");
}
