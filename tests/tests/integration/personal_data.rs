//! The field policy and tombstone expiry against moto, the simulator and the real functions:
//! what a policy drops is in no item, index entry or change event, what it hashes is the same
//! keyed hash for the same value, through the receiver and through the syncer's delta; a
//! malformed policy or a missing hash key stops a function at start; a tombstone carries its
//! `expiresAt`.

use aws_sdk_dynamodb::types::AttributeValue;
use harness::feed::Feed;
use harness::simulator::SimulatorConfig;
use harness::{signed, ReceiverFixture, Stack};
use protime_webhooks::config::{ConfigError, ReceiverConfig};
use protime_webhooks::records::policy::{is_hash, HashKey, HASH_KEY_MEMBER};
use protime_webhooks::Collection;
use serde_json::{json, Value};
use std::collections::HashMap;

const HASH_KEY: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01";
const POLICY: &str = "people.socialSecurityNumber=drop,people.email=hash";

/// Puts the field hash key into the fixture's signing-keys secret, as the stack generates it.
async fn put_hash_key(setup: &aws_config::SdkConfig, secret: &str) {
    let mut document = harness::signing_keys(setup, secret).await.unwrap_or_else(|| json!({}));
    document[HASH_KEY_MEMBER] = json!(HASH_KEY);
    harness::put_secret(setup, secret, &document.to_string()).await;
}

/// A receiver as the Lambda starts it: settings from `vars`, then the hash key loaded.
async fn receiver(fixture: &ReceiverFixture, vars: &[(&str, &str)]) -> protime_webhooks::receiver::AwsReceiver {
    let mut all: HashMap<&str, String> =
        HashMap::from([("TABLE_NAME", fixture.table.clone()), ("SIGNING_KEYS_SECRET", fixture.keys_secret.clone())]);
    all.extend(vars.iter().map(|(k, v)| (*k, v.to_string())));
    let mut config = ReceiverConfig::from_lookup(|k| all.get(k).cloned()).expect("config");
    config.signing_keys.load_hash_key(&fixture.config, &mut config.data).await.expect("the hash key");
    protime_webhooks::receiver::AwsReceiver::from_config(&config, &fixture.config)
}

fn person(id: u32, version: &str, ssn: &str, email: &str) -> String {
    json!({"id": id, "changeVersion": version, "name": format!("Person {id}"), "socialSecurityNumber": ssn,
           "email": email, "pinCode": "4321", "address": {"street": "Main 1", "town": "Gent"}})
    .to_string()
}

async fn send(receiver: &protime_webhooks::receiver::AwsReceiver, body: String) -> (u16, Value) {
    harness::parse_response(receiver.handle(signed("people", &body, "people-key")).await)
}

fn s(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_keeps_dropped_fields_out_of_the_table_the_indexes_and_the_feed_and_hashes_alike() {
    let fixture = ReceiverFixture::new("clockings-key").await;
    harness::put_signing_key(&fixture.setup, &fixture.keys_secret, "people", "people-key").await;
    put_hash_key(&fixture.setup, &fixture.keys_secret).await;
    let mut feed = Feed::start(&harness::shared_moto().endpoint(), &fixture.setup, &fixture.table).await;
    let custom = receiver(&fixture, &[("FIELD_POLICY", POLICY)]).await;
    let v1 = "0000090200004BD00001";
    assert_eq!(send(&custom, person(1, v1, "85.07.30-033.61", "shared@example.com")).await.0, 200);
    assert_eq!(send(&custom, person(2, v1, "90.01.01-001.23", "shared@example.com")).await.0, 200);
    assert_eq!(send(&custom, person(3, v1, "70.12.31-999.99", "other@example.com")).await.0, 200);
    // The default policy (FIELD_POLICY unset): the PIN code is dropped, the rest kept.
    let default = receiver(&fixture, &[]).await;
    assert_eq!(send(&default, person(4, v1, "60.06.06-066.06", "four@example.com")).await.0, 200);

    let key = HashKey::new(HASH_KEY).unwrap();
    let shared = key.hash(&protime_webhooks::records::json::Json::String("shared@example.com".into()));
    let items: HashMap<String, HashMap<String, AttributeValue>> =
        fixture.items().await.into_iter().filter_map(|i| Some((s(&i, "pk")?, i))).collect();
    for id in 1..=3 {
        let item = &items[&format!("people#{id}")];
        assert!(!item.contains_key("socialSecurityNumber"), "{item:?}");
        assert!(is_hash(&s(item, "email").unwrap()), "{item:?}");
        assert_eq!(s(item, "pinCode").as_deref(), Some("4321"), "this policy names no PIN code");
        assert_eq!(item["address"].as_m().unwrap()["town"], AttributeValue::S("Gent".into()));
    }
    assert_eq!(s(&items["people#1"], "email"), Some(shared.clone()));
    assert_eq!(s(&items["people#2"], "email"), Some(shared.clone()), "equal addresses hash equal");
    assert_ne!(s(&items["people#3"], "email"), Some(shared.clone()));
    let four = &items["people#4"];
    assert!(!four.contains_key("pinCode") && four.contains_key("socialSecurityNumber"), "{four:?}");
    assert_eq!(s(four, "email").as_deref(), Some("four@example.com"));

    // The index (reference collection: byDate's shards) holds the same, whole records.
    let client = aws_sdk_dynamodb::Client::new(&fixture.setup);
    let whole = protime_webhooks::records::query::RecordQuery {
        collection: Collection::People,
        person: None,
        dates: None,
        include_deleted: false,
        limit: None,
    };
    let read = protime_webhooks::records::query::run(&client, &fixture.table, &whole, |_| {}).await.unwrap();
    assert_eq!(read.len(), 4);
    for record in &read {
        let text = record.record.to_string();
        assert!(!text.contains("85.07.30") && !text.contains("90.01.01") && !text.contains("70.12.31"), "{text}");
        assert!(!text.contains("shared@example.com") && !text.contains("other@example.com"), "{text}");
    }

    // A new version changed only in a dropped field is stored, and is no change to publish.
    let v2 = "0000090200004BD00002";
    let answer = send(&custom, person(1, v2, "00.00.00-000.00", "shared@example.com")).await;
    assert_eq!(answer.1["results"][0]["outcome"], "stored", "{answer:?}");
    publish_all(&mut feed, &fixture.setup).await;
    let events = feed.received().await;
    let changed: Vec<&Value> = events.iter().map(|e| &e["detail"]).collect();
    let ids: Vec<String> = changed.iter().map(|d| d["id"].to_string()).collect();
    assert_eq!(ids, ["1", "2", "3", "4"], "one event per person, none for the dropped field's change");
    for detail in &changed[..3] {
        assert!(detail["data"].get("socialSecurityNumber").is_none(), "{detail}");
        assert!(is_hash(detail["data"]["email"].as_str().unwrap()), "{detail}");
    }
    assert_eq!(changed[0]["data"]["email"], changed[1]["data"]["email"]);
    assert!(changed[3]["data"].get("pinCode").is_none());
}

/// Publishes what the table's stream holds since the last pump through the real publisher, to
/// the feed's bus in the emulator `setup` reaches.
async fn publish_all(feed: &mut Feed, setup: &aws_config::SdkConfig) {
    let bus = protime_webhooks::publisher::bus::EventBridgeBus::new(aws_sdk_eventbridge::Client::new(setup), &feed.bus);
    let config = protime_webhooks::config::PublisherConfig {
        event_bus_name: feed.bus.clone(),
        publish_unchanged: false,
        metrics: protime_webhooks::observability::metrics::Metrics::new("Test"),
    };
    let publisher = protime_webhooks::publisher::Publisher { config, bus, retry: Default::default() };
    feed.pump(&publisher, 100).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_syncers_delta_keeps_records_under_the_same_policy() {
    let stack = Stack::start(&["people"], SimulatorConfig::default()).await;
    put_hash_key(&stack.receiver.setup, &stack.receiver.keys_secret).await;
    stack.simulator.change_quietly(
        "people",
        json!({"id": 77, "name": "Ann", "socialSecurityNumber": "85.07.30-033.61", "email": "ann@example.com", "pinCode": "1234"}),
    );
    let vars = [("FIELD_POLICY", POLICY), ("SIGNING_KEYS_SECRET", stack.receiver.keys_secret.as_str())];
    let mut config = stack.syncer_config(&vars);
    config.signing_keys.load_hash_key(&stack.receiver.config, &mut config.data).await.expect("the hash key");
    let mut syncer = protime_webhooks::sync::AwsSyncer::from_config(config, &stack.receiver.config);
    harness::stack::fast_retries(&mut syncer.protime.options);
    let budget = protime_webhooks::sync::Budget::new(stack.simulator.now(), None, std::time::Duration::ZERO);
    let report = syncer.run(&Default::default(), budget).await.expect("the run");
    assert!(report.healthy, "{report:?}");
    let item = stack.receiver.item("people#77").await.expect("synced");
    assert!(!item.contains_key("socialSecurityNumber"), "{item:?}");
    let hashed =
        HashKey::new(HASH_KEY).unwrap().hash(&protime_webhooks::records::json::Json::String("ann@example.com".into()));
    assert_eq!(s(&item, "email"), Some(hashed), "the same hash the receiver gives");
    assert_eq!(s(&item, "pinCode").as_deref(), Some("1234"), "this policy names no PIN code");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_policy_or_a_missing_hash_key_stops_a_function_at_start() {
    let vars = |policy: &'static str| {
        move |k: &str| match k {
            "TABLE_NAME" => Some("t".to_owned()),
            "FIELD_POLICY" => Some(policy.to_owned()),
            _ => None,
        }
    };
    let error = ReceiverConfig::from_lookup(vars("people.email=encrypt")).unwrap_err();
    assert!(matches!(error, ConfigError::FieldPolicy(_)), "{error:?}");
    assert!(error.to_string().contains("\"people.email=encrypt\""), "{error}");
    let error = protime_webhooks::config::SyncerConfig::from_lookup(|k| match k {
        "TABLE_NAME" | "PROTIME_CREDENTIALS_SECRET" => Some("x".to_owned()),
        "FIELD_POLICY" => Some("persons.email=hash".to_owned()),
        _ => None,
    })
    .unwrap_err();
    assert!(error.to_string().contains("persons.email=hash"), "{error}");

    // A policy that hashes, and a secret without the key: the start fails, naming the secret.
    let fixture = ReceiverFixture::new("clockings-key").await;
    let mut config = ReceiverConfig::from_lookup(|k| match k {
        "TABLE_NAME" => Some(fixture.table.clone()),
        "SIGNING_KEYS_SECRET" => Some(fixture.keys_secret.clone()),
        "FIELD_POLICY" => Some(POLICY.to_owned()),
        _ => None,
    })
    .unwrap();
    let error = config.signing_keys.load_hash_key(&fixture.config, &mut config.data).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains(&fixture.keys_secret) && text.contains(HASH_KEY_MEMBER), "{text}");
    assert!(!text.contains("clockings-key"), "no key in the error: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tombstone_carries_when_the_tables_ttl_removes_it() {
    let fixture = ReceiverFixture::new("clockings-key").await;
    let receiver = receiver(&fixture, &[("TOMBSTONE_RETENTION_DAYS", "10")]).await;
    let live = r#"{"id":5,"changeVersion":"0000090200004BD00001","date":"2026-12-01","person":{"id":1}}"#;
    assert_eq!(harness::parse_response(receiver.handle(signed("clockings", live, "clockings-key")).await).0, 200);
    let item = fixture.item("clockings#5").await.unwrap();
    assert!(!item.contains_key("expiresAt"), "a live record never expires");
    let delete = r#"{"changeType":"Delete","data":{"id":5,"changeVersion":"0000090200004BD00002"}}"#;
    assert_eq!(harness::parse_response(receiver.handle(signed("clockings", delete, "clockings-key")).await).0, 200);
    let tombstone = fixture.item("clockings#5").await.unwrap();
    assert_eq!(tombstone["deleted"], AttributeValue::Bool(true));
    let expires: i64 = tombstone["expiresAt"].as_n().unwrap().parse().unwrap();
    let in_ten_days = (chrono::Utc::now() + chrono::Duration::days(10)).timestamp();
    assert!((in_ten_days - 60..=in_ten_days).contains(&expires), "{expires} vs {in_ten_days}");
    // 0 keeps tombstones for ever.
    let forever = self::receiver(&fixture, &[("TOMBSTONE_RETENTION_DAYS", "0")]).await;
    let delete = r#"{"changeType":"Delete","data":{"id":6,"changeVersion":"0000090200004BD00002"}}"#;
    assert_eq!(harness::parse_response(forever.handle(signed("clockings", delete, "clockings-key")).await).0, 200);
    assert!(!fixture.item("clockings#6").await.unwrap().contains_key("expiresAt"));
}

/// What is stored under an older policy follows a new one: each record it changes is written
/// again at its version, and the feed tells consumers (a later sequence); a second pass changes
/// nothing and leaves no positions.
#[tokio::test(flavor = "multi_thread")]
async fn apply_field_policy_rewrites_what_is_stored_once_and_the_feed_tells_consumers() {
    use protime_webhooks::records::migrate::Parallelism;
    use protime_webhooks::records::policy::DataPolicy;
    use protime_webhooks::records::rewrite::{apply_field_policy, POSITION_PREFIX};
    let fixture = ReceiverFixture::new("clockings-key").await;
    harness::put_signing_key(&fixture.setup, &fixture.keys_secret, "people", "people-key").await;
    let mut feed = Feed::start(&harness::shared_moto().endpoint(), &fixture.setup, &fixture.table).await;
    let keep_all = receiver(&fixture, &[("FIELD_POLICY", "none")]).await;
    let v1 = "0000090200004BD00001";
    assert_eq!(send(&keep_all, person(1, v1, "85.07.30-033.61", "shared@example.com")).await.0, 200);
    assert_eq!(send(&keep_all, person(2, v1, "90.01.01-001.23", "shared@example.com")).await.0, 200);
    publish_all(&mut feed, &fixture.setup).await;
    let before = feed.received().await;
    assert_eq!(before.len(), 2);

    let policy = DataPolicy { fields: POLICY.parse().unwrap(), hash_key: HashKey::new(HASH_KEY), tombstone_days: 35 };
    let client = aws_sdk_dynamodb::Client::new(&fixture.setup);
    let parallelism = Parallelism { segments: 2, updates_in_flight: 4 };
    let first = apply_field_policy(&client, &fixture.table, &policy, parallelism, |_| {}).await.unwrap();
    assert_eq!((first.records, first.updated, first.changed_meanwhile), (2, 2, 0), "{first:?}");
    let hashed = HashKey::new(HASH_KEY)
        .unwrap()
        .hash(&protime_webhooks::records::json::Json::String("shared@example.com".into()));
    for id in [1, 2] {
        let item = fixture.item(&format!("people#{id}")).await.unwrap();
        assert!(!item.contains_key("socialSecurityNumber"), "{item:?}");
        assert_eq!(s(&item, "email"), Some(hashed.clone()));
        assert_eq!((s(&item, "changeVersion").as_deref(), s(&item, "source").as_deref()), (Some(v1), Some("webhook")));
        assert!(item.contains_key("policyAppliedAt"), "{item:?}");
    }
    let second = apply_field_policy(&client, &fixture.table, &policy, parallelism, |_| {}).await.unwrap();
    assert_eq!((second.records, second.updated), (2, 0), "a second run changes nothing: {second:?}");
    let left: Vec<_> = fixture
        .items()
        .await
        .into_iter()
        .filter_map(|i| s(&i, "pk"))
        .filter(|pk| pk.starts_with(POSITION_PREFIX))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    publish_all(&mut feed, &fixture.setup).await;
    let after = feed.received().await;
    assert_eq!(after.len(), 2, "one event per rewritten record, none for the second run");
    for event in &after {
        let detail = &event["detail"];
        let earlier = before.iter().find(|e| e["detail"]["id"] == detail["id"]).unwrap();
        assert_eq!(detail["changeVersion"], v1);
        assert_eq!(detail["source"], "policy");
        assert!(detail["data"].get("socialSecurityNumber").is_none(), "{detail}");
        let (new, old) = (detail["sequence"].as_str().unwrap(), earlier["detail"]["sequence"].as_str().unwrap());
        assert!(new > old, "consumers apply it: {new} > {old}");
    }
}

/// The table's TTL removing an expired tombstone reaches the stream as a REMOVE of the
/// tombstone: the feed announced the deletion when it happened, and announces nothing now.
/// (The emulator does not expire items: the removal is made as TTL makes it, by key.)
#[tokio::test(flavor = "multi_thread")]
async fn a_tombstones_removal_publishes_nothing() {
    let fixture = ReceiverFixture::new("clockings-key").await;
    let mut feed = Feed::start(&harness::shared_moto().endpoint(), &fixture.setup, &fixture.table).await;
    let receiver = receiver(&fixture, &[]).await;
    let live = r#"{"id":9,"changeVersion":"0000090200004BD00001","date":"2026-12-01","person":{"id":1}}"#;
    let delete = r#"{"changeType":"Delete","data":{"id":9,"changeVersion":"0000090200004BD00002"}}"#;
    for body in [live, delete] {
        assert_eq!(harness::parse_response(receiver.handle(signed("clockings", body, "clockings-key")).await).0, 200);
    }
    publish_all(&mut feed, &fixture.setup).await;
    let types: Vec<String> =
        feed.received().await.iter().map(|e| e["detail-type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types, ["Protime Record Changed", "Protime Record Deleted"]);
    let client = aws_sdk_dynamodb::Client::new(&fixture.setup);
    let key = AttributeValue::S("clockings#9".into());
    client.delete_item().table_name(&fixture.table).key("pk", key).send().await.expect("the expiry");
    publish_all(&mut feed, &fixture.setup).await;
    assert!(feed.received().await.is_empty(), "no event for the tombstone's removal");
}

/// A new stack's signing-keys secret starts empty: the renewer's first run generates the field
/// hash key in it, keeps it through its key writes, and never replaces it.
#[tokio::test(flavor = "multi_thread")]
async fn the_renewer_generates_the_field_hash_key_once_and_keeps_it() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let secret = &stack.receiver.keys_secret;
    let before = harness::signing_keys(&stack.receiver.setup, secret).await.unwrap();
    assert!(before.get(HASH_KEY_MEMBER).is_none(), "{before}");
    assert!(stack.renew().await.healthy);
    let after = harness::signing_keys(&stack.receiver.setup, secret).await.unwrap();
    let key = after[HASH_KEY_MEMBER].as_str().expect("generated").to_owned();
    assert!(key.len() == 64 && key.bytes().all(|b| b.is_ascii_alphanumeric()), "64 letters and digits");
    assert!(after["clockings"]["key"].is_string(), "the collection's key beside it: {after:?}");
    // A new renewer (a new process) finds it and writes nothing; a recovery's new key keeps it.
    stack.simulator.advance(chrono::Duration::hours(721));
    assert!(stack.renew().await.healthy);
    let later = harness::signing_keys(&stack.receiver.setup, secret).await.unwrap();
    assert_eq!(later[HASH_KEY_MEMBER].as_str(), Some(key.as_str()));
    assert_ne!(later["clockings"]["key"], after["clockings"]["key"], "a new signing key was stored");
    // The receiver's start reads it.
    let policy = [("FIELD_POLICY", POLICY)];
    let _started = receiver(&stack.receiver, &policy).await;
}

/// A sweep's tombstone rewritten under a new policy stays a sweep's tombstone: Protime bringing
/// the record back at that version still heals it. And a sweep after a policy change writes
/// its tombstone under the policy, whatever the stored item held.
#[tokio::test(flavor = "multi_thread")]
async fn a_policy_keeps_sweep_tombstones_healable_and_sweeps_write_under_it() {
    use protime_webhooks::records::migrate::Parallelism;
    use protime_webhooks::records::policy::DataPolicy;
    let stack = Stack::start(&["people"], SimulatorConfig::default()).await;
    let seeded = stack.simulator.seed("people", 4);
    assert!(stack.sync(&[("FIELD_POLICY", "none")]).await.healthy);
    // A stray with a field the new policy drops, then a reconciliation under that policy.
    let stray = json!({"id": 999, "changeVersion": "00000000000000000001", "name": "Stray", "nickname": "secret"});
    stack.put_record("people", stray).await;
    let policy = [("FIELD_POLICY", "people.nickname=drop")];
    let request = protime_webhooks::sync::SyncRequest {
        collections: Some(vec!["people".into()]),
        reconcile: true,
        ..Default::default()
    };
    assert!(stack.sync_request(&policy, request).await.healthy);
    let tombstone = stack.receiver.item("people#999").await.unwrap();
    assert_eq!(
        (s(&tombstone, "source").as_deref(), tombstone["deleted"].clone()),
        (Some("sweep"), AttributeValue::Bool(true))
    );
    assert!(!tombstone.contains_key("nickname") && tombstone.contains_key("expiresAt"), "{tombstone:?}");

    // A live record swept earlier, under no policy, then rewritten by apply-field-policy.
    let gone = &seeded[1];
    let mut kept = gone.clone();
    kept["nickname"] = json!("kept");
    stack.put_record("people", kept.clone()).await;
    let item = stack.receiver.item(&format!("people#{}", gone["id"])).await.unwrap();
    let swept = protime_webhooks::records::item::sweep_tombstone(&item, "2020-01-02T00:00:00Z");
    stack.put_item(swept).await;
    let data = DataPolicy { fields: "people.nickname=drop".parse().unwrap(), hash_key: None, tombstone_days: 35 };
    let client = aws_sdk_dynamodb::Client::new(&stack.receiver.setup);
    let parallelism = Parallelism { segments: 1, updates_in_flight: 4 };
    let report = protime_webhooks::records::rewrite::apply_field_policy(
        &client,
        &stack.receiver.table,
        &data,
        parallelism,
        |_| {},
    )
    .await
    .unwrap();
    assert!(report.updated >= 1, "{report:?}");
    let rewritten = stack.receiver.item(&format!("people#{}", gone["id"])).await.unwrap();
    assert_eq!(s(&rewritten, "source").as_deref(), Some("sweep"), "{rewritten:?}");
    assert!(!rewritten.contains_key("nickname"));
    // Protime still has the record at that version: the next reconciliation heals it.
    let request = protime_webhooks::sync::SyncRequest {
        collections: Some(vec!["people".into()]),
        reconcile: true,
        ..Default::default()
    };
    assert!(stack.sync_request(&policy, request).await.healthy);
    let healed = stack.receiver.item(&format!("people#{}", gone["id"])).await.unwrap();
    assert_eq!(healed["deleted"], AttributeValue::Bool(false), "{healed:?}");
}
