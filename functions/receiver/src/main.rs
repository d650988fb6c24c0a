//! `POST /webhooks/{collection}`: verify, parse and store Protime events.

use lambda_http::{run, service_fn, Error, Request};
use protime_webhooks::aws::sdk_config;
use protime_webhooks::config::ReceiverConfig;
use protime_webhooks::receiver::AwsReceiver;
use std::convert::Infallible;

fn main() -> Result<(), Error> {
    // SAFETY: the only thing main does; no other thread exists before it starts the runtime.
    unsafe { protime_webhooks::invocation::startup::run(serve()) }
}

async fn serve() -> Result<(), Error> {
    let mut config = ReceiverConfig::from_env()?;
    let sdk = sdk_config().await;
    config.signing_keys.load_hash_key(&sdk, &mut config.data).await?;
    let receiver = AwsReceiver::from_config(&config, &sdk);
    let receiver = &receiver;
    run(service_fn(move |request: Request| async move { Ok::<_, Infallible>(receiver.handle(request).await) })).await
}
