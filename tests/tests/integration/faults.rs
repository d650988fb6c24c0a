//! AWS faults between the receiver and its stores, injected by a proxy in front of moto:
//! throttling, slowness past the SDK timeouts, and Secrets Manager down while DynamoDB is up.

use harness::{shared_moto, signed, FaultProxy, ProxyMode, ReceiverFixture};
use std::time::Duration;

const KEY: &str = "fault-key";

async fn through_proxy() -> (FaultProxy, ReceiverFixture) {
    let proxy = FaultProxy::start(shared_moto().endpoint()).await;
    let fixture = ReceiverFixture::behind(&proxy, KEY).await;
    (proxy, fixture)
}

fn event(id: u32) -> String {
    format!(r#"{{"id":{id},"changeVersion":"1"}}"#)
}

#[tokio::test(flavor = "multi_thread")]
async fn brief_throttling_is_retried_by_the_sdk_and_the_event_stored() {
    let (proxy, f) = through_proxy().await;
    proxy.set(ProxyMode::ThrottlePutItem(2));
    let (status, answer) = f.send(signed("clockings", &event(1), KEY)).await;
    assert_eq!((status, answer["results"][0]["outcome"].as_str()), (200, Some("stored")));
    assert!(f.item("clockings#1").await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn lasting_throttling_is_503_and_the_retry_after_it_is_stored() {
    let (proxy, f) = through_proxy().await;
    proxy.set(ProxyMode::ThrottlePutItem(u32::MAX));
    let (status, answer) = f.send(signed("clockings", &event(2), KEY)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("store_unavailable")));
    assert!(f.item("clockings#2").await.is_none(), "nothing half-written");
    proxy.set(ProxyMode::Pass);
    let (status, answer) = f.send(signed("clockings", &event(2), KEY)).await;
    assert_eq!((status, answer["results"][0]["outcome"].as_str()), (200, Some("stored")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_slower_than_the_timeouts_is_503_and_the_retry_loses_nothing() {
    let (proxy, f) = through_proxy().await;
    f.send(signed("clockings", &event(9), KEY)).await; // warm the key cache
    proxy.set(ProxyMode::Delay(Duration::from_secs(4)));
    let started = std::time::Instant::now();
    let (status, answer) = f.send(signed("clockings", &event(3), KEY)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("store_unavailable")));
    assert!(started.elapsed() < Duration::from_secs(15), "answered within the SDK's operation timeout");
    // The slow write may still have landed after we gave up: the retry is then a duplicate.
    proxy.set(ProxyMode::Pass);
    let (status, answer) = f.send(signed("clockings", &event(3), KEY)).await;
    assert_eq!(status, 200);
    assert!(["stored", "duplicate"].contains(&answer["results"][0]["outcome"].as_str().unwrap()), "{answer}");
    assert!(f.item("clockings#3").await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_manager_down_while_warm_keeps_the_cached_key_and_cold_is_503() {
    let (proxy, warm) = through_proxy().await;
    assert_eq!(warm.send(signed("clockings", &event(4), KEY)).await.0, 200);
    proxy.set(ProxyMode::SecretsManagerDown);
    let (status, _) = warm.send(signed("clockings", &event(5), KEY)).await;
    assert_eq!(status, 200, "the cached key keeps working while Secrets Manager is down");

    // A cold receiver has no key to check with: 503, so Protime retries.
    let cold = protime_webhooks::receiver::AwsReceiver::from_config(
        &protime_webhooks::config::ReceiverConfig::new(warm.table.clone(), warm.keys_secret.clone()),
        &warm.config,
    );
    let (status, answer) = harness::parse_response(cold.handle(signed("clockings", &event(6), KEY)).await);
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("keys_unavailable")));
    assert!(warm.item("clockings#6").await.is_none());
}
