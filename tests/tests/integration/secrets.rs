//! Secrets never reach the logs: a full run is captured (renewer with credentials and
//! tokens, keys issued, rotated and renewed; valid, forged and previous-key events; a token
//! lapsing mid-run) and no key, client secret, token or signature may appear in it.

use harness::simulator::{Fault, FaultTarget, SimulatorConfig};
use harness::{signed, Captured, Stack};
use protime_webhooks::signing::signature::{authorization_header, sign, SigningKey};
use serde_json::json;

/// The test's own runtime, every thread of it logging to `captured` only: the other tests of
/// this binary run beside it, and neither their logs nor this capture reach one another.
#[test]
fn no_secret_appears_in_the_logs_of_a_full_run() {
    // As deployed: JSON, INFO for everything; DEBUG for our own crate to be stricter.
    let (runtime, captured, _this_thread) = super::capture::runtime("info,protime_webhooks=debug");
    runtime.block_on(full_run(captured));
}

async fn full_run(captured: Captured) {
    let stack = Stack::start(&["clockings", "breaks"], SimulatorConfig::default()).await;
    let mut secrets: Vec<String> = vec![stack.simulator.config().client_secret.clone()];

    // First run: token, creates, keys stored.
    assert!(stack.renew().await.healthy);
    let first_keys: Vec<String> = stack.simulator.webhooks().iter().map(|w| w.key.clone()).collect();
    secrets.extend(first_keys.iter().cloned());

    // Events: valid (delivered by the simulator), forged, malformed signature.
    let date = stack.simulator.now().format("%Y-%m-%d").to_string();
    assert_eq!(stack.simulator.change("clockings", json!({"id": 1, "date": date})).await.delivered, 1);
    let body = r#"{"id":2,"changeVersion":"1"}"#;
    let forged = authorization_header(&SigningKey::new("forged-key-123"), body.as_bytes());
    secrets.push(sign(&SigningKey::new("forged-key-123"), body.as_bytes()));
    assert_eq!(stack.receiver.send(harness::request("clockings", body.as_bytes(), Some(&forged))).await.0, 401);
    let valid_signature = sign(&SigningKey::new(&first_keys[0]), body.as_bytes());
    secrets.push(valid_signature);
    stack.receiver.send(signed("clockings", body, &first_keys[0])).await;

    // Renewal (rotation) with a token that lapses mid-run, then an event with the old key.
    stack.simulator.advance(chrono::Duration::days(29));
    stack.simulator.inject(FaultTarget::Api, Fault::Pass);
    stack.simulator.inject(FaultTarget::Api, Fault::ExpireTokens);
    assert!(stack.renew().await.healthy);
    secrets.extend(stack.simulator.webhooks().iter().map(|w| w.key.clone()));
    assert_eq!(stack.simulator.change("clockings", json!({"id": 3, "date": date})).await.delivered, 1);
    stack.receiver.send(signed("clockings", r#"{"id":4,"changeVersion":"1"}"#, &first_keys[0])).await;

    // A delta load, then a Protime error whose words quote the deltaLink, token and all: the
    // token reaches neither the logs nor the report, the sync state or the run's error.
    assert!(stack.sync(&[("COLLECTIONS", "clockings")]).await.healthy);
    let state = stack.receiver.item("sync#clockings").await.expect("sync state");
    let cursor = harness::s(&state, "cursor").to_owned();
    let delta_token = cursor.split("deltaToken=").nth(1).expect("a deltaLink").split('&').next().unwrap().to_owned();
    secrets.push(delta_token.clone());
    let quoted = format!("{}{cursor}", stack.simulator.base_url());
    stack.simulator.inject_on(
        "/delta/clockings",
        Fault::Error {
            status: 400,
            message: format!("The request {quoted} is not valid"),
            reasons: vec![format!("cannot read {cursor}"), format!("at {quoted}&$top=500")],
        },
    );
    let report = stack.sync(&[("COLLECTIONS", "clockings")]).await;
    assert!(!report.healthy, "the injected error ends the collection in error");
    let report_text = serde_json::to_string(&report).unwrap();
    assert!(report_text.contains("[redacted]"), "the report says what was refused: {report_text}");
    let state = stack.receiver.item("sync#clockings").await.expect("sync state");
    let last_error = harness::s(&state, "lastError").to_owned();
    assert!(last_error.contains("not valid") && !last_error.contains(&delta_token), "{last_error}");
    assert!(!report_text.contains(&delta_token), "the report holds no token");

    secrets.extend(stack.simulator.issued_tokens());
    assert!(stack.simulator.issued_tokens().len() >= 3, "several tokens were issued and must be checked");

    let logs = String::from_utf8(captured.take()).unwrap();
    // The capture really holds the run: events, rejections, token fetches, renewals.
    for expected in [
        "\"event\"",
        "invalid_signature",
        "fetched a Protime access token",
        "Protime answered 401",
        "subscription",
        "not valid",
    ] {
        assert!(logs.contains(expected), "the captured logs lack {expected:?}");
    }
    for secret in &secrets {
        assert!(secret.len() >= 8, "a secret this short would match by chance: {}", secret.len());
        assert!(!logs.contains(secret.as_str()), "a secret appears in the logs ({} chars)", secret.len());
    }
}
