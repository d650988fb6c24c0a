//! Runs on the table's stream and puts one EventBridge event per effective record change.

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use protime_webhooks::aws::sdk_config;
use protime_webhooks::config::PublisherConfig;
use protime_webhooks::publisher::{publish_metrics, publish_until, AwsPublisher};

async fn handle(publisher: &AwsPublisher, event: LambdaEvent<Event>) -> Result<DynamoDbEventResponse, Error> {
    let (response, report) = publisher.handle(&event.payload, publish_until(event.context.deadline())).await;
    publish_metrics(&publisher.config.metrics, &report).emit();
    tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), "stream batch published");
    // Never an error: a change that could not be published is a batch item failure, so the
    // stream resumes from it (ReportBatchItemFailures) instead of retrying the whole batch.
    Ok(response)
}

fn main() -> Result<(), Error> {
    // SAFETY: the only thing main does; no other thread exists before it starts the runtime.
    unsafe { protime_webhooks::invocation::startup::run(serve()) }
}

async fn serve() -> Result<(), Error> {
    let config = PublisherConfig::from_env()?;
    let publisher = AwsPublisher::from_config(config, &sdk_config().await);
    let publisher = &publisher;
    run(service_fn(move |event| handle(publisher, event))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_stream_event_is_what_the_handler_takes() {
        let text = include_str!("../../../events/stream.json");
        let event: Event = serde_json::from_str(text).expect("events/stream.json parses");
        assert_eq!(event.records.len(), 2);
        assert_eq!(event.records[0].event_name, "INSERT");
    }
}
