//! Runs on its own EventBridge schedule and keeps the table a complete copy of Protime: an
//! initial load through delta, then each collection's deltaLink followed every run.
//!
//! A scheduled event is a normal run. `{"collections":["clockings"],"reinitialize":true,
//! "from":"2024-01-01"}` restarts those collections' initial load (a manual backfill). The
//! answer is the run's report; the invocation fails only when a collection is in error, and
//! then its `errorMessage` is the report (as JSON). The invocation's work is
//! `protime_webhooks::sync::handler`.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use protime_webhooks::aws::sdk_config;
use protime_webhooks::config::SyncerConfig;
use protime_webhooks::sync::AwsSyncer;

fn main() -> Result<(), Error> {
    // SAFETY: the only thing main does; no other thread exists before it starts the runtime.
    unsafe { protime_webhooks::invocation::startup::run(serve()) }
}

async fn serve() -> Result<(), Error> {
    let mut config = SyncerConfig::from_env()?;
    let sdk = sdk_config().await;
    config.signing_keys.load_hash_key(&sdk, &mut config.data).await?;
    let syncer = AwsSyncer::from_config(config, &sdk);
    let syncer = &syncer;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        syncer.handle(event.payload, event.context.deadline()).await
    }))
    .await
}

#[cfg(test)]
mod tests {
    use protime_webhooks::sync::SyncRequest;

    fn request(payload: serde_json::Value) -> Result<SyncRequest, protime_webhooks::sync::SyncRunError> {
        SyncRequest::from_payload(payload)
    }

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
