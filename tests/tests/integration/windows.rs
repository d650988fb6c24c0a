//! The default windows against a simulator that enforces Protime's one-year rule for clockings
//! and assignments (both bounds, at most a year apart, a delta starting no earlier than 1
//! January of the previous year): a default deployment copies them completely, the history
//! before the rolling window is listed once and never swept, and a window that comes near its
//! end is loaded again further ahead after its old deltaLink was followed to its end.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Datelike, Duration, NaiveDate};
use harness::simulator::SimulatorConfig;
use harness::{report_of, Stack};
use protime_webhooks::sync::plan::{WINDOW_AHEAD_DAYS, WINDOW_BEHIND_DAYS, WINDOW_MIN_AHEAD_DAYS};
use protime_webhooks::sync::{Outcome, SyncRequest};
use serde_json::{json, Value};

async fn state(stack: &Stack, collection: &str) -> std::collections::HashMap<String, AttributeValue> {
    stack.receiver.item(&format!("sync#{collection}")).await.expect("a sync state")
}

fn day(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> NaiveDate {
    harness::s(item, name).parse().unwrap_or_else(|_| panic!("{name} is a day: {item:?}"))
}

/// A clocking or assignment dated `date`, stored quietly (as if made while no webhook ran).
fn dated(stack: &Stack, collection: &str, id: u64, date: NaiveDate) -> Value {
    stack.simulator.change_quietly(collection, json!({"id": id, "person": {"id": 7}, "date": date.to_string()}))
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_one_year_rule_enforced_a_default_deployment_completes_clockings_and_assignments() {
    let collections = ["clockings", "assignments", "paid-presences"];
    let stack = Stack::start(&collections, SimulatorConfig { page_size: 7, ..Default::default() }).await;
    for collection in collections {
        stack.simulator.seed(collection, 40);
    }
    let today = stack.simulator.now().date_naive();
    let previous_year = NaiveDate::from_ymd_opt(today.year() - 1, 1, 1).unwrap();
    let window_from = today - Duration::days(WINDOW_BEHIND_DAYS);
    // The edges: the first day of the default span, the days either side of the window's start,
    // a night shift of tomorrow, an assignment planned three months ahead.
    dated(&stack, "clockings", 90_001, previous_year);
    dated(&stack, "clockings", 90_002, window_from - Duration::days(1));
    dated(&stack, "clockings", 90_003, window_from);
    dated(&stack, "clockings", 90_004, today + Duration::days(1));
    dated(&stack, "assignments", 90_005, previous_year + Duration::days(40));
    dated(&stack, "assignments", 90_006, today + Duration::days(90));

    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    for collection in collections {
        let c = report_of(&report, collection);
        assert_eq!((c.outcome, c.error.as_deref()), (Outcome::Complete, None), "{c:?}");
        let state = state(&stack, collection).await;
        let (from, to) = (day(&state, "from"), day(&state, "to"));
        assert_eq!((from, to), (window_from, today + Duration::days(WINDOW_AHEAD_DAYS)), "{collection}");
        assert!((to - from).num_days() <= 366 && from >= previous_year, "{collection}: {from}..{to}");
        assert_eq!(harness::s(&state, "filter"), format!("date ge '{from}' and date le '{to}'"));
        // The history before the window was listed, up to the window's start.
        let history = state["history"].as_m().expect("the history is listed");
        assert_eq!(history["from"], AttributeValue::S(previous_year.to_string()), "{collection}");
        assert_eq!(history["until"], AttributeValue::S(window_from.to_string()), "{collection}");
        assert!(!history.contains_key("cursor"), "{collection}: {history:?}");
    }
    // Every record Protime has, window and history alike, exactly.
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 44);
    assert_eq!(stack.assert_table_matches_simulator("assignments").await, 42);
    assert_eq!(stack.assert_table_matches_simulator("paid-presences").await, 40);
    // Every request the syncer made was one Protime accepts.
    let refused: Vec<_> = stack.simulator.seen().into_iter().filter(|s| s.status == 400).collect();
    assert!(refused.is_empty(), "{refused:?}");

    // The history is listed once: the next runs follow the deltas only.
    let lists = stack.simulator.count("GET", "/clockings");
    let next = stack.sync(&[]).await;
    assert!(next.healthy, "{next:?}");
    assert_eq!(stack.simulator.count("GET", "/clockings"), lists, "no list again");

    // History is never swept: of two live records Protime never had, the one dated before the
    // window stays, the one inside it is swept by a reconciliation of the window.
    let stray = |id: u64, date: NaiveDate| json!({"id": id, "changeVersion": "00000000000000000001", "date": date.to_string(), "person": {"id": 1}});
    stack.put_record("clockings", stray(80_001, window_from - Duration::days(3))).await;
    stack.put_record("clockings", stray(80_002, window_from + Duration::days(3))).await;
    let request = SyncRequest { collections: Some(vec!["clockings".into()]), reconcile: true, ..Default::default() };
    let reconciled = stack.sync_request(&[], request).await;
    let drift = report_of(&reconciled, "clockings").drift.clone().expect("a full pass completed");
    assert_eq!((drift.missing, drift.behind, drift.swept), (0, 0, 1), "{reconciled:?}");
    let kept = stack.receiver.item("clockings#80001").await.expect("the history record is kept");
    assert_eq!(kept["deleted"], AttributeValue::Bool(false), "history is not swept");
    let swept = stack.receiver.item("clockings#80002").await.expect("a tombstone");
    assert_eq!((&swept["deleted"], harness::s(&swept, "source")), (&AttributeValue::Bool(true), "sweep"));
    // With the stray history record taken out again, the table is exactly Protime's records.
    let key = AttributeValue::S("clockings#80001".into());
    let client = aws_sdk_dynamodb::Client::new(&stack.receiver.setup);
    client.delete_item().table_name(&stack.receiver.table).key("pk", key).send().await.unwrap();
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 44);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_near_its_end_moves_ahead_after_its_old_delta_and_the_days_it_leaves_are_listed() {
    let stack = Stack::start(&["assignments"], SimulatorConfig::default()).await;
    stack.simulator.seed("assignments", 30);
    let start = stack.simulator.now().date_naive();
    // Dated in the days the window will leave (see below): loaded now, deleted just before it moves.
    let leaving = start - Duration::days(WINDOW_BEHIND_DAYS) + Duration::days(20);
    dated(&stack, "assignments", 70_001, leaving);
    let vars = [("RECONCILE_INTERVAL_HOURS", "0")];
    assert!(stack.sync(&vars).await.healthy);
    let first = state(&stack, "assignments").await;
    let (old_from, old_to) = (day(&first, "from"), day(&first, "to"));
    assert!(old_from < leaving);
    // Two days at a time (the deltaLink stays alive), until the next step leaves fewer than 92
    // days ahead of the window's end.
    let step = Duration::hours(48);
    let mut runs = 0;
    while old_to - (stack.simulator.now() + step).date_naive() >= Duration::days(WINDOW_MIN_AHEAD_DAYS) {
        stack.simulator.advance(step);
        let report = stack.sync(&vars).await;
        assert_eq!(report_of(&report, "assignments").outcome, Outcome::Complete, "{report:?}");
        runs += 1;
        assert!(runs < 40, "the window never came near its end");
    }
    assert_eq!(day(&state(&stack, "assignments").await, "to"), old_to, "followed, not moved, until then");
    stack.simulator.advance(step);
    let today = stack.simulator.now().date_naive();
    let new_from = today - Duration::days(WINDOW_BEHIND_DAYS);
    assert!(leaving < new_from, "{leaving} is in the days the window leaves");
    // Just before the move: the record in the days the window leaves is deleted, one planned in
    // the days it gains is created. Only the old deltaLink tells of the deletion.
    stack.simulator.delete_quietly("assignments", json!(70_001));
    dated(&stack, "assignments", 70_002, today + Duration::days(WINDOW_AHEAD_DAYS));
    let report = stack.sync(&vars).await;
    let c = report_of(&report, "assignments");
    assert!(report.healthy && c.outcome == Outcome::Complete && !c.delta_expired, "{c:?}");
    let moved = state(&stack, "assignments").await;
    assert_eq!((day(&moved, "from"), day(&moved, "to")), (new_from, today + Duration::days(WINDOW_AHEAD_DAYS)));
    let history = moved["history"].as_m().expect("a history");
    assert_eq!(history["until"], AttributeValue::S(new_from.to_string()), "the days the window left are listed");
    // The deletion came through the old deltaLink (not a sweep: it is outside the new window).
    let tombstone = stack.receiver.item("assignments#70001").await.expect("a tombstone");
    assert_eq!((&tombstone["deleted"], harness::s(&tombstone, "source")), (&AttributeValue::Bool(true), "delta"));
    let drift = c.drift.clone().expect("the new window's load is a full pass");
    assert_eq!((drift.missing, drift.swept), (1, 0), "only the new planned record: {drift:?}");
    assert_eq!(stack.assert_table_matches_simulator("assignments").await, 31);
}
