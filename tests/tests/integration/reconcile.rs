//! Proving the copy against the Protime simulator and moto: every full pass (a reload, a list
//! pass, a reconciliation) sweeps what Protime no longer has and reports the copy's drift; after
//! each scenario the whole table is compared with the simulator's records.

use aws_sdk_dynamodb::types::AttributeValue;
use harness::simulator::SimulatorConfig;
use harness::{report_of, Stack};
use protime_webhooks::sync::sweep::Drift;
use protime_webhooks::sync::{Outcome, SyncReport, SyncRequest};
use serde_json::json;
use std::collections::HashMap;

fn drift(report: &SyncReport, collection: &str) -> (u64, u64, u64) {
    let c = report_of(report, collection);
    let d: &Drift = c.drift.as_ref().unwrap_or_else(|| panic!("{collection}: no full pass completed: {c:?}"));
    (d.missing, d.behind, d.swept)
}

fn reconcile(collections: &[&str], dry_run: bool) -> SyncRequest {
    SyncRequest {
        collections: Some(collections.iter().map(|c| c.to_string()).collect()),
        reconcile: true,
        dry_run,
        ..Default::default()
    }
}

fn id_of(record: &serde_json::Value) -> String {
    record["id"].to_string()
}

async fn item(stack: &Stack, pk: &str) -> HashMap<String, AttributeValue> {
    stack.receiver.item(pk).await.unwrap_or_else(|| panic!("{pk} is stored"))
}

/// Every record item of the table (the sync state and seen ids left out), by key.
async fn records(stack: &Stack) -> std::collections::BTreeMap<String, HashMap<String, AttributeValue>> {
    harness::scan(&stack.receiver.setup, &stack.receiver.table)
        .await
        .into_iter()
        .filter(|i| !harness::s(i, "pk").starts_with("sync#") && !harness::s(i, "pk").starts_with("subscription#"))
        .map(|i| (harness::s(&i, "pk").to_owned(), i))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn deletions_made_while_the_delta_was_expired_are_swept_after_the_reload() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let seeded = stack.simulator.seed("clockings", 20);
    let first = stack.sync(&[]).await;
    assert!(first.healthy, "{first:?}");
    let baseline = report_of(&first, "clockings").drift.clone().expect("the first load is a full pass");
    assert!(baseline.baseline && baseline.missing == 20, "{baseline:?}");
    // No run for 73 h: the deltaLink expires, and five records are deleted meanwhile.
    stack.simulator.advance(chrono::Duration::hours(73));
    let gone: Vec<String> = seeded.iter().take(5).map(id_of).collect();
    for record in seeded.iter().take(5) {
        stack.simulator.delete_quietly("clockings", record["id"].clone());
    }
    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    let c = report_of(&report, "clockings");
    assert!(c.delta_expired && c.outcome == Outcome::Complete, "{c:?}");
    assert_eq!(drift(&report, "clockings"), (0, 0, 5), "{c:?}");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 15);
    for id in &gone {
        let tombstone = item(&stack, &format!("clockings#{id}")).await;
        assert_eq!(tombstone["deleted"], AttributeValue::Bool(true));
        assert_eq!(harness::s(&tombstone, "source"), "sweep");
        assert!(tombstone.contains_key("date") && tombstone.contains_key("person"), "fields kept: {tombstone:?}");
    }
    let state = item(&stack, "sync#clockings").await;
    assert!(state.contains_key("verifiedAt"), "{state:?}");
    let stored = state["drift"].as_m().expect("drift on the state");
    assert_eq!(stored["swept"], AttributeValue::N("5".into()));
    let left: Vec<_> = records(&stack).await.into_keys().filter(|pk| pk.contains("#seen#")).collect::<Vec<_>>();
    assert!(left.is_empty(), "the pass's ids are deleted once it completed: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_deleted_while_the_delta_lay_unused_is_swept_by_the_reload() {
    let stack = Stack::start(&["people"], SimulatorConfig::default()).await;
    let seeded = stack.simulator.seed("people", 12);
    assert!(stack.sync(&[]).await.healthy);
    // The delta unused for more than 72 h: it answers 410, and the deletion is in no delta.
    stack.simulator.delete_quietly("people", seeded[3]["id"].clone());
    stack.simulator.advance(chrono::Duration::hours(73));
    let report = stack.sync(&[]).await;
    let people = report_of(&report, "people");
    assert_eq!((people.outcome, people.delta_expired), (Outcome::Complete, true), "{report:?}");
    assert_eq!(drift(&report, "people"), (0, 0, 1));
    assert_eq!(stack.assert_table_matches_simulator("people").await, 11);
    let tombstone = item(&stack, &format!("people#{}", id_of(&seeded[3]))).await;
    assert_eq!(harness::s(&tombstone, "source"), "sweep");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_a_webhook_creates_during_a_long_pass_is_not_swept() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 30);
    assert!(stack.renew().await.healthy, "the webhook is created");
    let budget = [("SYNC_MAX_PAGES_PER_RUN", "4")];
    let first = stack.sync(&budget).await;
    assert_eq!(report_of(&first, "clockings").outcome, Outcome::Partial, "{first:?}");
    // Id 0 sorts before every id the load has passed: the load never lists it.
    let today = stack.simulator.now().format("%Y-%m-%d").to_string();
    let created = stack.simulator.change("clockings", json!({"id": 0, "date": today})).await;
    assert_eq!(created.delivered, 1, "{created:?}");
    assert!(stack.receiver.item("clockings#0").await.is_some(), "stored by the receiver");
    let mut runs = 1;
    let last = loop {
        runs += 1;
        let report = stack.sync(&budget).await;
        // The run whose load completed its full pass (the history before the window may
        // take more runs).
        if report_of(&report, "clockings").drift.is_some() {
            break report;
        }
        assert!(runs < 30, "the load never completed");
    };
    assert!(runs > 2, "the pass spanned several runs");
    assert_eq!(drift(&last, "clockings").2, 0, "nothing swept: {last:?}");
    while report_of(&stack.sync(&budget).await, "clockings").outcome != Outcome::Complete {
        runs += 1;
        assert!(runs < 30, "the history never completed");
    }
    let created = item(&stack, "clockings#0").await;
    assert_eq!(created["deleted"], AttributeValue::Bool(false));
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 31);
}

#[tokio::test(flavor = "multi_thread")]
async fn history_before_the_window_is_not_swept() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 10);
    assert!(stack.renew().await.healthy);
    let today = stack.simulator.now().date_naive();
    let from = (today - chrono::Duration::days(30)).to_string();
    let vars = [("SYNC_FROM", from.as_str())];
    assert!(stack.sync(&vars).await.healthy);
    // A record dated before the window arrives by webhook: no pass ever lists it.
    let old = (today - chrono::Duration::days(200)).to_string();
    let delivered = stack.simulator.change("clockings", json!({"id": 5000, "date": old})).await;
    assert_eq!(delivered.delivered, 1);
    let report = stack.sync_request(&vars, reconcile(&["clockings"], false)).await;
    assert_eq!(report_of(&report, "clockings").outcome, Outcome::Complete, "{report:?}");
    assert_eq!(drift(&report, "clockings").2, 0, "{report:?}");
    assert_eq!(item(&stack, "clockings#5000").await["deleted"], AttributeValue::Bool(false));
    // The table holds what the window covers plus the history; the record outside is live.
    let live = stack.assert_table_matches_simulator_where("clockings", |r| {
        r["date"].as_str().is_some_and(|d| d >= from.as_str()) || r["id"] == 5000
    });
    assert!(live.await >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconciliation_of_an_unchanged_copy_writes_nothing_and_reports_drift_zero() {
    let stack = Stack::start(&["clockings", "people"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 25);
    stack.simulator.seed("people", 6);
    assert!(stack.sync(&[]).await.healthy);
    let before = records(&stack).await;
    let report = stack.sync_request(&[], reconcile(&["clockings", "people"], false)).await;
    assert!(report.healthy, "{report:?}");
    for collection in ["clockings", "people"] {
        assert_eq!(drift(&report, collection), (0, 0, 0), "{collection}");
        let c = report_of(&report, collection);
        assert_eq!((c.records.stored, c.records.deleted), (0, 0), "{c:?}");
        assert!(c.records.duplicate > 0, "{c:?}");
    }
    assert_eq!(records(&stack).await, before, "not one record item written");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 25);
    assert_eq!(stack.assert_table_matches_simulator("people").await, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drifted_copy_reports_exactly_its_drift_a_dry_run_changes_nothing_and_a_reconciliation_repairs_it() {
    use protime_webhooks::records::item::attr;
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let seeded = stack.simulator.seed("clockings", 12);
    assert!(stack.sync(&[]).await.healthy);
    let client = aws_sdk_dynamodb::Client::new(&stack.receiver.setup);
    let table = &stack.receiver.table;
    // Missing: an item removed. Behind: one held at an older version. Stray: a live record
    // Protime never had.
    let missing = id_of(&seeded[0]);
    client
        .delete_item()
        .table_name(table)
        .key(attr::PK, AttributeValue::S(format!("clockings#{missing}")))
        .send()
        .await
        .unwrap();
    let mut older = seeded[1].clone();
    older["changeVersion"] = json!("00000000000000000001");
    stack.put_record("clockings", older).await;
    let today = stack.simulator.now().format("%Y-%m-%d").to_string();
    let stray = json!({"id": 999999, "changeVersion": "00000000000000000001", "date": today, "person": {"id": 1}});
    stack.put_record("clockings", stray).await;

    let before = records(&stack).await;
    let dry = stack.sync_request(&[], reconcile(&["clockings"], true)).await;
    assert_eq!(drift(&dry, "clockings"), (1, 1, 1), "{dry:?}");
    let samples = report_of(&dry, "clockings").drift.clone().unwrap().samples.expect("a dry run's samples");
    assert_eq!(samples.missing, [missing]);
    assert_eq!(samples.behind, [id_of(&seeded[1])]);
    assert_eq!(samples.swept, ["999999"]);
    assert_eq!(records(&stack).await, before, "a dry run writes no record");
    let state = item(&stack, "sync#clockings").await;
    assert!(!state.contains_key("reconcile"), "the dry run is over: {state:?}");

    let real = stack.sync_request(&[], reconcile(&["clockings"], false)).await;
    assert!(real.healthy, "{real:?}");
    assert_eq!(drift(&real, "clockings"), (1, 1, 1), "{real:?}");
    assert!(report_of(&real, "clockings").drift.clone().unwrap().samples.is_none());
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 12);
    let stray = item(&stack, "clockings#999999").await;
    assert_eq!((stray["deleted"].clone(), harness::s(&stray, "source")), (AttributeValue::Bool(true), "sweep"));
    let again = stack.sync_request(&[], reconcile(&["clockings"], false)).await;
    assert_eq!(drift(&again, "clockings"), (0, 0, 0), "repaired: {again:?}");
}

/// A stack deployed without the `byDate` index (`READ_INDEXES=none`) sweeps by scanning the
/// table: the same drift found and repaired, and a reconciliation of one collection never
/// touches another's records (each collection's stray is swept only by its own pass).
#[tokio::test(flavor = "multi_thread")]
async fn without_the_date_index_the_sweep_scans_and_sweeps_only_its_own_collection() {
    let no_indexes = [("READ_INDEXES", "none")];
    let stack = Stack::start(&["clockings", "people"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 30);
    stack.simulator.seed("people", 12);
    assert!(stack.sync(&no_indexes).await.healthy);
    let today = stack.simulator.now().format("%Y-%m-%d").to_string();
    let stray_clocking =
        json!({"id": 999999, "changeVersion": "00000000000000000001", "date": today, "person": {"id": 1}});
    stack.put_record("clockings", stray_clocking).await;
    stack.put_record("people", json!({"id": 888888, "changeVersion": "00000000000000000001", "name": "Stray"})).await;

    let dry = stack.sync_request(&no_indexes, reconcile(&["clockings"], true)).await;
    assert_eq!(drift(&dry, "clockings"), (0, 0, 1), "{dry:?}");
    let real = stack.sync_request(&no_indexes, reconcile(&["clockings"], false)).await;
    assert!(real.healthy, "{real:?}");
    assert_eq!(drift(&real, "clockings"), (0, 0, 1), "{real:?}");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 30);
    let person = item(&stack, "people#888888").await;
    assert_eq!(person["deleted"], AttributeValue::Bool(false), "another collection's record is left alone");

    let people = stack.sync_request(&no_indexes, reconcile(&["people"], false)).await;
    assert_eq!(drift(&people, "people"), (0, 0, 1), "{people:?}");
    assert_eq!(stack.assert_table_matches_simulator("people").await, 12);
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 30);
}

/// A record Protime holds as soft-deleted whose tombstone the table's TTL removed: a full pass
/// finds the copy agreeing (no drift, nothing written), instead of writing a tombstone that
/// would only expire again and alarm on every pass after.
#[tokio::test(flavor = "multi_thread")]
async fn a_soft_deleted_record_whose_tombstone_expired_is_no_drift_and_stays_gone() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 5);
    let today = stack.simulator.now().format("%Y-%m-%d").to_string();
    let soft = json!({"id": 4242, "date": today, "person": {"id": 1}, "status": "Deleted"});
    let soft = stack.simulator.change_quietly("clockings", soft);
    assert!(stack.sync(&[]).await.healthy);
    assert!(stack.receiver.item("clockings#4242").await.is_none(), "a load writes no tombstone it never needed");
    // Delivered by a webhook, then its tombstone expires (the TTL removes it by key).
    stack.put_record("clockings", soft).await;
    assert_eq!(stack.receiver.item("clockings#4242").await.unwrap()["deleted"], AttributeValue::Bool(true));
    let client = aws_sdk_dynamodb::Client::new(&stack.receiver.setup);
    let key = AttributeValue::S("clockings#4242".into());
    client.delete_item().table_name(&stack.receiver.table).key("pk", key).send().await.unwrap();
    let report = stack.sync_request(&[], reconcile(&["clockings"], false)).await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(drift(&report, "clockings"), (0, 0, 0), "{report:?}");
    assert!(stack.receiver.item("clockings#4242").await.is_none(), "no tombstone written again");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 5);
}
