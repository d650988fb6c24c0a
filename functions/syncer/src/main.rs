//! Runs on its own EventBridge schedule and keeps the table a complete copy of Protime: an
//! initial load through delta, then each collection's deltaLink followed every run.
//!
//! A scheduled event is a normal run. `{"collections":["clockings"],"reinitialize":true,
//! "from":"2024-01-01"}` restarts those collections' initial load (a manual backfill). The
//! answer is the run's report; the invocation fails only when a collection is in error, and
//! then its `errorMessage` is the report (as JSON).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use protime_webhooks::aws::sdk_config;
use protime_webhooks::config::SyncerConfig;
use protime_webhooks::invocation::time_left;
use protime_webhooks::sync::sync_metrics;
use protime_webhooks::sync::{AwsSyncer, Budget, SyncReport, SyncRequest, SyncRunError};

/// The payload as a request (a scheduled event is a normal run).
fn request(payload: serde_json::Value) -> Result<SyncRequest, SyncRunError> {
    SyncRequest::from_payload(payload)
}

/// Errors are [`SyncRunError`], so Lambda reports their stable `errorType` (alarms and the CLI
/// read it), never a Rust type name.
async fn handle(syncer: &AwsSyncer, event: LambdaEvent<serde_json::Value>) -> Result<SyncReport, SyncRunError> {
    let request = request(event.payload)?;
    let left = time_left(event.context.deadline());
    let budget = Budget::new(chrono::Utc::now(), left, syncer.config.deadline_margin);
    tracing::info!(
        time_left_ms = left.map(|d| d.as_millis() as u64),
        collections = ?request.collections,
        reinitialize = request.reinitialize,
        from = ?request.from,
        "sync run"
    );
    let report = syncer.run(&request, budget).await?;
    for doc in sync_metrics(&syncer.config.metrics_namespace, &report) {
        doc.emit();
    }
    tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), healthy = report.healthy, "run finished");
    if !report.healthy {
        // A failed invocation is what the alarms and the schedule's retry policy watch; its
        // errorMessage is the report.
        return Err(SyncRunError::Failing(Box::new(report)));
    }
    Ok(report)
}

fn main() -> Result<(), Error> {
    // SAFETY: the only thing main does; no other thread exists before it starts the runtime.
    unsafe { protime_webhooks::startup::run(serve()) }
}

async fn serve() -> Result<(), Error> {
    let config = SyncerConfig::from_env()?;
    let syncer = AwsSyncer::from_config(config, &sdk_config().await);
    let syncer = &syncer;
    run(service_fn(move |event| handle(syncer, event))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_events_are_requests() {
        let scheduled = request(serde_json::from_str(include_str!("../../../events/scheduled.json")).unwrap()).unwrap();
        assert_eq!(scheduled, SyncRequest::default());
        let backfill = request(serde_json::from_str(include_str!("../../../events/backfill.json")).unwrap()).unwrap();
        assert!(backfill.reinitialize && backfill.collections.is_some());
        assert!(request(serde_json::json!({"collections": 5})).is_err());
        assert!(request(serde_json::json!({"collection": ["clockings"], "reinitialize": true})).is_err());
    }
}
