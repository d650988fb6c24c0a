//! The syncer's load benchmark (not a test): an initial load of N simulator records into moto,
//! beside moto's raw conditional PutItem rate at the same write concurrency measured in the same
//! run, and the writes made by a list sync of unchanged data.
//!
//! Usage: cargo run --release -p integration-tests --example sync_load -- [RECORDS] [PAGE_SIZE]
//! (defaults 100000 and 500). Needs the moto venv (`make setup`); `make bench-sync` runs it.

use harness::simulator::SimulatorConfig;
use harness::Stack;
use protime_webhooks::records::store::DynamoRecordStore;
use protime_webhooks::records::{event, json, put_all, Source};
use protime_webhooks::sync::apply::WRITE_CONCURRENCY;
use protime_webhooks::Collection;
use std::time::Instant;

fn arg(index: usize, default: usize) -> usize {
    std::env::args().nth(index).and_then(|a| a.parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let records = arg(1, 100_000);
    let page_size = arg(2, 500);
    let config = SimulatorConfig { page_size, empty_pages: false, ..SimulatorConfig::default() };
    let stack = Stack::start(&["clockings", "people"], config).await;
    stack.simulator.seed("clockings", records);
    println!("seeded {records} clockings; pages of {page_size}; writes in flight per page: {WRITE_CONCURRENCY}");

    // The floor: the same records written straight through the conditional store into an empty
    // table, WRITE_CONCURRENCY at a time, with no Protime and no sync state.
    let table = harness::unique("raw");
    harness::create_table(&stack.receiver.setup, &table).await;
    let store = DynamoRecordStore::new(aws_sdk_dynamodb::Client::new(&stack.receiver.config), &table);
    let events: Vec<_> = stack
        .simulator
        .records("clockings")
        .iter()
        .map(|r| event::parse_event(json::parse(r.to_string().as_bytes()).unwrap()).unwrap())
        .collect();
    let started = Instant::now();
    for chunk in events.chunks(page_size) {
        for result in put_all(&store, Collection::Clockings, chunk, Source::Delta, WRITE_CONCURRENCY).await {
            result.expect("raw write");
        }
    }
    let raw = started.elapsed();
    let raw_rate = records as f64 / raw.as_secs_f64();
    println!("raw conditional PutItem:  {records} records in {:.1} s = {raw_rate:.0} records/s", raw.as_secs_f64());

    let started = Instant::now();
    let report = stack.sync(&[("COLLECTIONS", "clockings")]).await;
    let load = started.elapsed();
    let c = &report.collections[0];
    assert!(report.healthy && c.records.stored == records as u64, "{report:?}");
    let load_rate = records as f64 / load.as_secs_f64();
    println!(
        "syncer initial load:      {records} records in {:.1} s = {load_rate:.0} records/s ({} pages) = {:.2} x raw",
        load.as_secs_f64(),
        c.pages,
        load_rate / raw_rate
    );

    // A list collection listed twice with nothing changed: the second pass writes nothing.
    let people = (records / 10).max(1);
    stack.simulator.seed("people", people);
    let relist = [("COLLECTIONS", "people"), ("LIST_SYNC_INTERVAL_HOURS", "0")];
    stack.sync(&relist).await;
    let started = Instant::now();
    let again = stack.sync(&relist).await;
    let p = &again.collections[0];
    println!(
        "list sync, unchanged:     {people} people in {:.1} s, {} written, {} skipped as already stored",
        started.elapsed().as_secs_f64(),
        p.records.stored,
        p.records.duplicate
    );
}
