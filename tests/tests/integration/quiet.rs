//! Quiet until configured, loud when broken: the scheduled functions' handlers, as the Lambdas run
//! them, on a stack whose credentials secret still holds the template's placeholders (one
//! `CredentialsNotConfigured` signal, nothing written, no failed invocation), and on one whose
//! collections fail (the report and its metrics, no failed invocation either: EventBridge's
//! retries and dead-letter queues are left for crashes).

use harness::simulator::SimulatorConfig;
use harness::Stack;
use protime_webhooks::observability::metrics::Metrics;
use protime_webhooks::sync::Outcome;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

fn deadline() -> SystemTime {
    SystemTime::now() + Duration::from_secs(600)
}

/// A scheduled event, as EventBridge delivers it to the syncer.
fn scheduled() -> Value {
    serde_json::from_str(include_str!("../../../events/scheduled.json")).expect("events/scheduled.json")
}

/// The metric names (with their values) of `docs`.
fn named(docs: &[protime_webhooks::observability::metrics::MetricDoc]) -> Vec<(String, f64)> {
    let mut named = Vec::new();
    for doc in docs {
        let json = doc.to_json(0);
        for m in json["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap().to_owned();
            named.push((name.clone(), json[&name].as_f64().unwrap()));
        }
    }
    named
}

/// Logging as deployed (the handlers' lines are read too, and a test that runs the handlers
/// without a subscriber of its own could leave their call sites disabled for the others).
#[test]
fn a_stack_not_configured_yet_says_so_once_and_writes_nothing_until_it_is() {
    let (runtime, captured, _this_thread) = super::capture::runtime("info");
    let secret = runtime.block_on(not_configured_then_configured());
    let lines = String::from_utf8(captured.take()).unwrap();
    let warned: Vec<&str> = lines.lines().filter(|l| l.contains("not configured yet")).collect();
    assert_eq!(warned.len(), 2, "one line from each function: {lines}");
    assert!(warned.iter().all(|l| l.contains(&secret) && l.contains("\"level\":\"WARN\"")), "{warned:?}");
    assert!(!lines.contains("sim-client-secret"), "no credential in a log line");
}

async fn not_configured_then_configured() -> String {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 4);
    stack.unconfigure().await;
    let metrics = Metrics::new("Ns");

    let renewed = stack.renewer().handle(deadline()).await.expect("no failed invocation");
    let why = renewed.not_configured.clone().expect("the renewer says it is not configured");
    assert!(why.contains(&stack.credentials_secret) && why.contains("not filled in yet"), "{why}");
    assert!(!renewed.healthy && renewed.subscriptions.is_empty());
    let only = vec![("CredentialsNotConfigured".to_owned(), 1.0)];
    assert_eq!(named(&protime_webhooks::renewer::run_metrics(&metrics, Some(&renewed))), only);

    let synced = stack.syncer(&[]).handle(scheduled(), deadline()).await.expect("no failed invocation");
    assert_eq!(synced.not_configured.as_deref(), Some(why.as_str()));
    assert!(!synced.healthy && synced.collections.is_empty());
    assert_eq!(named(&protime_webhooks::sync::sync_metrics(&metrics, &synced)), only, "no lag, no error runs");
    let answer = serde_json::to_value(&synced).unwrap();
    assert_eq!(answer["notConfigured"], json!(why), "the answer says why");

    assert!(stack.simulator.webhooks().is_empty(), "nothing asked of Protime");
    assert_eq!(stack.simulator.issued_tokens().len(), 0);
    assert!(stack.receiver.item("sync#clockings").await.is_none(), "no sync state");
    let records = stack
        .receiver
        .items()
        .await
        .into_iter()
        .filter(|i| i["pk"].as_s().is_ok_and(|pk| pk.starts_with("clockings#")));
    assert_eq!(records.count(), 0, "no record");

    // Filled in: the next scheduled runs subscribe and load, with no step in between.
    harness::put_secret(&stack.receiver.setup, &stack.credentials_secret, &stack.simulator.credentials_json()).await;
    let renewed = stack.renewer().handle(deadline()).await.expect("a renewer run");
    assert!(renewed.healthy && renewed.not_configured.is_none(), "{renewed:?}");
    assert!(stack.simulator.webhook("clockings").is_some());
    let synced = stack.syncer(&[]).handle(scheduled(), deadline()).await.expect("a syncer run");
    assert!(synced.healthy && synced.not_configured.is_none(), "{synced:?}");
    assert!(!named(&protime_webhooks::sync::sync_metrics(&metrics, &synced))
        .iter()
        .any(|(n, _)| n == "CredentialsNotConfigured"));
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 4);
    stack.credentials_secret.clone()
}

#[test]
fn runs_whose_collections_fail_answer_their_report_and_metrics_without_failing_the_invocation() {
    let (runtime, captured, _this_thread) = super::capture::runtime("info");
    runtime.block_on(collections_failing());
    let lines = String::from_utf8(captured.take()).unwrap();
    let finished = lines.lines().filter(|l| l.contains("run finished") && l.contains("\"healthy\":false"));
    assert_eq!(finished.count(), 2, "each function's report says it is not healthy: {lines}");
}

async fn collections_failing() {
    let stack = Stack::start(&["clockings", "people"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 3);
    stack.simulator.seed("people", 3);
    // Granted the people read scope and the webhooks read scope only: no webhook can be made and
    // clockings cannot be read.
    let scopes = ["connector-protimeapi-people.read", "connector-protimeapi-webhooks.read"];
    stack.simulator.grant_scopes(Some(scopes.iter().map(|s| s.to_string()).collect()));
    let metrics = Metrics::new("Ns");

    let renewed = stack.renewer().handle(deadline()).await.expect("a report, not a failed invocation");
    assert!(!renewed.healthy && renewed.unhealthy() == vec!["clockings", "people"], "{renewed:?}");
    let renewer_metrics = named(&protime_webhooks::renewer::run_metrics(&metrics, Some(&renewed)));
    assert!(renewer_metrics.contains(&("SubscriptionsUnhealthy".to_owned(), 2.0)), "{renewer_metrics:?}");

    let synced = stack.syncer(&[]).handle(scheduled(), deadline()).await.expect("a report, not a failed invocation");
    assert!(!synced.healthy, "{synced:?}");
    let outcome = |name: &str| synced.collections.iter().find(|c| c.collection == name).map(|c| c.outcome);
    assert_eq!((outcome("clockings"), outcome("people")), (Some(Outcome::Error), Some(Outcome::Complete)));
    assert_eq!(stack.assert_table_matches_simulator("people").await, 3);
    let syncer_metrics = named(&protime_webhooks::sync::sync_metrics(&metrics, &synced));
    assert!(syncer_metrics.contains(&("SyncErrorRuns".to_owned(), 1.0)), "{syncer_metrics:?}");

    // A request that cannot start is still a failed invocation, with its stable error type.
    let refused = stack.syncer(&[]).handle(json!({"collections": ["breaks"]}), deadline()).await;
    assert_eq!(refused.map(|_| ()).map_err(|e| e.error_type()), Err("InvalidRequest"));
}
