//! Every collection's signing key in one secret: a deployment keeps two secrets whatever the
//! number of collections, a renewal keeps the key before it for the grace, and a deployment
//! upgrading from release 0.1 (one secret per collection) refuses no event on the way.

use harness::simulator::SimulatorConfig;
use harness::{put_secret, signed, signing_keys, Stack};
use protime_webhooks::config::ReceiverConfig;
use protime_webhooks::receiver::AwsReceiver;
use serde_json::json;

/// The stack's receiver, as deployed, with release 0.1's secrets under `legacy_prefix`.
fn receiver(stack: &Stack, legacy_prefix: Option<&str>) -> AwsReceiver {
    let mut config = ReceiverConfig::new(stack.receiver.table.clone(), stack.receiver.keys_secret.clone());
    config.signing_keys.legacy_prefix = legacy_prefix.map(str::to_owned);
    AwsReceiver::from_config(&config, &stack.receiver.config)
}

/// The outcome of one clocking event signed with `key`.
async fn send(receiver: &AwsReceiver, id: u64, key: &str) -> (u16, Option<String>) {
    let body = format!(r#"{{"id":{id},"changeVersion":"1","date":"2026-12-01"}}"#);
    let (status, answer) = harness::parse_response(receiver.handle(signed("clockings", &body, key)).await);
    (status, answer["results"][0]["outcome"].as_str().map(str::to_owned))
}

/// The names of the secrets whose name starts with `prefix`, deleted ones left out (every page:
/// the other tests of the binary share the emulator).
async fn secrets_named(stack: &Stack, prefix: &str) -> Vec<String> {
    let client = aws_sdk_secretsmanager::Client::new(&stack.receiver.setup);
    let (mut names, mut token) = (Vec::new(), None);
    loop {
        let listed = client.list_secrets().set_next_token(token).send().await.expect("list secrets");
        names.extend(
            listed
                .secret_list()
                .iter()
                .filter(|s| s.deleted_date().is_none())
                .filter_map(|s| s.name().map(str::to_owned))
                .filter(|name| name.starts_with(prefix)),
        );
        token = listed.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn one_secret_holds_every_collections_key_and_a_renewal_keeps_the_one_before() {
    let collections = ["clockings", "people", "absences", "breaks"];
    let stack = Stack::start(&collections, SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);
    let document = signing_keys(&stack.receiver.setup, &stack.receiver.keys_secret).await.expect("the keys secret");
    for collection in collections {
        let issued = stack.simulator.webhook(collection).expect("created").key;
        assert_eq!(document[collection]["key"].as_str(), Some(issued.as_str()), "{collection}");
        assert!(document[collection]["rotatedAt"].is_string(), "{collection}");
    }
    let test_prefix = stack.receiver.keys_secret.split('/').next().expect("a prefix").to_owned();
    assert_eq!(secrets_named(&stack, &test_prefix).await, std::slice::from_ref(&stack.receiver.keys_secret));

    // A renewal: the new key at once, the old one as `previousKey`, honoured for the grace.
    let old_key = stack.stored_key("clockings").await.expect("stored");
    stack.simulator.advance(chrono::Duration::days(29));
    assert!(stack.renew().await.healthy);
    let new_key = stack.stored_key("clockings").await.expect("stored");
    assert_ne!(new_key, old_key);
    let document = signing_keys(&stack.receiver.setup, &stack.receiver.keys_secret).await.unwrap();
    assert_eq!(document["clockings"]["previousKey"].as_str(), Some(old_key.as_str()));
    assert_eq!(document["people"]["key"].as_str(), Some(stack.simulator.webhook("people").unwrap().key.as_str()));
    let receiver = receiver(&stack, None);
    assert_eq!(send(&receiver, 1, &new_key).await, (200, Some("stored".into())));
    assert_eq!(send(&receiver, 2, &old_key).await, (200, Some("stored".into())));
    assert_eq!(send(&receiver, 3, "forged").await.0, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_from_one_secret_per_collection_refuses_no_event_and_leaves_one_secret() {
    let mut stack = Stack::start(&["clockings", "people"], SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);
    // Release 0.1's layout: each key in a secret of its own, none in the signing-keys secret.
    let legacy_prefix = format!("{}/signing-key/", stack.receiver.keys_secret);
    let mut keys = Vec::new();
    for collection in ["clockings", "people"] {
        let key = stack.stored_key(collection).await.expect("stored");
        put_secret(&stack.receiver.setup, &format!("{legacy_prefix}{collection}"), &key).await;
        keys.push(key);
    }
    put_secret(&stack.receiver.setup, &stack.receiver.keys_secret, "{}").await;

    // The new receiver is deployed before the renewer runs: it reads the old secrets.
    let warm = receiver(&stack, Some(&legacy_prefix));
    assert_eq!(send(&warm, 1, &keys[0]).await, (200, Some("stored".into())));

    // The renewer's next run carries the keys over; the old secrets stay while a warm receiver
    // may still read them.
    stack.renewer_config.signing_keys.legacy_prefix = Some(legacy_prefix.clone());
    assert!(stack.renew().await.healthy);
    let document = signing_keys(&stack.receiver.setup, &stack.receiver.keys_secret).await.unwrap();
    assert_eq!(
        (document["clockings"]["key"].as_str(), document["people"]["key"].as_str()),
        (Some(keys[0].as_str()), Some(keys[1].as_str()))
    );
    assert_eq!(secrets_named(&stack, &legacy_prefix).await.len(), 2, "kept for now");
    assert_eq!(send(&warm, 2, &keys[0]).await, (200, Some("stored".into())));

    // A run after LEGACY_KEPT_FOR schedules their deletion.
    stack.simulator.advance(chrono::Duration::minutes(20));
    assert!(stack.renew().await.healthy);
    assert_eq!(secrets_named(&stack, &legacy_prefix).await, Vec::<String>::new(), "scheduled for deletion");

    // Warm or cold, the receiver takes the keys from the one secret now.
    assert_eq!(send(&warm, 5, &keys[0]).await, (200, Some("stored".into())));
    let cold = receiver(&stack, Some(&legacy_prefix));
    assert_eq!(send(&cold, 3, &keys[0]).await, (200, Some("stored".into())));
    assert_eq!(send(&cold, 4, "forged").await.0, 401);
    // Protime's own deliveries too.
    let delivered = stack.simulator.change("people", json!({"id": 7, "name": "A"})).await;
    assert_eq!(delivered.statuses, [200]);
}
