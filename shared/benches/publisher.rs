//! The publisher's work for one stream batch of 100 records, no I/O: reading the records,
//! classifying each change, building its event and batching them (the bus accepts every entry
//! at once). `cargo bench -p protime-webhooks --bench publisher`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use protime_webhooks::config::PublisherConfig;
use protime_webhooks::publisher::feed::{BusError, Entry, EventBus, Retry};
use protime_webhooks::publisher::Publisher;
use serde_json::{json, Value};
use std::hint::black_box;

/// A bus that accepts everything: the benchmark measures the publisher, not EventBridge.
struct Accepting;

impl EventBus for Accepting {
    async fn put(&self, entries: &[&Entry]) -> Result<Vec<bool>, BusError> {
        Ok(vec![false; entries.len()])
    }
}

fn clocking(id: usize, version: usize, minutes: usize) -> Value {
    json!({
        "pk": {"S": format!("clockings#{id}")}, "collection": {"S": "clockings"}, "id": {"N": id.to_string()},
        "changeVersion": {"S": format!("0000090200004BD{version:05X}")},
        "changeOrder": {"S": format!("{:0>64}", format!("0000090200004BD{version:05X}"))},
        "source": {"S": "webhook"}, "receivedAt": {"S": "2026-12-01T09:00:00.000Z"},
        "date": {"S": "2026-12-01"}, "timeOfDayInMinutes": {"N": minutes.to_string()}, "kind": {"S": "InOut"},
        "person": {"M": {"id": {"N": "7"}}}, "terminal": {"M": {"id": {"N": "3"}, "name": {"S": "Front door"}}},
        "byDatePartition": {"S": "clockings#2026-12#3"}, "byDateSort": {"S": format!("2026-12-01#{id}")},
        "byPersonPartition": {"S": "clockings#7"}
    })
}

/// 100 stream records as Lambda delivers them: 50 inserts, 40 updates, 10 re-saves (suppressed).
fn batch() -> aws_lambda_events::dynamodb::Event {
    let records: Vec<Value> = (0..100)
        .map(|i| {
            let (name, old) = match i % 10 {
                0..=4 => ("INSERT", None),
                9 => ("MODIFY", Some(clocking(i, 1, 480))),
                _ => ("MODIFY", Some(clocking(i, 1, 470))),
            };
            let mut change = json!({"SequenceNumber": format!("{:021}", i), "SizeBytes": 600, "NewImage": clocking(i, 2, 480)});
            if let Some(old) = old {
                change["OldImage"] = old;
            }
            json!({"eventID": i.to_string(), "eventName": name, "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1", "dynamodb": change})
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn bench(c: &mut Criterion) {
    let config = PublisherConfig {
        event_bus_name: "changes".into(),
        publish_unchanged: false,
        metrics: protime_webhooks::observability::metrics::Metrics::new("Ns"),
    };
    let publisher = Publisher { config, bus: Accepting, retry: Retry::default() };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let event = batch();
    let (_, report) = runtime.block_on(publisher.handle(&event, None));
    assert_eq!((report.published, report.suppressed), (90, 10));
    let mut group = c.benchmark_group("publisher");
    group.throughput(Throughput::Elements(100));
    group.bench_function("batch_of_100_stream_records", |b| {
        b.iter(|| runtime.block_on(publisher.handle(black_box(&event), None)))
    });
    // The part Lambda's runtime does before the handler: the event's JSON into records.
    let text = serde_json::to_string(&json!({ "Records": serde_json::to_value(&event).unwrap()["Records"] })).unwrap();
    group.bench_function("read_the_event_json", |b| {
        b.iter(|| serde_json::from_str::<aws_lambda_events::dynamodb::Event>(black_box(&text)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
