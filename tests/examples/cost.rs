//! `make bench-cost`: what a default deployment does, counted from the real functions (the
//! renewer's and the syncer's runs, the receiver behind HTTP) against moto and the Protime
//! simulator, every AWS call recorded by a proxy, every log line captured, every metric
//! document built as the functions build it; then priced with `scripts/prices.json`.
//!
//! Two measurements: an idle hour of a stack subscribed to all 18 collections (one renewer run,
//! four syncer runs, nothing changing in Protime), and EVENTS clockings delivered one by one to
//! the receiver. Usage: cargo run --release -p integration-tests --example cost -- [EVENTS]
//! (default 500). The report is written to stderr (stdout has the functions' EMF lines).
//! Durations are moto's (one request at a time), an upper bound of Lambda's.

use harness::simulator::SimulatorConfig;
use harness::{Call, Captured, FaultProxy, Stack};
use protime_webhooks::observability::metrics::{MetricDoc, Metrics};
use protime_webhooks::Collection;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

const HOURS_A_MONTH: f64 = 730.0;
/// The renewer's and the syncer's memory (template.yaml), in GB.
const MEMORY_GB: f64 = 0.25;

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

/// Write units of writing `item` (a wire-format map): its KBs in the table and in each read
/// index it has the keys of (both project every attribute).
fn item_write_units(item: &Value) -> u64 {
    let Some(attributes) = item.as_object() else { return 1 };
    let bytes: usize = attributes.iter().map(|(k, v)| k.len() + wire_size(v)).sum();
    let units = bytes.div_ceil(1024).max(1) as u64;
    let indexes = ["byDatePartition", "byPersonPartition"].iter().filter(|k| attributes.contains_key(**k)).count();
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
    fn of(calls: &[Call]) -> Calls {
        let mut counted = Calls::default();
        for call in calls {
            let operation = call.operation.rsplit('.').next().unwrap_or(&call.operation).to_owned();
            let service = call.operation.split(['_', '.', ' ']).next().unwrap_or("").to_lowercase();
            *counted.by_operation.entry(format!("{service} {operation}")).or_default() += 1;
            let body: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
            counted.write_units += match operation.as_str() {
                "PutItem" => item_write_units(&body["Item"]),
                "UpdateItem" | "DeleteItem" => 1,
                "BatchWriteItem" => body["RequestItems"]
                    .as_object()
                    .into_iter()
                    .flat_map(|tables| tables.values())
                    .flat_map(|requests| requests.as_array().cloned().unwrap_or_default())
                    .map(|r| if r["PutRequest"].is_object() { item_write_units(&r["PutRequest"]["Item"]) } else { 1 })
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
    proxy.take_calls();
    logs.take();

    idle_hour(&stack, &proxy, &logs, &prices).await;
    per_event(&stack, &proxy, &logs, &prices, events).await;
}

/// One renewer run and four syncer runs, nothing changing in Protime.
async fn idle_hour(stack: &Stack, proxy: &FaultProxy, logs: &LogBytes, prices: &Prices) {
    let (default, detailed) = (Metrics::new("ProtimeWebhooks"), Metrics::detailed("ProtimeWebhooks"));
    let (mut docs, mut all_docs) = (Vec::new(), Vec::new());
    stack.simulator.advance(chrono::Duration::hours(1));
    let started = Instant::now();
    let report = stack.renew().await;
    let renewer_seconds = started.elapsed().as_secs_f64();
    docs.extend(protime_webhooks::renewer::run_metrics(&default, Some(&report)));
    all_docs.extend(protime_webhooks::renewer::run_metrics(&detailed, Some(&report)));
    let mut syncer_seconds = 0.0;
    for _ in 0..4 {
        stack.simulator.advance(chrono::Duration::minutes(15));
        let started = Instant::now();
        let report = stack.sync(&[]).await;
        syncer_seconds += started.elapsed().as_secs_f64() / 4.0;
        docs.extend(protime_webhooks::sync::sync_metrics(&default, &report));
        all_docs.extend(protime_webhooks::sync::sync_metrics(&detailed, &report));
    }
    let calls = Calls::of(&proxy.take_calls());
    let (lines, log_bytes) = logs.take();
    let (metrics, emf_bytes) = metrics_of(&docs);
    let (detailed_metrics, _) = metrics_of(&all_docs);
    let secrets = 2.0;
    let alarms = template_count("Type: AWS::CloudWatch::Alarm");
    let invocations = 5.0 * HOURS_A_MONTH;
    let gb_seconds = (renewer_seconds + 4.0 * syncer_seconds) * MEMORY_GB * HOURS_A_MONTH;
    let ingested_gb = (log_bytes + emf_bytes) as f64 * HOURS_A_MONTH / 1e9;
    eprintln!("## An idle month (18 collections, nothing changing)\n");
    eprintln!("Measured over one idle hour: a renewer run ({renewer_seconds:.2} s) and four syncer runs ({syncer_seconds:.2} s each, against moto).\n");
    eprintln!("| item | per month | cost |\n| --- | --- | --- |");
    let mut total = 0.0;
    let metric_list: Vec<&str> = metrics.iter().map(String::as_str).collect();
    row(
        &mut total,
        "custom metrics (default)",
        format!("{}: {}", metrics.len(), metric_list.join("; ")),
        metrics.len() as f64 * prices.of("custom_metric_month"),
    );
    let detailed_cost = (detailed_metrics.len() - metrics.len()) as f64 * prices.of("custom_metric_month");
    row(&mut total, "secrets", format!("{secrets}"), secrets * prices.of("secret_month"));
    row(&mut total, "alarms", format!("{alarms}"), alarms * prices.of("alarm_month"));
    row(&mut total, "dashboard", "1 (the first 3 of an account are free)".into(), 0.0);
    row(&mut total, "Lambda requests", format!("{invocations:.0}"), invocations * prices.of("lambda_request"));
    row(
        &mut total,
        "Lambda duration (arm64, 256 MB; moto's time, an upper bound)",
        format!("{gb_seconds:.0} GB-s"),
        gb_seconds * prices.of("lambda_arm_gb_second"),
    );
    let units = |n: u64| n as f64 * HOURS_A_MONTH;
    row(
        &mut total,
        "DynamoDB write units",
        format!("{:.0}", units(calls.write_units)),
        units(calls.write_units) * prices.of("dynamodb_write_unit"),
    );
    row(
        &mut total,
        "DynamoDB read units",
        format!("{:.0}", units(calls.read_units)),
        units(calls.read_units) * prices.of("dynamodb_read_unit"),
    );
    let secret_calls = units(calls.count("secretsmanager"));
    row(
        &mut total,
        "Secrets Manager calls",
        format!("{secret_calls:.0}"),
        secret_calls * prices.of("secrets_manager_call"),
    );
    row(
        &mut total,
        "CloudWatch Logs ingested",
        format!("{:.1} MB ({lines} lines an hour, EMF included)", ingested_gb * 1e3),
        ingested_gb * prices.of("logs_ingested_gb"),
    );
    eprintln!("| **total** | | **${total:.2}** |");
    eprintln!("\n`DetailedMetrics=true` publishes {} metrics in such an hour instead: ${detailed_cost:.2} a month more than the {} above (more with events: one per collection, reason and outcome seen). AWS calls in the idle hour: {:?}\n", detailed_metrics.len(), metrics.len(), calls.by_operation);
}

/// EVENTS clockings changed in Protime and delivered one by one to the receiver.
async fn per_event(stack: &Stack, proxy: &FaultProxy, logs: &LogBytes, prices: &Prices, events: usize) {
    let started = Instant::now();
    for i in 0..events {
        let record = json!({"id": 100_000 + i, "date": "2026-12-01", "person": {"id": i % 50}, "timeOfDayInMinutes": 480, "kind": "InOut"});
        let delivery = stack.simulator.change("clockings", record).await;
        assert_eq!(delivery.statuses, [200], "event {i}");
    }
    let receiver_seconds = started.elapsed().as_secs_f64() / events as f64;
    let calls = Calls::of(&proxy.take_calls());
    let (lines, log_bytes) = logs.take();
    let stored = stored_event();
    let (_, emf_bytes) = metrics_of(&protime_webhooks::receiver::request_metrics(
        &Metrics::new("ProtimeWebhooks"),
        Some(Collection::Clockings),
        &Ok(stored),
    ));
    let n = events as f64;
    let million = 1e6 / n;
    let per = |x: f64| x * million;
    eprintln!("## A million events (clockings delivered one by one)\n");
    eprintln!("Measured over {events} events: {:.1} ms each at the receiver (against moto), {:.2} log lines and {:.0} log bytes each, {emf_bytes} EMF bytes each; AWS calls {:?}.\n", receiver_seconds * 1e3, lines as f64 / n, log_bytes as f64 / n, calls.by_operation);
    eprintln!("| item | per million events | cost |\n| --- | --- | --- |");
    let mut total = 0.0;
    row(&mut total, "API Gateway (HTTP API) requests", "1,000,000".into(), 1e6 * prices.of("http_api_request"));
    row(
        &mut total,
        "Lambda requests (receiver; the publisher's batches of up to 100)",
        "1,010,000".into(),
        1.01e6 * prices.of("lambda_request"),
    );
    let gb_seconds = 1e6 * receiver_seconds * MEMORY_GB;
    row(
        &mut total,
        "Lambda duration (receiver, arm64, 256 MB; moto's time, an upper bound)",
        format!("{gb_seconds:.0} GB-s"),
        gb_seconds * prices.of("lambda_arm_gb_second"),
    );
    let write_units = per(calls.write_units as f64);
    row(
        &mut total,
        "DynamoDB write units (item and both indexes, the last-event note)",
        format!("{write_units:.0}"),
        write_units * prices.of("dynamodb_write_unit"),
    );
    row(&mut total, "EventBridge events (one per change)", "1,000,000".into(), 1e6 * prices.of("eventbridge_event"));
    let secret_calls = per(calls.count("secretsmanager") as f64);
    row(
        &mut total,
        "Secrets Manager calls",
        format!("{secret_calls:.0}"),
        secret_calls * prices.of("secrets_manager_call"),
    );
    let access = access_log_bytes();
    let ingested_gb = per((log_bytes + (emf_bytes + access) * events) as f64) / 1e9;
    let logs = format!("{ingested_gb:.2} GB (function lines and EMF, and {access} bytes of API access log, per event)");
    row(&mut total, "CloudWatch Logs ingested", logs, ingested_gb * prices.of("logs_ingested_gb"));
    eprintln!("| **total** | | **${total:.2}** |\n");
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
