//! Runs on an EventBridge schedule and keeps every subscription alive.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use protime_webhooks::aws::sdk_config;
use protime_webhooks::config::RenewerConfig;
use protime_webhooks::invocation::time_left;
use protime_webhooks::renewer::{run_metrics, AwsRenewer, RunError, RunReport};
use protime_webhooks::sync::Budget;

/// Time kept free after a delta round for the rest of the run (the renewal's POST, the key, the
/// state, the strays), each call bounded by its client's timeouts.
const DELTA_ROUND_MARGIN: std::time::Duration = std::time::Duration::from_secs(120);

async fn handle(renewer: &AwsRenewer, event: LambdaEvent<EventBridgeEvent>) -> Result<RunReport, RunError> {
    tracing::info!(detail_type = ?event.payload.detail_type, time = ?event.payload.time, "scheduled run");
    // A recovery's delta round never starts a page it could not finish before the deadline.
    let left = time_left(event.context.deadline());
    let result = renewer.run_within(Budget::new(chrono::Utc::now(), left, DELTA_ROUND_MARGIN)).await;
    for doc in run_metrics(&renewer.config.metrics_namespace, result.as_ref().ok()) {
        doc.emit();
    }
    let report = result?;
    tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), healthy = report.healthy, "run finished");
    if !report.healthy {
        // A failed invocation is what the alarms and the schedule's retry policy watch; its
        // errorMessage is the report.
        return Err(RunError::Unhealthy(Box::new(report)));
    }
    Ok(report)
}

fn main() -> Result<(), Error> {
    // SAFETY: the only thing main does; no other thread exists before it starts the runtime.
    unsafe { protime_webhooks::startup::run(serve()) }
}

async fn serve() -> Result<(), Error> {
    let config = RenewerConfig::from_env()?;
    let renewer = AwsRenewer::from_config(config, &sdk_config().await);
    let renewer = &renewer;
    run(service_fn(move |event| handle(renewer, event))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_scheduled_event_is_what_the_handler_takes() {
        let text = include_str!("../../../events/scheduled.json");
        let event: EventBridgeEvent = serde_json::from_str(text).expect("events/scheduled.json parses");
        assert_eq!(event.detail_type, "Scheduled Event");
        assert_eq!(event.source, "aws.events");
    }
}
