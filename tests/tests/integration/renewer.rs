//! The renewer against the Protime simulator and moto, with the real receiver behind HTTP.

use harness::simulator::{BodyShape, Fault, FaultTarget, SimulatorConfig};
use harness::{s, Stack};
use protime_webhooks::protime::CredentialsFromSecret;
use protime_webhooks::records::quarantine::S3Quarantine;
use protime_webhooks::records::store::DynamoRecordStore;
use protime_webhooks::renewer::state::DynamoSubscriptionStore;
use protime_webhooks::renewer::{client_options, Renewer, RenewerStores, RunReport};
use protime_webhooks::signing::keys::{KeySourceError, SecretsManagerKeySource};
use protime_webhooks::signing::signature::SigningKey;
use protime_webhooks::signing::writer::KeyWriter;
use protime_webhooks::sync::state::DynamoSyncStateStore;
use protime_webhooks::Collection;
use serde_json::json;
use std::time::Duration;

fn actions(report: &RunReport) -> Vec<(String, &'static str, bool)> {
    report.subscriptions.iter().map(|s| (s.collection.clone(), s.action.as_str(), s.ok)).collect()
}

fn today(stack: &Stack) -> String {
    stack.simulator.now().format("%Y-%m-%d").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_run_creates_every_subscription_and_stores_each_key() {
    let stack = Stack::start(&["clockings", "paid-presences", "people"], SimulatorConfig::default()).await;
    let report = stack.renew().await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(
        actions(&report),
        [
            ("clockings".into(), "create", true),
            ("paid-presences".into(), "create", true),
            ("people".into(), "create", true)
        ]
    );
    for collection in ["clockings", "paid-presences", "people"] {
        let webhook = stack.simulator.webhook(collection).expect("created");
        assert!(webhook.enabled);
        assert_eq!(webhook.destination_url, format!("{}/webhooks/{collection}", stack.server.base_url()));
        assert_eq!(stack.stored_key(collection).await.as_deref(), Some(webhook.key.as_str()), "{collection}");
        let state = stack.receiver.item(&format!("subscription#{collection}")).await.expect("state recorded");
        assert_eq!(s(&state, "webhookId"), webhook.id);
        assert_eq!(s(&state, "status"), "Enabled");
        assert!(!state.contains_key("renewingSince"));
    }
    let seen = stack.simulator.seen();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|r| r.user_agent == "protime-webhooks/0.1.0 (Test Company)"), "{seen:?}");
    assert_eq!(stack.simulator.count("POST", "/webhooks"), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_from_the_simulator_land_in_the_table_in_every_body_shape() {
    for shape in [BodyShape::Flat, BodyShape::Delta, BodyShape::Array] {
        let stack = Stack::start(&["clockings"], SimulatorConfig { body_shape: shape, ..Default::default() }).await;
        assert!(stack.renew().await.healthy);
        let delivery = stack
            .simulator
            .change("clockings", json!({"id": 501, "person": {"id": 7}, "date": today(&stack), "timeOfDayInMinutes": 480, "kind": "InOut"}))
            .await;
        assert_eq!((delivery.delivered, delivery.failed), (1, 0), "{shape:?}: {delivery:?}");
        let item = stack.receiver.item("clockings#501").await.expect("stored");
        assert_eq!(item["person"].as_m().unwrap()["id"], aws_sdk_dynamodb::types::AttributeValue::N("7".into()));
        let deleted = stack.simulator.delete("clockings", json!(501)).await;
        assert_eq!(deleted.delivered, 1);
        let item = stack.receiver.item("clockings#501").await.unwrap();
        assert_eq!(item["deleted"], aws_sdk_dynamodb::types::AttributeValue::Bool(true), "{shape:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_renewers_save_keeps_the_receivers_last_event_note() {
    use protime_webhooks::receiver::last_event::EventNotes;
    use protime_webhooks::renewer::state::SubscriptionStore;
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);
    let client = aws_sdk_dynamodb::Client::new(&stack.receiver.setup);
    let store = DynamoSubscriptionStore::new(client.clone(), &stack.receiver.table);
    // The renewer read the state before the receiver noted an event, and saves after it.
    let state = store.load(&[Collection::Clockings]).await.unwrap().remove(&Collection::Clockings).unwrap();
    let notes = DynamoRecordStore::new(client, &stack.receiver.table);
    notes.note_event(Collection::Clockings, "2026-12-03T07:00:00.000Z").await.unwrap();
    let mut renewed = state.clone();
    renewed.last_error = None;
    renewed.renewing_since = None;
    store.save(Collection::Clockings, &renewed).await.unwrap();
    let item = stack.receiver.item("subscription#clockings").await.unwrap();
    assert_eq!(s(&item, "lastEventAt"), "2026-12-03T07:00:00.000Z", "the receiver's note survives");
    assert_eq!(s(&item, "webhookId"), state.webhook_id.as_deref().unwrap());
    // A field the state no longer has is removed, as a whole-item write would have.
    renewed.last_seen_enabled_at = None;
    store.save(Collection::Clockings, &renewed).await.unwrap();
    let item = stack.receiver.item("subscription#clockings").await.unwrap();
    assert!(!item.contains_key("lastSeenEnabledAt"));
    assert_eq!(s(&item, "lastEventAt"), "2026-12-03T07:00:00.000Z");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_with_nothing_due_makes_no_post() {
    let stack = Stack::start(&["clockings", "breaks"], SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);
    let keys = (stack.stored_key("clockings").await, stack.stored_key("breaks").await);
    let report = stack.renew().await;
    assert!(report.healthy);
    assert_eq!(actions(&report), [("clockings".into(), "keep", true), ("breaks".into(), "keep", true)]);
    assert_eq!(stack.simulator.count("POST", "/webhooks"), 2, "only the first run's creates");
    assert_eq!((stack.stored_key("clockings").await, stack.stored_key("breaks").await), keys);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_near_expiry_is_renewed_and_the_warm_receiver_takes_the_new_key() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);
    let old_key = stack.stored_key("clockings").await.unwrap();
    assert_eq!(stack.simulator.change("clockings", json!({"id": 1, "date": today(&stack)})).await.delivered, 1);

    // 30-day validity, renewal 48 h before: 29 days on it is due.
    stack.simulator.advance(chrono::Duration::days(29));
    let report = stack.renew().await;
    assert_eq!(actions(&report), [("clockings".into(), "renew", true)]);
    let new_key = stack.stored_key("clockings").await.unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(stack.simulator.webhook("clockings").unwrap().key, new_key);
    assert!(report.subscriptions[0].hours_until_expiry.unwrap() > 24.0 * 29.0);

    // Events are now signed with the new key only; the warm receiver accepts them.
    let delivery = stack.simulator.change("clockings", json!({"id": 2, "date": today(&stack)})).await;
    assert_eq!(delivery.statuses, [200]);
    assert!(stack.receiver.item("clockings#2").await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_webhook_in_the_list_does_not_stop_the_renewal_of_the_others() {
    let stack = Stack::start(&["clockings", "people"], SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);
    let old_keys = [stack.stored_key("clockings").await.unwrap(), stack.stored_key("people").await.unwrap()];
    // Listed beside ours: no destination, a numeric id and no status, not an object at all.
    for odd in [
        json!({"id": "w-odd", "status": "Enabled", "destinationUrl": null, "collectionName": "clockings"}),
        json!({"id": 7, "collectionName": "people"}),
        json!("not a webhook"),
    ] {
        stack.simulator.inject_raw_webhook(odd);
    }
    stack.simulator.advance(chrono::Duration::days(29));
    let report = stack.renew().await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(actions(&report), [("clockings".into(), "renew", true), ("people".into(), "renew", true)]);
    for (collection, old_key) in ["clockings", "people"].into_iter().zip(old_keys) {
        let webhook = stack.simulator.webhook(collection).unwrap();
        let stored = stack.stored_key(collection).await.unwrap();
        assert_ne!(stored, old_key, "{collection} renewed");
        assert_eq!(stored, webhook.key, "{collection}: the new key is stored");
    }
    assert_eq!(stack.simulator.count("POST", "/webhooks"), 4, "two creations, two renewals, nothing for the odd ones");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_while_one_is_going_finds_the_run_lease_taken_and_does_nothing() {
    // With no reserved concurrency, a manual invoke can start during the scheduled run; both
    // renewing would store two keys in an order nobody chose. The lease lets one run work.
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    // The first run holds the lease while Protime is slow to list the webhooks.
    stack.simulator.inject_on("/webhooks", Fault::Delay(std::time::Duration::from_millis(1500)));
    let first = stack.renewer();
    let now = stack.simulator.now();
    let first = tokio::spawn(async move { first.run(now).await.expect("first run") });
    // Until the first run holds the lease (it takes it before it lists the webhooks).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !stack.receiver.item("renewer#lease").await.is_some_and(|l| l.contains_key("leaseOwner")) {
        assert!(std::time::Instant::now() < deadline, "the first run never took the lease");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let second = stack.renew().await;
    assert!(second.busy && second.healthy, "{second:?}");
    assert!(second.subscriptions.is_empty());
    let first = first.await.unwrap();
    assert!(!first.busy && first.healthy, "{first:?}");
    assert_eq!(actions(&first), [("clockings".into(), "create", true)]);
    assert_eq!(stack.simulator.count("POST", "/webhooks"), 1, "one run created the webhook");
    assert_eq!(stack.stored_key("clockings").await, stack.simulator.webhook("clockings").map(|w| w.key));
    // Released at the end: the next run works.
    let lease = stack.receiver.item("renewer#lease").await.expect("the lease item");
    assert!(!lease.contains_key("leaseOwner"), "released: {lease:?}");
    let third = stack.renew().await;
    assert_eq!((third.busy, actions(&third)), (false, vec![("clockings".into(), "keep", true)]));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_subscription_is_recovered() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);
    stack.simulator.advance(chrono::Duration::days(31));
    assert!(!stack.simulator.webhook("clockings").unwrap().enabled, "validUntil passed: Disabled");
    let report = stack.renew().await;
    assert_eq!(actions(&report), [("clockings".into(), "recover", true)]);
    assert!(stack.simulator.webhook("clockings").unwrap().enabled);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_disabled_by_failed_deliveries_is_resynced_then_reenabled() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);
    let date = today(&stack);
    assert_eq!(stack.simulator.change("clockings", json!({"id": 1, "date": date, "v": "before"})).await.delivered, 1);

    // The receiver is unreachable until Protime's retries are exhausted: the webhook is Disabled.
    stack.server.set_down(true);
    let failed = stack.simulator.change("clockings", json!({"id": 1, "date": date, "v": "missed update"})).await;
    assert_eq!((failed.delivered, failed.failed), (0, 1));
    assert_eq!(failed.statuses, [503, 503, 503]);
    assert!(!stack.simulator.webhook("clockings").unwrap().enabled);
    // More changes while Disabled: Protime does not replay them.
    for id in 2..=8 {
        stack.simulator.change("clockings", json!({"id": id, "date": date, "v": "missed insert"})).await;
    }
    stack.server.set_down(false);

    // The syncer has no deltaLink for clockings yet: the renewer hands the gap to it and
    // re-enables at once, listing nothing itself.
    let lists_before = stack.simulator.count("GET", "/clockings");
    let report = stack.renew().await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(actions(&report), [("clockings".into(), "recover", true)]);
    assert_eq!(stack.simulator.count("GET", "/clockings"), lists_before, "the renewer lists nothing");
    let state = stack.receiver.item("subscription#clockings").await.unwrap();
    assert!(state.contains_key("lastResyncAt"));
    let handed = stack.receiver.item("sync#clockings").await.expect("the syncer's state");
    assert!(handed.contains_key("fullPassRequestedAt"), "{handed:?}");
    // Re-enabled with a new key, and delivering again.
    assert!(stack.simulator.webhook("clockings").unwrap().enabled);
    assert_eq!(stack.simulator.change("clockings", json!({"id": 9, "date": date})).await.delivered, 1);
    // The syncer's next run makes the copy complete.
    assert!(stack.sync(&[]).await.healthy);
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 9);
    assert_eq!(s(&stack.receiver.item("clockings#1").await.unwrap(), "v"), "missed update");
    assert!(!stack.receiver.item("sync#clockings").await.unwrap().contains_key("fullPassRequestedAt"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recovery_with_a_live_delta_catches_up_through_it_before_the_re_enable() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 5);
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);
    stack.simulator.disable("clockings");
    let date = today(&stack);
    stack.simulator.change_quietly("clockings", json!({"id": 4001, "date": date}));
    let report = stack.renew().await;
    assert_eq!(actions(&report), [("clockings".into(), "recover", true)]);
    assert_eq!(report.subscriptions[0].resynced.unwrap().stored, 1, "{report:?}");
    assert_eq!(s(&stack.receiver.item("clockings#4001").await.unwrap(), "source"), "delta");
    assert!(!stack.receiver.item("sync#clockings").await.unwrap().contains_key("fullPassRequestedAt"));
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recovery_past_its_deadline_still_re_enables_every_webhook_and_the_copy_converges() {
    let stack = Stack::start(&["clockings", "people"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 8);
    let people = stack.simulator.seed("people", 5);
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);
    stack.simulator.disable("clockings");
    stack.simulator.disable("people");
    // While Disabled: a new clocking, a deleted person.
    let date = today(&stack);
    stack.simulator.change_quietly("clockings", json!({"id": 4001, "date": date}));
    stack.simulator.delete_quietly("people", people[0]["id"].clone());
    // Less time left than the renewer's margin: no delta round starts.
    let budget = protime_webhooks::sync::Budget::new(
        stack.simulator.now(),
        Some(Duration::from_secs(20)),
        Duration::from_secs(60),
    );
    let report = stack.renewer().run_within(budget).await.expect("a run");
    assert!(report.healthy, "{report:?}");
    assert_eq!(actions(&report), [("clockings".into(), "recover", true), ("people".into(), "recover", true)]);
    assert!(
        stack.simulator.webhook("clockings").unwrap().enabled && stack.simulator.webhook("people").unwrap().enabled
    );
    assert!(stack.receiver.item("clockings#4001").await.is_none(), "nothing caught up yet");
    // The syncer's next run: each delta round (the person's deletion in people's), then the full
    // pass the recovery asked for, which finds nothing left to repair.
    let report = stack.sync(&[]).await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 9);
    assert_eq!(stack.assert_table_matches_simulator("people").await, 4);
    let people_report = report.collections.iter().find(|c| c.collection == "people").unwrap();
    assert_eq!(people_report.records.deleted, 1, "{people_report:?}");
    let drift = people_report.drift.as_ref().map(|d| (d.missing, d.behind, d.swept));
    assert_eq!(drift, Some((0, 0, 0)), "{people_report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_that_lapses_mid_run_is_replaced_once() {
    let stack = Stack::start(&["clockings", "breaks"], SimulatorConfig::default()).await;
    // Let the webhook list through, then invalidate every token before the first POST.
    stack.simulator.inject(FaultTarget::Api, Fault::Pass);
    stack.simulator.inject(FaultTarget::Api, Fault::ExpireTokens);
    let report = stack.renew().await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(stack.simulator.count("POST", "/webhooks"), 3, "the refused POST and two successful ones");
    let token_requests = stack.simulator.seen().iter().filter(|r| r.path == "/token").count();
    assert_eq!(token_requests, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_with_retry_after_is_waited_out() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.inject(FaultTarget::Api, Fault::Status { status: 429, retry_after_secs: Some(1) });
    let started = std::time::Instant::now();
    let report = stack.renew().await;
    assert!(report.healthy, "{report:?}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "Retry-After was honoured");
    let statuses: Vec<u16> =
        stack.simulator.seen().iter().filter(|r| r.path.ends_with("/webhooks")).map(|r| r.status).collect();
    assert_eq!(statuses.first(), Some(&429));
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_and_timeouts_are_retried() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.inject(FaultTarget::Token, Fault::Status { status: 503, retry_after_secs: None });
    stack.simulator.inject(FaultTarget::Api, Fault::Status { status: 500, retry_after_secs: None });
    stack.simulator.inject(FaultTarget::Api, Fault::Delay(std::time::Duration::from_secs(3)));
    let report = stack.renew().await;
    assert!(report.healthy, "{report:?}");
    assert!(stack.simulator.webhook("clockings").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_are_bounded_and_one_failure_does_not_stop_the_others() {
    let stack = Stack::start(&["clockings", "breaks"], SimulatorConfig::default()).await;
    // The list passes; the first POST fails for good (400 is not retried).
    stack.simulator.inject(FaultTarget::Api, Fault::Pass);
    stack.simulator.inject(FaultTarget::Api, Fault::Status { status: 400, retry_after_secs: None });
    let report = stack.renew().await;
    assert!(!report.healthy);
    assert_eq!(actions(&report), [("clockings".into(), "create", false), ("breaks".into(), "create", true)]);
    assert!(report.subscriptions[0].error.as_deref().unwrap().contains("400"));
    let state = stack.receiver.item("subscription#clockings").await.unwrap();
    assert!(s(&state, "lastError").contains("400"));

    // Persistent 500s: given up after the policy's 4 attempts, not retried forever.
    for _ in 0..4 {
        stack.simulator.inject(FaultTarget::Api, Fault::Status { status: 500, retry_after_secs: None });
    }
    let error = stack.renewer().run(stack.simulator.now()).await.unwrap_err();
    assert!(error.to_string().contains("gave up after 4 attempts"), "{error}");

    // The next run, with Protime healthy again, repairs the failed subscription.
    let report = stack.renew().await;
    assert!(report.healthy, "{report:?}");
    assert_eq!(actions(&report), [("clockings".into(), "create", true), ("breaks".into(), "keep", true)]);
}

/// A key writer that crashes (panics) the first time, as a process killed between Protime's
/// answer and PutSecretValue would.
struct CrashOnce {
    inner: SecretsManagerKeySource,
    crashed: std::sync::atomic::AtomicBool,
}

impl KeyWriter for CrashOnce {
    async fn store(&self, collection: Collection, key: &SigningKey) -> Result<(), KeySourceError> {
        if !self.crashed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            panic!("simulated crash between the POST and PutSecretValue");
        }
        self.inner.store(collection, key).await
    }

    async fn carry_over(
        &self,
        collections: &[Collection],
        now: std::time::SystemTime,
    ) -> Result<Vec<Collection>, KeySourceError> {
        self.inner.carry_over(collections, now).await
    }

    async fn ensure_hash_key(&self) -> Result<bool, KeySourceError> {
        self.inner.ensure_hash_key().await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_post_and_storing_the_key_is_repaired_next_run() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let config = &stack.receiver.config;
    let table = stack.renewer_config.table_name.clone();
    let mut protime = CredentialsFromSecret::new(
        aws_sdk_secretsmanager::Client::new(config),
        &stack.renewer_config.protime_credentials_secret,
        client_options(&stack.renewer_config),
    );
    harness::stack::fast_retries(&mut protime.options);
    let keys = CrashOnce {
        inner: SecretsManagerKeySource::new(aws_sdk_secretsmanager::Client::new(config), &stack.receiver.keys_secret),
        crashed: Default::default(),
    };
    let stores = RenewerStores {
        keys,
        subscriptions: DynamoSubscriptionStore::new(aws_sdk_dynamodb::Client::new(config), &table),
        records: DynamoRecordStore::new(aws_sdk_dynamodb::Client::new(config), &table),
        quarantine: None::<S3Quarantine>,
        sync_states: DynamoSyncStateStore::new(aws_sdk_dynamodb::Client::new(config), &table),
    };
    let crashing = Renewer::new(stack.renewer_config.clone(), protime, stores);
    let now = stack.simulator.now();
    let crash = tokio::spawn(async move { crashing.run(now).await }).await;
    assert!(crash.unwrap_err().is_panic());

    // Protime issued a key we never stored: its events are refused (and nothing lands).
    let issued = stack.simulator.webhook("clockings").unwrap().key;
    assert_ne!(stack.stored_key("clockings").await.as_deref(), Some(issued.as_str()));
    let state = stack.receiver.item("subscription#clockings").await.unwrap();
    assert!(state.contains_key("renewingSince"), "the intent outlives the crash");

    // So does the crashed run's lease, until its end: a run before then does nothing.
    let report = stack.renew().await;
    assert!(report.busy, "{report:?}");
    stack.simulator.advance(chrono::Duration::minutes(16));
    let report = stack.renew().await;
    assert!(report.healthy);
    assert_eq!(actions(&report), [("clockings".into(), "renew", true)]);
    let key = stack.simulator.webhook("clockings").unwrap().key;
    assert_eq!(stack.stored_key("clockings").await.as_deref(), Some(key.as_str()));
    assert_eq!(stack.simulator.change("clockings", json!({"id": 1, "date": today(&stack)})).await.delivered, 1);
    // And the run after that has nothing to do.
    assert_eq!(actions(&stack.renew().await), [("clockings".into(), "keep", true)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_external_references_recreate_the_webhook() {
    let mut stack = Stack::start(&["people"], SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);
    let first = stack.simulator.webhook("people").unwrap();
    stack.renewer_config.external_references = "(people,@badge-number)".into();
    let report = stack.renew().await;
    assert_eq!(actions(&report), [("people".into(), "recreate", true)]);
    let webhooks = stack.simulator.webhooks();
    assert!(webhooks.iter().any(|w| w.id == first.id && w.deleted));
    let second = stack.simulator.webhook("people").unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(second.external_references, "(people,@badge-number)");
    assert_eq!(stack.stored_key("people").await.as_deref(), Some(second.key.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn stray_webhooks_are_reported_and_deleted_only_when_configured() {
    let mut stack = Stack::start(&["clockings", "breaks"], SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);
    stack.renewer_config.collections = vec![Collection::Clockings];
    let report = stack.renew().await;
    assert_eq!(report.strays.len(), 1);
    assert_eq!((report.strays[0].collection.as_str(), report.strays[0].deleted), ("breaks", false));
    assert!(stack.simulator.webhook("breaks").is_some());

    stack.renewer_config.delete_stray_webhooks = true;
    let report = stack.renew().await;
    assert!(report.strays[0].deleted);
    assert!(stack.simulator.webhook("breaks").is_none());
}
