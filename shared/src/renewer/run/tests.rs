//! Unit tests of `run`.

use super::*;
use crate::observability::metrics::Metrics;

fn sub(collection: &str, action: ActionKind, ok: bool, hours: Option<f64>) -> SubscriptionReport {
    SubscriptionReport {
        collection: collection.into(),
        action,
        reason: None,
        ok,
        webhook_id: None,
        valid_until: None,
        hours_until_expiry: hours,
        resynced: (action == ActionKind::Recover).then_some(ResyncCounts { stored: 7, ..Default::default() }),
        error: None,
    }
}

#[test]
fn run_metrics_have_one_document_per_subscription_and_a_summary() {
    let report = RunReport::of(
        vec![
            sub("clockings", ActionKind::Keep, true, Some(400.0)),
            sub("breaks", ActionKind::Recover, true, Some(720.0)),
            sub("people", ActionKind::Create, false, None),
        ],
        vec![],
    );
    assert!(!report.healthy);
    let docs: Vec<_> = run_metrics(&Metrics::detailed("Ns"), Some(&report)).iter().map(|d| d.to_json(0)).collect();
    assert_eq!(docs.len(), 4);
    assert_eq!(
        (docs[0]["Collection"].as_str(), docs[0]["HoursUntilExpiry"].as_f64()),
        (Some("clockings"), Some(400.0))
    );
    assert_eq!(
        (docs[1]["Recoveries"].as_f64(), docs[1]["Disabled"].as_f64(), docs[1]["ResyncedRecords"].as_f64()),
        (Some(1.0), Some(1.0), Some(7.0))
    );
    assert_eq!(docs[2]["Failures"], 1.0);
    assert!(docs[2].get("HoursUntilExpiry").is_none());
    let summary = &docs[3];
    assert!(summary.get("Collection").is_none());
    assert_eq!(summary["MinHoursUntilExpiry"], 400.0);
    assert_eq!(
        (summary["SubscriptionsUnhealthy"].as_f64(), summary["SubscriptionsDisabled"].as_f64()),
        (Some(1.0), Some(1.0))
    );
    // By default the summary alone, at the function level.
    let docs = run_metrics(&Metrics::new("Ns"), Some(&report));
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].to_json(0)["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Function"]]));
    assert!(run_metrics(&Metrics::new("Ns"), None).is_empty());
}

use crate::protime::model::WebhookStatus;
use crate::testing::{
    FakeProtime, Journal, MemoryKeySource, MemoryQuarantine, MemoryRecordStore, MemorySubscriptionStore,
    MemorySyncStateStore,
};
use chrono::{Duration, TimeZone};

type FakeRenewer = Renewer<
    FakeProtime,
    MemoryKeySource,
    MemorySubscriptionStore,
    MemoryRecordStore,
    MemoryQuarantine,
    MemorySyncStateStore,
>;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A renewer without a quarantine, over a sync state of its own (not journalled).
fn fake(journal: &Journal) -> (FakeProtime, FakeRenewer) {
    fake_with(journal, None, MemorySyncStateStore::default())
}

fn fake_with(
    journal: &Journal,
    quarantine: Option<MemoryQuarantine>,
    sync_states: MemorySyncStateStore,
) -> (FakeProtime, FakeRenewer) {
    let vars = crate::config::lookup_from(&[
        ("TABLE_NAME", "t"),
        ("PROTIME_CREDENTIALS_SECRET", "creds"),
        ("DESTINATION_BASE_URL", "https://api.example.com"),
        ("COLLECTIONS", "clockings"),
    ]);
    let config = RenewerConfig::from_lookup(vars).unwrap();
    let protime = FakeProtime::new(now(), journal.clone());
    let keys = MemoryKeySource { journal: journal.clone(), ..Default::default() };
    let subscriptions = MemorySubscriptionStore { journal: journal.clone(), ..Default::default() };
    let records = MemoryRecordStore::default();
    let stores = RenewerStores { keys, subscriptions, records, quarantine, sync_states };
    let renewer = Renewer::new(config, protime.clone(), stores);
    (protime, renewer)
}

fn record(id: u32, version: &str) -> crate::records::json::Json {
    let text = format!(r#"{{"id":{id},"changeVersion":"{version}","date":"2026-02-28"}}"#);
    crate::records::json::parse(text.as_bytes()).unwrap()
}

#[tokio::test]
async fn a_renewal_records_the_intent_then_posts_then_stores_the_key_then_the_state() {
    let journal = Journal::default();
    let (protime, renewer) = fake(&journal);
    let report = renewer.run(now()).await.unwrap();
    assert!(report.healthy, "{report:?}");
    assert_eq!(report.subscriptions[0].action, ActionKind::Create);
    assert_eq!(
        journal.lines(),
        [
            "protime GET /webhooks",
            "state save clockings intent",
            "protime POST clockings",
            "keys store clockings",
            "state save clockings state",
        ]
    );
    let issued = protime.webhooks()[0].key.clone();
    assert_eq!(renewer.keys.current(Collection::Clockings), Some(issued));
    let state = renewer.subscriptions.states.lock().unwrap()[&Collection::Clockings].clone();
    assert_eq!((state.webhook_id.as_deref(), state.renewing_since), (Some("w1"), None));
    assert_eq!(state.status, Some(WebhookStatus::Enabled));
}

#[tokio::test]
async fn a_run_while_another_holds_the_run_lease_does_nothing_and_the_lease_frees_itself() {
    let journal = Journal::default();
    let (protime, renewer) = fake(&journal);
    // Another run took the lease until 15 minutes from now.
    let other = ("renewer-other".to_owned(), now() + Duration::minutes(15));
    *renewer.subscriptions.run_lease.lock().unwrap() = Some(other.clone());
    let report = renewer.run(now()).await.unwrap();
    assert!(report.busy && report.healthy, "{report:?}");
    assert!(report.subscriptions.is_empty());
    assert!(journal.lines().is_empty(), "no call to Protime, no key, no state: {:?}", journal.lines());
    assert!(protime.webhooks().is_empty());
    assert_eq!(*renewer.subscriptions.run_lease.lock().unwrap(), Some(other), "the other run's lease is kept");
    assert!(run_metrics(&Metrics::new("Ns"), Some(&report)).is_empty(), "the run holding the lease reports");

    // Past its end (a crashed run), the lease is taken over, and freed after the run.
    let report = renewer.run(now() + Duration::minutes(16)).await.unwrap();
    assert!(!report.busy && report.healthy, "{report:?}");
    assert_eq!(report.subscriptions[0].action, ActionKind::Create);
    assert_eq!(*renewer.subscriptions.run_lease.lock().unwrap(), None, "released");
    assert!(serde_json::to_value(&report).unwrap().get("busy").is_none(), "only a busy report says so");
}

#[tokio::test]
async fn a_failed_post_keeps_the_intent_and_the_next_run_renews() {
    let journal = Journal::default();
    let (protime, renewer) = fake(&journal);
    protime.fail_next_posts(1);
    let report = renewer.run(now()).await.unwrap();
    assert!(!report.healthy);
    let error = report.subscriptions[0].error.clone().unwrap();
    assert!(error.starts_with("creating or re-enabling the webhook"), "{error}");
    let state = renewer.subscriptions.states.lock().unwrap()[&Collection::Clockings].clone();
    assert!(state.renewing_since.is_some(), "the intent stays recorded: {state:?}");
    assert_eq!(state.last_error.as_deref(), Some(error.as_str()));
    assert_eq!(renewer.keys.current(Collection::Clockings), None);

    let report = renewer.run(now()).await.unwrap();
    assert!(report.healthy, "{report:?}");
    assert_eq!(renewer.keys.current(Collection::Clockings), Some(protime.webhooks()[0].key.clone()));
}

#[tokio::test]
async fn a_kept_subscription_makes_no_post_and_an_expiring_one_is_renewed_with_its_reason() {
    let journal = Journal::default();
    let (protime, renewer) = fake(&journal);
    renewer.run(now()).await.unwrap();
    let report = renewer.run(now() + Duration::days(1)).await.unwrap();
    assert_eq!((report.subscriptions[0].action, report.subscriptions[0].reason), (ActionKind::Keep, None));
    assert_eq!(journal.lines().iter().filter(|l| l.starts_with("protime POST")).count(), 1);

    let first_key = protime.webhooks()[0].key.clone();
    let report = renewer.run(now() + Duration::days(29)).await.unwrap();
    let renewed = &report.subscriptions[0];
    assert_eq!((renewed.action, renewed.reason), (ActionKind::Renew, Some(RenewReason::Expiring)));
    let json = serde_json::to_value(renewed).unwrap();
    assert_eq!((json["action"].as_str(), json["reason"].as_str()), (Some("renew"), Some("expiring")));
    let key = protime.webhooks()[0].key.clone();
    assert_ne!(key, first_key);
    assert_eq!(renewer.keys.current(Collection::Clockings), Some(key));
}

/// The syncer's state of clockings with a live deltaLink.
fn live_delta(journal: &Journal) -> MemorySyncStateStore {
    let states = MemorySyncStateStore { journal: journal.clone(), ..Default::default() };
    let state = crate::sync::state::SyncState {
        mode: Some(crate::sync::state::SyncMode::Delta),
        phase: Some(crate::sync::state::Phase::Incremental),
        cursor: Some("delta/clockings?t=1".into()),
        ..Default::default()
    };
    states.states.lock().unwrap().insert(Collection::Clockings, state);
    states
}

#[tokio::test]
async fn a_disabled_subscription_catches_up_through_the_delta_before_it_is_re_enabled() {
    let journal = Journal::default();
    let states = live_delta(&journal);
    let (protime, renewer) = fake_with(&journal, None, states.clone());
    renewer.run(now()).await.unwrap();
    let page = |records: &[crate::records::json::Json], next: &str| {
        crate::protime::Page::from_parts(records, None, Some(next))
    };
    protime.script("delta/clockings?t=1", Ok(page(&[record(1, "5"), record(2, "6")], "delta/clockings?t=2")));
    protime.script("delta/clockings?t=2", Ok(page(&[], "delta/clockings?t=3")));
    protime.set_status(Collection::Clockings, WebhookStatus::Disabled);
    let before = journal.lines().len();

    let report = renewer.run(now() + Duration::hours(2)).await.unwrap();
    assert!(report.healthy, "{report:?}");
    assert_eq!(report.subscriptions[0].action, ActionKind::Recover);
    let counts = report.subscriptions[0].resynced.unwrap();
    assert_eq!((counts.fetched, counts.stored), (2, 2), "a round before the POST, one (empty) after");
    let lines = journal.lines()[before..].to_vec();
    let post = lines.iter().position(|l| l == "protime POST clockings").unwrap();
    let round = lines.iter().position(|l| l == "protime GET delta/clockings?t=1").unwrap();
    assert!(round < post, "the gap is caught up on before the re-enable: {lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("protime LIST")), "the renewer lists nothing: {lines:?}");
    assert_eq!(states.state(Collection::Clockings).unwrap().full_pass_requested_at, None, "nothing handed over");
    assert_eq!(protime.webhooks()[0].webhook.status, WebhookStatus::Enabled);
}

#[tokio::test]
async fn a_disabled_subscription_without_a_live_delta_is_handed_to_the_syncer_and_re_enabled_at_once() {
    let journal = Journal::default();
    let states = MemorySyncStateStore { journal: journal.clone(), ..Default::default() };
    let (protime, renewer) = fake_with(&journal, None, states.clone());
    renewer.run(now()).await.unwrap();
    protime.set_records(Collection::Clockings, vec![record(1, "5"), record(2, "6"), record(3, "7")]);
    protime.set_status(Collection::Clockings, WebhookStatus::Disabled);
    let before = journal.lines().len();

    let report = renewer.run(now() + Duration::hours(2)).await.unwrap();
    assert!(report.healthy, "{report:?}");
    let lines = journal.lines()[before..].to_vec();
    assert!(
        !lines.iter().any(|l| l.starts_with("protime GET clockings") || l.starts_with("protime LIST")),
        "{lines:?}"
    );
    assert!(states.state(Collection::Clockings).unwrap().full_pass_requested_at.is_some(), "handed to the syncer");
    assert_eq!(protime.webhooks()[0].webhook.status, WebhookStatus::Enabled);
    // Out of time altogether: still re-enabled.
    protime.set_status(Collection::Clockings, WebhookStatus::Disabled);
    let budget = Budget::new(
        now() + Duration::hours(3),
        Some(std::time::Duration::from_secs(30)),
        std::time::Duration::from_secs(60),
    );
    let report = renewer.run_within(budget).await.unwrap();
    assert!(report.healthy, "{report:?}");
    assert_eq!(protime.webhooks()[0].webhook.status, WebhookStatus::Enabled);
}

#[tokio::test]
async fn a_re_enable_answered_with_a_new_webhook_deletes_the_old_one() {
    let journal = Journal::default();
    let (protime, renewer) = fake(&journal);
    renewer.run(now()).await.unwrap();
    protime.set_status(Collection::Clockings, WebhookStatus::Disabled);
    protime.new_webhook_on_re_enable.store(true, std::sync::atomic::Ordering::SeqCst);

    let report = renewer.run(now() + Duration::hours(1)).await.unwrap();
    assert!(report.healthy, "{report:?}");
    let webhooks = protime.webhooks();
    assert_eq!(webhooks.len(), 1, "{webhooks:?}");
    assert_eq!((webhooks[0].webhook.id.as_str(), &webhooks[0].webhook.status), ("w2", &WebhookStatus::Enabled));
    let lines = journal.lines();
    let post = lines.iter().rposition(|l| l == "protime POST clockings").unwrap();
    // POST, key, state, then the old webhook goes.
    assert_eq!(lines.iter().position(|l| l == "protime DELETE w1"), Some(post + 3), "{lines:?}");
    assert_eq!(renewer.keys.current(Collection::Clockings), Some(webhooks[0].key.clone()));
}

#[tokio::test]
async fn a_disabled_leftover_beside_its_enabled_replacement_is_deleted_even_without_stray_deletion() {
    let journal = Journal::default();
    let (protime, renewer) = fake(&journal);
    renewer.run(now()).await.unwrap();
    protime.set_status(Collection::Clockings, WebhookStatus::Disabled);
    protime.new_webhook_on_re_enable.store(true, std::sync::atomic::Ordering::SeqCst);
    protime.fail_next_deletes(1);
    renewer.run(now() + Duration::hours(1)).await.unwrap();
    assert_eq!(protime.webhooks().len(), 2, "the first delete failed");

    assert!(!renewer.config.delete_stray_webhooks);
    let report = renewer.run(now() + Duration::hours(2)).await.unwrap();
    assert_eq!(report.subscriptions[0].action, ActionKind::Keep);
    assert_eq!((report.strays.len(), report.strays[0].deleted), (1, true));
    assert_eq!(protime.webhooks().len(), 1);
}

#[tokio::test]
async fn a_webhook_a_re_enable_answered_with_is_never_deleted_as_a_leftover() {
    let journal = Journal::default();
    let (protime, renewer) = fake(&journal);
    renewer.run(now()).await.unwrap();
    // Protime lists a Disabled leftover D beside the Enabled E in use; E is due for renewal,
    // and Protime answers the POST by re-enabling D.
    protime.set_status(Collection::Clockings, WebhookStatus::Disabled);
    protime.new_webhook_on_re_enable.store(true, std::sync::atomic::Ordering::SeqCst);
    renewer.run(now() + Duration::hours(1)).await.unwrap();
    assert_eq!(protime.webhooks().len(), 1);
    protime.add_disabled_twin(Collection::Clockings, "d-old");
    protime.re_enable_instead("d-old");
    let report = renewer.run(now() + Duration::days(29)).await.unwrap();
    assert!(report.healthy, "{report:?}");
    let webhooks = protime.webhooks();
    let live: Vec<&str> = webhooks.iter().map(|w| w.webhook.id.as_str()).collect();
    assert_eq!(live, ["d-old"], "the re-enabled webhook stays; the replaced one goes");
    assert_eq!(renewer.keys.current(Collection::Clockings), Some(webhooks[0].key.clone()));
}

#[tokio::test]
async fn a_re_synced_record_dynamodb_refuses_is_quarantined_and_the_others_stored() {
    let journal = Journal::default();
    let (protime, renewer) = fake_with(&journal, Some(MemoryQuarantine::default()), live_delta(&journal));
    renewer.run(now()).await.unwrap();
    let refused = crate::records::json::parse(br#"{"id":2,"changeVersion":"6","":"a field without a name"}"#).unwrap();
    let records = [record(1, "5"), refused, record(3, "7")];
    let page = crate::protime::Page::from_parts(&records, None, Some("delta/clockings?t=2"));
    protime.script("delta/clockings?t=1", Ok(page));
    protime.script("delta/clockings?t=2", Ok(crate::protime::Page::from_parts(&[], None, Some("delta/clockings?t=3"))));
    protime.set_status(Collection::Clockings, WebhookStatus::Disabled);

    let report = renewer.run(now() + Duration::hours(2)).await.unwrap();
    assert!(report.healthy, "the renewal is not held back: {report:?}");
    let counts = report.subscriptions[0].resynced.unwrap();
    assert_eq!((counts.stored, counts.quarantined, counts.invalid), (2, 1, 0), "{counts:?}");
    let kept = renewer.quarantine.as_ref().unwrap().bodies();
    assert_eq!(
        kept[0],
        ("empty_attribute_name".to_owned(), br#"{"id":2,"changeVersion":"6","":"a field without a name"}"#.to_vec())
    );
    assert_eq!(renewer.records.change_version(Collection::Clockings, "2"), None);
    assert!(renewer.records.change_version(Collection::Clockings, "3").is_some());
    // The Quarantined alarm sees them: Function=renewer, by Reason.
    let quarantined: Vec<_> = run_metrics(&Metrics::new("Ns"), Some(&report))
        .iter()
        .map(|d| d.to_json(0))
        .filter(|v| v.get("Quarantined").is_some())
        .map(|v| (v["Function"].clone(), v["Reason"].clone(), v["Quarantined"].clone()))
        .collect();
    assert_eq!(
        quarantined,
        [(serde_json::json!("renewer"), serde_json::json!("empty_attribute_name"), serde_json::json!(1.0))]
    );
}
