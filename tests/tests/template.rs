//! template.yaml against the code: route, binaries, environment variables, IAM actions, table
//! key schema, defaults and the metrics the alarms watch. Each check fails if either side drifts.

use protime_webhooks::contract::{self, RECEIVER_ACTIONS, RECEIVER_ENV, RENEWER_ACTIONS, RENEWER_ENV};
use serde_norway::Value;
use std::collections::BTreeSet;

fn template() -> Value {
    let text = std::fs::read_to_string(harness::workspace_root().join("template.yaml")).expect("template.yaml");
    serde_norway::from_str(&text).expect("template.yaml is YAML")
}

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| v.get(*k).unwrap_or_else(|| panic!("template has no {}", path.join("."))))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(t) => format!("!{} {}", t.tag.to_string().trim_start_matches('!'), text(&t.value)),
        other => serde_norway::to_string(other).unwrap(),
    }
}

fn function(name: &str) -> Value {
    at(&template(), &["Resources", name]).clone()
}

fn env_keys(function: &Value) -> BTreeSet<String> {
    at(function, &["Properties", "Environment", "Variables"])
        .as_mapping()
        .expect("variables")
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

fn statements(function: &Value) -> Vec<Value> {
    at(function, &["Properties", "Policies"])
        .as_sequence()
        .expect("policies")
        .iter()
        .flat_map(|p| at(p, &["Statement"]).as_sequence().expect("statements").clone())
        .collect()
}

fn actions(function: &Value) -> BTreeSet<String> {
    statements(function)
        .iter()
        .flat_map(|s| at(s, &["Action"]).as_sequence().expect("actions").iter().map(text).collect::<Vec<_>>())
        .collect()
}

#[test]
fn the_route_and_binaries_match_the_code() {
    let receiver = function("ReceiverFunction");
    let event = at(&receiver, &["Properties", "Events", "Webhook"]);
    assert_eq!(text(at(event, &["Type"])), "HttpApi");
    assert_eq!(text(at(event, &["Properties", "Method"])), contract::ROUTE_METHOD);
    assert_eq!(text(at(event, &["Properties", "Path"])), contract::ROUTE_PATH);
    assert_eq!(text(at(&receiver, &["Metadata", "BuildProperties", "Binary"])), contract::RECEIVER_BINARY);
    assert_eq!(
        text(at(&function("RenewerFunction"), &["Metadata", "BuildProperties", "Binary"])),
        contract::RENEWER_BINARY
    );
    for (krate, binary) in
        [("functions/receiver", contract::RECEIVER_BINARY), ("functions/renewer", contract::RENEWER_BINARY)]
    {
        let manifest = std::fs::read_to_string(harness::workspace_root().join(krate).join("Cargo.toml")).unwrap();
        assert!(manifest.contains(&format!("[[bin]]\nname = \"{binary}\"")), "{krate} builds {binary}");
    }
    let globals = at(&template(), &["Globals", "Function"]).clone();
    assert_eq!(text(at(&globals, &["Runtime"])), "provided.al2023");
    assert_eq!(text(at(&globals, &["Handler"])), "bootstrap");
    assert_eq!(text(&at(&globals, &["Architectures"]).as_sequence().unwrap()[0]), "arm64");
    for name in ["ReceiverFunction", "RenewerFunction"] {
        assert_eq!(text(at(&function(name), &["Metadata", "BuildMethod"])), "rust-cargolambda");
        assert_eq!(text(at(&function(name), &["Properties", "LoggingConfig", "LogFormat"])), "JSON");
    }
}

#[test]
fn every_variable_the_template_sets_is_read_and_every_required_one_is_set() {
    for (resource, declared) in [("ReceiverFunction", RECEIVER_ENV), ("RenewerFunction", RENEWER_ENV)] {
        let set = env_keys(&function(resource));
        let known: BTreeSet<String> = declared.iter().map(|(n, _)| n.to_string()).collect();
        let unknown: Vec<_> = set.difference(&known).collect();
        assert!(unknown.is_empty(), "{resource} sets variables the code never reads: {unknown:?}");
        for (name, required) in declared {
            if *required {
                assert!(set.contains(*name), "{resource} must set {name}");
            }
        }
    }
}

#[test]
fn iam_actions_are_exactly_what_each_function_calls() {
    for (resource, declared) in [("ReceiverFunction", RECEIVER_ACTIONS), ("RenewerFunction", RENEWER_ACTIONS)] {
        let granted = actions(&function(resource));
        let wanted: BTreeSet<String> = declared.iter().map(|a| a.to_string()).collect();
        assert_eq!(granted, wanted, "{resource}");
    }
}

#[test]
fn no_statement_grants_a_wildcard_resource_or_action() {
    for resource in ["ReceiverFunction", "RenewerFunction"] {
        for statement in statements(&function(resource)) {
            let targets: Vec<String> = match at(&statement, &["Resource"]).as_sequence() {
                Some(list) => list.iter().map(text).collect(),
                None => vec![text(at(&statement, &["Resource"]))],
            };
            let sid = text(at(&statement, &["Sid"]));
            for target in &targets {
                assert_ne!(target.trim(), "*", "{resource}: {statement:?}");
                if sid == "QuarantineUnstorableBodies" {
                    // Objects of the one bucket, and only PutObject on them.
                    assert_eq!(target, "!Sub ${QuarantineBucket.Arn}/*");
                    assert_eq!(text(action_list(&statement)), "- s3:PutObject\n");
                    continue;
                }
                assert!(!target.contains('*'), "{resource} {sid}: {target}");
                if text(action_list(&statement)).contains("dynamodb:") {
                    assert_eq!(target, "!GetAtt RecordTable.Arn", "{sid}");
                }
            }
            for action in at(&statement, &["Action"]).as_sequence().unwrap() {
                assert!(!text(action).contains('*'), "{resource}: {}", text(action));
            }
            if sid.ends_with("SigningKeys") {
                // Exactly one secret per collection: no pattern that could match another secret.
                let expected: BTreeSet<String> = protime_webhooks::Collection::ALL
                    .iter()
                    .map(|c| {
                        format!(
                            "!Sub arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:${{SigningKeySecretPrefix}}{c}-??????"
                        )
                    })
                    .collect();
                assert_eq!(targets.iter().cloned().collect::<BTreeSet<_>>(), expected, "{resource} {sid}");
            }
        }
    }
}

#[test]
fn the_quarantine_bucket_is_private_encrypted_tls_only_and_expires() {
    let t = template();
    let bucket = at(&t, &["Resources", "QuarantineBucket", "Properties"]).clone();
    let block = at(&bucket, &["PublicAccessBlockConfiguration"]);
    for setting in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        assert_eq!(text(at(block, &[setting])), "true", "{setting}");
    }
    let sse = &at(&bucket, &["BucketEncryption", "ServerSideEncryptionConfiguration"]).as_sequence().unwrap()[0];
    assert_eq!(text(at(sse, &["ServerSideEncryptionByDefault", "SSEAlgorithm"])), "AES256");
    let rule = &at(&bucket, &["LifecycleConfiguration", "Rules"]).as_sequence().unwrap()[0];
    assert_eq!(text(at(rule, &["ExpirationInDays"])), "!Ref QuarantineRetentionDays");
    assert_eq!(text(at(&t, &["Parameters", "QuarantineRetentionDays", "Default"])), "90");
    let policy = at(&t, &["Resources", "QuarantineBucketPolicy", "Properties", "PolicyDocument"]).clone();
    let deny = &at(&policy, &["Statement"]).as_sequence().unwrap()[0];
    assert_eq!(text(at(deny, &["Effect"])), "Deny");
    assert_eq!(text(at(deny, &["Condition", "Bool", "aws:SecureTransport"])), "false");
}

#[test]
fn the_schedule_may_write_to_its_dead_letter_queue() {
    let policy = at(&template(), &["Resources", "RenewerDeadLetterQueuePolicy", "Properties"]).clone();
    let statement = &at(&policy, &["PolicyDocument", "Statement"]).as_sequence().unwrap()[0];
    assert_eq!(text(at(statement, &["Principal", "Service"])), "events.amazonaws.com");
    assert_eq!(text(at(statement, &["Action"])), "sqs:SendMessage");
    assert_eq!(text(at(statement, &["Resource"])), "!GetAtt RenewerDeadLetterQueue.Arn");
    assert_eq!(
        text(at(statement, &["Condition", "ArnEquals", "aws:SourceArn"])),
        "!GetAtt RenewerFunctionSchedule.Arn"
    );
}

fn action_list(statement: &Value) -> &Value {
    at(statement, &["Action"])
}

#[test]
fn the_table_key_schema_is_the_one_the_store_writes() {
    let table = at(&template(), &["Resources", "RecordTable"]).clone();
    let keys = at(&table, &["Properties", "KeySchema"]).as_sequence().unwrap().clone();
    assert_eq!(keys.len(), 1, "one partition key, no sort key");
    assert_eq!(text(at(&keys[0], &["AttributeName"])), contract::TABLE_PARTITION_KEY);
    assert_eq!(text(at(&keys[0], &["KeyType"])), "HASH");
    let attributes = at(&table, &["Properties", "AttributeDefinitions"]).as_sequence().unwrap().clone();
    assert_eq!(text(at(&attributes[0], &["AttributeType"])), "S");
    assert_eq!(text(at(&table, &["DeletionPolicy"])), "Retain");
    assert_eq!(text(at(&table, &["Properties", "BillingMode"])), "PAY_PER_REQUEST");
}

#[test]
fn parameter_defaults_match_the_code_defaults() {
    let t = template();
    assert_eq!(
        text(at(&t, &["Parameters", "SigningKeySecretPrefix", "Default"])),
        protime_webhooks::config::DEFAULT_SIGNING_KEY_SECRET_PREFIX
    );
    assert_eq!(
        text(at(&t, &["Parameters", "MaxBodyBytes", "Default"])),
        protime_webhooks::config::DEFAULT_MAX_BODY_BYTES.to_string()
    );
    assert_eq!(
        text(at(&t, &["Parameters", "MetricsNamespace", "Default"])),
        protime_webhooks::observability::metrics::DEFAULT_NAMESPACE
    );
}

#[test]
fn alarms_watch_metrics_the_code_emits() {
    use protime_webhooks::receiver::{request_metrics, ReceiveError};
    use protime_webhooks::renewer::{run_metrics, RunReport};
    let mut emitted = BTreeSet::new();
    let mut collect = |doc: protime_webhooks::observability::metrics::MetricDoc| {
        let json = doc.to_json(0);
        for m in json["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
            emitted.insert(m["Name"].as_str().unwrap().to_owned());
        }
    };
    let rejected =
        Err(ReceiveError::Unauthorized(protime_webhooks::receiver::signature::SignatureError::Mismatch.into()));
    request_metrics("Ns", None, &rejected).into_iter().for_each(&mut collect);
    request_metrics("Ns", None, &Err(ReceiveError::NoRoute)).into_iter().for_each(&mut collect);
    let quarantined = protime_webhooks::receiver::Received {
        collection: protime_webhooks::Collection::Clockings,
        accepted: protime_webhooks::receiver::signing_keys::AcceptedKey::Current,
        outcomes: vec![protime_webhooks::receiver::ItemOutcome {
            id: None,
            change_version: None,
            change_type: None,
            outcome: protime_webhooks::receiver::EventOutcome::Quarantined { key: "k".into(), reason: "not_json" },
        }],
        whole_body_quarantined: true,
        store_ms: 0.0,
    };
    request_metrics("Ns", None, &Ok(quarantined)).into_iter().for_each(&mut collect);
    let subscription = protime_webhooks::renewer::SubscriptionReport {
        collection: "clockings".into(),
        action: protime_webhooks::renewer::plan::ActionKind::Recover,
        reason: None,
        ok: true,
        webhook_id: None,
        valid_until: None,
        hours_until_expiry: Some(700.0),
        resynced: None,
        error: None,
    };
    let report = RunReport { healthy: true, subscriptions: vec![subscription], strays: vec![] };
    run_metrics("Ns", Some(&report)).into_iter().for_each(&mut collect);

    let t = template();
    let resources = at(&t, &["Resources"]).as_mapping().unwrap();
    let mut checked = 0;
    for (name, resource) in resources {
        if text(at(resource, &["Type"])) != "AWS::CloudWatch::Alarm" {
            continue;
        }
        if text(at(resource, &["Properties", "Namespace"])) == "!Ref MetricsNamespace" {
            let metric = text(at(resource, &["Properties", "MetricName"]));
            assert!(emitted.contains(&metric), "alarm {name:?} watches {metric}, which the code does not emit");
            checked += 1;
        }
    }
    assert_eq!(checked, 5, "signature rejections, invalid requests, quarantined, expiry and disabled alarms");
}
