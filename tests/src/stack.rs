//! Moto, the Protime simulator, a receiver behind HTTP and a renewer, wired together.

use crate::{put_secret, simulator, unique, ReceiverFixture, ReceiverServer};
use std::collections::HashMap;
use std::time::Duration;

/// Moto, the simulator, a warm receiver behind HTTP, and a renewer, all wired together.
pub struct Stack {
    pub receiver: ReceiverFixture,
    pub server: ReceiverServer,
    pub simulator: simulator::Simulator,
    pub renewer_config: protime_webhooks::config::RenewerConfig,
    pub credentials_secret: String,
}

impl Stack {
    pub async fn start(collections: &[&str], simulator: simulator::SimulatorConfig) -> Stack {
        Self::on(ReceiverFixture::new("unused-initial-key").await, collections, simulator).await
    }

    /// The same with every function's AWS calls through `proxy` (which records them).
    pub async fn start_behind(
        proxy: &crate::FaultProxy,
        collections: &[&str],
        simulator: simulator::SimulatorConfig,
    ) -> Stack {
        Self::on(ReceiverFixture::behind(proxy, "unused-initial-key").await, collections, simulator).await
    }

    async fn on(receiver: ReceiverFixture, collections: &[&str], simulator: simulator::SimulatorConfig) -> Stack {
        let server = ReceiverServer::start(std::sync::Arc::new(protime_webhooks::receiver::AwsReceiver::from_config(
            &protime_webhooks::config::ReceiverConfig::new(receiver.table.clone(), receiver.keys_secret.clone()),
            &receiver.config,
        )))
        .await;
        let simulator = simulator::Simulator::start(simulator).await;
        let credentials_secret = unique("protime-credentials");
        put_secret(&receiver.setup, &credentials_secret, &simulator.credentials_json()).await;
        let vars: HashMap<&str, String> = HashMap::from([
            ("TABLE_NAME", receiver.table.clone()),
            ("SIGNING_KEYS_SECRET", receiver.keys_secret.clone()),
            ("PROTIME_CREDENTIALS_SECRET", credentials_secret.clone()),
            ("DESTINATION_BASE_URL", server.base_url()),
            ("COLLECTIONS", collections.join(",")),
            ("PROTIME_API_BASE_URL", simulator.api_base_url()),
            ("PROTIME_TOKEN_URL", simulator.token_url()),
            ("PROTIME_USER_AGENT_COMPANY", "Test Company".into()),
        ]);
        let renewer_config =
            protime_webhooks::config::RenewerConfig::from_lookup(|k| vars.get(k).cloned()).expect("renewer config");
        Stack { receiver, server, simulator, renewer_config, credentials_secret }
    }

    /// The credentials secret as the template creates it, before the operator fills it in.
    pub async fn unconfigure(&self) {
        put_secret(&self.receiver.setup, &self.credentials_secret, crate::PLACEHOLDER_CREDENTIALS).await;
    }

    /// A renewer (as the Lambda builds it) with short retry delays for tests.
    pub fn renewer(&self) -> protime_webhooks::renewer::AwsRenewer {
        let mut renewer =
            protime_webhooks::renewer::AwsRenewer::from_config(self.renewer_config.clone(), &self.receiver.config);
        fast_retries(&mut renewer.protime.options);
        renewer
    }

    /// One renewer run at the simulator's current time.
    pub async fn renew(&self) -> protime_webhooks::renewer::RunReport {
        self.renewer().run(self.simulator.now()).await.expect("renewer run")
    }

    /// The syncer's settings for this stack: its collections and the simulator, plus `vars`.
    pub fn syncer_config(&self, vars: &[(&str, &str)]) -> protime_webhooks::config::SyncerConfig {
        let c = &self.renewer_config;
        let collections: Vec<&str> = c.collections.iter().map(|c| c.as_str()).collect();
        let mut all: HashMap<String, String> = HashMap::from([
            ("TABLE_NAME".into(), c.table_name.clone()),
            ("PROTIME_CREDENTIALS_SECRET".into(), self.credentials_secret.clone()),
            ("COLLECTIONS".into(), collections.join(",")),
            ("PROTIME_API_BASE_URL".into(), self.simulator.api_base_url()),
            ("PROTIME_TOKEN_URL".into(), self.simulator.token_url()),
            ("PROTIME_USER_AGENT_COMPANY".into(), "Test Company".into()),
        ]);
        all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        protime_webhooks::config::SyncerConfig::from_lookup(|k| all.get(k).cloned()).expect("syncer config")
    }

    /// A syncer (as the Lambda builds it) with short retry delays for tests.
    pub fn syncer(&self, vars: &[(&str, &str)]) -> protime_webhooks::sync::AwsSyncer {
        let mut syncer =
            protime_webhooks::sync::AwsSyncer::from_config(self.syncer_config(vars), &self.receiver.config);
        fast_retries(&mut syncer.protime.options);
        syncer
    }

    /// One scheduled syncer run with no deadline.
    pub async fn sync(&self, vars: &[(&str, &str)]) -> protime_webhooks::sync::SyncReport {
        let budget = protime_webhooks::sync::Budget::new(self.simulator.now(), None, Duration::ZERO);
        self.syncer(vars).run(&Default::default(), budget).await.expect("syncer run")
    }

    /// One syncer run asked for with `request` (a reconciliation, a backfill).
    pub async fn sync_request(
        &self,
        vars: &[(&str, &str)],
        request: protime_webhooks::sync::SyncRequest,
    ) -> protime_webhooks::sync::SyncReport {
        let budget = protime_webhooks::sync::Budget::new(self.simulator.now(), None, Duration::ZERO);
        self.syncer(vars).run(&request, budget).await.expect("syncer run")
    }

    /// Writes `record` straight into the table as an item of `collection`, as the delta would
    /// have stored it, last written on 2020-01-01 (before any pass a test starts): a drift made
    /// on purpose, which no webhook or sync wrote.
    pub async fn put_record(&self, collection: &str, record: serde_json::Value) {
        self.put_record_at(collection, record, "2020-01-01T00:00:00Z").await;
    }

    /// Writes `record` straight into the table as the delta stores it, received at `received_at`.
    pub async fn put_record_at(&self, collection: &str, record: serde_json::Value, received_at: &str) {
        use protime_webhooks::records::item::record_item;
        use protime_webhooks::records::{event, json, Source};
        let parsed: protime_webhooks::Collection = collection.parse().expect("a collection");
        let event = event::parse_event(json::parse(record.to_string().as_bytes()).unwrap()).expect("an event");
        self.put_item(record_item(parsed, &event, Source::Delta, received_at)).await;
    }

    /// Writes `item` straight into the table (unconditionally).
    pub async fn put_item(&self, item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) {
        let client = aws_sdk_dynamodb::Client::new(&self.receiver.setup);
        client.put_item().table_name(&self.receiver.table).set_item(Some(item)).send().await.expect("put the item");
    }

    /// Asserts that the table holds exactly the simulator's records of `collection`: every live
    /// record with its exact item (fields as native attributes, the same changeVersion), every
    /// record deleted in the simulator a tombstone or never stored, nothing else. Returns the
    /// number of live records compared.
    pub async fn assert_table_matches_simulator(&self, collection: &str) -> usize {
        self.assert_table_matches_simulator_where(collection, |_| true).await
    }

    /// [`Self::assert_table_matches_simulator`] over the simulator's records `wanted` keeps (the
    /// ones a sync with a window was asked to copy).
    pub async fn assert_table_matches_simulator_where(
        &self,
        collection: &str,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> usize {
        use protime_webhooks::records::item::{attr, record_item};
        use protime_webhooks::records::{event, json, Source};
        let parsed: protime_webhooks::Collection = collection.parse().expect("a collection");
        let prefix = format!("{collection}#");
        let items = crate::scan(&self.receiver.setup, &self.receiver.table).await;
        let mut live = std::collections::BTreeMap::new();
        let mut tombstones = std::collections::BTreeSet::new();
        for item in items.into_iter().filter(|i| i[attr::PK].as_s().is_ok_and(|pk| pk.starts_with(&prefix))) {
            let id = item[attr::PK].as_s().unwrap()[prefix.len()..].to_owned();
            if item.get(attr::DELETED) == Some(&aws_sdk_dynamodb::types::AttributeValue::Bool(true)) {
                tombstones.insert(id);
            } else {
                live.insert(id, item);
            }
        }
        let mut expected_live = std::collections::BTreeMap::new();
        for record in self.simulator.records(collection).into_iter().filter(|r| wanted(r)) {
            let event = event::parse_event(json::parse(record.to_string().as_bytes()).unwrap()).expect("an event");
            let id = event.id.as_str().to_owned();
            if record["status"] == "Deleted" {
                // A tombstone, or nothing: a full pass writes none for a record the copy lacks.
                assert!(!live.contains_key(&id), "{collection} {id}: soft-deleted in Protime, live in the table");
            } else {
                expected_live.insert(id, record_item(parsed, &event, Source::Delta, ""));
            }
        }
        for (id, _version) in self.simulator.deleted(collection) {
            assert!(!live.contains_key(&id), "{collection} {id}: deleted in Protime, still live in the table");
        }
        let ids = |m: &std::collections::BTreeMap<String, _>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(ids(&live), ids(&expected_live), "{collection}: the live records differ");
        // The read indexes' live partitions hold exactly the live records, their tombstone
        // partitions exactly the tombstones; the items' own index keys are compared with the
        // rest of each item below.
        use protime_webhooks::records::index::{attr as index_attr, DATE_INDEX, PERSON_INDEX, TOMBSTONE_PREFIX};
        for (index, key) in [(DATE_INDEX, index_attr::DATE_PARTITION), (PERSON_INDEX, index_attr::PERSON_PARTITION)] {
            let (mut indexed, mut indexed_tombstones) = (Vec::new(), std::collections::BTreeSet::new());
            for item in crate::scan_index(&self.receiver.setup, &self.receiver.table, index).await {
                let Some(id) = item[attr::PK].as_s().ok().and_then(|pk| pk.strip_prefix(&prefix)) else { continue };
                if item[key].as_s().unwrap().starts_with(TOMBSTONE_PREFIX) {
                    indexed_tombstones.insert(id.to_owned());
                } else {
                    indexed.push(id.to_owned());
                }
            }
            indexed.sort();
            let expected: Vec<String> =
                expected_live.iter().filter(|(_, item)| item.contains_key(key)).map(|(id, _)| id.clone()).collect();
            assert_eq!(
                indexed, expected,
                "{collection}: the {index} index's live partitions differ from the live records"
            );
            assert!(indexed_tombstones.is_subset(&tombstones), "{collection}: {index} lists a live record as deleted");
            if index == DATE_INDEX {
                assert_eq!(
                    indexed_tombstones, tombstones,
                    "{collection}: every tombstone is in byDate's tombstone partitions"
                );
            }
        }
        let compared = live.len();
        let volatile = [attr::RECEIVED_AT, attr::SOURCE];
        for (id, mut item) in live {
            let mut expected = expected_live.remove(&id).unwrap();
            for name in volatile {
                item.remove(name);
                expected.remove(name);
            }
            assert_eq!(item, expected, "{collection} {id}: the stored item differs from the simulator's record");
        }
        compared
    }

    /// The collection's key in the signing-keys secret (AWSCURRENT).
    pub async fn stored_key(&self, collection: &str) -> Option<String> {
        let document = crate::signing_keys(&self.receiver.setup, &self.receiver.keys_secret).await?;
        document[collection]["key"].as_str().map(str::to_owned)
    }
}

/// Retry delays short enough for tests, still bounded.
pub fn fast_retries(options: &mut protime_webhooks::protime::client::ClientOptions) {
    options.retry = protime_webhooks::protime::RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(20),
    };
    options.request_timeout = Duration::from_secs(2);
}
