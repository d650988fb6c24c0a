//! The syncer's run against in-memory fakes of Protime and the stores.

use super::*;
use crate::invocation::{time_left, DEFAULT_LEASE};
use crate::protime::{Page, ProtimeError};
use crate::records::json::{parse, Json};
use crate::records::Source;
use crate::sync::apply::RecordCounts;
use crate::sync::handoff::{delta_round, DeltaRound, DeltaRoundError, Stores};
use crate::sync::report::sync_metrics;
use crate::sync::state::Phase;
use crate::testing::{FakeProtime, Journal, MemoryQuarantine, MemoryRecordStore, MemorySyncStateStore};
use chrono::{NaiveDate, Utc};
use std::sync::Arc;
use std::time::Duration;

fn config(vars: &[(&str, &str)]) -> SyncerConfig {
    // Clockings with an open-ended filter here: the rolling window and its history are
    // proven against the simulator (integration tests, `windows.rs`).
    let mut all = vec![
        ("TABLE_NAME", "t"),
        ("PROTIME_CREDENTIALS_SECRET", "c"),
        ("COLLECTIONS", "clockings,people"),
        ("SYNC_FILTER_CLOCKINGS", "date ge '{from}'"),
    ];
    all.extend_from_slice(vars);
    let all: std::collections::HashMap<_, _> = all.into_iter().collect();
    SyncerConfig::from_lookup(|k| all.get(k).map(|v| v.to_string())).unwrap()
}

type FakeSyncer = Syncer<FakeProtime, Arc<MemoryRecordStore>, MemorySyncStateStore, MemoryQuarantine>;

struct Fixture {
    syncer: FakeSyncer,
    protime: FakeProtime,
    records: Arc<MemoryRecordStore>,
    states: MemorySyncStateStore,
}

fn fixture(vars: &[(&str, &str)]) -> Fixture {
    let protime = FakeProtime::new(Utc::now(), Journal::default());
    let records = Arc::new(MemoryRecordStore::default());
    let states = MemorySyncStateStore::default();
    let syncer = Syncer::new(config(vars), protime.clone(), records.clone(), states.clone(), None);
    Fixture { syncer, protime, records, states }
}

impl Fixture {
    async fn run(&self, request: SyncRequest) -> SyncReport {
        self.syncer.run(&request, Budget::new(Utc::now(), None, Duration::ZERO)).await.unwrap()
    }

    fn page(&self, link: &str, records: &[&str], next: Option<&str>, delta: Option<&str>) {
        let records: Vec<Json> = records.iter().map(|r| parse(r.as_bytes()).unwrap()).collect();
        let page = Page::from_parts(&records, next, delta);
        self.protime.script(link, Ok(page));
    }

    fn cursor(&self, collection: Collection) -> Option<String> {
        self.states.state(collection).and_then(|s| s.cursor)
    }

    /// The three-page initial load of clockings (an empty page in the middle).
    fn initial_clockings(&self) {
        self.page(
            "clockings?page=0",
            &[r#"{"id":1,"changeVersion":"01"}"#, r#"{"id":2,"changeVersion":"01"}"#],
            Some("clockings?page=1"),
            None,
        );
        self.page("clockings?page=1", &[], Some("clockings?page=2"), None);
        self.page("clockings?page=2", &[r#"{"id":3,"changeVersion":"01"}"#], None, Some("delta/clockings?t=1"));
    }
}

fn people(records: &[(u32, &str)]) -> Vec<Json> {
    records.iter().map(|(id, v)| parse(format!(r#"{{"id":{id},"changeVersion":"{v}"}}"#).as_bytes()).unwrap()).collect()
}

#[tokio::test]
async fn an_initial_load_follows_every_page_then_the_next_run_follows_the_delta_link_once() {
    let f = fixture(&[]);
    f.initial_clockings();
    f.protime.set_records(Collection::People, people(&[(7, "01")]));
    let report = f.run(SyncRequest::default()).await;
    assert!(report.healthy, "{report:?}");
    let clockings = &report.collections[0];
    assert_eq!((clockings.outcome, clockings.pages, clockings.records.stored), (Outcome::Complete, 3, 3));
    assert_eq!((clockings.phase, clockings.initial_completed_at.is_some()), (Some(Phase::Incremental), true));
    assert_eq!(f.cursor(Collection::Clockings).as_deref(), Some("delta/clockings?t=1"));
    assert_eq!(f.states.state(Collection::Clockings).unwrap().lease_owner, None, "the lease is released");
    assert_eq!(f.records.change_version(Collection::People, "7").as_deref(), Some("01"));
    assert_eq!(f.records.attribute(Collection::Clockings, "1", "source"), Some(AttributeValue::S("delta".into())));
    assert_eq!(f.records.attribute(Collection::People, "7", "source"), Some(AttributeValue::S("delta".into())));
    assert_eq!(f.cursor(Collection::People).as_deref(), Some("delta/people?t=fake"), "people follow a delta too");

    f.page(
        "delta/clockings?t=1",
        &[r#"{"changeType":"Delete","data":{"id":2,"changeVersion":"02"}}"#],
        None,
        Some("delta/clockings?t=2"),
    );
    let report = f.run(SyncRequest::default()).await;
    assert_eq!(report.collections[0].records.deleted, 1);
    assert_eq!(report.collections[1].outcome, Outcome::Complete, "people: a delta round");
    assert_eq!(report.collections[1].pages, 1, "one page, nothing listed again");
    assert_eq!(f.cursor(Collection::Clockings).as_deref(), Some("delta/clockings?t=2"));
    assert_eq!(f.records.attribute(Collection::Clockings, "2", "deleted"), Some(AttributeValue::Bool(true)));
}

#[tokio::test(start_paused = true)]
async fn a_delta_round_late_in_a_run_stamps_its_writes_with_their_own_time() {
    // The renewer's recovery runs its delta round after the other subscriptions: its
    // cursorAt, lastSyncedAt and lease are the time of each write, not the run's start.
    let f = fixture(&[("COLLECTIONS", "clockings")]);
    f.initial_clockings();
    assert!(f.run(SyncRequest::default()).await.healthy);
    f.page("delta/clockings?t=1", &[r#"{"id":4,"changeVersion":"02"}"#], None, Some("delta/clockings?t=2"));
    let started = Utc::now();
    let budget = Budget::new(started, None, Duration::ZERO);
    tokio::time::advance(Duration::from_secs(600)).await;
    let mut counts = RecordCounts::default();
    let round = delta_round(
        &f.protime,
        Stores {
            records: &*f.records,
            states: &f.states,
            quarantine: None::<&crate::testing::MemoryQuarantine>,
            inline_pages: true,
        },
        Collection::Clockings,
        &budget,
        &mut counts,
    )
    .await
    .unwrap();
    assert_eq!(round, DeltaRound::CaughtUp);
    assert_eq!(counts.stored, 1);
    let state = f.states.state(Collection::Clockings).unwrap();
    let ten_minutes_in = started + chrono::Duration::seconds(600);
    assert!(state.cursor_at.unwrap() >= ten_minutes_in, "cursorAt {:?}", state.cursor_at);
    assert!(state.last_synced_at.unwrap() >= ten_minutes_in, "lastSyncedAt {:?}", state.last_synced_at);
    assert_eq!(f.cursor(Collection::Clockings).as_deref(), Some("delta/clockings?t=2"));
    assert_eq!(budget.lease_until(), budget.now() + chrono::Duration::from_std(DEFAULT_LEASE).unwrap());
    assert!(budget.lease_until() >= ten_minutes_in + chrono::Duration::from_std(DEFAULT_LEASE).unwrap());
}

#[tokio::test]
async fn a_delta_round_that_fails_on_an_unreadable_page_still_counts_what_it_quarantined() {
    let f = fixture(&[("COLLECTIONS", "clockings")]);
    f.initial_clockings();
    assert!(f.run(SyncRequest::default()).await.healthy);
    f.protime.script("delta/clockings?t=1", Ok(crate::protime::Page::new("not json")));
    let quarantine = crate::testing::MemoryQuarantine::default();
    let mut counts = RecordCounts::default();
    let budget = Budget::new(Utc::now(), None, Duration::ZERO);
    let round = delta_round(
        &f.protime,
        Stores { records: &*f.records, states: &f.states, quarantine: Some(&quarantine), inline_pages: true },
        Collection::Clockings,
        &budget,
        &mut counts,
    )
    .await;
    assert!(matches!(round, Err(DeltaRoundError::Failed(_))), "{round:?}");
    assert_eq!(quarantine.bodies(), [("unreadable_page".to_owned(), b"not json".to_vec())]);
    let counted: Vec<(&str, u64)> = counts.quarantined_by.iter().collect();
    assert_eq!(counted, [("unreadable_page", 1)], "the renewer's Quarantined metric sees it");
}

use aws_sdk_dynamodb::types::AttributeValue;

#[tokio::test]
async fn the_page_budget_stops_a_run_and_the_next_resumes_from_the_checkpoint() {
    let f = fixture(&[("SYNC_MAX_PAGES_PER_RUN", "2"), ("COLLECTIONS", "clockings")]);
    f.initial_clockings();
    let report = f.run(SyncRequest::default()).await;
    assert_eq!((report.collections[0].outcome, report.collections[0].pages), (Outcome::Partial, 2));
    assert_eq!(f.cursor(Collection::Clockings).as_deref(), Some("clockings?page=2"));
    let report = f.run(SyncRequest::default()).await;
    assert_eq!((report.collections[0].outcome, report.collections[0].pages), (Outcome::Complete, 1));
    let gets: Vec<String> = f.protime.journal.lines().into_iter().filter(|l| l.starts_with("protime GET")).collect();
    assert_eq!(
        gets,
        ["protime GET clockings?page=0", "protime GET clockings?page=1", "protime GET clockings?page=2"],
        "no page fetched twice, none skipped"
    );
}

#[tokio::test]
async fn an_expired_delta_link_starts_the_initial_load_again_in_the_same_run() {
    let f = fixture(&[("COLLECTIONS", "clockings")]);
    f.initial_clockings();
    f.run(SyncRequest::default()).await;
    f.protime.script("delta/clockings?t=1", Err(ProtimeError::DeltaGone));
    f.initial_clockings();
    let report = f.run(SyncRequest::default()).await;
    let c = &report.collections[0];
    assert!(c.delta_expired && report.healthy, "{report:?}");
    assert_eq!((c.outcome, c.records.duplicate), (Outcome::Complete, 3), "unchanged records are not written again");
    assert_eq!(f.cursor(Collection::Clockings).as_deref(), Some("delta/clockings?t=1"));
    assert!(f.states.state(Collection::Clockings).unwrap().delta_expired_at.is_some());
}

#[tokio::test]
async fn a_conflict_is_recorded_and_retried_next_run_without_failing_the_run() {
    let f = fixture(&[("COLLECTIONS", "clockings")]);
    f.protime.script("clockings?page=0", Err(ProtimeError::DeltaConflict));
    let report = f.run(SyncRequest::default()).await;
    assert_eq!((report.collections[0].outcome, report.healthy), (Outcome::Conflict, true));
    let state = f.states.state(Collection::Clockings).unwrap();
    assert_eq!((state.error_runs, state.last_error.is_some()), (1, true));
    f.initial_clockings();
    let report = f.run(SyncRequest::default()).await;
    assert_eq!(report.collections[0].outcome, Outcome::Complete);
    assert_eq!(f.states.state(Collection::Clockings).unwrap().error_runs, 0);
}

#[tokio::test]
async fn one_failing_collection_does_not_stop_the_others_and_fails_the_run() {
    let f = fixture(&[]);
    f.protime.script(
        "clockings?page=0",
        Err(ProtimeError::Api { status: 403, code: "Forbidden".into(), message: String::new(), reasons: vec![] }),
    );
    f.protime.set_records(Collection::People, people(&[(7, "01"), (8, "01"), (9, "01")]));
    let report = f.run(SyncRequest::default()).await;
    assert!(!report.healthy);
    assert_eq!(report.failing(), ["clockings"]);
    assert_eq!((report.collections[1].outcome, report.collections[1].records.stored), (Outcome::Complete, 3));
}

#[tokio::test]
async fn a_collection_leased_by_another_invocation_is_left_alone() {
    let f = fixture(&[("COLLECTIONS", "clockings")]);
    let later = Utc::now() + chrono::Duration::minutes(10);
    f.states.acquire(Collection::Clockings, "other", Utc::now(), later).await.unwrap().unwrap();
    let report = f.run(SyncRequest::default()).await;
    assert_eq!(report.collections[0].outcome, Outcome::Busy);
    assert!(!f.protime.journal.lines().iter().any(|l| l.starts_with("protime GET")), "no page fetched");
    assert_eq!(f.states.state(Collection::Clockings).unwrap().lease_owner.as_deref(), Some("other"));
}

#[tokio::test]
async fn an_unavailable_table_leaves_the_cursor_on_the_page_that_failed() {
    let f = fixture(&[("COLLECTIONS", "clockings")]);
    f.initial_clockings();
    f.records.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = f.run(SyncRequest::default()).await;
    assert_eq!(report.collections[0].outcome, Outcome::Error);
    assert_eq!(f.cursor(Collection::Clockings).as_deref(), Some("clockings?page=0"));
}

#[tokio::test]
async fn a_manual_backfill_restarts_the_named_collections_from_its_date() {
    let f = fixture(&[]);
    f.initial_clockings();
    f.protime.set_records(Collection::People, people(&[(7, "01")]));
    f.run(SyncRequest::default()).await;
    // The live deltaLink is followed to its end first: its Delete is not lost to the reload.
    f.page(
        "delta/clockings?t=1",
        &[r#"{"changeType":"Delete","data":{"id":3,"changeVersion":"02"}}"#],
        None,
        Some("delta/clockings?t=2"),
    );
    f.initial_clockings();
    let request = SyncRequest {
        collections: Some(vec!["clockings".into()]),
        reinitialize: true,
        from: NaiveDate::from_ymd_opt(2024, 1, 1),
        ..Default::default()
    };
    let report = f.run(request).await;
    assert_eq!(report.collections.len(), 1);
    assert_eq!(report.collections[0].records.deleted, 1, "{report:?}");
    assert_eq!(f.records.attribute(Collection::Clockings, "3", "deleted"), Some(AttributeValue::Bool(true)));
    let gets: Vec<String> =
        f.protime.journal.lines().into_iter().filter(|l| l.starts_with("protime GET clockings")).collect();
    assert_eq!(gets.len(), 6, "the load ran twice: {gets:?}");
    let lines = f.protime.journal.lines();
    let delta = lines.iter().position(|l| l == "protime GET delta/clockings?t=1").expect("the deltaLink followed");
    let reload = lines.iter().rposition(|l| l == "protime GET clockings?page=0").unwrap();
    assert!(delta < reload, "the deltaLink before the reload: {lines:?}");
    let state = f.states.state(Collection::Clockings).unwrap();
    assert_eq!(state.filter.as_deref(), Some("date ge '2024-01-01'"));
    assert_eq!(state.phase, Some(Phase::Incremental));
    let unknown = SyncRequest { collections: Some(vec!["timesheets".into()]), ..Default::default() };
    let err = f.syncer.run(&unknown, Budget::new(Utc::now(), None, Duration::ZERO)).await.unwrap_err();
    assert_eq!(err, SyncRunError::UnknownCollections(vec!["timesheets".into()]));
}

fn dated(records: &[(u32, &str)]) -> Vec<Json> {
    let today = Utc::now().format("%Y-%m-%d");
    records
        .iter()
        .map(|(id, v)| parse(format!(r#"{{"id":{id},"changeVersion":"{v}","date":"{today}"}}"#).as_bytes()).unwrap())
        .collect()
}

fn reconcile(collection: &str, dry_run: bool) -> SyncRequest {
    SyncRequest { collections: Some(vec![collection.into()]), reconcile: true, dry_run, ..Default::default() }
}

#[tokio::test]
async fn a_reconciliation_sweeps_a_person_protime_no_longer_has_and_records_the_drift() {
    let f = fixture(&[("COLLECTIONS", "people")]);
    f.protime.set_records(Collection::People, people(&[(7, "01"), (8, "01"), (9, "01")]));
    let first = f.run(SyncRequest::default()).await;
    let drift = first.collections[0].drift.clone().expect("the load's pass completed");
    assert_eq!((drift.missing, drift.swept, drift.baseline), (3, 0, true), "{first:?}");
    f.protime.set_records(Collection::People, people(&[(7, "01"), (9, "02")]));
    let second = f.run(reconcile("people", false)).await;
    let c = &second.collections[0];
    let drift = c.drift.clone().expect("the reconciliation completed");
    assert_eq!((drift.missing, drift.behind, drift.swept, drift.baseline), (0, 1, 1, false), "{c:?}");
    assert_eq!(f.records.attribute(Collection::People, "8", "deleted"), Some(AttributeValue::Bool(true)));
    assert_eq!(f.records.attribute(Collection::People, "8", "source"), Some(AttributeValue::S("sweep".into())));
    assert_eq!(f.records.attribute(Collection::People, "7", "deleted"), Some(AttributeValue::Bool(false)));
    let state = f.states.state(Collection::People).unwrap();
    assert!(state.verified_at.is_some() && state.pass.is_none(), "{state:?}");
    assert!(f.states.seen.lock().unwrap().is_empty(), "the pass's ids are discarded");
    let metrics = sync_metrics(&crate::observability::metrics::Metrics::new("Ns"), &second);
    let drift_docs: Vec<_> = metrics.iter().map(|d| d.to_json(0)).filter(|j| j.get("DriftRecords").is_some()).collect();
    assert_eq!(drift_docs.len(), 2, "one per kind found (none missing: a zero count is not published)");
    assert!(
        sync_metrics(&crate::observability::metrics::Metrics::new("Ns"), &first)
            .iter()
            .all(|d| d.to_json(0).get("DriftRecords").is_none()),
        "baseline"
    );
}

#[tokio::test]
async fn a_reconciliation_reports_drift_a_dry_run_changes_nothing_and_the_real_one_repairs_it() {
    let f = fixture(&[("COLLECTIONS", "clockings")]);
    f.initial_clockings();
    assert!(f.run(SyncRequest::default()).await.healthy);
    // Protime holds 1 (newer) and 3 and 4; the copy holds 1, 2 and 3, and lacks 4.
    f.protime.set_records(Collection::Clockings, dated(&[(1, "02"), (3, "01"), (4, "01")]));
    // The copy's records were loaded without a date: give them today's, as Protime has them.
    for (id, version) in [(1, "01"), (2, "01"), (3, "01")] {
        let record = &dated(&[(id, version)])[0];
        let event =
            crate::records::event::parse_record(&serde_json::value::RawValue::from_string(record.to_string()).unwrap())
                .unwrap();
        let item =
            crate::records::item::record_item(Collection::Clockings, &event, Source::Delta, "2020-01-01T00:00:00Z");
        f.records.items.lock().unwrap().insert(format!("clockings#{id}"), item);
    }
    let before = f.records.items.lock().unwrap().clone();
    let loaded = f.states.state(Collection::Clockings).unwrap().verified_at;
    assert!(loaded.is_some(), "the initial load was a full pass");
    let dry = f.run(reconcile("clockings", true)).await;
    let c = &dry.collections[0];
    let drift = c.drift.clone().expect("the dry run completed");
    assert_eq!((drift.missing, drift.behind, drift.swept), (1, 1, 1), "{c:?}");
    let samples = drift.samples.expect("a dry run's samples");
    assert_eq!(
        (samples.missing, samples.behind, samples.swept),
        (vec!["4".into()], vec!["1".into()], vec!["2".into()])
    );
    assert_eq!(*f.records.items.lock().unwrap(), before, "a dry run writes no record");
    assert!(!f.protime.journal.lines().iter().any(|l| l.contains("delta/clockings?t=1")), "the delta left alone");
    assert_eq!(f.states.state(Collection::Clockings).unwrap().verified_at, loaded, "a dry run verifies nothing");

    // A real reconciliation follows the delta first, as every run does.
    f.page("delta/clockings?t=1", &[], None, Some("delta/clockings?t=2"));
    let real = f.run(reconcile("clockings", false)).await;
    let c = &real.collections[0];
    let drift = c.drift.clone().expect("the reconciliation completed");
    assert_eq!((drift.missing, drift.behind, drift.swept, drift.samples), (1, 1, 1, None), "{c:?}");
    assert_eq!(f.records.change_version(Collection::Clockings, "1").as_deref(), Some("02"));
    assert_eq!(f.records.change_version(Collection::Clockings, "4").as_deref(), Some("01"));
    assert_eq!(f.records.attribute(Collection::Clockings, "2", "deleted"), Some(AttributeValue::Bool(true)));
    let state = f.states.state(Collection::Clockings).unwrap();
    assert_eq!(state.drift.map(|d| (d.missing, d.behind, d.swept)), Some((1, 1, 1)));
    assert!(state.verified_at.is_some() && state.reconcile.is_none());
    assert_eq!(
        f.cursor(Collection::Clockings).as_deref(),
        Some("delta/clockings?t=2"),
        "the delta followed, not replaced"
    );

    f.page("delta/clockings?t=2", &[], None, Some("delta/clockings?t=3"));
    let again = f.run(reconcile("clockings", false)).await;
    let drift = again.collections[0].drift.clone().unwrap();
    assert_eq!((drift.missing, drift.behind, drift.swept, again.collections[0].records.stored), (0, 0, 0, 0));
    let dry_alone = SyncRequest { dry_run: true, ..reconcile("clockings", false) };
    assert!(f
        .syncer
        .run(&SyncRequest { reconcile: false, ..dry_alone }, Budget::new(Utc::now(), None, Duration::ZERO))
        .await
        .is_err());
}

#[test]
fn the_time_left_comes_from_the_deadline() {
    use std::time::SystemTime;
    assert_eq!(time_left(SystemTime::UNIX_EPOCH), None);
    let left = time_left(SystemTime::now() + Duration::from_secs(900)).unwrap();
    assert!(left > Duration::from_secs(890) && left <= Duration::from_secs(900));
    assert_eq!(time_left(SystemTime::now() - Duration::from_secs(5)), None);
}

#[test]
fn a_scheduled_event_is_a_normal_run_and_a_backfill_request_parses_strictly() {
    let payload = |text: &str| SyncRequest::from_payload(serde_json::from_str(text).unwrap());
    assert_eq!(payload(include_str!("../../../../events/scheduled.json")).unwrap(), SyncRequest::default());
    assert_eq!(payload("{}").unwrap(), SyncRequest::default());
    let backfill = payload(r#"{"collections":["clockings"],"reinitialize":true,"from":"2024-01-01"}"#).unwrap();
    assert_eq!(backfill.from, NaiveDate::from_ymd_opt(2024, 1, 1));
    assert!(backfill.reinitialize);
    assert!(payload(r#"{"collection":["clockings"],"reinitialize":true}"#).is_err(), "a misspelt field");
    assert!(payload(r#"{"collections":5}"#).is_err());
}

#[tokio::test]
async fn a_backfill_must_name_its_collections_and_one_that_cannot_start_is_an_error() {
    let f = fixture(&[("COLLECTIONS", "clockings")]);
    let all = SyncRequest { reinitialize: true, ..Default::default() };
    let err = f.syncer.run(&all, Budget::new(Utc::now(), None, Duration::ZERO)).await.unwrap_err();
    assert!(matches!(err, SyncRunError::InvalidRequest(_)), "{err:?}");
    let later = Utc::now() + chrono::Duration::minutes(10);
    f.states.acquire(Collection::Clockings, "other", Utc::now(), later).await.unwrap().unwrap();
    let one = SyncRequest { collections: Some(vec!["clockings".into()]), reinitialize: true, ..Default::default() };
    let report = f.run(one).await;
    assert_eq!((report.collections[0].outcome, report.healthy), (Outcome::Error, false));
}
