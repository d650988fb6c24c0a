//! Permissions proven, not listed: each function's scenarios run against a moto that enforces
//! IAM, signed by a user whose policy is that function's role policy as template.yaml writes it.
//! A call the policy does not grant is refused (403), so a missing permission fails here instead
//! of in AWS.
//!
//! What moto checks (measured with moto 5.2): for S3 the action and the bucket or object ARN;
//! for DynamoDB and Secrets Manager the action only — there every resource is `*` (moto matches
//! no other), so a policy naming the wrong table or secret would still pass. Conditions are not
//! evaluated (so they are left out here): the table writes' `dynamodb:LeadingKeys` are checked
//! against the code in template.rs. docs/development.md says what this proves and what it cannot.

use super::template::{all_statements, at, function, resources, text};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use harness::simulator::{Simulator, SimulatorConfig};
use harness::{create_bucket, create_table_with, put_secret, setup_config, unique, Moto};
use protime_webhooks::records::index::ReadIndexes;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The statements of `resource`'s role policy in a stack deployed with `parameters` (the
/// others at their defaults: the template's conditions evaluated) as an IAM policy document for
/// moto: the quarantine bucket's ARN filled in, every other resource `*` (see the module's
/// docs). `drop` leaves out one action, to show that enforcement is on.
fn role_policy(resource: &str, bucket: &str, drop: Option<&str>, parameters: &[(&str, &str)]) -> Value {
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let conditions = super::switches::Deployed::with(parameters).conditions;
    let statements: Vec<Value> = all_statements(&function(resource))
        .into_iter()
        .filter(|(condition, _)| condition.as_ref().is_none_or(|c| conditions[c]))
        .map(|(_, statement)| {
            let actions: Vec<String> = at(&statement, &["Action"])
                .as_sequence()
                .expect("actions")
                .iter()
                .map(text)
                .filter(|a| Some(a.as_str()) != drop)
                .collect();
            let resources: Vec<String> = resources(&statement)
                .iter()
                .map(|t| match t.strip_prefix("!Sub ") {
                    Some(sub) if sub.contains("${QuarantineBucket.Arn}") => sub.replace("${QuarantineBucket.Arn}", &bucket_arn),
                    _ => "*".to_owned(),
                })
                .collect();
            json!({ "Sid": text(at(&statement, &["Sid"])), "Effect": "Allow", "Action": actions, "Resource": resources })
        })
        .filter(|statement| statement["Action"].as_array().is_some_and(|a| !a.is_empty()))
        .collect();
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// A moto of its own (enforcement is server-wide), with a table, a bucket and the simulator's
/// credentials set up before it enforces.
struct Enforcing {
    moto: Moto,
    /// Unrestricted, for the set-up and for reading the final state.
    admin: SdkConfig,
    table: String,
    bucket: String,
    keys_secret: String,
    credentials_secret: String,
    simulator: Simulator,
}

impl Enforcing {
    async fn start(simulator: SimulatorConfig) -> Enforcing {
        Enforcing::start_with(simulator, ReadIndexes::ALL).await
    }

    /// The same, with a table holding only the read indexes `indexes` names.
    async fn start_with(simulator: SimulatorConfig, indexes: ReadIndexes) -> Enforcing {
        let moto = Moto::start();
        let setup = setup_config(&moto.endpoint()).await;
        let (table, bucket) = (unique("records"), unique("quarantine"));
        create_table_with(&setup, &table, indexes).await;
        create_bucket(&setup, &bucket).await;
        let simulator = Simulator::start(simulator).await;
        let credentials_secret = unique("protime-credentials");
        put_secret(&setup, &credentials_secret, &simulator.credentials_json()).await;
        // The stack creates the signing-keys secret; the renewer only writes its versions.
        let keys_secret = format!("{}/signing-keys", unique("pw"));
        put_secret(&setup, &keys_secret, "{}").await;
        let admin_policy =
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
        let admin = harness::sdk_config_as(&moto.endpoint(), moto.iam_user("admin", &admin_policy).await).await;
        Enforcing { moto, admin, table, bucket, keys_secret, credentials_secret, simulator }
    }

    /// An SDK configuration signed by a new user holding `resource`'s role policy (made before
    /// moto enforces).
    async fn as_role(&self, resource: &str, drop: Option<&str>) -> SdkConfig {
        self.as_role_where(resource, drop, &[]).await
    }

    /// The same, in a stack deployed with `parameters`.
    async fn as_role_where(&self, resource: &str, drop: Option<&str>, parameters: &[(&str, &str)]) -> SdkConfig {
        let name = unique(&resource.to_lowercase());
        let credentials = self.moto.iam_user(&name, &role_policy(resource, &self.bucket, drop, parameters)).await;
        harness::sdk_config_as(&self.moto.endpoint(), credentials).await
    }

    async fn item(&self, pk: &str) -> Option<HashMap<String, AttributeValue>> {
        harness::get_item(&self.admin, &self.table, pk).await
    }

    fn vars(&self, collections: &str, destination: &str) -> HashMap<&'static str, String> {
        HashMap::from([
            ("TABLE_NAME", self.table.clone()),
            ("SIGNING_KEYS_SECRET", self.keys_secret.clone()),
            ("PROTIME_CREDENTIALS_SECRET", self.credentials_secret.clone()),
            ("DESTINATION_BASE_URL", destination.to_owned()),
            ("COLLECTIONS", collections.to_owned()),
            ("PROTIME_API_BASE_URL", self.simulator.api_base_url()),
            ("PROTIME_TOKEN_URL", self.simulator.token_url()),
            ("PROTIME_USER_AGENT_COMPANY", "Test Company".into()),
            ("QUARANTINE_BUCKET", self.bucket.clone()),
        ])
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_receiver_works_with_exactly_its_role_policy() {
    let env = Enforcing::start(SimulatorConfig::default()).await;
    let key = "receiver-key";
    harness::put_signing_key(&env.admin, &env.keys_secret, "clockings", key).await;
    // A subscription item, so the receiver notes the last event's time on it.
    aws_sdk_dynamodb::Client::new(&env.admin)
        .put_item()
        .table_name(&env.table)
        .item("pk", AttributeValue::S("subscription#clockings".into()))
        .item("collection", AttributeValue::S("clockings".into()))
        .send()
        .await
        .expect("subscription item");
    let mut config = protime_webhooks::config::ReceiverConfig::new(env.table.clone(), env.keys_secret.clone());
    config.quarantine_bucket = Some(env.bucket.clone());
    let (role, without_put) =
        (env.as_role("ReceiverFunction", None).await, env.as_role("ReceiverFunction", Some("s3:PutObject")).await);
    env.moto.enforce_iam().await;

    let receiver = protime_webhooks::receiver::AwsReceiver::from_config(&config, &role);
    let body = r#"{"id":1,"changeVersion":"0000090200004BD0000A","date":"2026-12-01"}"#;
    let send = |body: &'static str| harness::signed("clockings", body, key);
    let (status, answer) = harness::parse_response(receiver.handle(send(body)).await);
    assert_eq!((status, answer["results"][0]["outcome"].as_str()), (200, Some("stored")), "{answer}");
    let (status, answer) = harness::parse_response(receiver.handle(send(body)).await);
    assert_eq!((status, answer["results"][0]["outcome"].as_str()), (200, Some("duplicate")), "{answer}");
    let (status, answer) = harness::parse_response(receiver.handle(send("not json")).await);
    assert_eq!((status, answer["quarantined"]["reason"].as_str()), (202, Some("not_json")), "{answer}");
    let stored = env.item("clockings#1").await.expect("stored");
    assert_eq!(harness::s(&stored, "changeVersion"), "0000090200004BD0000A");
    let note = env.item("subscription#clockings").await.unwrap();
    assert!(note.contains_key("lastEventAt"), "the receiver's UpdateItem went through: {note:?}");
    let listed = harness::quarantine_keys(&env.admin, &env.bucket).await;
    assert_eq!(listed.len(), 1, "{listed:?}");

    // Enforcement is on: without s3:PutObject the same body is refused (503, nothing acknowledged).
    let without_put = protime_webhooks::receiver::AwsReceiver::from_config(&config, &without_put);
    let (status, _) = harness::parse_response(without_put.handle(send("not json")).await);
    assert_eq!(status, 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_renewer_creates_recovers_and_re_syncs_with_exactly_its_role_policy() {
    let env = Enforcing::start(SimulatorConfig::default()).await;
    env.simulator.seed("clockings", 5);
    let vars = env.vars("clockings,people", "https://hooks.example.com");
    let config = protime_webhooks::config::RenewerConfig::from_lookup(|k| vars.get(k).cloned()).expect("config");
    let sdk = env.as_role("RenewerFunction", None).await;
    env.moto.enforce_iam().await;
    let renewer = || {
        let mut renewer = protime_webhooks::renewer::AwsRenewer::from_config(config.clone(), &sdk);
        harness::stack::fast_retries(&mut renewer.protime.options);
        renewer
    };

    let report = renewer().run(env.simulator.now()).await.expect("first run");
    assert!(report.healthy, "{report:?}");
    for collection in ["clockings", "people"] {
        let webhook = env.simulator.webhook(collection).expect("created");
        let stored = harness::signing_keys(&env.admin, &env.keys_secret).await.expect("the keys secret");
        assert_eq!(stored[collection]["key"].as_str(), Some(webhook.key.as_str()), "{collection}");
    }

    // Disabled: recovered at once, the gap handed to the syncer (no live deltaLink here).
    env.simulator.disable("clockings");
    env.simulator.change_quietly("clockings", json!({"id": 1, "date": "2026-12-01", "hours": 8}));
    let report = renewer().run(env.simulator.now()).await.expect("second run");
    assert!(report.healthy, "{report:?}");
    let recovered = report.subscriptions.iter().find(|s| s.collection == "clockings").unwrap();
    assert_eq!(recovered.action.as_str(), "recover", "{report:?}");
    assert!(env.simulator.webhook("clockings").unwrap().enabled);
    let handed = env.item("sync#clockings").await.expect("the syncer's state");
    assert!(handed.contains_key("fullPassRequestedAt"), "{handed:?}");
    let lease = env.item("renewer#lease").await.expect("the run lease");
    assert!(!lease.contains_key("leaseOwner"), "released");
}

/// An upgrade from 0.1 (one signing-key secret per collection) under exactly the policies the
/// template grants while `SigningKeySecretPrefix` is set: the receiver reads an old secret, the
/// renewer reads it and schedules its deletion (`DeleteSecret`, granted only under that
/// condition). Which secrets each statement names is checked in template.rs:
/// moto matches Secrets Manager actions, not resources.
#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_carries_the_keys_over_with_exactly_the_policies_granted_for_it() {
    let env = Enforcing::start(SimulatorConfig::default()).await;
    let legacy_prefix = format!("{}/signing-key/", unique("pw-old"));
    put_secret(&env.admin, &format!("{legacy_prefix}clockings"), "old-key").await;
    let mut vars = env.vars("clockings", "https://hooks.example.com");
    vars.insert("SIGNING_KEY_SECRET_PREFIX", legacy_prefix.clone());
    let renewer_config =
        protime_webhooks::config::RenewerConfig::from_lookup(|k| vars.get(k).cloned()).expect("config");
    let mut receiver_config = protime_webhooks::config::ReceiverConfig::new(env.table.clone(), env.keys_secret.clone());
    receiver_config.signing_keys.legacy_prefix = Some(legacy_prefix.clone());
    receiver_config.quarantine_bucket = Some(env.bucket.clone());
    let upgrading = [("SigningKeySecretPrefix", legacy_prefix.as_str())];
    let receiver_role = env.as_role_where("ReceiverFunction", None, &upgrading).await;
    let renewer_role = env.as_role_where("RenewerFunction", None, &upgrading).await;
    env.moto.enforce_iam().await;

    let body = r#"{"id":1,"changeVersion":"0000090200004BD0000A","date":"2026-12-01"}"#;
    let receiver = protime_webhooks::receiver::AwsReceiver::from_config(&receiver_config, &receiver_role);
    let (status, answer) =
        harness::parse_response(receiver.handle(harness::signed("clockings", body, "old-key")).await);
    assert_eq!((status, answer["results"][0]["outcome"].as_str()), (200, Some("stored")), "{answer}");

    let mut renewer = protime_webhooks::renewer::AwsRenewer::from_config(renewer_config, &renewer_role);
    harness::stack::fast_retries(&mut renewer.protime.options);
    // The first run subscribes (a key of this stack's own); a run LEGACY_KEPT_FOR later reads
    // the old secret and schedules its deletion.
    let report = renewer.run(env.simulator.now()).await.expect("the run");
    assert!(report.healthy, "{report:?}");
    let keys = harness::signing_keys(&env.admin, &env.keys_secret).await.expect("the keys secret");
    let issued = env.simulator.webhook("clockings").expect("created").key;
    assert_eq!(keys["clockings"]["key"].as_str(), Some(issued.as_str()));
    env.simulator.advance(chrono::Duration::minutes(20));
    let report = renewer.run(env.simulator.now()).await.expect("the second run");
    assert!(report.healthy, "{report:?}");
    let old = aws_sdk_secretsmanager::Client::new(&env.admin)
        .describe_secret()
        .secret_id(format!("{legacy_prefix}clockings"))
        .send()
        .await
        .expect("describe the old secret");
    assert!(old.deleted_date().is_some(), "its deletion is scheduled");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_syncer_loads_keeps_pages_quarantines_and_follows_the_delta_with_exactly_its_role_policy() {
    let page_size = 500;
    let env = Enforcing::start(SimulatorConfig { page_size, empty_pages: false, ..Default::default() }).await;
    let seeded = env.simulator.seed("clockings", 2 * page_size);
    let page_bytes: usize = seeded.iter().take(page_size).map(|r| r.to_string().len()).sum();
    assert!(page_bytes > 64 * 1024, "a page is kept in S3 (pages/), not in the sync item: {page_bytes} bytes");
    env.simulator.seed("people", 3);
    let mut vars = env.vars("clockings,people", "https://hooks.example.com");
    vars.remove("DESTINATION_BASE_URL");
    vars.remove("SIGNING_KEYS_SECRET");
    let config = protime_webhooks::config::SyncerConfig::from_lookup(|k| vars.get(k).cloned()).expect("config");
    let sdk = env.as_role("SyncerFunction", None).await;
    env.moto.enforce_iam().await;
    let sync = || async {
        let mut syncer = protime_webhooks::sync::AwsSyncer::from_config(config.clone(), &sdk);
        harness::stack::fast_retries(&mut syncer.protime.options);
        let budget = protime_webhooks::sync::Budget::new(env.simulator.now(), None, std::time::Duration::ZERO);
        syncer.run(&Default::default(), budget).await.expect("syncer run")
    };

    let report = sync().await;
    assert!(report.healthy, "{report:?}");
    env.simulator.change_quietly("clockings", json!({"id": 1, "date": "2026-12-01", "hours": 7}));
    env.simulator.delete_quietly("clockings", json!(2));
    // A record that can never be stored: quarantined (s3:PutObject outside pages/).
    env.simulator.inject_raw_change("clockings", r#"{"id":9001,"changeVersion":"0000090200004BD0000A","a":1,"a":2}"#);
    let report = sync().await;
    assert!(report.healthy, "{report:?}");
    let clockings = report.collections.iter().find(|c| c.collection == "clockings").unwrap();
    assert_eq!((clockings.records.quarantined, clockings.records.deleted), (1, 1), "{report:?}");
    for collection in ["clockings", "people"] {
        for record in env.simulator.records(collection) {
            let pk = format!("{collection}#{}", record["id"]);
            let item = env.item(&pk).await.unwrap_or_else(|| panic!("{pk} stored"));
            assert_eq!(harness::s(&item, "changeVersion"), record["changeVersion"].as_str().unwrap(), "{pk}");
        }
    }
    let deleted = env.item("clockings#2").await.expect("the tombstone");
    assert_eq!(deleted["deleted"], AttributeValue::Bool(true));
    let kept = harness::quarantine_keys(&env.admin, &env.bucket).await;
    assert_eq!(kept.iter().filter(|k| k.starts_with("clockings/")).count(), 1, "{kept:?}");
    assert!(!kept.iter().any(|k| k.starts_with("pages/")), "every kept page was deleted once applied: {kept:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_syncer_and_the_renewer_keep_pages_and_every_function_quarantines_under_a_collection() {
    use protime_webhooks::records::quarantine::{Note, Quarantine, S3Quarantine};
    use protime_webhooks::sync::kept::{PageKeep, KEPT_PAGES_PREFIX};
    use protime_webhooks::Collection;
    let env = Enforcing::start(SimulatorConfig::default()).await;
    let mut roles = Vec::new();
    for (resource, keeps_pages) in [("ReceiverFunction", false), ("RenewerFunction", true), ("SyncerFunction", true)] {
        roles.push((resource, keeps_pages, env.as_role(resource, None).await));
    }
    env.moto.enforce_iam().await;

    for (resource, keeps_pages, sdk) in &roles {
        let bucket = S3Quarantine::new(S3Quarantine::client(sdk), env.bucket.clone());
        let note = Note::webhook("not_json", None);
        let kept = bucket.keep(Collection::Clockings, b"not json", note).await.expect(resource);
        assert!(kept.starts_with("clockings/"), "{resource}: {kept}");
        // A page under pages/: trusted input (its links become the cursor), never the receiver's.
        let page = bucket.put_page(Collection::Clockings, bytes::Bytes::from_static(b"{\"value\":[]}")).await;
        assert_eq!(page.is_ok(), *keeps_pages, "{resource}: {page:?}");
        if let Ok(key) = page {
            assert!(key.starts_with(KEPT_PAGES_PREFIX), "{key}");
            assert_eq!(&bucket.get_page(&key).await.expect(resource)[..], b"{\"value\":[]}");
            bucket.discard_page(&key).await.expect(resource);
        }
    }
    let listed = harness::quarantine_keys(&env.admin, &env.bucket).await;
    assert_eq!(listed.len(), 3, "one quarantined body each, no page left: {listed:?}");
}

/// A stack deployed with `ReadIndexes=none`: a table without indexes, and a syncer whose role
/// may Scan the table but Query no index. Its load and a reconciliation sweep what Protime no
/// longer has (one collection's stray, the other's left alone).
#[tokio::test(flavor = "multi_thread")]
async fn a_stack_without_read_indexes_sweeps_by_scanning_with_exactly_its_role_policy() {
    let none = ReadIndexes { by_date: false, by_person: false };
    let env = Enforcing::start_with(SimulatorConfig::default(), none).await;
    let seeded = env.simulator.seed("people", 6);
    env.simulator.seed("clockings", 4);
    let mut vars = env.vars("clockings,people", "https://hooks.example.com");
    vars.insert("READ_INDEXES", "none".into());
    let config = protime_webhooks::config::SyncerConfig::from_lookup(|k| vars.get(k).cloned()).expect("config");
    let sdk = env.as_role_where("SyncerFunction", None, &[("ReadIndexes", "none")]).await;
    env.moto.enforce_iam().await;
    let sync = |request: protime_webhooks::sync::SyncRequest| {
        let (config, sdk) = (config.clone(), sdk.clone());
        let now = env.simulator.now();
        async move {
            let mut syncer = protime_webhooks::sync::AwsSyncer::from_config(config, &sdk);
            harness::stack::fast_retries(&mut syncer.protime.options);
            let budget = protime_webhooks::sync::Budget::new(now, None, std::time::Duration::ZERO);
            syncer.run(&request, budget).await.expect("syncer run")
        }
    };
    assert!(sync(Default::default()).await.healthy, "the loads (each a full pass, swept)");
    // Protime deletes a person while the delta lies unused past its 72 hours: the reload (a
    // full pass) must find it gone.
    env.simulator.delete_quietly("people", seeded[2]["id"].clone());
    env.simulator.advance(chrono::Duration::hours(73));
    let report = sync(Default::default()).await;
    assert!(report.healthy, "{report:?}");
    let people = harness::report_of(&report, "people");
    assert_eq!(people.drift.as_ref().map(|d| d.swept), Some(1), "{people:?}");
    let gone = env.item(&format!("people#{}", seeded[2]["id"])).await.expect("the tombstone");
    assert_eq!((gone["deleted"].clone(), harness::s(&gone, "source")), (AttributeValue::Bool(true), "sweep"));
    for record in env.simulator.records("people").into_iter().chain(env.simulator.records("clockings")) {
        let collection = if record.get("date").is_some() { "clockings" } else { "people" };
        let item = env.item(&format!("{collection}#{}", record["id"])).await.expect("stored");
        assert_eq!(item["deleted"], AttributeValue::Bool(false), "{record}");
    }
}
