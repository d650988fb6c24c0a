//! The Protime simulator as a process, for the local stack.
//!
//! Usage: protime-simulator [--port N] [--emit-every SECONDS] [--delivery-backoff-ms MS]
//!                          [--seed N] [--page-size P] [--no-empty-pages]
//!
//! - `--seed N`: insert N plausible records into each of the 18 collections at start-up
//!   (quietly: in lists and deltas, never delivered);
//! - `--page-size P`: records per list page (default 100);
//! - `--no-empty-pages`: no empty page between data pages (by default there is one, as Protime
//!   may send: an empty page is not the end of a list).
//!
//! Client credentials: tenant `sim`, client id `sim-client`, secret `sim-client-secret`.
//! Besides Protime's API it serves `POST /_simulator/advance?hours=N` (move its clock),
//! `POST /_simulator/changes/<collection>` (change a record and deliver the event),
//! `POST /_simulator/seed/<collection>?count=N` (insert N records quietly → `{"seeded":N}`),
//! `POST /_simulator/drop-deliveries?count=N` (the next N deliveries silently fail) and
//! `GET /_simulator/webhooks` (the webhooks and their status, never their keys).
//!
//! A failed delivery is retried twice, after `MS` and `2 × MS` (default 2000): like Protime's,
//! the retries span longer than the receiver's key-reload interval, so an event signed with a
//! key issued seconds ago is not refused three times and its webhook Disabled.

use harness::simulator::{sample_record, Simulator, SimulatorConfig};
use protime_webhooks::Collection;
use rand::Rng;
use serde_json::json;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The value after `name`, parsed; `default` if the flag is absent. Exits on a bad value.
fn arg<T: FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    let Some(i) = args.iter().position(|a| a == name) else { return default };
    match args.get(i + 1).and_then(|v| v.parse().ok()) {
        Some(value) => value,
        None => {
            eprintln!("protime-simulator: {name} needs a whole number");
            std::process::exit(2);
        }
    }
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

#[tokio::main]
async fn main() {
    let port: u16 = arg("--port", 0);
    let emit_every: u64 = arg("--emit-every", 0);
    let backoff_ms: u64 = arg("--delivery-backoff-ms", 2000);
    let seed: usize = arg("--seed", 0);
    let page_size: usize = arg("--page-size", 100);
    let config = SimulatorConfig {
        delivery_backoff: Duration::from_millis(backoff_ms),
        page_size: page_size.max(1),
        empty_pages: !flag("--no-empty-pages"),
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start_on(config, port).await;
    if seed > 0 {
        let started = Instant::now();
        for collection in Collection::ALL {
            sim.seed(collection.as_str(), seed);
        }
        println!(
            "seeded {seed} records into each of {} collections in {:.1?}",
            Collection::ALL.len(),
            started.elapsed()
        );
    }
    println!("protime-simulator listening on {}", sim.base_url());

    if emit_every == 0 {
        std::future::pending::<()>().await;
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(emit_every));
    loop {
        ticker.tick().await;
        let enabled: Vec<String> =
            sim.webhooks().into_iter().filter(|w| w.enabled && !w.deleted).map(|w| w.collection).collect();
        if enabled.is_empty() {
            continue;
        }
        let collection = enabled[rand::rng().random_range(0..enabled.len())].clone();
        let date = sim.now().format("%Y-%m-%d").to_string();
        let id = json!(rand::rng().random_range(1..=50));
        let delivery = sim.change(&collection, sample_record(&collection, id, &date)).await;
        println!(
            "emitted a {collection} change: delivered {} failed {} dropped {} (statuses {:?})",
            delivery.delivered, delivery.failed, delivery.dropped, delivery.statuses
        );
    }
}
