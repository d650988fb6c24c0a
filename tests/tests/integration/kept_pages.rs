//! A fetched change is never lost: each page is kept before its records are written, so a
//! page whose writes fail (or a run killed at any step after the fetch) is applied by the next
//! run without a reload; one bad record is quarantined alone; a reload follows the live
//! deltaLink first; the renewer's delta round keeps to its deadline. After every scenario the
//! table must equal the simulator's records exactly.

use aws_sdk_dynamodb::types::AttributeValue;
use harness::simulator::SimulatorConfig;
use harness::{create_bucket, fast_retries, sdk_config, unique, FaultProxy, ProxyMode, Stack};
use protime_webhooks::sync::{AwsSyncer, Budget, Outcome, SyncReport, SyncRequest};
use serde_json::json;
use std::time::Duration;

fn clockings(report: &SyncReport) -> &protime_webhooks::sync::CollectionReport {
    report.collections.iter().find(|c| c.collection == "clockings").expect("clockings reported")
}

/// Delta initial requests and list pages the simulator answered for clockings.
fn loads(stack: &Stack) -> usize {
    stack.simulator.count("GET", "/clockings")
}

/// A syncer whose DynamoDB and S3 calls go through `proxy`.
async fn syncer_behind(stack: &Stack, proxy: &FaultProxy, vars: &[(&str, &str)]) -> AwsSyncer {
    let mut syncer = AwsSyncer::from_config(stack.syncer_config(vars), &sdk_config(&proxy.endpoint()).await);
    fast_retries(&mut syncer.protime.options);
    syncer
}

/// A loaded copy of 10 clockings, then 3 of them deleted and 2 changed in Protime, unseen.
async fn loaded_then_changed() -> (Stack, Vec<u64>) {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 10);
    assert!(stack.sync(&[]).await.healthy);
    let ids: Vec<u64> = stack.simulator.records("clockings").iter().map(|r| r["id"].as_u64().unwrap()).collect();
    for id in &ids[..3] {
        stack.simulator.delete_quietly("clockings", json!(id));
    }
    let date = stack.simulator.now().format("%Y-%m-%d").to_string();
    for id in &ids[3..5] {
        stack.simulator.change_quietly("clockings", json!({"id": id, "date": date, "v": "changed"}));
    }
    (stack, ids)
}

fn has_kept_page(state: &std::collections::HashMap<String, AttributeValue>) -> bool {
    state.contains_key("kept")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delta_page_whose_writes_fail_is_stored_by_the_next_run_without_a_reload() {
    let (stack, ids) = loaded_then_changed().await;
    let proxy = FaultProxy::start(harness::shared_moto().endpoint()).await;
    // The records' writes fail; the sync state's do not.
    proxy.set(ProxyMode::ThrottlePutItemMatching("\"clockings#".into()));
    let before = loads(&stack);
    let failing = syncer_behind(&stack, &proxy, &[]).await;
    let report = failing.run(&SyncRequest::default(), Budget::new(stack.simulator.now(), None, Duration::ZERO)).await;
    let report = report.expect("the run reports");
    assert_eq!(clockings(&report).outcome, Outcome::Error, "{report:?}");
    let state = stack.receiver.item("sync#clockings").await.expect("sync state");
    assert!(has_kept_page(&state), "the spent deltaLink's page is kept: {state:?}");
    let deleted =
        stack.receiver.item(&format!("clockings#{}", ids[0])).await.expect("the record").get("deleted").cloned();
    assert_ne!(deleted, Some(AttributeValue::Bool(true)), "its Delete is not stored yet");

    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    let c = clockings(&report);
    assert!(!c.delta_expired, "no 410: the kept page was applied, not fetched again");
    assert_eq!((c.records.stored, c.records.deleted), (5, 3), "{c:?}");
    assert_eq!(loads(&stack), before, "no delta initial request, no reload");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 7);
    let state = stack.receiver.item("sync#clockings").await.expect("sync state");
    assert!(!has_kept_page(&state), "an applied page is no longer kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_syncer_killed_at_any_step_after_the_fetch_ends_in_the_same_state() {
    // The delta page holds 5 changes: its keep is the 1st PutItem, its records the next 5, the
    // checkpoint that moves the cursor the 7th. Killed after 1, 3 or 6 writes.
    for writes_before_death in [1, 3, 6] {
        let (stack, _) = loaded_then_changed().await;
        let proxy = FaultProxy::start(harness::shared_moto().endpoint()).await;
        proxy.set(ProxyMode::DynamoDbDiesAfterPutItems(writes_before_death));
        let before = loads(&stack);
        let dying = syncer_behind(&stack, &proxy, &[]).await;
        let deltas = stack.simulator.count("GET", "/delta/clockings");
        // A short deadline, so the dead run's lease (it cannot release it) lapses soon.
        let lease = Duration::from_secs(3);
        let started = std::time::Instant::now();
        let budget = Budget::new(stack.simulator.now(), Some(lease), Duration::ZERO);
        let _ = dying.run(&SyncRequest::default(), budget).await;
        assert_eq!(stack.simulator.count("GET", "/delta/clockings"), deltas + 1, "the dying run spent the deltaLink");
        let state = stack.receiver.item("sync#clockings").await.expect("sync state");
        assert!(has_kept_page(&state), "killed after {writes_before_death} writes: the page was kept first");
        tokio::time::sleep((lease + Duration::from_millis(200)).saturating_sub(started.elapsed())).await;

        let report = stack.sync(&[]).await;
        assert!(report.healthy, "killed after {writes_before_death} writes: {report:?}");
        let c = clockings(&report);
        assert!(!c.delta_expired, "killed after {writes_before_death} writes: no 410");
        assert_eq!(loads(&stack), before, "killed after {writes_before_death} writes: no reload");
        assert_eq!(stack.assert_table_matches_simulator("clockings").await, 7, "killed after {writes_before_death}");
        let state = stack.receiver.item("sync#clockings").await.expect("sync state");
        assert!(!has_kept_page(&state) && !state.contains_key("leaseOwner"), "{state:?}");
        // And the delta goes on: the next change arrives through the new deltaLink.
        stack.simulator.change_quietly("clockings", json!({"id": 77_001, "date": "2026-12-01"}));
        assert_eq!(clockings(&stack.sync(&[]).await).records.stored, 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_page_is_kept_in_the_bucket_and_discarded_once_applied() {
    let (stack, _) = loaded_then_changed().await;
    let bucket = unique("kept-pages");
    create_bucket(&stack.receiver.setup, &bucket).await;
    // About 400 changes: more than a sync item holds inline.
    stack.simulator.seed("clockings", 400);
    let proxy = FaultProxy::start(harness::shared_moto().endpoint()).await;
    proxy.set(ProxyMode::ThrottlePutItemMatching("\"clockings#".into()));
    let vars = [("QUARANTINE_BUCKET", bucket.as_str())];
    let failing = syncer_behind(&stack, &proxy, &vars).await;
    let _ = failing.run(&SyncRequest::default(), Budget::new(stack.simulator.now(), None, Duration::ZERO)).await;
    let state = stack.receiver.item("sync#clockings").await.expect("sync state");
    let kept = state.get("kept").and_then(|k| k.as_m().ok()).expect("a kept page").clone();
    let key = kept.get("object").and_then(|o| o.as_s().ok()).expect("kept as an object").clone();
    assert!(key.starts_with("pages/clockings/") && !kept.contains_key("body"), "{kept:?}");
    let s3 = protime_webhooks::records::quarantine::S3Quarantine::client(&stack.receiver.setup);
    let listed = |s3: aws_sdk_s3::Client, bucket: String| async move {
        let page = s3.list_objects_v2().bucket(bucket).prefix("pages/").send().await.expect("list");
        page.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect::<Vec<_>>()
    };
    assert_eq!(listed(s3.clone(), bucket.clone()).await, [key]);

    let report = stack.sync(&vars).await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(clockings(&report).records.stored, 405);
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 407);
    assert!(listed(s3, bucket).await.is_empty(), "the applied page's object is discarded");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bad_record_is_quarantined_alone_and_a_quarantined_delete_replays_as_a_delete() {
    use protime_webhooks::records::quarantine::{provenance, replay, Provenance, Replayed};
    use protime_webhooks::records::{ChangeType, DynamoRecordStore, PutOutcome, Source};
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 6);
    let bucket = unique("quarantine");
    create_bucket(&stack.receiver.setup, &bucket).await;
    let vars = [("QUARANTINE_BUCKET", bucket.as_str())];
    assert!(stack.sync(&vars).await.healthy);
    let ids: Vec<u64> = stack.simulator.records("clockings").iter().map(|r| r["id"].as_u64().unwrap()).collect();
    stack.simulator.delete_quietly("clockings", json!(ids[0]));
    let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    let v = harness::simulator::version(1 << 40);
    stack.simulator.inject_raw_change(
        "clockings",
        &format!(r#"{{"changeType":"InsertOrUpdate","data":{{"id":880001,"changeVersion":"{v}","kind":"InOut","kind":"Reason"}}}}"#),
    );
    let delete = format!(r#"{{"changeType":"Delete","data":{{"id":{},"changeVersion":"{v}","hours":1e400}}}}"#, ids[1]);
    stack.simulator.inject_raw_change("clockings", &delete);
    stack.simulator.inject_raw_change(
        "clockings",
        &format!(r#"{{"changeType":"InsertOrUpdate","data":{{"id":880002,"changeVersion":"{v}","deep":{deep}}}}}"#),
    );
    let date = stack.simulator.now().format("%Y-%m-%d").to_string();
    stack.simulator.change_quietly("clockings", json!({"id": ids[2], "date": date, "v": "changed"}));

    let report = stack.sync(&vars).await;
    assert!(report.healthy, "{report:?}");
    let c = clockings(&report);
    assert_eq!((c.outcome, c.records.quarantined, c.records.stored, c.records.deleted), (Outcome::Complete, 3, 2, 1));
    // The Quarantined alarm sees them: Function=syncer, one count per reason.
    let mut metrics: Vec<(String, String, f64)> =
        protime_webhooks::sync::sync_metrics(&protime_webhooks::observability::metrics::Metrics::new("Ns"), &report)
            .iter()
            .map(|d| d.to_json(0))
            .filter(|v| v.get("Quarantined").is_some())
            .map(|v| (v["Function"].to_string(), v["Reason"].to_string(), v["Quarantined"].as_f64().unwrap()))
            .collect();
    metrics.sort_by(|a, b| a.1.cmp(&b.1));
    let syncer = || "\"syncer\"".to_owned();
    assert_eq!(
        metrics,
        [
            (syncer(), "\"duplicate_key\"".to_owned(), 1.0),
            (syncer(), "\"number_out_of_range\"".to_owned(), 1.0),
            (syncer(), "\"too_deep\"".to_owned(), 1.0)
        ]
    );
    // The simulator still lists ids[1] (only the malformed Delete named it): live in both.
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 5);
    let s3 = protime_webhooks::records::quarantine::S3Quarantine::client(&stack.receiver.setup);
    let objects = s3.list_objects_v2().bucket(&bucket).send().await.expect("list");
    let mut kept = Vec::new();
    for object in objects.contents() {
        let key = object.key().unwrap().to_owned();
        let got = s3.get_object().bucket(&bucket).key(&key).send().await.expect("get");
        let metadata = got.metadata().cloned().unwrap_or_default();
        let body = got.body.collect().await.unwrap().into_bytes().to_vec();
        kept.push((metadata, body));
    }
    let mut reasons: Vec<&str> = kept.iter().map(|(m, _)| m["reason"].as_str()).collect();
    reasons.sort();
    assert_eq!(reasons, ["duplicate_key", "number_out_of_range", "too_deep"]);
    let (metadata, body) = kept.iter().find(|(m, _)| m["reason"] == "number_out_of_range").unwrap();
    assert_eq!(body, delete.as_bytes(), "kept as Protime sent it");
    assert_eq!((metadata["source"].as_str(), metadata["change-type"].as_str()), ("delta", "Delete"));
    assert_eq!(metadata["record-id"], ids[1].to_string());

    // The next run goes on from the new deltaLink: nothing is stuck.
    let report = stack.sync(&vars).await;
    assert_eq!((clockings(&report).outcome, clockings(&report).records.fetched), (Outcome::Complete, 0));

    let store = DynamoRecordStore::new(aws_sdk_dynamodb::Client::new(&stack.receiver.setup), &stack.receiver.table);
    let collection = protime_webhooks::Collection::Clockings;
    let kept_as = provenance(metadata).expect("kept by the syncer");
    assert_eq!(kept_as, Provenance { source: Source::Delta, change_type: Some(ChangeType::Delete) });
    let replayed = replay(&store, collection, body, kept_as, false).await.expect("replay");
    assert_eq!(replayed, Replayed::Written(vec![(ids[1].to_string(), PutOutcome::Stored)]));
    let item = stack.receiver.item(&format!("clockings#{}", ids[1])).await.expect("the record");
    assert_eq!(item["deleted"], AttributeValue::Bool(true), "replayed as a Delete");
    assert_eq!(harness::s(&item, "changeVersion"), v);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_follows_the_live_delta_link_first_so_deletions_stay_tombstones() {
    let (stack, ids) = loaded_then_changed().await;
    let deltas = stack.simulator.count("GET", "/delta/clockings");
    let request: SyncRequest =
        serde_json::from_value(json!({"collections": ["clockings"], "reinitialize": true})).unwrap();
    let budget = Budget::new(stack.simulator.now(), None, Duration::ZERO);
    let report = stack.syncer(&[]).run(&request, budget).await.unwrap();
    assert!(report.healthy, "{report:?}");
    assert_eq!(stack.simulator.count("GET", "/delta/clockings"), deltas + 1, "the deltaLink was followed");
    for id in &ids[..3] {
        let item = stack.receiver.item(&format!("clockings#{id}")).await.expect("a tombstone");
        assert_eq!(item["deleted"], AttributeValue::Bool(true), "{id}: deleted before the backfill");
    }
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 7);
    let state = stack.receiver.item("sync#clockings").await.expect("sync state");
    assert_eq!(harness::s(&state, "phase"), "incremental", "and the reload ran to its end");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_renewers_delta_round_starts_no_page_it_cannot_finish_before_its_deadline() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 5);
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);
    stack.simulator.disable("clockings");
    let date = stack.simulator.now().format("%Y-%m-%d").to_string();
    stack.simulator.change_quietly("clockings", json!({"id": 66_001, "date": date}));
    let deltas = stack.simulator.count("GET", "/delta/clockings");

    // 10 s left, 120 s of margin: no delta page may start, and no list either; the gap is
    // handed to the syncer and the webhook re-enabled at once.
    let listed = loads(&stack);
    let budget = Budget::new(stack.simulator.now(), Some(Duration::from_secs(10)), Duration::from_secs(120));
    let report = stack.renewer().run_within(budget).await.expect("renewer run");
    assert!(report.healthy, "{report:?}");
    assert_eq!(stack.simulator.count("GET", "/delta/clockings"), deltas, "no delta page started");
    assert_eq!(loads(&stack), listed, "no list page started");
    assert!(stack.simulator.webhook("clockings").unwrap().enabled, "re-enabled without waiting");
    let state = stack.receiver.item("sync#clockings").await.expect("sync state");
    assert!(!state.contains_key("leaseOwner"), "the lease is released");
    assert!(state.contains_key("fullPassRequestedAt"), "handed to the syncer: {state:?}");

    // The syncer's next run catches up: its delta round, then the full pass asked for.
    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 6);
}
