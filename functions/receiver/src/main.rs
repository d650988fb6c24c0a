//! `POST /webhooks/{collection}`: verify, parse and store Protime events.

use lambda_http::{run, service_fn, Error, Request};
use protime_webhooks::aws::sdk_config;
use protime_webhooks::config::ReceiverConfig;
use protime_webhooks::receiver::AwsReceiver;
use std::convert::Infallible;

fn main() -> Result<(), Error> {
    // SAFETY: first thing in main; the runtime, and with it every other thread, starts below.
    unsafe { protime_webhooks::aws::read_ca_bundle_file_only() };
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve())
}

async fn serve() -> Result<(), Error> {
    protime_webhooks::logging::init();
    let config = ReceiverConfig::from_env()?;
    let receiver = AwsReceiver::from_config(&config, &sdk_config().await);
    let receiver = &receiver;
    run(service_fn(move |request: Request| async move { Ok::<_, Infallible>(receiver.handle(request).await) })).await
}
