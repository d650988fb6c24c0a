//! Runs on an EventBridge schedule and keeps every subscription alive.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use protime_webhooks::aws::sdk_config;
use protime_webhooks::config::RenewerConfig;
use protime_webhooks::renewer::{run_metrics, AwsRenewer, RunError, RunReport};

async fn handle(renewer: &AwsRenewer, event: LambdaEvent<EventBridgeEvent>) -> Result<RunReport, RunError> {
    tracing::info!(detail_type = ?event.payload.detail_type, time = ?event.payload.time, "scheduled run");
    let result = renewer.run(chrono::Utc::now()).await;
    for doc in run_metrics(&renewer.config.metrics_namespace, result.as_ref().ok()) {
        doc.emit();
    }
    let report = result?;
    tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), healthy = report.healthy, "run finished");
    if !report.healthy {
        // A failed invocation is what the alarms and the schedule's retry policy watch.
        return Err(RunError::Unhealthy(report.unhealthy().into_iter().map(str::to_owned).collect()));
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
