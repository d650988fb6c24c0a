//! The syncer's load benchmark (not a test): an initial load of N simulator records into moto,
//! beside moto's raw conditional PutItem rate at the same write concurrency measured in the same
//! run, and the writes made by a list sync of unchanged data; then the read indexes' cost by
//! projection (write units, storage, reads of a month) over the loaded items, and the index-key
//! migration over them (time, writes; a second run writes nothing).
//!
//! Usage: cargo run --release -p integration-tests --example sync_load -- [RECORDS] [PAGE_SIZE]
//! (defaults 100000 and 500). Needs the moto venv (`make setup`); `make bench-sync` runs it.
//! `MIGRATION_ONLY=1` loads the records and measures the migration alone; `RECONCILE_ONLY=1`
//! loads them and measures a reconciliation of the unchanged copy (records read and written,
//! time beside moto's raw BatchGetItem read rate in the same run, the process's peak RSS); its
//! syncer runs with the setup's 120 s operation timeout (moto's index Query walks the table).
//!
//! The migration runs with one Scan segment and 16 updates in flight: moto answers one request
//! at a time, not in order, and with several segments a segment's Scan waits behind the others'
//! updates past the SDK's operation timeout. DynamoDB serves segments in parallel (the default
//! is 4); these figures are the emulator's, a floor, not a forecast.

use aws_sdk_dynamodb::types::AttributeValue;
use harness::simulator::SimulatorConfig;
use harness::Stack;
use protime_webhooks::records::index::attr as index_attr;
use protime_webhooks::records::item::{attr, item_size};
use protime_webhooks::records::migrate;
use protime_webhooks::records::store::DynamoRecordStore;
use protime_webhooks::records::{event, json, put_all, Source};
use protime_webhooks::sync::apply::WRITE_CONCURRENCY;
use protime_webhooks::Collection;
use std::collections::HashMap;
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
    if std::env::var_os("RECONCILE_ONLY").is_some() {
        let report = patient_sync(&stack, Default::default()).await;
        assert!(report.healthy, "{report:?}");
        reconciliation(&stack, records).await;
        return;
    }
    if std::env::var_os("MIGRATION_ONLY").is_some() {
        let report = stack.sync(&[("COLLECTIONS", "clockings")]).await;
        assert!(report.healthy, "{report:?}");
        migration(&stack).await;
        return;
    }

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
    // A write whose answer was lost is retried by the SDK and meets itself: a duplicate.
    assert!(report.healthy && c.records.stored + c.records.duplicate == records as u64, "{report:?}");
    let load_rate = records as f64 / load.as_secs_f64();
    println!(
        "syncer initial load:      {records} records in {:.1} s = {load_rate:.0} records/s ({} pages) = {:.2} x raw",
        load.as_secs_f64(),
        c.pages,
        load_rate / raw_rate
    );

    // people loaded through their delta, then a round with nothing changed: one page, no write.
    let people = (records / 10).max(1);
    stack.simulator.seed("people", people);
    let only_people = [("COLLECTIONS", "people")];
    stack.sync(&only_people).await;
    let started = Instant::now();
    let again = stack.sync(&only_people).await;
    let p = &again.collections[0];
    println!(
        "delta round, unchanged:   {people} people in {:.1} s, {} page(s), {} written",
        started.elapsed().as_secs_f64(),
        p.pages,
        p.records.stored
    );

    index_costs(&stack).await;
    migration(&stack).await;
}

/// A `kB` field of `/proc/self/status`.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok()).unwrap_or(0)
}

/// A reconciliation of the loaded, unchanged copy: the list pass reads every record's head and
/// the sweep reads the window's index partitions; it must write no record. Beside it, moto's
/// raw read rate: the same heads read with BatchGetItem alone.
/// One syncer run whose AWS clients have the setup's generous timeouts (120 s an operation)
/// instead of the functions' 8 s: moto answers an index Query by walking every item of the
/// table, which over 100,000 items takes longer than 8 s (DynamoDB reads only the partition).
async fn patient_sync(
    stack: &Stack,
    request: protime_webhooks::sync::SyncRequest,
) -> protime_webhooks::sync::SyncReport {
    let config = stack.syncer_config(&[("COLLECTIONS", "clockings")]);
    let mut syncer = protime_webhooks::sync::AwsSyncer::from_config(config, &stack.receiver.setup);
    harness::fast_retries(&mut syncer.protime.options);
    let budget = protime_webhooks::sync::Budget::new(stack.simulator.now(), None, std::time::Duration::ZERO);
    syncer.run(&request, budget).await.expect("syncer run")
}

async fn reconciliation(stack: &Stack, records: usize) {
    use protime_webhooks::records::StoredHeads;
    let store = DynamoRecordStore::new(aws_sdk_dynamodb::Client::new(&stack.receiver.config), &stack.receiver.table);
    let ids: Vec<_> = stack
        .simulator
        .records("clockings")
        .iter()
        .map(|r| event::parse_event(json::parse(r.to_string().as_bytes()).unwrap()).unwrap().id)
        .collect();
    let started = Instant::now();
    let mut read = 0;
    for chunk in ids.chunks(500) {
        read += store.heads(Collection::Clockings, chunk).await.expect("heads").len();
    }
    let raw = started.elapsed();
    let raw_rate = read as f64 / raw.as_secs_f64();
    println!("raw BatchGetItem heads:   {read} records in {:.1} s = {raw_rate:.0} records/s", raw.as_secs_f64());

    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_kb("VmRSS:");
    let request = protime_webhooks::sync::SyncRequest {
        collections: Some(vec!["clockings".into()]),
        reconcile: true,
        ..Default::default()
    };
    let started = Instant::now();
    let report = patient_sync(stack, request).await;
    let took = started.elapsed();
    let c = &report.collections[0];
    assert!(report.healthy && c.outcome == protime_webhooks::sync::Outcome::Complete, "{report:?}");
    let drift = c.drift.clone().expect("the pass completed");
    let rate = c.records.fetched as f64 / took.as_secs_f64();
    println!(
        "reconciliation, unchanged: {} records read ({} pages) in {:.1} s = {rate:.0} records/s = {:.2} x raw reads; \
         {} written; drift missing {} behind {} swept {}; peak RSS {:.0} MB (+{:.0} MB over the run, simulator \
         and moto client included)",
        c.records.fetched,
        c.pages,
        took.as_secs_f64(),
        rate / raw_rate,
        c.records.stored,
        drift.missing,
        drift.behind,
        drift.swept,
        status_kb("VmHWM:") as f64 / 1e3,
        status_kb("VmHWM:").saturating_sub(rss_before) as f64 / 1e3,
    );
    assert_eq!((c.records.stored, drift.total()), (0, 0), "an unchanged copy: nothing written, no drift");
    assert_eq!(c.records.fetched, records as u64);
}

/// Write units, storage and reads of the indexes under each projection DynamoDB offers, from
/// the items the load wrote (a write unit per KB written to the table and to each index that
/// holds the item; an index entry stores 100 bytes of overhead; a Query reads 0.5 units per
/// 4 KB, a BatchGetItem 0.5 units per item, eventually consistent).
async fn index_costs(stack: &Stack) {
    let items: Vec<HashMap<String, AttributeValue>> = harness::scan(&stack.receiver.setup, &stack.receiver.table)
        .await
        .into_iter()
        .filter(|i| i.get(attr::COLLECTION).and_then(|c| c.as_s().ok()).is_some_and(|c| c == "clockings"))
        .collect();
    let keys: Vec<&str> = [attr::PK].into_iter().chain(index_attr::ALL.iter().copied()).collect();
    let include: Vec<&str> = keys
        .iter()
        .copied()
        .chain([attr::ID, attr::CHANGE_VERSION, attr::CHANGE_ORDER, attr::RECEIVED_AT, attr::SOURCE])
        .collect();
    let only = |item: &HashMap<String, AttributeValue>, names: &[&str]| -> HashMap<String, AttributeValue> {
        item.iter().filter(|(k, _)| names.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let units = |bytes: usize| bytes.div_ceil(1024) as u64;
    let n = items.len().max(1) as f64;
    let base_bytes: usize = items.iter().map(item_size).sum();
    let base_units: u64 = items.iter().map(|i| units(item_size(i))).sum();
    println!(
        "index cost over {} clockings: item {:.0} bytes on average, {:.2} write units per write to the table",
        items.len(),
        base_bytes as f64 / n,
        base_units as f64 / n
    );
    println!("  projection  write units per record write (table + byDate + byPerson)  index storage per record  reads of 1,000 records with their fields");
    for (name, projected) in [("KEYS_ONLY", None), ("INCLUDE", Some(&include)), ("ALL", None::<&Vec<&str>>)] {
        let entry = |item: &HashMap<String, AttributeValue>| match (name, projected) {
            ("ALL", _) => item_size(item),
            (_, Some(names)) => item_size(&only(item, names)),
            _ => item_size(&only(item, &keys)),
        };
        let in_indexes =
            |item: &HashMap<String, AttributeValue>| 1 + u64::from(item.contains_key(index_attr::PERSON_PARTITION));
        let index_units: u64 = items.iter().map(|i| units(entry(i)) * in_indexes(i)).sum();
        let storage: usize = items.iter().map(|i| (entry(i) + 100) * in_indexes(i) as usize).sum();
        // A month's Query of 1,000 records, then (unless ALL) their fields by BatchGetItem.
        let per_record = |bytes: usize| bytes as f64 / 4096.0 * 0.5;
        let query: f64 = items.iter().map(|i| per_record(entry(i))).sum::<f64>() / n * 1000.0;
        let fetch = if name == "ALL" { 0.0 } else { 1000.0 * 0.5 };
        println!(
            "  {name:<10}  {:.2} ({:.2}x the table alone){:>26}  {:.0} bytes ({:.1}x the item){:>11}  {:.0} read units",
            (base_units + index_units) as f64 / n,
            (base_units + index_units) as f64 / base_units.max(1) as f64,
            "",
            storage as f64 / n,
            storage as f64 / base_bytes.max(1) as f64,
            "",
            query + fetch
        );
    }
}

/// The migration over every item the load wrote, as a deployment from before the indexes holds
/// them (the same items without index keys): time and writes, then a second run.
async fn migration(stack: &Stack) {
    // The set-up's timeouts, not production's 8 s: moto's Scan walks the table from its first
    // item to the ExclusiveStartKey on every page (DynamoDB reads only the page), so at 100,000
    // items one page takes seconds under moto's one-request-at-a-time lock.
    let client = aws_sdk_dynamodb::Client::new(&stack.receiver.setup);
    let table = &stack.receiver.table;
    let mut stripped = 0u64;
    for mut item in harness::scan(&stack.receiver.setup, table).await {
        if index_attr::ALL.iter().any(|a| item.remove(*a).is_some()) {
            client.put_item().table_name(table).set_item(Some(item)).send().await.expect("strip");
            stripped += 1;
        }
    }
    let started = Instant::now();
    let parallelism = migrate::Parallelism { segments: 1, updates_in_flight: migrate::UPDATES_IN_FLIGHT };
    let first = migrate::add_index_keys(&client, table, parallelism, |_| {}).await.expect("migration");
    let took = started.elapsed().as_secs_f64();
    assert_eq!(first.updated, stripped, "{first:?}");
    println!(
        "index-key migration:      {} items read, {} records given their keys in {took:.1} s = {:.0} records/s ({} writes, 1 each)",
        first.scanned,
        first.updated,
        first.updated as f64 / took,
        first.updated
    );
    let started = Instant::now();
    let second = migrate::add_index_keys(&client, table, parallelism, |_| {}).await.expect("migration");
    assert_eq!(second.updated, 0, "{second:?}");
    println!(
        "migration, second run:    {} items read in {:.1} s, {} written",
        second.scanned,
        started.elapsed().as_secs_f64(),
        second.updated
    );
}
