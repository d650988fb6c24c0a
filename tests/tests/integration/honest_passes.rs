//! A full pass never makes the copy lie, against the Protime simulator and moto: a record
//! Protime still has is never swept (whatever its verdict), a wrong sweep tombstone heals, a
//! sweep that would tombstone too much (or after an empty answer) waits for an operator, a dry
//! run writes nothing, a failing history range holds nothing else up, and a slow Protime does
//! not keep a run past its deadline. Each scenario ends in a whole-table comparison.

use aws_sdk_dynamodb::types::AttributeValue;
use harness::simulator::{Fault, SimulatorConfig};
use harness::{report_of, Stack};
use protime_webhooks::records::item::attr;
use protime_webhooks::sync::{Budget, Outcome, SweepVerdict, SyncReport, SyncRequest};
use serde_json::json;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

fn reconcile(collection: &str, dry_run: bool, max_sweep: Option<u64>) -> SyncRequest {
    SyncRequest {
        collections: Some(vec![collection.to_owned()]),
        reconcile: true,
        dry_run,
        max_sweep,
        ..Default::default()
    }
}

fn drift(report: &SyncReport, collection: &str) -> (u64, u64, u64) {
    let c = report_of(report, collection);
    let d = c.drift.as_ref().unwrap_or_else(|| panic!("{collection}: no full pass completed: {c:?}"));
    (d.missing, d.behind, d.swept)
}

fn id_of(record: &serde_json::Value) -> String {
    record["id"].to_string()
}

async fn item(stack: &Stack, pk: &str) -> Item {
    stack.receiver.item(pk).await.unwrap_or_else(|| panic!("{pk} is stored"))
}

/// Every item of the table, the sync state included, by key.
async fn table(stack: &Stack) -> BTreeMap<String, Item> {
    harness::scan(&stack.receiver.setup, &stack.receiver.table)
        .await
        .into_iter()
        .map(|i| (harness::s(&i, attr::PK).to_owned(), i))
        .collect()
}

fn live(item: &Item) -> bool {
    item[attr::DELETED] == AttributeValue::Bool(false)
}

/// Live records dated today that Protime never had, written before any pass (a drift on purpose).
async fn put_strays(stack: &Stack, ids: std::ops::Range<u64>) -> Vec<String> {
    let today = stack.simulator.now().format("%Y-%m-%d").to_string();
    for id in ids.clone() {
        let stray = json!({"id": id, "changeVersion": "00000000000000000001", "date": today, "person": {"id": 1}});
        stack.put_record("clockings", stray).await;
    }
    ids.map(|id| id.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_protime_still_has_but_the_copy_cannot_store_is_set_aside_once_and_never_swept() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let bucket = harness::unique("quarantine");
    harness::create_bucket(&stack.receiver.setup, &bucket).await;
    let vars = [("QUARANTINE_BUCKET", bucket.as_str())];
    let seeded = stack.simulator.seed("clockings", 8);
    assert!(stack.sync(&vars).await.healthy);
    // Protime's next version of one record carries a number DynamoDB cannot hold.
    let mut changed = seeded[2].clone();
    changed["rate"] = json!(1e200);
    stack.simulator.change_quietly("clockings", changed);
    // The delta round sets it aside, then the pass returns it again: seen, not kept again.
    let report = stack.sync_request(&vars, reconcile("clockings", false, None)).await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(drift(&report, "clockings"), (0, 0, 0), "{report:?}");
    let c = report_of(&report, "clockings");
    assert_eq!((c.records.quarantined, c.records.invalid), (1, 0), "set aside once: {c:?}");
    let again = stack.sync_request(&vars, reconcile("clockings", false, None)).await;
    assert_eq!(drift(&again, "clockings"), (0, 0, 0), "{again:?}");
    assert_eq!(report_of(&again, "clockings").records.quarantined, 0, "{again:?}");
    let s3 = protime_webhooks::records::quarantine::S3Quarantine::client(&stack.receiver.setup);
    let listed = s3.list_objects_v2().bucket(&bucket).prefix("clockings/").send().await.expect("list");
    assert_eq!(listed.contents().len(), 1, "one object for the version, whatever the runs");
    let kept = item(&stack, &format!("clockings#{}", id_of(&seeded[2]))).await;
    assert!(live(&kept), "still live at the version the copy holds: {kept:?}");
    assert_eq!(harness::s(&kept, attr::CHANGE_VERSION), seeded[2]["changeVersion"].as_str().unwrap());
    // Once Protime's record can be stored again, the next run's delta brings it.
    let mut fixed = seeded[2].clone();
    fixed["rate"] = json!(12);
    stack.simulator.change_quietly("clockings", fixed);
    assert!(stack.sync(&vars).await.healthy);
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_sweep_tombstone_heals_at_its_version_and_the_pass_counts_it_missing() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let seeded = stack.simulator.seed("clockings", 6);
    assert!(stack.sync(&[]).await.healthy);
    let pk = format!("clockings#{}", id_of(&seeded[1]));
    let live_item = item(&stack, &pk).await;
    let wrong = protime_webhooks::records::item::sweep_tombstone(&live_item, "2020-01-01T00:00:00Z");
    let client = aws_sdk_dynamodb::Client::new(&stack.receiver.setup);
    client.put_item().table_name(&stack.receiver.table).set_item(Some(wrong)).send().await.unwrap();
    let report = stack.sync_request(&[], reconcile("clockings", false, None)).await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(drift(&report, "clockings"), (1, 0, 0), "the repair is counted: {report:?}");
    let healed = item(&stack, &pk).await;
    assert!(live(&healed) && harness::s(&healed, attr::SOURCE) == "resync", "{healed:?}");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 6);
    let again = stack.sync_request(&[], reconcile("clockings", false, None)).await;
    assert_eq!(drift(&again, "clockings"), (0, 0, 0), "{again:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_over_its_limit_is_held_for_an_operator_and_max_sweep_lets_it_through() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 10);
    let vars = [("SWEEP_LIMIT", "3")];
    assert!(stack.sync(&vars).await.healthy);
    let strays = put_strays(&stack, 900_001..900_005).await;
    let before = table(&stack).await;
    let verified = before["sync#clockings"]["verifiedAt"].clone();
    let report = stack.sync_request(&vars, reconcile("clockings", false, None)).await;
    assert!(report.healthy, "{report:?}");
    let c = report_of(&report, "clockings");
    assert_eq!(c.sweep, Some(SweepVerdict::Held), "{c:?}");
    let held = c.held.clone().expect("the held sweep");
    assert_eq!((held.would_sweep, held.limit), (4, 3));
    let mut samples = held.sample_ids.clone();
    samples.sort();
    assert_eq!(samples, strays);
    let records = |t: &BTreeMap<String, Item>| -> BTreeMap<String, Item> {
        t.iter().filter(|(pk, _)| pk.starts_with("clockings#")).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    assert_eq!(records(&table(&stack).await), records(&before), "no record written");
    let state = item(&stack, "sync#clockings").await;
    assert!(state.contains_key("sweepHeld") && state["verifiedAt"] == verified, "not verified: {state:?}");
    let metrics =
        protime_webhooks::sync::sync_metrics(&protime_webhooks::observability::metrics::Metrics::new("Ns"), &report);
    let held_metric = metrics.iter().map(|m| m.to_json(0)).any(|doc| doc["SweepHeld"].as_f64() == Some(1.0));
    assert!(held_metric, "the alarm's metric");

    // Scheduled runs meanwhile start no pass of their own and keep saying so.
    let waiting = stack.sync(&vars).await;
    let c = report_of(&waiting, "clockings");
    assert!(!c.reconciling && c.drift.is_none() && c.held.is_some(), "{c:?}");

    let allowed = stack.sync_request(&vars, reconcile("clockings", false, Some(4))).await;
    assert!(allowed.healthy, "{allowed:?}");
    assert_eq!(report_of(&allowed, "clockings").sweep, Some(SweepVerdict::Done));
    assert_eq!(drift(&allowed, "clockings"), (0, 0, 4), "{allowed:?}");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 10);
    let state = item(&stack, "sync#clockings").await;
    assert!(!state.contains_key("sweepHeld") && state["verifiedAt"] != verified, "{state:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_answer_to_a_pass_holds_its_sweep_whatever_the_limit() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 10);
    assert!(stack.sync(&[]).await.healthy);
    let before = table(&stack).await;
    stack.simulator.inject_on("/clockings", Fault::Body { status: 200, body: r#"{"value":[]}"#.into() });
    let report = stack.sync_request(&[], reconcile("clockings", false, None)).await;
    let c = report_of(&report, "clockings");
    assert_eq!(c.sweep, Some(SweepVerdict::Held), "{c:?}");
    assert_eq!(c.held.as_ref().map(|h| h.would_sweep), Some(10), "{c:?}");
    let after = table(&stack).await;
    let records = |t: &BTreeMap<String, Item>| t.iter().filter(|(pk, _)| pk.starts_with("clockings#")).count();
    assert_eq!(records(&after), 10);
    assert!(after.iter().filter(|(pk, _)| pk.starts_with("clockings#")).all(|(pk, i)| live(i) && before[pk] == *i));
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_leaves_the_table_byte_identical_even_with_a_load_pass_waiting_to_sweep() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 12);
    assert!(stack.sync(&[]).await.healthy);
    put_strays(&stack, 900_001..900_003).await;
    // A reload whose pages are applied and whose sweep is still to run.
    let reload = SyncRequest { collections: Some(vec!["clockings".into()]), reinitialize: true, ..Default::default() };
    let budget = [("SYNC_MAX_PAGES_PER_RUN", "2")];
    let partial = stack.sync_request(&budget, reload).await;
    assert_eq!(report_of(&partial, "clockings").outcome, Outcome::Partial, "{partial:?}");
    let client = aws_sdk_dynamodb::Client::new(&stack.receiver.setup);
    client
        .update_item()
        .table_name(&stack.receiver.table)
        .key(attr::PK, AttributeValue::S("sync#clockings".into()))
        .update_expression("SET #pass.#sweeping = :zero")
        .expression_attribute_names("#pass", "pass")
        .expression_attribute_names("#sweeping", "sweeping")
        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        .send()
        .await
        .unwrap();
    let before = table(&stack).await;
    let dry = stack.sync_request(&[], reconcile("clockings", true, None)).await;
    assert!(dry.healthy, "{dry:?}");
    let after = table(&stack).await;
    let records = |t: &BTreeMap<String, Item>| -> Vec<(String, Item)> {
        t.iter().filter(|(pk, _)| !pk.starts_with("sync#")).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    assert_eq!(records(&after), records(&before), "a dry run writes no record, tombstones included");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_history_range_holds_up_neither_the_delta_nor_a_reconciliation_and_is_retried_later() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 9);
    let today = stack.simulator.now().date_naive();
    let window_start = (today - chrono::Duration::days(243)).to_string();
    assert!(stack.sync(&[("SYNC_FROM", window_start.as_str())]).await.healthy);
    // The history before the window now has days to list; one record is dated there.
    let old = (today - chrono::Duration::days(300)).to_string();
    stack.simulator.change_quietly("clockings", json!({"id": 7000, "date": old, "person": {"id": 3}}));
    let recent = stack.simulator.change_quietly("clockings", json!({"id": 7001, "date": today.to_string()}));
    let from = (today - chrono::Duration::days(400)).to_string();
    let vars = [("SYNC_FROM", from.as_str())];
    stack.simulator.inject_on(
        "/clockings",
        Fault::Error { status: 400, message: "The filter is not valid".into(), reasons: vec![] },
    );
    let report = stack.sync(&vars).await;
    assert!(report.healthy, "a failing history range is no failing run: {report:?}");
    let c = report_of(&report, "clockings");
    assert_eq!(c.pages_set_aside, 1, "{c:?}");
    assert!(c.history_failing.is_some(), "{c:?}");
    let stored = item(&stack, "clockings#7001").await;
    assert_eq!(
        harness::s(&stored, attr::CHANGE_VERSION),
        recent["changeVersion"].as_str().unwrap(),
        "the delta went on"
    );

    let reconciled = stack.sync_request(&vars, reconcile("clockings", false, None)).await;
    assert!(reconciled.healthy, "{reconciled:?}");
    assert_eq!(drift(&reconciled, "clockings"), (0, 0, 0), "{reconciled:?}");
    assert!(report_of(&reconciled, "clockings").history_failing.is_some(), "not retried before its back-off");
    assert!(stack.receiver.item("clockings#7000").await.is_none());

    stack.simulator.advance(chrono::Duration::hours(2));
    let retried = stack.sync(&vars).await;
    let c = report_of(&retried, "clockings");
    assert!(retried.healthy && c.history_failing.is_none(), "{c:?}");
    assert_eq!(
        stack.assert_table_matches_simulator_where("clockings", |r| r["date"].as_str() >= Some(&from)).await,
        11
    );
    assert!(live(&item(&stack, "clockings#7000").await));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_protime_does_not_keep_a_run_past_its_deadline_and_the_next_run_goes_on() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 6);
    assert!(stack.sync(&[]).await.healthy);
    let changed = stack
        .simulator
        .change_quietly("clockings", json!({"id": 8000, "date": stack.simulator.now().format("%Y-%m-%d").to_string()}));
    // Four answers of 429 asking for 5 s each: the client alone would wait 15 s and more.
    for _ in 0..4 {
        stack.simulator.inject_on("/delta/clockings", Fault::Status { status: 429, retry_after_secs: Some(5) });
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(12);
    let budget = Budget::new(stack.simulator.now(), Some(Duration::from_secs(12)), Duration::from_secs(6));
    let report = stack.syncer(&[]).run(&SyncRequest::default(), budget).await.expect("a report");
    assert!(std::time::Instant::now() < deadline, "the run ended before its deadline, with its report");
    assert_eq!(report_of(&report, "clockings").outcome, Outcome::Partial, "{report:?}");
    let mut runs = 0;
    while report_of(&stack.sync(&[]).await, "clockings").outcome != Outcome::Complete {
        runs += 1;
        assert!(runs < 5, "the next runs go on");
    }
    let stored = item(&stack, "clockings#8000").await;
    assert_eq!(harness::s(&stored, attr::CHANGE_VERSION), changed["changeVersion"].as_str().unwrap());
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconciliation_progresses_with_a_budget_of_one_page_a_run() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 9);
    let today = stack.simulator.now().date_naive();
    let window_start = (today - chrono::Duration::days(243)).to_string();
    assert!(stack.sync(&[("SYNC_FROM", window_start.as_str())]).await.healthy);
    let strays = put_strays(&stack, 900_001..900_002).await;
    let vars = [("SYNC_FROM", window_start.as_str()), ("SYNC_MAX_PAGES_PER_RUN", "1")];
    let mut runs = 0;
    let last = loop {
        runs += 1;
        let report = stack.sync_request(&vars, reconcile("clockings", false, None)).await;
        let c = report_of(&report, "clockings");
        assert!(report.healthy && c.pages <= 2, "one delta page and one page of the pass: {c:?}");
        if c.drift.is_some() {
            break report;
        }
        let state = item(&stack, "sync#clockings").await;
        let pages = state["reconcile"].as_m().expect("a reconciliation under way")["pages"].clone();
        assert_eq!(pages, AttributeValue::N(runs.to_string()), "each run reads a page of the pass");
        assert!(runs < 20, "the reconciliation never completed");
    };
    assert_eq!(drift(&last, "clockings"), (0, 0, 1), "{last:?}");
    assert!(!live(&item(&stack, &format!("clockings#{}", strays[0])).await));
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_protime_emptied_is_held_until_an_operator_lets_max_sweep_through() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    assert!(stack.sync(&[]).await.healthy, "an empty collection loads");
    // The copy holds three records of the window Protime no longer has: the pass sees nothing.
    put_strays(&stack, 900_001..900_004).await;
    let held = stack.sync_request(&[], reconcile("clockings", false, None)).await;
    let c = report_of(&held, "clockings");
    assert_eq!((c.sweep, c.held.as_ref().map(|h| h.would_sweep)), (Some(SweepVerdict::Held), Some(3)), "{c:?}");
    let allowed = stack.sync_request(&[], reconcile("clockings", false, Some(3))).await;
    assert_eq!(report_of(&allowed, "clockings").sweep, Some(SweepVerdict::Done), "{allowed:?}");
    assert_eq!(drift(&allowed, "clockings"), (0, 0, 3));
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 0);
    assert!(!item(&stack, "sync#clockings").await.contains_key("sweepHeld"));
}
