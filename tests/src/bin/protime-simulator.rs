//! The Protime simulator as a process, for the local stack.
//!
//! Usage: protime-simulator [--port N] [--emit-every SECONDS] [--delivery-backoff-ms MS]
//!
//! Client credentials: tenant `sim`, client id `sim-client`, secret `sim-client-secret`.
//! Besides Protime's API it serves `POST /_simulator/advance?hours=N` (move its clock),
//! `POST /_simulator/changes/<collection>` (change a record and deliver the event) and
//! `GET /_simulator/webhooks` (the webhooks and their status, never their keys).
//!
//! A failed delivery is retried twice, after `MS` and `2 × MS` (default 2000): like Protime's,
//! the retries span longer than the receiver's key-reload interval, so an event signed with a
//! key issued seconds ago is not refused three times and its webhook Disabled.

use harness::simulator::{Simulator, SimulatorConfig};
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// A plausible record for a collection, dated today on the simulator's clock.
fn record(collection: &str, date: &str) -> Value {
    let mut rng = rand::rng();
    let id = rng.random_range(1..=50);
    let person = json!({"id": rng.random_range(100..110)});
    match collection {
        "clockings" => {
            json!({"id": id, "person": person, "date": date, "timeOfDayInMinutes": rng.random_range(360..1200),
                              "kind": "InOut", "terminal": {"id": 1}})
        }
        "access-clockings" => {
            json!({"id": id, "person": person, "date": date, "timeOfDayInMinutes": rng.random_range(0..1440),
                                     "terminal": {"id": 2}, "status": "AccessOk"})
        }
        "paid-presences" => {
            json!({"id": id, "person": person, "date": date, "durationInMinutes": rng.random_range(240..600),
                                   "shiftDefinition": {"id": 3}})
        }
        "breaks" => json!({"id": id, "person": person, "breakDefinition": {"id": 1}, "date": date,
                           "calculatedDurationInMinutes": 30, "clockedDurationInMinutes": rng.random_range(20..40),
                           "startTimeInMinutes": 720, "endTimeInMinutes": 750, "isBreakTaken": true}),
        "people" => json!({"id": id, "firstName": "Sam", "lastName": format!("Example {id}")}),
        _ => json!({"id": id, "date": date}),
    }
}

#[tokio::main]
async fn main() {
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let emit_every: Option<u64> = arg("--emit-every").and_then(|s| s.parse().ok()).filter(|s| *s > 0);
    let backoff_ms: u64 = arg("--delivery-backoff-ms").and_then(|s| s.parse().ok()).unwrap_or(2000);
    let config = SimulatorConfig { delivery_backoff: Duration::from_millis(backoff_ms), ..SimulatorConfig::default() };
    let sim = Simulator::start_on(config, port).await;
    println!("protime-simulator listening on {}", sim.base_url());

    let Some(every) = emit_every else {
        std::future::pending::<()>().await;
        return;
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(every));
    loop {
        ticker.tick().await;
        let enabled: Vec<String> =
            sim.webhooks().into_iter().filter(|w| w.enabled && !w.deleted).map(|w| w.collection).collect();
        if enabled.is_empty() {
            continue;
        }
        let collection = enabled[rand::rng().random_range(0..enabled.len())].clone();
        let date = sim.now().format("%Y-%m-%d").to_string();
        let delivery = sim.change(&collection, record(&collection, &date)).await;
        println!(
            "emitted a {collection} change: delivered {} failed {} (statuses {:?})",
            delivery.delivered, delivery.failed, delivery.statuses
        );
    }
}
