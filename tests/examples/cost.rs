//! `make bench-cost`: what a default deployment does, counted from the real functions (the
//! renewer's and the syncer's runs, the receiver behind HTTP) against moto and the Protime
//! simulator, every AWS call recorded by a proxy, every log line captured, every metric
//! document built as the functions build it; then priced with `scripts/prices.json`.
//!
//! Two measurements: an idle hour of a stack subscribed to all 18 collections (one renewer run,
//! four syncer runs, nothing changing in Protime), and EVENTS clockings delivered one by one to
//! the receiver, then published from the table's stream by the publisher. Each is priced for the
//! default deployment and for the cheapest useful one (`ReadIndexes=none`, `ChangeFeed=false`).
//! Usage: cargo run --release -p integration-tests --example cost -- [EVENTS] (default 500).
//! The report is written to stderr (stdout has the functions' EMF lines). Durations are moto's
//! (one request at a time), an upper bound of Lambda's.

use harness::feed::Feed;
use harness::simulator::SimulatorConfig;
use harness::{Call, Captured, FaultProxy, Stack};
use protime_webhooks::observability::metrics::{MetricDoc, Metrics};
use protime_webhooks::records::index::ReadIndexes;
use protime_webhooks::Collection;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

const HOURS_A_MONTH: f64 = 730.0;
/// The renewer's and the syncer's memory (template.yaml), in GB.
const MEMORY_GB: f64 = 0.25;
/// The publisher's memory (template.yaml), in GB.
const PUBLISHER_MEMORY_GB: f64 = 0.125;
/// The feed's alarms (template.yaml: `Condition: HasChangeFeed`).
const FEED_ALARMS: f64 = 3.0;

/// A deployment priced: which read indexes its table has, and whether it has the change feed.
#[derive(Clone, Copy)]
struct Deployment {
    name: &'static str,
    indexes: ReadIndexes,
    feed: bool,
}

const DEPLOYMENTS: [Deployment; 2] = [
    Deployment { name: "default (both read indexes, the change feed)", indexes: ReadIndexes::ALL, feed: true },
    Deployment {
        name: "cheapest useful (`ReadIndexes=none`, `ChangeFeed=false`)",
        indexes: ReadIndexes { by_date: false, by_person: false },
        feed: false,
    },
];

/// Bytes of log lines written through `tracing` (as the functions write them: JSON, INFO).
struct LogBytes(Captured);

impl LogBytes {
    fn install() -> LogBytes {
        let captured = Captured::default();
        let writer = captured.clone();
        let (filter, _) = protime_webhooks::observability::logging::log_filter(None, Some("info"));
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(filter).with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_target(false)
                .without_time()
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        LogBytes(captured)
    }

    /// (lines, bytes) since the last take.
    fn take(&self) -> (usize, usize) {
        let taken = self.0.take();
        (taken.iter().filter(|b| **b == b'\n').count(), taken.len())
    }
}

/// The size DynamoDB counts for an attribute value in the wire format (an upper bound).
fn wire_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else { return 0 };
    match kind.as_str() {
        "S" | "N" | "B" => inner.as_str().map_or(0, str::len),
        "BOOL" | "NULL" => 1,
        "M" => 3 + inner.as_object().map_or(0, |m| m.iter().map(|(k, v)| k.len() + wire_size(v)).sum()),
        "L" => 3 + inner.as_array().map_or(0, |l| l.iter().map(|v| 1 + wire_size(v)).sum()),
        _ => inner.as_array().map_or(0, |l| l.iter().map(|v| v.as_str().map_or(0, str::len)).sum()),
    }
}

/// The size DynamoDB counts for an item (a wire-format map).
fn item_bytes(item: &Value) -> usize {
    item.as_object().map_or(0, |attributes| attributes.iter().map(|(k, v)| k.len() + wire_size(v)).sum())
}

/// Write units of writing `item` (a wire-format map): its KBs in the table and in each read
/// index of the deployment it has the keys of (each projects every attribute).
fn item_write_units(item: &Value, deployed: ReadIndexes) -> u64 {
    let Some(attributes) = item.as_object() else { return 1 };
    let units = item_bytes(item).div_ceil(1024).max(1) as u64;
    let indexes = [(deployed.by_date, "byDatePartition"), (deployed.by_person, "byPersonPartition")]
        .iter()
        .filter(|(on, key)| *on && attributes.contains_key(*key))
        .count();
    units * (1 + indexes as u64)
}

/// What a set of recorded calls costs in DynamoDB write units, read units and API calls.
#[derive(Debug, Default)]
struct Calls {
    by_operation: BTreeMap<String, u64>,
    write_units: u64,
    read_units: u64,
}

impl Calls {
    fn of(calls: &[Call], indexes: ReadIndexes) -> Calls {
        let mut counted = Calls::default();
        for call in calls {
            let operation = call.operation.rsplit('.').next().unwrap_or(&call.operation).to_owned();
            let service = call.operation.split(['_', '.', ' ']).next().unwrap_or("").to_lowercase();
            *counted.by_operation.entry(format!("{service} {operation}")).or_default() += 1;
            let body: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
            counted.write_units += match operation.as_str() {
                "PutItem" => item_write_units(&body["Item"], indexes),
                "UpdateItem" | "DeleteItem" => 1,
                "BatchWriteItem" => body["RequestItems"]
                    .as_object()
                    .into_iter()
                    .flat_map(|tables| tables.values())
                    .flat_map(|requests| requests.as_array().cloned().unwrap_or_default())
                    .map(|r| {
                        if r["PutRequest"].is_object() {
                            item_write_units(&r["PutRequest"]["Item"], indexes)
                        } else {
                            1
                        }
                    })
                    .sum(),
                _ => 0,
            };
            counted.read_units += match operation.as_str() {
                "GetItem" | "Query" | "Scan" => 1,
                "BatchGetItem" => body["RequestItems"]
                    .as_object()
                    .into_iter()
                    .flat_map(|t| t.values())
                    .map(|t| t["Keys"].as_array().map_or(0, Vec::len) as u64)
                    .sum(),
                _ => 0,
            };
        }
        counted
    }

    fn count(&self, prefix: &str) -> u64 {
        self.by_operation.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, n)| n).sum()
    }
}

/// The distinct metrics (name and dimension values) `docs` publish, and their EMF bytes.
fn metrics_of(docs: &[MetricDoc]) -> (BTreeSet<String>, usize) {
    let mut metrics = BTreeSet::new();
    let mut bytes = 0;
    for doc in docs.iter().filter(|d| !d.is_empty()) {
        let line = doc.to_json(0);
        bytes += line.to_string().len() + 1;
        for (name, sets) in doc.published() {
            for set in sets {
                let values: Vec<String> =
                    set.iter().map(|d| format!("{d}={}", line[*d].as_str().unwrap_or(""))).collect();
                metrics.insert(format!("{name} [{}]", values.join(", ")));
            }
        }
    }
    (metrics, bytes)
}

struct Prices(Value);

impl Prices {
    fn load() -> Prices {
        let path = harness::workspace_root().join("scripts/prices.json");
        Prices(serde_json::from_str(&std::fs::read_to_string(path).expect("scripts/prices.json")).expect("JSON"))
    }
    fn of(&self, name: &str) -> f64 {
        self.0[name].as_f64().unwrap_or_else(|| panic!("no price {name}"))
    }
}

/// Prints a table's row and adds its cost to `total`.
fn row(total: &mut f64, item: &str, count: String, dollars: f64) {
    *total += dollars;
    eprintln!("| {item} | {count} | ${dollars:.2} |");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let prices = Prices::load();
    let logs = LogBytes::install();
    let moto = harness::Moto::start();
    let proxy = FaultProxy::start(moto.endpoint()).await;
    let all: Vec<&str> = Collection::ALL.iter().map(|c| c.as_str()).collect();
    let stack = Stack::start_behind(&proxy, &all, SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy, "subscriptions");
    assert!(stack.sync(&[]).await.healthy, "initial loads");
    let mut feed = FeedRun::start(&moto, &stack).await;
    feed.pump().await;
    proxy.take_calls();
    logs.take();

    let run = Run { stack: &stack, proxy: &proxy, logs: &logs, prices: &prices };
    run.idle_hour(&mut feed).await;
    run.per_event(&mut feed, events).await;
}

/// The table's stream handed to the real publisher, as Lambda's event source mapping does.
struct FeedRun {
    feed: Feed,
    publisher: protime_webhooks::publisher::Publisher<protime_webhooks::publisher::bus::EventBridgeBus>,
}

impl FeedRun {
    async fn start(moto: &harness::Moto, stack: &Stack) -> FeedRun {
        let feed = Feed::start(&moto.endpoint(), &stack.receiver.setup, &stack.receiver.table).await;
        let config = protime_webhooks::config::PublisherConfig {
            event_bus_name: feed.bus.clone(),
            publish_unchanged: false,
            metrics: Metrics::new("ProtimeWebhooks"),
        };
        let client = aws_sdk_eventbridge::Client::new(&stack.receiver.setup);
        let bus = protime_webhooks::publisher::bus::EventBridgeBus::new(client, &feed.bus);
        let publisher = protime_webhooks::publisher::Publisher { config, bus, retry: Default::default() };
        FeedRun { feed, publisher }
    }

    /// Publishes what the stream holds since the last pump: (invocations, seconds in the handler).
    async fn pump(&mut self) -> (usize, f64) {
        let before = self.feed.handling;
        let invocations = self.feed.pump(&self.publisher, 100).await.len();
        (invocations, (self.feed.handling - before).as_secs_f64())
    }
}

/// What a measurement shares: the stack, the recording proxy, the captured logs, the prices.
struct Run<'a> {
    stack: &'a Stack,
    proxy: &'a FaultProxy,
    logs: &'a LogBytes,
    prices: &'a Prices,
}

/// One idle hour, measured: what each deployment pays a month for it.
struct IdleHour {
    calls: Vec<Call>,
    metrics: BTreeSet<String>,
    detailed_metrics: usize,
    lines: usize,
    log_bytes: usize,
    emf_bytes: usize,
    /// Seconds of the renewer's run and the four syncer runs together.
    seconds: f64,
    /// The publisher's invocations and seconds (the state items' writes reach the stream too).
    publisher: (usize, f64),
}

impl Run<'_> {
    /// One renewer run and four syncer runs, nothing changing in Protime.
    async fn idle_hour(&self, feed: &mut FeedRun) {
        let (default, detailed) = (Metrics::new("ProtimeWebhooks"), Metrics::detailed("ProtimeWebhooks"));
        let (mut docs, mut all_docs) = (Vec::new(), Vec::new());
        self.stack.simulator.advance(chrono::Duration::hours(1));
        let started = Instant::now();
        let report = self.stack.renew().await;
        let mut seconds = started.elapsed().as_secs_f64();
        docs.extend(protime_webhooks::renewer::run_metrics(&default, Some(&report)));
        all_docs.extend(protime_webhooks::renewer::run_metrics(&detailed, Some(&report)));
        for _ in 0..4 {
            self.stack.simulator.advance(chrono::Duration::minutes(15));
            let started = Instant::now();
            let report = self.stack.sync(&[]).await;
            seconds += started.elapsed().as_secs_f64();
            docs.extend(protime_webhooks::sync::sync_metrics(&default, &report));
            all_docs.extend(protime_webhooks::sync::sync_metrics(&detailed, &report));
        }
        let publisher = feed.pump().await;
        let (lines, log_bytes) = self.logs.take();
        let (metrics, emf_bytes) = metrics_of(&docs);
        let detailed_metrics = metrics_of(&all_docs).0.len();
        let hour = IdleHour {
            calls: self.proxy.take_calls(),
            metrics,
            detailed_metrics,
            lines,
            log_bytes,
            emf_bytes,
            seconds,
            publisher,
        };
        eprintln!("## An idle month (18 collections, nothing changing)\n");
        eprintln!(
            "Measured over one idle hour: a renewer run and four syncer runs ({:.2} s together, against moto), and the publisher over their state items' stream records ({} invocations, {:.3} s).\n",
            hour.seconds, hour.publisher.0, hour.publisher.1
        );
        for deployment in DEPLOYMENTS {
            self.price_idle(&hour, deployment);
        }
        let extra = (hour.detailed_metrics - hour.metrics.len()) as f64 * self.prices.of("custom_metric_month");
        let calls = Calls::of(&hour.calls, ReadIndexes::ALL);
        eprintln!("`DetailedMetrics=true` publishes {} metrics in such an hour instead: ${extra:.2} a month more than the {} above (more with events: one per collection, reason and outcome seen). AWS calls in the idle hour: {:?}\n", hour.detailed_metrics, hour.metrics.len(), calls.by_operation);
    }

    fn price_idle(&self, hour: &IdleHour, deployment: Deployment) {
        let prices = self.prices;
        let calls = Calls::of(&hour.calls, deployment.indexes);
        eprintln!("### {}\n\n| item | per month | cost |\n| --- | --- | --- |", deployment.name);
        let mut total = 0.0;
        let metric_list: Vec<&str> = hour.metrics.iter().map(String::as_str).collect();
        let metrics = hour.metrics.len() as f64;
        let metrics_text = format!("{metrics}: {}", metric_list.join("; "));
        row(&mut total, "custom metrics", metrics_text, metrics * prices.of("custom_metric_month"));
        row(&mut total, "secrets", "2".into(), 2.0 * prices.of("secret_month"));
        let alarms = template_count("Type: AWS::CloudWatch::Alarm") - if deployment.feed { 0.0 } else { FEED_ALARMS };
        row(&mut total, "alarms", format!("{alarms}"), alarms * prices.of("alarm_month"));
        row(&mut total, "dashboard", "1 (the first 3 of an account are free)".into(), 0.0);
        let notices =
            "with AlarmEmail: an SNS topic (free) and an e-mail per alarm change (the first 1,000 a month free)";
        row(&mut total, "alarm notifications", notices.into(), 0.0);
        let publisher = if deployment.feed { hour.publisher } else { (0, 0.0) };
        let invocations = (5.0 + publisher.0 as f64) * HOURS_A_MONTH;
        row(&mut total, "Lambda requests", format!("{invocations:.0}"), invocations * prices.of("lambda_request"));
        let gb_seconds = (hour.seconds * MEMORY_GB + publisher.1 * PUBLISHER_MEMORY_GB) * HOURS_A_MONTH;
        let duration = "Lambda duration (arm64; moto's time, an upper bound)";
        row(&mut total, duration, format!("{gb_seconds:.0} GB-s"), gb_seconds * prices.of("lambda_arm_gb_second"));
        let units = |n: u64| n as f64 * HOURS_A_MONTH;
        let writes = units(calls.write_units);
        row(&mut total, "DynamoDB write units", format!("{writes:.0}"), writes * prices.of("dynamodb_write_unit"));
        let reads = units(calls.read_units);
        row(&mut total, "DynamoDB read units", format!("{reads:.0}"), reads * prices.of("dynamodb_read_unit"));
        let secret_calls = units(calls.count("secretsmanager"));
        let secrets = secret_calls * prices.of("secrets_manager_call");
        row(&mut total, "Secrets Manager calls", format!("{secret_calls:.0}"), secrets);
        let ingested_gb = (hour.log_bytes + hour.emf_bytes) as f64 * HOURS_A_MONTH / 1e9;
        let logs = format!("{:.1} MB ({} lines an hour, EMF included)", ingested_gb * 1e3, hour.lines);
        row(&mut total, "CloudWatch Logs ingested", logs, ingested_gb * prices.of("logs_ingested_gb"));
        eprintln!("| **total** | | **${total:.2}** |\n");
    }

    /// EVENTS clockings changed in Protime, delivered one by one to the receiver, then
    /// published from the table's stream.
    async fn per_event(&self, feed: &mut FeedRun, events: usize) {
        let started = Instant::now();
        for i in 0..events {
            let record = json!({"id": 100_000 + i, "date": "2026-12-01", "person": {"id": i % 50}, "timeOfDayInMinutes": 480, "kind": "InOut"});
            let delivery = self.stack.simulator.change("clockings", record).await;
            assert_eq!(delivery.statuses, [200], "event {i}");
        }
        let receiver_seconds = started.elapsed().as_secs_f64() / events as f64;
        let calls = self.proxy.take_calls();
        let publisher = feed.pump().await;
        // The receiver's lines and the publisher's (its summary per batch): the feed's are few.
        let (lines, log_bytes) = self.logs.take();
        let stored = stored_event();
        let (_, emf_bytes) = metrics_of(&protime_webhooks::receiver::request_metrics(
            &Metrics::new("ProtimeWebhooks"),
            Some(Collection::Clockings),
            &Ok(stored),
        ));
        let n = events as f64;
        let by_operation = Calls::of(&calls, ReadIndexes::ALL).by_operation;
        eprintln!("## A million events (clockings delivered one by one)\n");
        eprintln!("Measured over {events} events: {:.1} ms each at the receiver (against moto), {:.2} log lines and {:.0} log bytes each, {emf_bytes} EMF bytes each; the publisher in {} invocations, {:.2} ms an event; AWS calls {by_operation:?}.\n", receiver_seconds * 1e3, lines as f64 / n, log_bytes as f64 / n, publisher.0, publisher.1 * 1e3 / n);
        let event = PerEvent { events, calls, receiver_seconds, log_bytes, emf_bytes, publisher };
        for deployment in DEPLOYMENTS {
            self.price_events(&event, deployment);
        }
        let bytes: usize = harness::scan(&self.stack.receiver.setup, &self.stack.receiver.table)
            .await
            .iter()
            .map(|item| item.iter().map(|(k, v)| k.len() + attribute_bytes(v)).sum::<usize>())
            .sum();
        let scans_a_month = Collection::ALL.len() as f64 * HOURS_A_MONTH / 168.0;
        let per_gb = scans_a_month * 1e9 / 4096.0 * 0.5 * self.prices.of("dynamodb_read_unit");
        eprintln!("Without `byDate`, each collection's weekly reconciliation scans the whole table: {scans_a_month:.0} scans a month at half a read unit per 4 KB, ${per_gb:.2} a month per GB of table (this run's table: {:.1} MB).\n", bytes as f64 / 1e6);
    }

    fn price_events(&self, event: &PerEvent, deployment: Deployment) {
        let prices = self.prices;
        let calls = Calls::of(&event.calls, deployment.indexes);
        let million = 1e6 / event.events as f64;
        eprintln!("### {}\n\n| item | per million events | cost |\n| --- | --- | --- |", deployment.name);
        let mut total = 0.0;
        row(&mut total, "API Gateway (HTTP API) requests", "1,000,000".into(), 1e6 * prices.of("http_api_request"));
        let publisher = if deployment.feed { event.publisher } else { (0, 0.0) };
        let invocations = 1e6 + publisher.0 as f64 * million;
        let requests = "Lambda requests (the receiver; the publisher's batches)";
        row(&mut total, requests, format!("{invocations:.0}"), invocations * prices.of("lambda_request"));
        let gb_seconds = 1e6 * event.receiver_seconds * MEMORY_GB + publisher.1 * million * PUBLISHER_MEMORY_GB;
        let duration = "Lambda duration (arm64; moto's time, an upper bound)";
        row(&mut total, duration, format!("{gb_seconds:.0} GB-s"), gb_seconds * prices.of("lambda_arm_gb_second"));
        let write_units = calls.write_units as f64 * million;
        let writes = "DynamoDB write units (the item, its index entries, the last-event note)";
        row(&mut total, writes, format!("{write_units:.0}"), write_units * prices.of("dynamodb_write_unit"));
        if deployment.feed {
            let bus = "EventBridge events (one per change)";
            row(&mut total, bus, "1,000,000".into(), 1e6 * prices.of("eventbridge_event"));
        }
        let secret_calls = calls.count("secretsmanager") as f64 * million;
        let secrets = secret_calls * prices.of("secrets_manager_call");
        row(&mut total, "Secrets Manager calls", format!("{secret_calls:.0}"), secrets);
        let access = access_log_bytes();
        let bytes = event.log_bytes + (event.emf_bytes + access) * event.events;
        let ingested_gb = bytes as f64 * million / 1e9;
        let logs =
            format!("{ingested_gb:.2} GB (function lines and EMF, and {access} bytes of API access log, per event)");
        row(&mut total, "CloudWatch Logs ingested", logs, ingested_gb * prices.of("logs_ingested_gb"));
        eprintln!("| **total** | | **${total:.2}** |\n");
    }
}

/// EVENTS delivered, measured.
struct PerEvent {
    events: usize,
    calls: Vec<Call>,
    receiver_seconds: f64,
    log_bytes: usize,
    emf_bytes: usize,
    publisher: (usize, f64),
}

/// The size DynamoDB counts for an attribute value as the SDK holds it (an upper bound).
fn attribute_bytes(value: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match value {
        A::S(s) | A::N(s) => s.len(),
        A::B(b) => b.as_ref().len(),
        A::M(m) => 3 + m.iter().map(|(k, v)| k.len() + attribute_bytes(v)).sum::<usize>(),
        A::L(l) => 3 + l.iter().map(|v| 1 + attribute_bytes(v)).sum::<usize>(),
        A::Ss(l) | A::Ns(l) => l.iter().map(String::len).sum(),
        _ => 1,
    }
}

/// One stored event's outcome, for the metrics its request publishes.
fn stored_event() -> protime_webhooks::receiver::Received {
    protime_webhooks::receiver::Received {
        collection: Collection::Clockings,
        accepted: protime_webhooks::signing::keys::AcceptedKey::Current,
        outcomes: vec![protime_webhooks::receiver::ItemOutcome {
            id: Some("1".into()),
            change_version: Some("1".into()),
            change_type: Some(protime_webhooks::records::ChangeType::InsertOrUpdate),
            outcome: protime_webhooks::receiver::EventOutcome::Written(protime_webhooks::records::PutOutcome::Stored),
        }],
        whole_body_quarantined: false,
        store_ms: 1.0,
    }
}

/// The bytes of one API access log line: template.yaml's format with a webhook request's values.
fn access_log_bytes() -> usize {
    let template = std::fs::read_to_string(harness::workspace_root().join("template.yaml")).expect("template.yaml");
    let line = template
        .lines()
        .find(|l| l.trim_start().starts_with("Format: '{\"requestId\""))
        .expect("the access log format");
    let format = line.trim().trim_start_matches("Format: '").trim_end_matches('\'');
    let values = [
        ("$context.requestId", "AbCdEfGhIjKlMnO="),
        ("$context.identity.sourceIp", "203.0.113.7"),
        ("$context.requestTime", "07/Dec/2026:10:00:00 +0000"),
        ("$context.httpMethod", "POST"),
        ("$context.path", "/webhooks/clockings"),
        ("$context.status", "200"),
        ("$context.responseLength", "120"),
        ("$context.integrationLatency", "12"),
        ("$context.integrationErrorMessage", "-"),
    ];
    values.iter().fold(format.to_owned(), |line, (name, value)| line.replace(name, value)).len() + 1
}

fn template_count(needle: &str) -> f64 {
    let template = std::fs::read_to_string(harness::workspace_root().join("template.yaml")).expect("template.yaml");
    template.matches(needle).count() as f64
}
