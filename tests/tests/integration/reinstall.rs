//! Reinstalling on a kept table (docs/deploying.md): `sam delete` keeps the table, teardown
//! deletes our webhooks and the stack's signing-keys secret goes with it; a new stack given the
//! table (`ExistingTableName`) and a new signing-keys secret makes new webhooks and resumes each
//! collection from the deltaLink the table holds, with no reload.

use harness::simulator::SimulatorConfig;
use harness::{fast_retries, Stack};
use protime_webhooks::config::KeysLocation;
use protime_webhooks::sync::state::Phase;
use protime_webhooks::sync::Outcome;

#[tokio::test(flavor = "multi_thread")]
async fn a_new_stack_on_the_kept_table_makes_new_webhooks_and_resumes_without_a_reload() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 5);
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);
    let old = stack.simulator.webhook("clockings").expect("the old stack's webhook");

    // Teardown: our webhook deleted, then `sam delete` (the table kept). Protime changes a
    // record meanwhile, delivered to no one.
    stack.simulator.client(&["clockings"]).delete_webhook(&old.id).await.expect("webhooks delete --all");
    let date = stack.simulator.now().format("%Y-%m-%d").to_string();
    stack.simulator.change_quietly("clockings", serde_json::json!({"id": 900001, "date": date, "person": {"id": 2}}));

    // The new stack: the same table and credentials, its own (empty) signing-keys secret.
    let keys = harness::unique("new-stack-signing-keys");
    harness::put_secret(&stack.receiver.setup, &keys, "{}").await;
    let mut config = stack.renewer_config.clone();
    config.signing_keys = KeysLocation::secret(&keys);
    let mut renewer = protime_webhooks::renewer::AwsRenewer::from_config(config, &stack.receiver.config);
    fast_retries(&mut renewer.protime.options);
    let renewed = renewer.run(stack.simulator.now()).await.expect("a renewer run");
    assert!(renewed.healthy, "{renewed:?}");
    let new = stack.simulator.webhook("clockings").expect("a new webhook");
    assert_ne!(new.id, old.id);
    let stored = harness::signing_keys(&stack.receiver.setup, &keys).await.expect("the new secret");
    assert!(stored.get("clockings").is_some(), "the new webhook's key is in the new stack's secret: {stored}");

    let synced = stack.sync(&[]).await;
    let clockings = &synced.collections[0];
    assert_eq!((clockings.outcome, clockings.phase), (Outcome::Complete, Some(Phase::Incremental)), "{synced:?}");
    assert_eq!(clockings.records.fetched, 1, "the change since the old stack's last round, not a reload");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 6);
}
