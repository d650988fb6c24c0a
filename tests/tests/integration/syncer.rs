//! The syncer against the Protime simulator and moto: after every scenario the table must equal
//! the simulator's records exactly (live records equal, deleted ones tombstoned).

use harness::simulator::{Fault, SimulatorConfig};
use harness::{report_of, Stack};
use protime_webhooks::sync::{Budget, Outcome, SyncReport, SyncRequest};
use serde_json::json;
use std::time::Duration;

fn outcomes(report: &SyncReport) -> Vec<(String, Outcome)> {
    report.collections.iter().map(|c| (c.collection.clone(), c.outcome)).collect()
}

fn today(stack: &Stack) -> String {
    stack.simulator.now().format("%Y-%m-%d").to_string()
}

/// Pages of a collection's list or delta the simulator answered (its first page and nextLinks).
fn list_requests(stack: &Stack, collection: &str) -> usize {
    stack.simulator.count("GET", &format!("/{collection}"))
}

/// Pages of the history before a rolling window (clockings, assignments, paid-presences) the
/// syncer listed: one or more ranges of at most a year from 1 January of the previous year, so
/// how many depends on the date. Counted from the state, added to the load's own pages.
async fn history_pages(stack: &Stack, collection: &str) -> usize {
    let state = harness_item(stack, &format!("sync#{collection}")).await;
    let history = state.get("history").and_then(|h| h.as_m().ok());
    history.map_or(0, |h| h["pages"].as_n().unwrap().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_initial_load_across_many_pages_and_empty_pages_copies_every_collection_exactly() {
    let stack =
        Stack::start(&["clockings", "paid-presences", "people", "counter-groups"], SimulatorConfig::default()).await;
    for collection in ["clockings", "paid-presences", "people", "counter-groups"] {
        stack.simulator.seed(collection, 40);
    }
    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    assert!(outcomes(&report).iter().all(|(_, o)| *o == Outcome::Complete), "{report:?}");
    let clockings = report_of(&report, "clockings");
    // 40 records, 3 per page, an empty page between data pages: 27 pages, and the history's.
    let history = history_pages(&stack, "clockings").await;
    assert!(history >= 1, "the history before the window is listed");
    assert_eq!((clockings.pages, clockings.records.stored), (27 + history as u64, 40), "{clockings:?}");
    for collection in ["clockings", "paid-presences", "people", "counter-groups"] {
        assert_eq!(stack.assert_table_matches_simulator(collection).await, 40, "{collection}");
    }
    let state = stack.receiver.item("sync#clockings").await.expect("sync state");
    assert_eq!(harness::s(&state, "phase"), "incremental");
    assert!(harness::s(&state, "cursor").contains("deltaToken="));
    assert_eq!(harness::s(&state, "mode"), "delta");
    let people = harness_item(&stack, "sync#people").await;
    assert_eq!(harness::s(&people, "mode"), "delta");
    assert!(harness::s(&people, "cursor").contains("/delta/people?deltaToken="));
    assert!(!state.contains_key("leaseOwner"), "the lease is released");

    // The next run follows each deltaLink once and finds nothing.
    let report = stack.sync(&[]).await;
    assert!(report.healthy);
    for collection in ["clockings", "people"] {
        let c = report_of(&report, collection);
        assert_eq!((c.outcome, c.pages, c.records.fetched), (Outcome::Complete, 1, 0), "{collection}");
    }
}

async fn harness_item(
    stack: &Stack,
    pk: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    stack.receiver.item(pk).await.expect(pk)
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_and_deletions_made_while_webhooks_were_disabled_arrive_through_delta() {
    let stack = Stack::start(&["clockings", "breaks"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 12);
    stack.simulator.seed("breaks", 6);
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);
    stack.simulator.disable("clockings");
    stack.simulator.disable("breaks");
    let ids: Vec<String> = stack.simulator.records("clockings").iter().map(|r| r["id"].to_string()).collect();
    let date = today(&stack);
    stack.simulator.change_quietly("clockings", json!({"id": 9001, "date": date, "kind": "InOut"}));
    stack
        .simulator
        .change_quietly("clockings", json!({"id": ids[0].parse::<u64>().unwrap(), "date": date, "v": "updated"}));
    stack.simulator.delete_quietly("clockings", json!(ids[1].parse::<u64>().unwrap()));
    let soft = stack.simulator.soft_delete("clockings", json!(ids[2].parse::<u64>().unwrap())).await;
    assert_eq!(soft.delivered, 0, "the webhook is Disabled");
    let breaks: Vec<String> = stack.simulator.records("breaks").iter().map(|r| r["id"].to_string()).collect();
    stack.simulator.delete_quietly("breaks", json!(breaks[0].parse::<u64>().unwrap()));

    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    let clockings = report_of(&report, "clockings");
    assert_eq!((clockings.records.stored, clockings.records.deleted), (4, 2), "{clockings:?}");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 11);
    assert_eq!(stack.assert_table_matches_simulator("breaks").await, 5);
    let tombstone = harness_item(&stack, &format!("clockings#{}", ids[1])).await;
    assert_eq!(tombstone["deleted"], aws_sdk_dynamodb::types::AttributeValue::Bool(true));
    assert_eq!(harness::s(&tombstone, "source"), "delta");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_delivery_the_simulator_dropped_is_reconciled_by_the_next_run() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 5);
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);
    stack.simulator.drop_deliveries(2);
    let date = today(&stack);
    let lost = stack.simulator.change("clockings", json!({"id": 7001, "date": date})).await;
    assert_eq!((lost.delivered, lost.dropped), (0, 1), "{lost:?}");
    stack.simulator.change("clockings", json!({"id": 7002, "date": date})).await;
    let kept = stack.simulator.change("clockings", json!({"id": 7003, "date": date})).await;
    assert_eq!(kept.delivered, 1);
    assert!(stack.receiver.item("clockings#7001").await.is_none(), "the lost event never arrived");
    assert!(stack.simulator.webhook("clockings").unwrap().enabled, "Protime believes it was delivered");

    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    let c = report_of(&report, "clockings");
    assert_eq!((c.records.stored, c.records.duplicate), (2, 1), "7003 came by webhook too: {c:?}");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_delta_link_goes_back_to_an_initial_load() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 10);
    assert!(stack.sync(&[]).await.healthy);
    stack.simulator.advance(chrono::Duration::hours(73));
    stack.simulator.change_quietly("clockings", json!({"id": 8001, "date": today(&stack)}));
    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    let c = report_of(&report, "clockings");
    assert!(c.delta_expired, "{c:?}");
    assert_eq!((c.outcome, c.records.stored, c.records.duplicate), (Outcome::Complete, 1, 10), "{c:?}");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 11);
    assert!(harness_item(&stack, "sync#clockings").await.contains_key("deltaExpiredAt"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflict_is_recorded_and_the_next_run_succeeds() {
    let stack = Stack::start(&["clockings", "breaks"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 6);
    stack.simulator.seed("breaks", 6);
    stack.simulator.inject_on("/clockings", Fault::Status { status: 409, retry_after_secs: None });
    let report = stack.sync(&[]).await;
    assert!(report.healthy, "a conflict does not fail the run: {report:?}");
    assert_eq!(outcomes(&report), [("clockings".into(), Outcome::Conflict), ("breaks".into(), Outcome::Complete)]);
    let state = harness_item(&stack, "sync#clockings").await;
    assert!(harness::s(&state, "lastError").contains("409"));
    let report = stack.sync(&[]).await;
    assert_eq!(report_of(&report, "clockings").outcome, Outcome::Complete, "{report:?}");
    assert!(!harness_item(&stack, "sync#clockings").await.contains_key("lastError"));
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 6);
    assert_eq!(stack.assert_table_matches_simulator("breaks").await, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_resumes_from_its_checkpoint_after_the_page_budget_without_fetching_a_page_twice() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 30);
    let mut runs = 0;
    loop {
        runs += 1;
        let report = stack.sync(&[("SYNC_MAX_PAGES_PER_RUN", "4")]).await;
        assert!(report.healthy, "{report:?}");
        let c = report_of(&report, "clockings");
        // The budget is each activity's own: the load (or the delta round), then the history.
        assert!(c.pages <= 8, "{c:?}");
        if c.outcome == Outcome::Complete {
            break;
        }
        assert_eq!(c.outcome, Outcome::Partial);
        assert!(runs < 20, "the load never completed");
    }
    // 30 records, 3 per page with empty pages between: 19 pages, 4 per run; the history's pages
    // start in the run that completes the load, with a budget of 4 of their own.
    let history = history_pages(&stack, "clockings").await;
    assert_eq!(runs, 19usize.div_ceil(4) + history.saturating_sub(4).div_ceil(4));
    assert_eq!(list_requests(&stack, "clockings"), 19 + history, "every page fetched exactly once");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_page_is_resumed_from_the_last_checkpoint_once_its_lease_expires() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 30);
    // The fourth page hangs (longer than the test waits): the process is killed there.
    for _ in 0..3 {
        stack.simulator.inject_on("/clockings", Fault::Pass);
    }
    stack.simulator.inject_on("/clockings", Fault::Delay(Duration::from_secs(30)));
    let syncer = stack.syncer(&[]);
    let budget = Budget::new(stack.simulator.now(), Some(Duration::from_secs(3)), Duration::ZERO);
    let killed = tokio::spawn(async move { syncer.run(&SyncRequest::default(), budget).await });
    let checkpointed = |pages: &str| {
        let pages = pages.to_owned();
        let stack = &stack;
        async move {
            let state = stack.receiver.item("sync#clockings").await;
            state.and_then(|s| s.get("pages").cloned()) == Some(aws_sdk_dynamodb::types::AttributeValue::N(pages))
        }
    };
    for _ in 0..100 {
        if checkpointed("3").await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Now fetching the fourth page, which hangs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    killed.abort();
    assert!(killed.await.unwrap_err().is_cancelled());
    let state = harness_item(&stack, "sync#clockings").await;
    assert!(state.contains_key("leaseOwner"), "a killed run cannot release its lease");
    assert_eq!(state["pages"], aws_sdk_dynamodb::types::AttributeValue::N("3".into()), "three pages checkpointed");

    // While the lease holds, another run leaves the collection alone.
    let report = stack.sync(&[]).await;
    assert_eq!(report_of(&report, "clockings").outcome, Outcome::Busy);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    let c = report_of(&report, "clockings");
    assert_eq!(c.outcome, Outcome::Complete);
    let history = history_pages(&stack, "clockings").await as u64;
    assert_eq!(c.pages, 19 - 3 + history, "resumed at the page the killed run was fetching");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_overlapping_invocations_never_work_on_one_collection_at_once() {
    let stack = Stack::start(&["clockings", "breaks"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 20);
    stack.simulator.seed("breaks", 20);
    let (a, b) = (stack.syncer(&[]), stack.syncer(&[]));
    let budget = Budget::new(stack.simulator.now(), None, Duration::ZERO);
    let request = SyncRequest::default();
    let (first, second) = tokio::join!(a.run(&request, budget), b.run(&request, budget));
    let (first, second) = (first.unwrap(), second.unwrap());
    for collection in ["clockings", "breaks"] {
        let mut both = [report_of(&first, collection).outcome, report_of(&second, collection).outcome];
        both.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(both, [Outcome::Busy, Outcome::Complete], "{collection}: {first:?} {second:?}");
    }
    // 20 records, 3 per page with empty pages: 13 pages, and the history's, each fetched once.
    assert_eq!(list_requests(&stack, "clockings"), 13 + history_pages(&stack, "clockings").await);
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 20);
    assert_eq!(stack.assert_table_matches_simulator("breaks").await, 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_failing_collection_never_stops_the_others() {
    let stack = Stack::start(&["clockings", "paid-presences", "breaks"], SimulatorConfig::default()).await;
    for collection in ["clockings", "paid-presences", "breaks"] {
        stack.simulator.seed(collection, 9);
    }
    stack.simulator.inject_on("/paid-presences", Fault::Status { status: 403, retry_after_secs: None });
    let report = stack.sync(&[]).await;
    assert!(!report.healthy);
    assert_eq!(report.failing(), ["paid-presences"]);
    assert_eq!(report_of(&report, "clockings").outcome, Outcome::Complete);
    assert_eq!(report_of(&report, "breaks").outcome, Outcome::Complete);
    assert!(report_of(&report, "paid-presences").error.as_deref().unwrap_or_default().contains("403"));
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 9);
    assert_eq!(stack.assert_table_matches_simulator("breaks").await, 9);
    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(stack.assert_table_matches_simulator("paid-presences").await, 9);
}

/// The people records of a scan, by key.
fn people_items(
    items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>],
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let mut r: Vec<_> = items.iter().filter(|i| harness::s(i, "pk").starts_with("people#")).cloned().collect();
    r.sort_by_key(|i| harness::s(i, "pk").to_owned());
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn people_are_loaded_and_kept_through_their_delta_and_a_deletion_arrives_with_the_next_round() {
    let stack = Stack::start(&["people"], SimulatorConfig::default()).await;
    let seeded = stack.simulator.seed("people", 25);
    let first = stack.sync(&[]).await;
    assert_eq!(report_of(&first, "people").records.stored, 25, "{first:?}");
    let loads = stack.simulator.count("GET", "/people");

    // Nothing changed: a delta round of one page writes nothing.
    let before = harness::scan(&stack.receiver.setup, &stack.receiver.table).await;
    let again = stack.sync(&[]).await;
    let people = report_of(&again, "people");
    assert_eq!((people.outcome, people.pages, people.records.fetched), (Outcome::Complete, 1, 0), "{people:?}");
    let after = harness::scan(&stack.receiver.setup, &stack.receiver.table).await;
    assert_eq!(people_items(&before), people_items(&after), "not one record item was rewritten");

    // Deleted and changed in Protime, no webhook delivered: the next round brings both, with
    // no list request and no reconciliation.
    let gone = seeded[3]["id"].clone();
    stack.simulator.delete_quietly("people", gone.clone());
    let mut renamed = seeded[5].clone();
    renamed["lastName"] = json!("Renamed");
    stack.simulator.change_quietly("people", renamed);
    let round = stack.sync(&[]).await;
    let people = report_of(&round, "people");
    assert_eq!((people.pages, people.records.stored, people.records.deleted), (1, 2, 1), "{people:?}");
    assert!(people.drift.is_none(), "no full pass: {people:?}");
    assert_eq!(stack.simulator.count("GET", "/people"), loads, "nothing listed again");
    let tombstone = stack.receiver.item(&format!("people#{gone}")).await.expect("the tombstone");
    assert_eq!(tombstone["deleted"], aws_sdk_dynamodb::types::AttributeValue::Bool(true));
    assert_eq!(harness::s(&tombstone, "source"), "delta");
    assert_eq!(stack.assert_table_matches_simulator("people").await, 24);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_people_copy_an_earlier_release_listed_moves_to_its_delta_and_stays_complete() {
    let stack = Stack::start(&["people"], SimulatorConfig::default()).await;
    let seeded = stack.simulator.seed("people", 12);
    assert!(stack.sync(&[]).await.healthy);
    // The state as a release that listed people left it: mode list, its last pass complete,
    // no deltaLink.
    let completed = harness::s(&harness_item(&stack, "sync#people").await, "initialCompletedAt").to_owned();
    aws_sdk_dynamodb::Client::new(&stack.receiver.setup)
        .update_item()
        .table_name(&stack.receiver.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("sync#people".into()))
        .update_expression("SET #mode = :list REMOVE #cursor")
        .expression_attribute_names("#mode", "mode")
        .expression_attribute_names("#cursor", "cursor")
        .expression_attribute_values(":list", aws_sdk_dynamodb::types::AttributeValue::S("list".into()))
        .send()
        .await
        .expect("the old state");
    // Meanwhile in Protime, with no webhook delivered: one person deleted, one changed.
    stack.simulator.delete_quietly("people", seeded[2]["id"].clone());
    let mut changed = seeded[7].clone();
    changed["firstName"] = json!("Changed");
    stack.simulator.change_quietly("people", changed);

    // One page a run: the delta's load under way, the copy not shown as waiting for a baseline.
    let first = stack.sync(&[("SYNC_MAX_PAGES_PER_RUN", "1")]).await;
    assert_eq!(report_of(&first, "people").outcome, Outcome::Partial, "{first:?}");
    let state = harness_item(&stack, "sync#people").await;
    assert_eq!((harness::s(&state, "mode"), harness::s(&state, "phase")), ("delta", "initial"));
    assert_eq!(harness::s(&state, "initialCompletedAt"), completed);
    let report = stack.sync(&[]).await;
    let people = report_of(&report, "people");
    assert_eq!(people.outcome, Outcome::Complete, "{people:?}");
    let state = harness_item(&stack, "sync#people").await;
    assert_eq!((harness::s(&state, "mode"), harness::s(&state, "phase")), ("delta", "incremental"));
    assert!(harness::s(&state, "cursor").contains("/delta/people?deltaToken="));
    // The load was a full pass: the change stored, the deletion swept; the copy is Protime's.
    let drift = people.drift.clone().expect("the load's full pass");
    assert_eq!((drift.behind, drift.swept), (1, 1), "{drift:?}");
    assert_eq!(stack.assert_table_matches_simulator("people").await, 11);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_backfill_reloads_the_named_collection_from_its_date() {
    let stack = Stack::start(&["clockings", "breaks"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 6);
    stack.simulator.seed("breaks", 6);
    assert!(stack.sync(&[]).await.healthy);
    // Clockings go through a rolling window: the window is loaded again and the history before
    // it listed again from the backfill's date; breaks are loaded from it.
    let today = stack.simulator.now().date_naive();
    let from = today - chrono::Duration::days(300);
    let history_record = json!({"id": 777, "date": (from + chrono::Duration::days(1)).to_string()});
    stack.simulator.change_quietly("clockings", history_record);
    let request: SyncRequest = serde_json::from_value(
        json!({"collections": ["clockings", "breaks"], "reinitialize": true, "from": from.to_string()}),
    )
    .unwrap();
    let budget = Budget::new(stack.simulator.now(), None, Duration::ZERO);
    let report = stack.syncer(&[]).run(&request, budget).await.unwrap();
    assert_eq!(outcomes(&report), [("clockings".into(), Outcome::Complete), ("breaks".into(), Outcome::Complete)]);
    let state = harness_item(&stack, "sync#clockings").await;
    let window = (today - chrono::Duration::days(243), today + chrono::Duration::days(122));
    assert_eq!(harness::s(&state, "filter"), format!("date ge '{}' and date le '{}'", window.0, window.1));
    assert_eq!(harness::s(&state, "phase"), "incremental");
    let history = state["history"].as_m().expect("the history is listed again");
    assert_eq!(harness::s(history, "from"), from.to_string());
    assert_eq!(harness::s(history, "until"), window.0.to_string());
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 7);
    let breaks = harness_item(&stack, "sync#breaks").await;
    assert_eq!(harness::s(&breaks, "filter"), format!("date ge '{from}'"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_renewer_recovers_a_disabled_subscription_through_the_delta_link_not_the_list() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 9);
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);
    let ids: Vec<u64> = stack.simulator.records("clockings").iter().map(|r| r["id"].as_u64().unwrap()).collect();
    stack.simulator.disable("clockings");
    stack.simulator.change_quietly("clockings", json!({"id": ids[0], "date": today(&stack), "v": "missed"}));
    stack.simulator.delete_quietly("clockings", json!(ids[1]));
    let listed = list_requests(&stack, "clockings");

    let report = stack.renew().await;
    assert!(report.healthy, "{report:?}");
    let recovered = &report.subscriptions[0];
    assert_eq!(recovered.action.as_str(), "recover");
    let caught_up = recovered.resynced.expect("caught up");
    assert_eq!((caught_up.stored, caught_up.deleted), (2, 1), "{caught_up:?}");
    assert_eq!(list_requests(&stack, "clockings"), listed, "no list request: the deltaLink carried the gap");
    assert!(stack.simulator.count("GET", "/delta/clockings") >= 2, "a delta round before and after the re-enable");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 8);
    // The syncer's next round follows the deltaLink the renewer left.
    let report = stack.sync(&[]).await;
    assert_eq!(
        (report_of(&report, "clockings").outcome, report_of(&report, "clockings").delta_expired),
        (Outcome::Complete, false)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_delta_link_the_renewer_hands_the_gap_to_the_syncer() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);
    stack.simulator.disable("clockings");
    stack.simulator.change_quietly("clockings", json!({"id": 1, "date": today(&stack)}));
    let report = stack.renew().await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(list_requests(&stack, "clockings"), 0, "the renewer lists nothing");
    assert!(stack.simulator.webhook("clockings").unwrap().enabled);
    assert!(stack.sync(&[]).await.healthy);
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_delta_link_met_by_the_renewer_is_left_for_the_syncer_to_report() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 4);
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);
    stack.simulator.disable("clockings");
    stack.simulator.advance(chrono::Duration::hours(73));
    stack.simulator.change_quietly("clockings", json!({"id": 6001, "date": today(&stack)}));
    let listed = list_requests(&stack, "clockings");
    let report = stack.renew().await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(list_requests(&stack, "clockings"), listed, "nothing listed: handed to the syncer");
    assert!(stack.simulator.webhook("clockings").unwrap().enabled);
    let report = stack.sync(&[]).await;
    let c = report_of(&report, "clockings");
    assert!(c.delta_expired, "the syncer meets the 410 itself, and reports it: {c:?}");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limiting_is_waited_out_and_the_load_completes() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 7);
    stack.simulator.inject_on("/clockings", Fault::Pass);
    stack.simulator.inject_on("/clockings", Fault::Status { status: 429, retry_after_secs: Some(1) });
    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(report_of(&report, "clockings").outcome, Outcome::Complete);
    let throttled = stack.simulator.seen().iter().filter(|s| s.status == 429).count();
    assert_eq!(throttled, 1);
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collection_whose_scope_is_missing_names_it_while_the_others_complete() {
    let stack = Stack::start(&["clockings", "people"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 6);
    stack.simulator.seed("people", 6);
    // The API client was granted people's scope only: the token comes without clockings'.
    stack.simulator.grant_scopes(Some(vec!["connector-protimeapi-people.read".into()]));
    let report = stack.sync(&[]).await;
    assert!(!report.healthy, "{report:?}");
    assert_eq!(report_of(&report, "people").outcome, Outcome::Complete, "{report:?}");
    assert_eq!(stack.assert_table_matches_simulator("people").await, 6);
    let clockings = report_of(&report, "clockings");
    let error = clockings.error.clone().unwrap_or_default();
    assert_eq!(clockings.outcome, Outcome::Error);
    assert!(error.contains("connector-protimeapi-clockings.read") && error.contains("grant it"), "{error}");
    let state = harness_item(&stack, "sync#clockings").await;
    assert_eq!(harness::s(&state, "lastError"), error, "lastError says the same");
    assert_eq!(stack.simulator.count("GET", "/clockings"), 1, "a 403 is not retried");

    // Granted in myProtime: the next run loads clockings.
    stack.simulator.grant_scopes(None);
    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn protime_maintenance_is_waited_out_within_the_run_and_a_longer_one_is_named() {
    let stack = Stack::start(&["breaks"], SimulatorConfig::default()).await;
    stack.simulator.seed("breaks", 5);
    // 503 with Retry-After: 1 for a second or two (the token endpoint too): waited out.
    stack.simulator.maintenance(Duration::from_secs(2), 1);
    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(stack.assert_table_matches_simulator("breaks").await, 5);
    assert!(stack.simulator.seen().iter().any(|s| s.status == 503), "the window was met");

    // A window asking for ten minutes when the run has half a minute: no wait past the
    // deadline; the collection's part of the run stops there (not an error: nothing to fix),
    // the report says why, and the next run goes on.
    stack.simulator.change_quietly("breaks", json!({"id": 9001, "date": today(&stack)}));
    stack.simulator.maintenance(Duration::from_secs(600), 600);
    let budget = Budget::new(stack.simulator.now(), Some(Duration::from_secs(30)), Duration::from_secs(2));
    let started = std::time::Instant::now();
    let report = stack.syncer(&[]).run(&SyncRequest::default(), budget).await.expect("a run");
    assert!(started.elapsed() < Duration::from_secs(20), "gave up at once: {:?}", started.elapsed());
    let breaks = report_of(&report, "breaks");
    let waiting = breaks.waiting.clone().unwrap_or_default();
    assert_eq!((breaks.outcome, breaks.error.as_deref()), (Outcome::Partial, None), "{report:?}");
    assert!(waiting.contains("503") && waiting.contains("600 s") && waiting.contains("next run"), "{waiting}");
    assert!(!harness_item(&stack, "sync#breaks").await.contains_key("lastError"));

    stack.simulator.advance(chrono::Duration::minutes(11));
    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(stack.assert_table_matches_simulator("breaks").await, 6);
}
