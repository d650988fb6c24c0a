//! The change feed against moto: N records written through the conditional store (then N/2 of
//! them changed, N/4 re-saved unchanged), the table's stream pumped to the release publisher in
//! batches of 100 as the event source mapping would, its events put on moto's EventBridge and
//! read back from the rule's SQS queue. Prints events published per second.
//!
//! Usage: cargo run --release -p integration-tests --example feed_load -- [RECORDS] (default 2000).
//! Needs the moto venv (`make setup`). The figures are moto's (one request at a time), a floor.

use harness::feed::Feed;
use harness::simulator::SimulatorConfig;
use harness::Stack;
use protime_webhooks::config::PublisherConfig;
use protime_webhooks::publisher::bus::EventBridgeBus;
use protime_webhooks::publisher::feed::Retry;
use protime_webhooks::publisher::Publisher;
use protime_webhooks::records::store::DynamoRecordStore;
use protime_webhooks::records::{event, put_all, Source};
use protime_webhooks::Collection;
use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let records: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let mut feed = Feed::start(&harness::shared_moto().endpoint(), &stack.receiver.setup, &stack.receiver.table).await;
    let store = DynamoRecordStore::new(aws_sdk_dynamodb::Client::new(&stack.receiver.config), &stack.receiver.table);
    let body = |id: usize, version: usize, minutes: usize| {
        format!(
            r#"{{"id":{id},"changeVersion":"0000090200004BD{version:05X}","date":"2026-12-01","timeOfDayInMinutes":{minutes},"person":{{"id":{}}}}}"#,
            id % 50
        )
    };
    let mut events = Vec::new();
    for id in 0..records {
        events.push(body(id, 1, 480));
    }
    for id in 0..records / 2 {
        events.push(body(id, 2, if id % 2 == 0 { 490 } else { 480 }));
    }
    let parsed: Vec<_> = events.iter().map(|b| event::parse_body(b.as_bytes()).unwrap().remove(0)).collect();
    for chunk in parsed.chunks(500) {
        for result in put_all(&store, Collection::Clockings, chunk, Source::Webhook, 16).await {
            result.expect("stored");
        }
    }
    let expected = records + records / 4;
    println!(
        "wrote {} record versions: {expected} effective changes, {} unchanged re-saves",
        parsed.len(),
        records / 4
    );

    let config = PublisherConfig {
        event_bus_name: feed.bus.clone(),
        publish_unchanged: false,
        metrics: protime_webhooks::observability::metrics::Metrics::new("Bench"),
    };
    let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&stack.receiver.config), &feed.bus);
    let publisher = Publisher { config, bus, retry: Retry::default() };
    let started = Instant::now();
    let reports = feed.pump(&publisher, 100).await;
    let took = started.elapsed().as_secs_f64();
    let published: u64 = reports.iter().map(|r| r.published).sum();
    let suppressed: u64 = reports.iter().map(|r| r.suppressed).sum();
    assert_eq!((published as usize, suppressed as usize), (expected, records / 4), "{reports:?}");
    println!(
        "publisher against moto: {} stream records in {} batches, {published} events published, {suppressed} suppressed, in {took:.1} s = {:.0} events/s",
        parsed.len(),
        reports.len(),
        published as f64 / took
    );
    let started = Instant::now();
    let received = feed.received().await.len();
    println!("consumer: {received} events read from the rule's queue in {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(received, expected);
}
