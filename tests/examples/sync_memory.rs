//! The syncer's memory for one large deltaLink answer (not a test): a release build of the sync
//! engine follows four collections' deltaLinks at once against the Protime simulator (its own
//! process, over HTTP), where one of them answers with N changes in one page, and prints the
//! page's size, the time and the process's peak RSS (`VmHWM`, reset before each round).
//!
//! The records go to a sink that builds each record's DynamoDB item, as the table's store does
//! before it sends it, and drops it: the figure is the syncer's own memory (the page, its
//! records' trees, the writes in flight), not moto's pace (a 200,000-change page would take
//! moto a quarter of an hour to store). Pages are kept in memory, as the bucket would hold them.
//!
//! Usage: cargo build --release -p integration-tests --bin protime-simulator --example sync_memory
//!        target/release/examples/sync_memory [CHANGES...]   (default 50000 100000 200000)
//! `make bench-memory` does both.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use protime_webhooks::collection::Collection;
use protime_webhooks::config::SyncerConfig;
use protime_webhooks::protime::client::ClientOptions;
use protime_webhooks::protime::credentials::ProtimeCredentials;
use protime_webhooks::protime::{
    Connect, ConnectError, CreatedWebhook, Page, ProtimeClient, ProtimeError, RecordPages, Webhook, WebhookApi,
};
use protime_webhooks::records::item::record_item;
use protime_webhooks::records::quarantine::{Note, Quarantine, QuarantineError};
use protime_webhooks::records::{Event, PutOutcome, RecordStore, Source, StoreError, StoredHeads};
use protime_webhooks::sync::kept::{KeepError, PageKeep};
use protime_webhooks::sync::state::{SeenSlot, SyncState, SyncStateError, SyncStateStore};
use protime_webhooks::sync::sweep::{LivePage, LiveRead, LiveRecord, LiveRecords, SeenIds};
use protime_webhooks::sync::{Budget, Syncer};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COLLECTIONS: [&str; 4] = ["clockings", "breaks", "absences", "paid-presences"];

/// Builds each record's item (the table store's work before the request) and drops it.
#[derive(Default)]
struct Sink(AtomicU64);

impl RecordStore for Sink {
    async fn put(&self, collection: Collection, event: &Event, source: Source) -> Result<PutOutcome, StoreError> {
        let item = record_item(collection, event, source, "2026-12-02T00:00:00Z");
        self.0.fetch_add(item.len() as u64, Ordering::Relaxed);
        Ok(PutOutcome::Stored)
    }
}

/// Reads no heads: every record is written, as on a first load.
impl StoredHeads for Sink {}

/// Remembers nothing set aside (nothing is).
impl protime_webhooks::records::set_aside::SetAsideMarks for Sink {}

/// Holds no records, so a sweep finds none.
impl LiveRecords for Sink {
    async fn live_page(
        &self,
        _: &LiveRead,
        _: Option<HashMap<String, AttributeValue>>,
    ) -> Result<LivePage, StoreError> {
        Ok((Vec::new(), None))
    }

    async fn tombstone(&self, _: Collection, _: &LiveRecord) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// The sync state (and the ids a pass saw) in memory; every lease is granted.
#[derive(Default)]
struct States(Mutex<HashMap<Collection, SyncState>>, Mutex<HashMap<(Collection, u32), SeenIds>>);

impl SyncStateStore for States {
    async fn acquire(
        &self,
        collection: Collection,
        _: &str,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Option<SyncState>, SyncStateError> {
        Ok(Some(self.0.lock().unwrap().get(&collection).cloned().unwrap_or_default()))
    }

    async fn checkpoint(&self, collection: Collection, state: &SyncState, _: &str) -> Result<(), SyncStateError> {
        self.0.lock().unwrap().insert(collection, state.clone());
        Ok(())
    }

    async fn save_seen(
        &self,
        collection: Collection,
        _: SeenSlot,
        n: u32,
        ids: &SeenIds,
    ) -> Result<(), SyncStateError> {
        self.1.lock().unwrap().insert((collection, n), ids.clone());
        Ok(())
    }

    async fn load_seen(&self, collection: Collection, _: SeenSlot, chunks: u32) -> Result<SeenIds, SyncStateError> {
        let saved = self.1.lock().unwrap();
        let mut seen = SeenIds::default();
        for n in 0..chunks {
            seen.union_with(saved.get(&(collection, n)).cloned().unwrap_or_default());
        }
        Ok(seen)
    }

    async fn discard_seen(&self, collection: Collection, _: SeenSlot, chunks: u32) -> Result<(), SyncStateError> {
        let mut saved = self.1.lock().unwrap();
        for n in 0..chunks {
            saved.remove(&(collection, n));
        }
        Ok(())
    }
}

/// Kept pages in memory (the page's own buffer, shared: no copy), nothing quarantined.
#[derive(Default)]
struct Pages(Mutex<HashMap<String, bytes::Bytes>>);

impl Quarantine for Pages {
    async fn keep(&self, _: Collection, _: &[u8], note: Note<'_>) -> Result<String, QuarantineError> {
        Err(QuarantineError::Unavailable(format!("nothing should be quarantined ({})", note.reason)))
    }
}

impl PageKeep for Pages {
    async fn put_page(&self, collection: Collection, body: bytes::Bytes) -> Result<String, KeepError> {
        let key = format!("pages/{collection}/{}", rand::random::<u64>());
        self.0.lock().unwrap().insert(key.clone(), body);
        Ok(key)
    }

    async fn get_page(&self, key: &str) -> Result<bytes::Bytes, KeepError> {
        self.0.lock().unwrap().get(key).cloned().ok_or_else(|| KeepError::Missing(key.into()))
    }

    async fn discard_page(&self, key: &str) -> Result<(), KeepError> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
}

/// The simulator's fixed credentials; notes the largest page fetched.
struct Simulator {
    base: String,
    largest_page: Arc<AtomicUsize>,
}

struct Measured(ProtimeClient, Arc<AtomicUsize>);

impl Connect for Simulator {
    type Api = Measured;

    async fn connect(&self) -> Result<Measured, ConnectError> {
        let credentials = ProtimeCredentials::new("sim", "", "sim-client", "sim-client-secret");
        let scopes = COLLECTIONS.iter().map(|c| format!("connector-protimeapi-{c}.read")).collect();
        let mut options = ClientOptions::new(scopes, "Bench");
        options.api_base_url = Some(format!("{}{}", self.base, harness::simulator::API_PREFIX));
        options.token_url = Some(format!("{}/tenants/sim/connect/token", self.base));
        options.request_timeout = Duration::from_secs(300);
        let client = ProtimeClient::new(credentials, options).expect("a client");
        Ok(Measured(client, self.largest_page.clone()))
    }
}

impl WebhookApi for Measured {
    async fn list_webhooks(&self) -> Result<Vec<Webhook>, ProtimeError> {
        unreachable!("the syncer lists no webhooks")
    }

    async fn create_webhook(&self, _: &str, _: Collection, _: &str) -> Result<CreatedWebhook, ProtimeError> {
        unreachable!("the syncer creates no webhooks")
    }

    async fn delete_webhook(&self, _: &str) -> Result<(), ProtimeError> {
        unreachable!("the syncer deletes no webhooks")
    }
}

impl RecordPages for Measured {
    fn list_url(&self, collection: Collection, filter: Option<&str>, delta: bool, references: &str) -> String {
        self.0.list_url_with_references(collection.as_str(), filter, delta, references)
    }

    async fn fetch_page(&self, link: &str) -> Result<Page, ProtimeError> {
        let page = self.0.fetch_page(link).await?;
        self.1.fetch_max(page.body.len(), Ordering::Relaxed);
        Ok(page)
    }
}

/// A `kB` field of `/proc/self/status` (`VmHWM`: the peak resident set since the last reset;
/// `VmRSS`: the current one); 0 if it cannot be read.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets the peak to the current resident set (Linux: `5` to `clear_refs`).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One scheduled run with no deadline.
async fn run(syncer: &Syncer<Simulator, Arc<Sink>, States, Pages>) -> protime_webhooks::sync::SyncReport {
    let budget = Budget::new(Utc::now(), None, Duration::ZERO);
    syncer.run(&Default::default(), budget).await.expect("a run")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![50_000, 100_000, 200_000] } else { sizes };
    let exe = std::env::current_exe().expect("own path");
    let simulator_bin = exe.parent().and_then(|d| d.parent()).expect("target dir").join("protime-simulator");
    let port = harness::free_port();
    let _simulator = Killed(
        Command::new(&simulator_bin)
            .args(["--port", &port.to_string(), "--page-size", "1000", "--no-empty-pages"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (build it: see the usage)", simulator_bin.display())),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{base}/_simulator/webhooks")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let seed = |collection: &str, count: usize| {
        let url = format!("{base}/_simulator/seed/{collection}?count={count}");
        let http = http.clone();
        async move { http.post(url).send().await.expect("seed").error_for_status().expect("seeded") }
    };
    for collection in COLLECTIONS {
        seed(collection, 500).await;
    }
    let vars = [
        ("TABLE_NAME", "bench"),
        ("PROTIME_CREDENTIALS_SECRET", "unused"),
        ("COLLECTIONS", &COLLECTIONS.join(",")),
        ("SYNC_CONCURRENCY", "4"),
    ];
    let config =
        SyncerConfig::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).expect("config");
    let largest_page = Arc::new(AtomicUsize::new(0));
    let protime = Simulator { base: base.clone(), largest_page: largest_page.clone() };
    let sink = Arc::new(Sink::default());
    let syncer = Syncer::new(config, protime, sink, States::default(), Some(Pages::default()));
    let report = run(&syncer).await;
    assert!(report.healthy, "initial load: {report:?}");
    println!("four collections loaded (500 records each); then one deltaLink answer of N changes, four collections in flight");
    println!(
        "{:>9} {:>10} {:>9} {:>11} {:>13} {:>14}",
        "changes", "page MB", "time s", "RSS MB", "peak RSS MB", "growth/page"
    );
    for n in sizes {
        seed("clockings", n).await;
        for collection in &COLLECTIONS[1..] {
            seed(collection, 50).await;
        }
        largest_page.store(0, Ordering::Relaxed);
        let before = status_kb("VmRSS");
        reset_peak();
        let started = Instant::now();
        let report = run(&syncer).await;
        let elapsed = started.elapsed();
        let peak = status_kb("VmHWM");
        assert!(report.healthy, "{report:?}");
        let fetched = report.collections.iter().find(|c| c.collection == "clockings").unwrap().records.fetched;
        assert_eq!(fetched, n as u64, "the whole page applied");
        let page = largest_page.load(Ordering::Relaxed) as f64 / 1e6;
        let growth = (peak.saturating_sub(before)) as f64 / 1e3;
        println!(
            "{n:>9} {page:>10.1} {:>9.1} {:>11.1} {:>13.1} {:>13.2}x",
            elapsed.as_secs_f64(),
            before as f64 / 1e3,
            peak as f64 / 1e3,
            growth / page
        );
    }
}
