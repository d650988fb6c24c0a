//! Runs on an EventBridge schedule and keeps every subscription alive. The invocation's work is
//! `protime_webhooks::renewer::handler`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use protime_webhooks::aws::sdk_config;
use protime_webhooks::config::RenewerConfig;
use protime_webhooks::renewer::AwsRenewer;

fn main() -> Result<(), Error> {
    // SAFETY: the only thing main does; no other thread exists before it starts the runtime.
    unsafe { protime_webhooks::invocation::startup::run(serve()) }
}

async fn serve() -> Result<(), Error> {
    let mut config = RenewerConfig::from_env()?;
    let sdk = sdk_config().await;
    config.signing_keys.load_hash_key(&sdk, &mut config.data).await?;
    let renewer = AwsRenewer::from_config(config, &sdk);
    let renewer = &renewer;
    run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| async move {
        tracing::info!(detail_type = ?event.payload.detail_type, time = ?event.payload.time, "scheduled run");
        renewer.handle(event.context.deadline()).await
    }))
    .await
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
