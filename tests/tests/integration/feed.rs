//! The change feed end to end against moto: signed events through the receiver, the table's
//! stream, the publisher, the bus, a rule and an SQS queue — exactly one event per effective
//! change, in order per record, nothing for duplicates, stale events, state items or notes; one
//! `sequence` order per record through a sweep and its repair; nothing lost while PutEvents fails.

use chrono::Timelike;
use harness::fault_proxy::{FaultProxy, ProxyMode};
use harness::feed::Feed;
use harness::simulator::SimulatorConfig;
use harness::{signed, Stack};
use protime_webhooks::config::PublisherConfig;
use protime_webhooks::publisher::bus::EventBridgeBus;
use protime_webhooks::publisher::feed::{BusError, Entry, EventBus, Retry};
use protime_webhooks::publisher::Publisher;
use serde_json::{json, Value};
use std::sync::Mutex;

fn publisher<B: EventBus>(bus: B, bus_name: &str) -> Publisher<B> {
    let config = PublisherConfig {
        event_bus_name: bus_name.into(),
        publish_unchanged: false,
        metrics: protime_webhooks::observability::metrics::Metrics::new("Test"),
    };
    Publisher { config, bus, retry: Retry { attempts: 2, base_delay: std::time::Duration::from_millis(5) } }
}

fn bridge(stack: &Stack, feed: &Feed) -> EventBridgeBus {
    EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&stack.receiver.config), &feed.bus)
}

/// (detail-type, id, changeVersion) of each event, in the order received.
fn summary(events: &[Value]) -> Vec<(String, String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["detail-type"].as_str().unwrap().to_owned(),
                e["detail"]["id"].to_string(),
                e["detail"]["changeVersion"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Asserts every event is valid against the published schema (docs/change-event.schema.json).
fn assert_schema(events: &[Value]) {
    let text = std::fs::read_to_string(harness::workspace_root().join("docs/change-event.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    for event in events {
        // The schema can fail: the same event with data and dataOmitted both, or another source.
        let mut both = event.clone();
        both["detail"]["dataOmitted"] = json!(true);
        both["detail"]["data"] = json!({"id": 1, "changeVersion": "1"});
        assert!(!validator.is_valid(&both), "data and dataOmitted together pass the schema");
        let mut other = event.clone();
        other["source"] = json!("someone-else");
        assert!(!validator.is_valid(&other));
        if let Err(error) = validator.validate(event) {
            panic!("{error} at {}: {event}", error.instance_path());
        }
    }
}

fn v(n: u32) -> String {
    format!("0000090200004BD{n:05X}")
}

#[tokio::test(flavor = "multi_thread")]
async fn each_effective_change_is_one_event_and_duplicates_stale_events_state_and_notes_are_none() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let mut feed = Feed::start(&harness::shared_moto().endpoint(), &stack.receiver.setup, &stack.receiver.table).await;
    // State items and their notes: subscription state, the key, a sync run's state and lease.
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);
    let key = stack.stored_key("clockings").await.unwrap();
    let receiver = &stack.receiver;
    let send = |body: String| {
        let request = signed("clockings", &body, &key);
        async move { receiver.send(request).await }
    };
    let clocking = |id: u32, version: u32, hours: &str| {
        format!(
            r#"{{"id":{id},"changeVersion":"{}","date":"2026-12-01","hours":{hours},"person":{{"id":3}}}}"#,
            v(version)
        )
    };
    assert_eq!(send(clocking(1, 1, "8")).await.0, 200);
    assert_eq!(send(clocking(1, 1, "8")).await.1["results"][0]["outcome"], "duplicate");
    assert_eq!(send(clocking(2, 5, "4")).await.0, 200);
    assert_eq!(send(clocking(2, 4, "3")).await.1["results"][0]["outcome"], "stale");
    // Protime re-saved record 1: a new version, the same data.
    assert_eq!(send(clocking(1, 2, "8")).await.1["results"][0]["outcome"], "stored");
    assert_eq!(send(clocking(1, 3, "7.25")).await.0, 200);
    let delete = format!(r#"{{"changeType":"Delete","data":{{"id":2,"changeVersion":"{}"}}}}"#, v(6));
    assert_eq!(send(delete).await.0, 200);
    let soft = format!(r#"{{"id":1,"changeVersion":"{}","date":"2026-12-01","status":"Deleted"}}"#, v(7));
    assert_eq!(send(soft).await.0, 200);

    let p = publisher(bridge(&stack, &feed), &feed.bus);
    let reports = feed.pump(&p, 100).await;
    assert!(reports.iter().all(|r| r.resume_from.is_none()), "{reports:?}");
    let suppressed: u64 = reports.iter().map(|r| r.suppressed).sum();
    assert_eq!(suppressed, 1, "the re-save");
    let events = feed.received().await;
    let changed = "Protime Record Changed".to_owned();
    let deleted = "Protime Record Deleted".to_owned();
    assert_eq!(
        summary(&events),
        [
            (changed.clone(), "1".into(), v(1)),
            (changed.clone(), "2".into(), v(5)),
            (changed, "1".into(), v(3)),
            (deleted.clone(), "2".into(), v(6)),
            (deleted, "1".into(), v(7)),
        ]
    );
    assert_schema(&events);
    let first = &events[0];
    assert_eq!(first["source"], "protime-webhooks");
    assert_eq!(
        first["detail"],
        json!({
            "collection": "clockings", "id": 1, "changeVersion": v(1), "previousChangeVersion": null,
            "source": "webhook", "receivedAt": first["detail"]["receivedAt"].clone(),
            "sequence": first["detail"]["sequence"].clone(),
            "data": {"id": 1, "changeVersion": v(1), "date": "2026-12-01", "hours": 8, "person": {"id": 3}}
        })
    );
    assert_eq!(events[2]["detail"]["previousChangeVersion"], v(2), "after the suppressed re-save");
    assert_eq!(events[2]["detail"]["data"]["hours"], 7.25);
    assert_eq!(events[4]["detail"]["data"]["status"], "Deleted", "a soft delete keeps its fields");
    // Nothing more: a second pump finds no new stream record.
    assert!(feed.pump(&p, 100).await.is_empty());
    assert!(feed.received().await.is_empty());
}

/// A bus that fails the entries of record `failing` for its first `times` calls that carry one.
struct Flaky {
    inner: EventBridgeBus,
    failing: String,
    times: Mutex<u32>,
}

impl EventBus for Flaky {
    async fn put(&self, entries: &[&Entry]) -> Result<Vec<bool>, BusError> {
        let fail_now = {
            let mut times = self.times.lock().unwrap();
            let hit = entries.iter().any(|e| e.record_key == self.failing) && *times > 0;
            if hit {
                *times -= 1;
            }
            hit
        };
        // The others of the batch go through, as PutEvents answers a partial failure.
        let passing: Vec<&Entry> =
            entries.iter().copied().filter(|e| !(fail_now && e.record_key == self.failing)).collect();
        let mut answers = if passing.is_empty() { Vec::new() } else { self.inner.put(&passing).await? };
        let mut failed = Vec::with_capacity(entries.len());
        for e in entries {
            failed.push(if fail_now && e.record_key == self.failing { true } else { answers.remove(0) });
        }
        Ok(failed)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_failing_past_the_retries_resume_the_stream_at_that_change_losing_nothing_and_keeping_order() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let mut feed = Feed::start(&harness::shared_moto().endpoint(), &stack.receiver.setup, &stack.receiver.table).await;
    assert!(stack.renew().await.healthy);
    let key = stack.stored_key("clockings").await.unwrap();
    // Five records; record 3 changes three times.
    let mut sent = Vec::new();
    for (id, version, hours) in [(1, 1, 1), (3, 1, 1), (2, 1, 1), (3, 2, 2), (4, 1, 1), (3, 3, 3), (5, 1, 1)] {
        let body = format!(r#"{{"id":{id},"changeVersion":"{}","date":"2026-12-01","hours":{hours}}}"#, v(version));
        assert_eq!(stack.receiver.send(signed("clockings", &body, &key)).await.0, 200);
        sent.push((id.to_string(), v(version)));
    }
    // Record 3's entries fail 3 times: more than one invocation's 2 attempts.
    let flaky = Flaky { inner: bridge(&stack, &feed), failing: "clockings#3".into(), times: Mutex::new(3) };
    let p = publisher(flaky, &feed.bus);
    let reports = feed.pump(&p, 100).await;
    assert!(reports.len() >= 2, "the first invocation reported a batch item failure: {reports:?}");
    assert!(reports[0].resume_from.is_some(), "{reports:?}");
    assert!(reports.iter().map(|r| r.failures).sum::<u64>() >= 3);
    let events = feed.received().await;
    assert_schema(&events);
    let got: Vec<(String, String)> = summary(&events).into_iter().map(|(_, id, version)| (id, version)).collect();
    // Nothing lost; a change published before the failure may come again (at least once).
    for change in &sent {
        assert!(got.contains(change), "{change:?} never published: {got:?}");
    }
    // Record 3's changes in their order, each first published after the previous one.
    let firsts: Vec<usize> = [v(1), v(2), v(3)]
        .iter()
        .map(|version| got.iter().position(|(id, v)| id == "3" && v == version).unwrap())
        .collect();
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "record 3 out of order: {got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_too_large_for_an_event_is_published_without_its_data() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let mut feed = Feed::start(&harness::shared_moto().endpoint(), &stack.receiver.setup, &stack.receiver.table).await;
    assert!(stack.renew().await.healthy);
    let key = stack.stored_key("clockings").await.unwrap();
    let note = "n".repeat(300 * 1024);
    let body = format!(r#"{{"id":9,"changeVersion":"{}","date":"2026-12-01","note":"{note}"}}"#, v(1));
    assert_eq!(stack.receiver.send(signed("clockings", &body, &key)).await.0, 200);
    let p = publisher(bridge(&stack, &feed), &feed.bus);
    let reports = feed.pump(&p, 100).await;
    assert_eq!(reports.iter().map(|r| r.data_omitted).sum::<u64>(), 1);
    let events = feed.received().await;
    assert_eq!(events.len(), 1);
    assert_schema(&events);
    assert_eq!(events[0]["detail"]["dataOmitted"], true);
    assert!(events[0]["detail"].get("data").is_none());
    assert_eq!(events[0]["detail"]["id"], 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_the_sweep_tombstones_is_one_deleted_event_with_source_sweep() {
    let stack = Stack::start(&["people"], SimulatorConfig::default()).await;
    let mut feed = Feed::start(&harness::shared_moto().endpoint(), &stack.receiver.setup, &stack.receiver.table).await;
    let people = stack.simulator.seed("people", 3);
    assert!(stack.sync(&[]).await.healthy);
    let p = publisher(bridge(&stack, &feed), &feed.bus);
    feed.pump(&p, 100).await;
    assert_eq!(feed.received().await.len(), 3, "the load: one event per person");
    // Deleted in Protime while the delta lay unused past its 72 h: nothing delivered, and the
    // expired delta cannot tell. The reload's full pass sweeps it.
    stack.simulator.delete_quietly("people", people[1]["id"].clone());
    stack.simulator.advance(chrono::Duration::hours(73));
    let report = stack.sync(&[]).await;
    assert_eq!(report.collections[0].drift.as_ref().map(|d| d.swept), Some(1), "{report:?}");
    feed.pump(&p, 100).await;
    let events = feed.received().await;
    let version = people[1]["changeVersion"].as_str().unwrap().to_owned();
    assert_eq!(summary(&events), [("Protime Record Deleted".to_owned(), people[1]["id"].to_string(), version)]);
    assert_eq!(events[0]["detail"]["source"], "sweep");
    assert_eq!(events[0]["detail"]["data"]["name"], people[1]["name"], "the tombstone keeps the fields");
    assert_schema(&events);
}

/// Each event's `sequence`.
fn sequences(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["detail"]["sequence"].as_str().expect("a sequence").to_owned()).collect()
}

/// `at` as RFC 3339 with `digits` fractional digits (0: none), as writers of the table may stamp it.
fn stamp(at: chrono::DateTime<chrono::Utc>, digits: usize) -> String {
    let format = match digits {
        0 => chrono::SecondsFormat::Secs,
        3 => chrono::SecondsFormat::Millis,
        _ => chrono::SecondsFormat::Micros,
    };
    at.to_rfc3339_opts(format, true)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_records_sequence_grows_through_a_change_its_sweep_its_repair_and_a_newer_version() {
    use protime_webhooks::records::item::sweep_tombstone;
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let mut feed = Feed::start(&harness::shared_moto().endpoint(), &stack.receiver.setup, &stack.receiver.table).await;
    assert!(stack.renew().await.healthy);
    let key = stack.stored_key("clockings").await.unwrap();
    let record = json!({"id": 1, "changeVersion": v(1), "date": "2026-12-01", "hours": 8});
    assert_eq!(stack.receiver.send(signed("clockings", &record.to_string(), &key)).await.0, 200);
    // The sweep tombstones it at its version, a whole second later; the repair half a second
    // after that. As text, `…:05Z` sorts after `…:05.500Z`: only a normalised time orders them.
    let second = chrono::Utc::now().with_nanosecond(0).unwrap() + chrono::Duration::seconds(2);
    let live = stack.receiver.item("clockings#1").await.unwrap();
    stack.put_item(sweep_tombstone(&live, &stamp(second, 0))).await;
    stack.put_record_at("clockings", record, &stamp(second + chrono::Duration::milliseconds(500), 3)).await;
    let newer = json!({"id": 1, "changeVersion": v(2), "date": "2026-12-01", "hours": 9});
    assert_eq!(stack.receiver.send(signed("clockings", &newer.to_string(), &key)).await.0, 200);

    let p = publisher(bridge(&stack, &feed), &feed.bus);
    feed.pump(&p, 100).await;
    let events = feed.received().await;
    assert_schema(&events);
    let changed = "Protime Record Changed".to_owned();
    let deleted = "Protime Record Deleted".to_owned();
    assert_eq!(
        summary(&events),
        [
            (changed.clone(), "1".into(), v(1)),
            (deleted, "1".into(), v(1)),
            (changed.clone(), "1".into(), v(1)),
            (changed, "1".into(), v(2)),
        ]
    );
    let sources: Vec<&str> = events.iter().map(|e| e["detail"]["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["webhook", "sweep", "delta", "webhook"]);
    let order = sequences(&events);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "every later change compares greater: {order:#?}");
    // The stream read again from its start (a redelivery): the same sequences.
    let mut again = Feed::start(&harness::shared_moto().endpoint(), &stack.receiver.setup, &stack.receiver.table).await;
    again.pump(&publisher(bridge(&stack, &again), &again.bus), 100).await;
    assert_eq!(sequences(&again.received().await), order);
}

/// The events deduplicated as consumers do, by (collection, id, sequence), first arrival kept.
fn deduplicated(events: &[Value]) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    events
        .iter()
        .filter(|e| {
            seen.insert((
                e["detail"]["collection"].to_string(),
                e["detail"]["id"].to_string(),
                e["detail"]["sequence"].to_string(),
            ))
        })
        .cloned()
        .collect()
}

/// One record's events (detail-type and detail: EventBridge gives each delivery its own `id`
/// and `time`), in the order given.
fn of_record(events: &[Value], id: u64) -> Vec<(Value, Value)> {
    events.iter().filter(|e| e["detail"]["id"] == id).map(|e| (e["detail-type"].clone(), e["detail"].clone())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn put_events_failing_for_a_while_then_recovering_loses_no_change_of_the_stream() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let moto = harness::shared_moto().endpoint();
    let mut feed = Feed::start(&moto, &stack.receiver.setup, &stack.receiver.table).await;
    assert!(stack.renew().await.healthy);
    let key = stack.stored_key("clockings").await.unwrap();
    let mut sent = Vec::new();
    for (id, version, hours) in [(1, 1, 1), (2, 1, 1), (1, 2, 2), (3, 1, 1), (2, 2, 2), (4, 1, 1), (1, 3, 3), (5, 1, 1)]
    {
        let body = json!({"id": id, "changeVersion": v(version), "date": "2026-12-01", "hours": hours});
        assert_eq!(stack.receiver.send(signed("clockings", &body.to_string(), &key)).await.0, 200);
        sent.push(("Protime Record Changed".to_owned(), id.to_string(), v(version)));
    }
    let delete = json!({"changeType": "Delete", "data": {"id": 3, "changeVersion": v(2)}});
    assert_eq!(stack.receiver.send(signed("clockings", &delete.to_string(), &key)).await.0, 200);
    sent.push(("Protime Record Deleted".to_owned(), "3".into(), v(2)));

    // What the stream holds, as a publisher that never fails puts it on a bus of its own.
    let mut reference = Feed::start(&moto, &stack.receiver.setup, &stack.receiver.table).await;
    reference.pump(&publisher(bridge(&stack, &reference), &reference.bus), 100).await;
    let expected = reference.received().await;
    assert_eq!(summary(&expected), sent, "the stream's changes, in the order written");

    // The real bus behind a proxy: two calls go through, then PutEvents answers 500 to every
    // call (the SDK's retries included) for a while — several invocations — then recovers.
    let proxy = FaultProxy::start(moto.clone()).await;
    proxy.set(ProxyMode::PutEventsFailing { pass: 2, fail: 12 });
    let through_proxy = harness::sdk_config(&proxy.endpoint()).await;
    let p = publisher(EventBridgeBus::from_sdk(&through_proxy, &feed.bus), &feed.bus);
    let reports = feed.pump(&p, 3).await;
    assert_eq!(proxy.mode(), ProxyMode::PutEventsFailing { pass: 0, fail: 0 }, "every failure was met");
    let resumed = reports.iter().filter(|r| r.resume_from.is_some()).count();
    assert!(resumed >= 2, "several invocations ended on a batch item failure: {reports:?}");
    let events = feed.received().await;
    assert_schema(&events);
    // As a whole: deduplicated, exactly the stream's events, each record's in the stream's order.
    let got = deduplicated(&events);
    let key_of = |e: &Value| format!("{} {}", e["detail-type"], e["detail"]);
    let mut got_all: Vec<String> = got.iter().map(key_of).collect();
    let mut expected_all: Vec<String> = expected.iter().map(key_of).collect();
    got_all.sort();
    expected_all.sort();
    assert_eq!(got_all, expected_all, "every change on the bus exactly as the stream had it");
    for id in 1..=5 {
        assert_eq!(of_record(&got, id), of_record(&expected, id), "record {id} in the stream's order");
    }
    // And the table's last word for each record is the last event consumers applied.
    for id in 1..=5 {
        let item = stack.receiver.item(&format!("clockings#{id}")).await.unwrap();
        let last = of_record(&got, id).last().map(|(_, detail)| detail["sequence"].clone());
        assert_eq!(last, Some(json!(protime_webhooks::publisher::change::sequence(&item))), "record {id}");
    }
}
