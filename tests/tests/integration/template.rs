//! template.yaml against the code: route, binaries, environment variables, IAM actions, table
//! key schema, defaults and the metrics the alarms watch. Each check fails if either side drifts.

use protime_webhooks::contract::{
    self, PUBLISHER, PUBLISHER_ENV, RECEIVER, RECEIVER_ENV, RENEWER, RENEWER_ENV, SYNCER, SYNCER_ENV,
};
use protime_webhooks::observability::metrics::{MetricDoc, Metrics};
use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The function resources, each with the binary it runs.
const FUNCTIONS: &[(&str, &str)] = &[
    ("ReceiverFunction", contract::RECEIVER_BINARY),
    ("RenewerFunction", contract::RENEWER_BINARY),
    ("SyncerFunction", contract::SYNCER_BINARY),
    ("PublisherFunction", contract::PUBLISHER_BINARY),
];

/// The publisher's statements for what Lambda's event source mapping does on its behalf (read
/// the stream, send a batch given up on): no code calls them, so they are checked apart.
const MAPPING_STATEMENTS: &[&str] = &["ReadTableStream", "SendFailedBatches"];

/// The scheduled functions: (resource, schedule parameter, dead-letter queue).
const SCHEDULED: &[(&str, &str, &str)] = &[
    ("RenewerFunction", "ScheduleExpression", "RenewerDeadLetterQueue"),
    ("SyncerFunction", "SyncSchedule", "SyncerDeadLetterQueue"),
];

pub(crate) fn template() -> Value {
    let text = std::fs::read_to_string(harness::workspace_root().join("template.yaml")).expect("template.yaml");
    serde_norway::from_str(&text).expect("template.yaml is YAML")
}

pub(crate) fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| v.get(*k).unwrap_or_else(|| panic!("template has no {}", path.join("."))))
}

pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(t) => format!("!{} {}", t.tag.to_string().trim_start_matches('!'), text(&t.value)),
        other => serde_norway::to_string(other).unwrap(),
    }
}

pub(crate) fn function(name: &str) -> Value {
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

/// Every statement of a function's policies, unconditional ones as they are and conditional
/// ones (`!If [CONDITION, STATEMENT, !Ref AWS::NoValue]`) as (condition, statement).
pub(crate) fn all_statements(function: &Value) -> Vec<(Option<String>, Value)> {
    at(function, &["Properties", "Policies"])
        .as_sequence()
        .expect("policies")
        .iter()
        .flat_map(|p| at(p, &["Statement"]).as_sequence().expect("statements").clone())
        .map(|s| match &s {
            Value::Tagged(t) if t.tag == "If" => {
                let branches = t.value.as_sequence().expect("!If [condition, then, else]");
                assert_eq!(text(&branches[2]), "!Ref AWS::NoValue", "a conditional statement grants or is absent");
                (Some(text(&branches[0])), branches[1].clone())
            }
            _ => (None, s),
        })
        .collect()
}

/// The statements every deployment grants.
fn statements(function: &Value) -> Vec<Value> {
    all_statements(function).into_iter().filter(|(c, _)| c.is_none()).map(|(_, s)| s).collect()
}

/// A statement's resources, one or a list, as written.
pub(crate) fn resources(statement: &Value) -> Vec<String> {
    match at(statement, &["Resource"]).as_sequence() {
        Some(list) => list.iter().map(text).collect(),
        None => vec![text(at(statement, &["Resource"]))],
    }
}

/// The quarantine's object prefixes, one per collection, as the quarantine names its objects.
fn quarantine_prefixes() -> BTreeSet<String> {
    use protime_webhooks::records::quarantine::object_key;
    protime_webhooks::Collection::ALL
        .iter()
        .map(|&c| {
            let key = object_key(c, chrono::Utc::now(), "u");
            let prefix = key.split('/').next().expect("a prefix");
            format!("!Sub ${{QuarantineBucket.Arn}}/{prefix}/*")
        })
        .collect()
}

fn actions(function: &Value) -> BTreeSet<String> {
    statements(function)
        .iter()
        .filter(|s| !MAPPING_STATEMENTS.contains(&text(at(s, &["Sid"])).as_str()))
        .flat_map(|s| at(s, &["Action"]).as_sequence().expect("actions").iter().map(text).collect::<Vec<_>>())
        .collect()
}

/// The actions of the statements granted under `condition`.
fn actions_if(function: &Value, condition: &str) -> BTreeSet<String> {
    all_statements(function)
        .into_iter()
        .filter(|(c, _)| c.as_deref() == Some(condition))
        .flat_map(|(_, s)| at(&s, &["Action"]).as_sequence().expect("actions").iter().map(text).collect::<Vec<_>>())
        .collect()
}

/// The credentials secret the stack creates holds what the functions read as not configured yet
/// (and the tests' copy of it is that value).
#[test]
fn the_created_credentials_secret_is_a_stack_not_configured_yet() {
    let t = template();
    let created = text(at(&t, &["Resources", "ProtimeCredentialsSecret", "Properties", "SecretString"]));
    assert_eq!(created, harness::PLACEHOLDER_CREDENTIALS);
    let credentials = protime_webhooks::protime::ProtimeCredentials::from_json(&created).expect("valid JSON");
    assert!(credentials.is_placeholder());
}

/// One setting for every function's log level (Lambda's ApplicationLogLevel), INFO by default.
#[test]
fn every_function_logs_at_the_log_level_parameter() {
    let t = template();
    assert_eq!(text(at(&t, &["Parameters", "LogLevel", "Default"])), "INFO");
    for (resource, _) in FUNCTIONS {
        let level = at(&function(resource), &["Properties", "LoggingConfig", "ApplicationLogLevel"]).clone();
        assert_eq!(text(&level), "!Ref LogLevel", "{resource}");
    }
}

#[test]
fn the_route_and_binaries_match_the_code() {
    let receiver = function("ReceiverFunction");
    let event = at(&receiver, &["Properties", "Events", "Webhook"]);
    assert_eq!(text(at(event, &["Type"])), "HttpApi");
    assert_eq!(text(at(event, &["Properties", "Method"])), contract::ROUTE_METHOD);
    assert_eq!(text(at(event, &["Properties", "Path"])), contract::ROUTE_PATH);
    for (resource, binary) in FUNCTIONS {
        assert_eq!(text(at(&function(resource), &["Metadata", "BuildProperties", "Binary"])), *binary, "{resource}");
    }
    for (krate, binary) in [
        ("functions/receiver", contract::RECEIVER_BINARY),
        ("functions/renewer", contract::RENEWER_BINARY),
        ("functions/syncer", contract::SYNCER_BINARY),
        ("functions/publisher", contract::PUBLISHER_BINARY),
    ] {
        let manifest = std::fs::read_to_string(harness::workspace_root().join(krate).join("Cargo.toml")).unwrap();
        assert!(manifest.contains(&format!("[[bin]]\nname = \"{binary}\"")), "{krate} builds {binary}");
    }
    let globals = at(&template(), &["Globals", "Function"]).clone();
    assert_eq!(text(at(&globals, &["Runtime"])), "provided.al2023");
    assert_eq!(text(at(&globals, &["Handler"])), "bootstrap");
    assert_eq!(text(&at(&globals, &["Architectures"]).as_sequence().unwrap()[0]), "arm64");
    for (name, _) in FUNCTIONS {
        assert_eq!(text(at(&function(name), &["Metadata", "BuildMethod"])), "rust-cargolambda");
        assert_eq!(text(at(&function(name), &["Properties", "LoggingConfig", "LogFormat"])), "JSON");
    }
}

#[test]
fn every_variable_the_template_sets_is_read_and_every_required_one_is_set() {
    for (resource, declared) in [
        ("ReceiverFunction", RECEIVER_ENV),
        ("RenewerFunction", RENEWER_ENV),
        ("SyncerFunction", SYNCER_ENV),
        ("PublisherFunction", PUBLISHER_ENV),
    ] {
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
fn the_syncer_sets_every_variable_but_the_local_overrides_and_the_code_defaults() {
    // Left to the code: the simulator's endpoints and the deadline margin.
    let unset = ["PROTIME_API_BASE_URL", "PROTIME_TOKEN_URL", "SYNC_DEADLINE_MARGIN_SECONDS"];
    let expected: BTreeSet<String> =
        SYNCER_ENV.iter().map(|(n, _)| n.to_string()).filter(|n| !unset.contains(&n.as_str())).collect();
    assert_eq!(env_keys(&function("SyncerFunction")), expected);
}

#[test]
fn iam_actions_are_exactly_what_each_function_calls() {
    for (resource, declared) in [
        ("ReceiverFunction", RECEIVER),
        ("RenewerFunction", RENEWER),
        ("SyncerFunction", SYNCER),
        ("PublisherFunction", PUBLISHER),
    ] {
        // The code carries release 0.1's keys over only where the stack names their place, and
        // sweeps through byDate or, without it, by a Scan (switches.rs).
        let granted = actions(&function(resource))
            .into_iter()
            .chain(
                ["CarriesLegacyKeys", "HasDateIndex", "ScansToSweep"]
                    .iter()
                    .flat_map(|c| actions_if(&function(resource), c)),
            )
            .collect::<BTreeSet<_>>();
        let wanted: BTreeSet<String> = contract::actions(declared).into_iter().map(str::to_owned).collect();
        assert_eq!(granted, wanted, "{resource}");
    }
}

/// A deployment's table as its statements name it: the table's ARN, its stream's and its date
/// index's.
struct TableRefs {
    parameters: &'static [(&'static str, &'static str)],
    table: &'static str,
    stream: &'static str,
    by_date: &'static str,
}

/// A table the stack creates, and one it takes over (`ExistingTableName`).
const TABLES: [TableRefs; 2] = [
    TableRefs {
        parameters: &[],
        table: "!GetAtt RecordTable.Arn",
        stream: "!GetAtt RecordTable.StreamArn",
        by_date: "!Sub ${RecordTable.Arn}/index/byDate",
    },
    TableRefs {
        parameters: &[("ExistingTableName", "kept"), ("ExistingTableStreamLabel", "2026-12-07T16:00:00.000")],
        table: "!Sub arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${ExistingTableName}",
        stream: "!Sub arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${ExistingTableName}/stream/${ExistingTableStreamLabel}",
        by_date: "!Sub arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${ExistingTableName}/index/byDate",
    },
];

#[test]
fn no_statement_grants_a_wildcard_resource_or_action() {
    for refs in &TABLES {
        let deployed = super::switches::Deployed::with(refs.parameters);
        for (resource, _) in FUNCTIONS {
            no_wildcard_in(resource, deployed.resource(resource), refs);
        }
    }
}

/// The statements of `function` (the template's `resource`) name no wildcard, and the table's
/// resources exactly.
fn no_wildcard_in(resource: &str, function: &Value, refs: &TableRefs) {
    let TableRefs { table, stream, by_date, .. } = *refs;
    for statement in statements(function) {
        let targets = resources(&statement);
        let sid = text(at(&statement, &["Sid"]));
        if sid == "QuarantineUnstorableBodies" {
            // Only PutObject, under the collections' prefixes: never `pages/`, whose delta
            // pages the syncer and the renewer trust.
            assert_eq!(targets.iter().cloned().collect::<BTreeSet<_>>(), quarantine_prefixes(), "{resource}");
            assert_eq!(text(action_list(&statement)), "- s3:PutObject\n");
            continue;
        }
        if sid == "KeepFetchedPages" {
            // Only the kept pages: keeping, reading and deleting them.
            let pages = format!("!Sub ${{QuarantineBucket.Arn}}/{}*", protime_webhooks::sync::kept::KEPT_PAGES_PREFIX);
            assert_eq!(targets, [pages], "{resource}");
            assert_eq!(text(action_list(&statement)), "- s3:PutObject\n- s3:GetObject\n- s3:DeleteObject\n");
            continue;
        }
        for target in &targets {
            assert_ne!(target.trim(), "*", "{resource}: {statement:?}");
            assert!(!target.contains('*'), "{resource} {sid}: {target}");
            if sid == "ReadTableStream" {
                assert_eq!(target, stream, "the table's stream only");
            } else if sid == "SweepReadsTheDateIndex" {
                // One index, and only Query on it.
                assert_eq!(target, by_date);
                assert_eq!(text(action_list(&statement)), "- dynamodb:Query\n");
            } else if text(action_list(&statement)).contains("dynamodb:") {
                assert_eq!(target, table, "{sid}");
            }
        }
        for action in at(&statement, &["Action"]).as_sequence().unwrap() {
            assert!(!text(action).contains('*'), "{resource}: {}", text(action));
        }
        if sid.ends_with("SigningKeys") && !sid.ends_with("LegacySigningKeys") {
            // The one signing-keys secret the stack creates.
            assert_eq!(targets, ["!Ref SigningKeysSecret"], "{resource} {sid}");
        } else if sid.ends_with("LegacySigningKeys") {
            // Release 0.1's: exactly one secret per collection, no pattern that could match
            // another secret.
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

/// DynamoDB does not check a condition's key for us in moto (permissions.rs cannot), so this
/// does: every statement that writes the table names, in `dynamodb:LeadingKeys`, exactly the
/// partition keys the function's code writes (`contract::write_keys`), and reads stay unconditioned.
#[test]
fn each_functions_table_writes_are_limited_to_the_keys_its_code_writes() {
    for (resource, declared) in [
        ("ReceiverFunction", RECEIVER),
        ("RenewerFunction", RENEWER),
        ("SyncerFunction", SYNCER),
        ("PublisherFunction", PUBLISHER),
    ] {
        let writing: Vec<Value> = all_statements(&function(resource))
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| {
                action_list(s).as_sequence().unwrap().iter().any(|a| contract::TABLE_WRITES.contains(&text(a).as_str()))
            })
            .collect();
        let wanted: BTreeSet<String> = contract::write_keys(declared);
        if wanted.is_empty() {
            assert!(writing.is_empty(), "{resource} writes no item");
            continue;
        }
        assert_eq!(writing.len(), 1, "{resource}: one write statement");
        let statement = &writing[0];
        let sid = text(at(statement, &["Sid"]));
        for action in action_list(statement).as_sequence().unwrap() {
            assert!(contract::TABLE_WRITES.contains(&text(action).as_str()), "{resource} {sid}: reads apart");
        }
        let condition = at(statement, &["Condition"]).as_mapping().unwrap();
        assert_eq!(condition.len(), 1, "{resource} {sid}: {condition:?}");
        let like = at(statement, &["Condition", "ForAllValues:StringLike"]).as_mapping().unwrap();
        assert_eq!(like.len(), 1, "{resource} {sid}: {like:?}");
        let keys: BTreeSet<String> = at(statement, &["Condition", "ForAllValues:StringLike", "dynamodb:LeadingKeys"])
            .as_sequence()
            .unwrap()
            .iter()
            .map(text)
            .collect();
        assert_eq!(keys, wanted, "{resource} {sid}");
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
    // SSE-S3 as deployed by default (under DataKmsKeyArn when it is set: switches.rs).
    let deployed = super::switches::Deployed::with(&[]);
    let encryption = at(deployed.resource("QuarantineBucket"), &["Properties", "BucketEncryption"]);
    let sse = &at(encryption, &["ServerSideEncryptionConfiguration"]).as_sequence().unwrap()[0];
    assert_eq!(text(at(sse, &["ServerSideEncryptionByDefault", "SSEAlgorithm"])), "AES256");
    let rule = &at(&bucket, &["LifecycleConfiguration", "Rules"]).as_sequence().unwrap()[0];
    assert_eq!(text(at(rule, &["ExpirationInDays"])), "!Ref QuarantineRetentionDays");
    assert_eq!(text(at(&t, &["Parameters", "QuarantineRetentionDays", "Default"])), "90");
    let policy = at(&t, &["Resources", "QuarantineBucketPolicy", "Properties", "PolicyDocument"]).clone();
    let deny = &at(&policy, &["Statement"]).as_sequence().unwrap()[0];
    assert_eq!(text(at(deny, &["Effect"])), "Deny");
    assert_eq!(text(at(deny, &["Condition", "Bool", "aws:SecureTransport"])), "false");
    // Only the three function roles may put objects: a replay trusts nothing else.
    let only = &at(&policy, &["Statement"]).as_sequence().unwrap()[1];
    assert_eq!(text(at(only, &["Sid"])), "OnlyTheFunctionsPutObjects");
    assert_eq!((text(at(only, &["Effect"])), text(at(only, &["Principal"]))), ("Deny".into(), "*".into()));
    assert_eq!(text(at(only, &["Action"])), "s3:PutObject");
    assert_eq!(text(at(only, &["Resource"])), "!Sub ${QuarantineBucket.Arn}/*");
    let writers: BTreeSet<String> =
        at(only, &["Condition", "ArnNotEquals", "aws:PrincipalArn"]).as_sequence().unwrap().iter().map(text).collect();
    // The publisher never writes there.
    let roles: BTreeSet<String> = FUNCTIONS
        .iter()
        .filter(|(f, _)| *f != "PublisherFunction")
        .map(|(f, _)| format!("!GetAtt {f}Role.Arn"))
        .collect();
    assert_eq!(writers, roles);
    // …and those are exactly the roles whose policies grant PutObject on the bucket.
    let putting: BTreeSet<String> = FUNCTIONS
        .iter()
        .filter(|(f, _)| actions(&function(f)).contains("s3:PutObject"))
        .map(|(f, _)| format!("!GetAtt {f}Role.Arn"))
        .collect();
    assert_eq!(putting, roles);
}

#[test]
fn each_schedule_may_write_to_its_dead_letter_queue() {
    for (resource, _, queue) in SCHEDULED {
        let policy = at(&template(), &["Resources", &format!("{queue}Policy"), "Properties"]).clone();
        assert_eq!(text(&at(&policy, &["Queues"]).as_sequence().unwrap()[0]), format!("!Ref {queue}"));
        let statement = &at(&policy, &["PolicyDocument", "Statement"]).as_sequence().unwrap()[0];
        assert_eq!(text(at(statement, &["Principal", "Service"])), "events.amazonaws.com");
        assert_eq!(text(at(statement, &["Action"])), "sqs:SendMessage");
        assert_eq!(text(at(statement, &["Resource"])), format!("!GetAtt {queue}.Arn"));
        assert_eq!(
            text(at(statement, &["Condition", "ArnEquals", "aws:SourceArn"])),
            format!("!GetAtt {resource}Schedule.Arn")
        );
    }
}

#[test]
fn scheduled_functions_reserve_concurrency_only_when_asked_and_dead_letter_what_fails() {
    let t = template();
    for (resource, schedule, queue) in SCHEDULED {
        let f = function(resource);
        // Reserved only when asked (a new account's quota of 10 cannot reserve any); the leases
        // keep runs apart either way.
        assert_eq!(
            text(at(&f, &["Properties", "ReservedConcurrentExecutions"])),
            "!If - ReservesScheduledConcurrency\n- !Ref ScheduledReservedConcurrency\n- !Ref AWS::NoValue\n",
            "{resource}"
        );
        assert_eq!(text(at(&f, &["Properties", "Timeout"])), "900", "{resource}");
        let event = at(&f, &["Properties", "Events", "Schedule"]);
        assert_eq!(text(at(event, &["Type"])), "Schedule");
        assert_eq!(text(at(event, &["Properties", "Schedule"])), format!("!Ref {schedule}"), "{resource}");
        assert_eq!(text(at(event, &["Properties", "DeadLetterConfig", "Arn"])), format!("!GetAtt {queue}.Arn"));
        let retries = at(event, &["Properties", "RetryPolicy", "MaximumRetryAttempts"]);
        assert_eq!(text(retries), "2", "{resource}");
        let invoke = at(&f, &["Properties", "EventInvokeConfig"]);
        assert_eq!(text(at(invoke, &["MaximumRetryAttempts"])), "2", "{resource}");
        assert_eq!(text(at(invoke, &["DestinationConfig", "OnFailure", "Type"])), "SQS");
        assert_eq!(
            text(at(invoke, &["DestinationConfig", "OnFailure", "Destination"])),
            format!("!GetAtt {queue}.Arn")
        );
        assert!(text(at(&t, &["Parameters", schedule, "Default"])).starts_with("rate("), "{schedule}");
    }
    assert_eq!(text(at(&t, &["Parameters", "SyncSchedule", "Default"])), "rate(15 minutes)");
    assert_eq!(text(at(&t, &["Parameters", "ScheduledReservedConcurrency", "Default"])), "0");
    assert_eq!(
        text(at(&t, &["Conditions", "ReservesScheduledConcurrency"])),
        "!Equals - !Ref ScheduledReservedConcurrency\n- 1\n"
    );
}

/// Every collection's key is in one secret: a deployment keeps at most two (that one and the
/// credentials), and no function may create another.
#[test]
fn a_deployment_keeps_at_most_two_secrets_whatever_its_collections() {
    let t = template();
    let secrets: Vec<String> = at(&t, &["Resources"])
        .as_mapping()
        .expect("resources")
        .iter()
        .filter(|(_, r)| text(at(r, &["Type"])) == "AWS::SecretsManager::Secret")
        .map(|(name, _)| text(name))
        .collect();
    assert_eq!(secrets, ["ProtimeCredentialsSecret", "SigningKeysSecret"]);
    for resource in ["ReceiverFunction", "RenewerFunction", "SyncerFunction", "PublisherFunction"] {
        assert!(!actions(&function(resource)).contains("secretsmanager:CreateSecret"), "{resource}");
    }
}

#[test]
fn the_syncer_reads_the_credentials_secret_and_the_signing_keys_only_for_the_field_hash_key() {
    let renewer = function("RenewerFunction");
    let credentials = text(at(&renewer, &["Properties", "Environment", "Variables", "PROTIME_CREDENTIALS_SECRET"]));
    let syncer = function("SyncerFunction");
    assert_eq!(
        text(at(&syncer, &["Properties", "Environment", "Variables", "PROTIME_CREDENTIALS_SECRET"])),
        credentials
    );
    let secrets: Vec<Value> =
        statements(&syncer).into_iter().filter(|s| text(action_list(s)).contains("secretsmanager:")).collect();
    assert_eq!(secrets.len(), 1, "one statement for Secrets Manager");
    assert_eq!(text(action_list(&secrets[0])), "- secretsmanager:GetSecretValue\n");
    assert_eq!(text(at(&secrets[0], &["Resource"])), credentials, "the credentials secret only");
    assert!(!serde_norway::to_string(&syncer).unwrap().contains("SigningKeySecretPrefix"));
    // The signing-keys secret only when FieldPolicy hashes, for its field hash key: read only.
    let hash_key: Vec<Value> = all_statements(&syncer)
        .into_iter()
        .filter(|(_, s)| text(at(s, &["Resource"])) == "!Ref SigningKeysSecret")
        .map(|(condition, s)| {
            assert_eq!(condition.as_deref(), Some("HashesFields"));
            s
        })
        .collect();
    assert_eq!(hash_key.len(), 1);
    assert_eq!(text(action_list(&hash_key[0])), "- secretsmanager:GetSecretValue\n");
}

#[test]
fn a_customer_managed_credentials_key_is_decrypted_by_exactly_the_functions_that_read_the_secret() {
    let t = template();
    assert_eq!(text(at(&t, &["Parameters", "ProtimeCredentialsKmsKeyArn", "Default"])), "");
    assert_eq!(
        text(at(&t, &["Conditions", "HasCredentialsKmsKey"])),
        "!Not - !Equals\n  - !Ref ProtimeCredentialsKmsKeyArn\n  - ''\n"
    );
    for (resource, _) in FUNCTIONS {
        let conditional: Vec<(Option<String>, Value)> = all_statements(&function(resource))
            .into_iter()
            .filter(|(c, _)| c.as_deref() == Some("HasCredentialsKmsKey"))
            .collect();
        if matches!(*resource, "ReceiverFunction" | "PublisherFunction") {
            assert!(conditional.is_empty(), "{resource} never reads the credentials");
            continue;
        }
        assert_eq!(conditional.len(), 1, "{resource}");
        let (condition, statement) = &conditional[0];
        assert_eq!(condition.as_deref(), Some("HasCredentialsKmsKey"), "{resource}");
        assert_eq!(text(at(statement, &["Sid"])), "DecryptProtimeCredentials");
        assert_eq!(text(action_list(statement)), "- kms:Decrypt\n", "{resource}: decrypt only");
        assert_eq!(text(at(statement, &["Resource"])), "!Ref ProtimeCredentialsKmsKeyArn", "{resource}: that key only");
        assert_eq!(
            text(at(statement, &["Condition", "StringEquals", "kms:ViaService"])),
            "!Sub secretsmanager.${AWS::Region}.amazonaws.com",
            "{resource}: through Secrets Manager only"
        );
    }
    let secret = at(&t, &["Resources", "ProtimeCredentialsSecret", "Properties", "KmsKeyId"]);
    assert_eq!(text(secret), "!If - HasCredentialsKmsKey\n- !Ref ProtimeCredentialsKmsKeyArn\n- !Ref AWS::NoValue\n");
}

fn action_list(statement: &Value) -> &Value {
    at(statement, &["Action"])
}

#[test]
fn the_table_key_schema_is_the_one_the_store_writes() {
    // As deployed by default (the indexes are ReadIndexes' to choose: switches.rs).
    let table = super::switches::Deployed::with(&[]).resource("RecordTable").clone();
    let keys = at(&table, &["Properties", "KeySchema"]).as_sequence().unwrap().clone();
    assert_eq!(keys.len(), 1, "one partition key, no sort key");
    assert_eq!(text(at(&keys[0], &["AttributeName"])), contract::TABLE_PARTITION_KEY);
    assert_eq!(text(at(&keys[0], &["KeyType"])), "HASH");
    let attributes = at(&table, &["Properties", "AttributeDefinitions"]).as_sequence().unwrap().clone();
    assert_eq!(text(at(&attributes[0], &["AttributeType"])), "S");
    assert_eq!(text(at(&table, &["DeletionPolicy"])), "Retain");
    assert_eq!(text(at(&table, &["Properties", "BillingMode"])), "PAY_PER_REQUEST");
    let indexes = at(&table, &["Properties", "GlobalSecondaryIndexes"]).as_sequence().unwrap().clone();
    assert_eq!(indexes.len(), contract::TABLE_INDEXES.len());
    let attribute_names: Vec<String> = attributes.iter().map(|a| text(at(a, &["AttributeName"]))).collect();
    for (index, expected) in indexes.iter().zip(contract::TABLE_INDEXES) {
        assert_eq!(text(at(index, &["IndexName"])), expected.name);
        let keys = at(index, &["KeySchema"]).as_sequence().unwrap();
        let schema: Vec<(String, String)> =
            keys.iter().map(|k| (text(at(k, &["AttributeName"])), text(at(k, &["KeyType"])))).collect();
        let wanted =
            [(expected.partition_key, "HASH"), (expected.sort_key, "RANGE")].map(|(a, k)| (a.to_owned(), k.to_owned()));
        assert_eq!(schema, wanted, "{}", expected.name);
        for key in [expected.partition_key, expected.sort_key] {
            assert!(attribute_names.iter().any(|a| a == key), "{key} is defined");
        }
        assert_eq!(text(at(index, &["Projection", "ProjectionType"])), contract::INDEX_PROJECTION);
    }
    assert!(attributes.iter().all(|a| text(at(a, &["AttributeType"])) == "S"));
}

#[test]
fn parameter_defaults_match_the_code_defaults() {
    let t = template();
    assert_eq!(
        text(at(&t, &["Parameters", "SigningKeySecretPrefix", "Default"])),
        "",
        "a new stack has no 0.1 keys to carry over, nor any permission on them"
    );
    assert_eq!(
        text(at(&t, &["Parameters", "MaxBodyBytes", "Default"])),
        protime_webhooks::config::DEFAULT_MAX_BODY_BYTES.to_string()
    );
    // Empty: ProtimeWebhooks/<stack>, so two stacks never mix metrics; the code's default (the
    // local stack's) is ProtimeWebhooks.
    assert_eq!(text(at(&t, &["Parameters", "MetricsNamespace", "Default"])), "");
    for name in ["ReceiverFunction", "RenewerFunction", "SyncerFunction", "PublisherFunction"] {
        let namespace = at(&function(name), &["Properties", "Environment", "Variables", "METRICS_NAMESPACE"]).clone();
        assert!(is_ours(&namespace), "{name}");
        assert!(text(&namespace).contains(protime_webhooks::observability::metrics::DEFAULT_NAMESPACE));
        assert!(text(&namespace).contains("${AWS::StackName}"), "{name}: derived from the stack");
    }
}

/// The namespace of the functions' metrics, as the template writes it (`MetricsNamespace`, or
/// ProtimeWebhooks/<stack> when it is empty), or either branch once deployed.
pub(crate) fn is_ours(namespace: &Value) -> bool {
    let written = text(namespace);
    let ours =
        text(at(&function("ReceiverFunction"), &["Properties", "Environment", "Variables", "METRICS_NAMESPACE"]));
    written == ours || written == "!Ref MetricsNamespace" || written == "!Sub ProtimeWebhooks/${AWS::StackName}"
}

#[test]
fn the_syncer_parameter_defaults_are_the_code_defaults() {
    use protime_webhooks::config::SyncerConfig;
    let t = template();
    let syncer = function("SyncerFunction");
    let variables = at(&syncer, &["Properties", "Environment", "Variables"]).as_mapping().unwrap().clone();
    // Every syncer setting taken from a parameter, given that parameter's default.
    let mut defaults: Vec<(String, String)> =
        vec![("TABLE_NAME".into(), "t".into()), ("PROTIME_CREDENTIALS_SECRET".into(), "c".into())];
    for (name, value) in &variables {
        let name = name.as_str().unwrap();
        let Some(parameter) = text(value).strip_prefix("!Ref ").map(str::to_owned) else { continue };
        if name.starts_with("SYNC_") || name == "SWEEP_LIMIT" {
            defaults.push((name.to_owned(), text(at(&t, &["Parameters", &parameter, "Default"]))));
        }
    }
    let names: BTreeSet<&str> = defaults.iter().map(|(n, _)| n.as_str()).collect();
    for name in ["SYNC_FROM", "SYNC_CONCURRENCY", "SYNC_MAX_PAGES_PER_RUN", "SWEEP_LIMIT"] {
        assert!(names.contains(name), "{name} comes from a parameter");
    }
    let from_template = SyncerConfig::from_lookup(|n| defaults.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()));
    let from_code = SyncerConfig::from_lookup(|n| match n {
        "TABLE_NAME" => Some("t".into()),
        "PROTIME_CREDENTIALS_SECRET" => Some("c".into()),
        _ => None,
    });
    assert_eq!(from_template.unwrap(), from_code.unwrap());
}

fn quarantined_records() -> protime_webhooks::sync::apply::RecordCounts {
    let mut records = protime_webhooks::sync::apply::RecordCounts { quarantined: 1, ..Default::default() };
    records.quarantined_by.add("item_too_large", 1);
    records
}

/// The metric documents every function publishes for representative runs: a request refused,
/// one quarantined, a renewer run, a syncer run with everything an alarm watches, a publish
/// with failures.
pub(crate) fn published_docs(metrics: &Metrics) -> Vec<MetricDoc> {
    use protime_webhooks::receiver::{request_metrics, ReceiveError};
    use protime_webhooks::renewer::{run_metrics, RunReport};
    let mut docs = Vec::new();
    let rejected =
        Err(ReceiveError::Unauthorized(protime_webhooks::signing::signature::SignatureError::Mismatch.into()));
    docs.extend(request_metrics(metrics, None, &rejected));
    docs.extend(request_metrics(metrics, None, &Err(ReceiveError::NoRoute)));
    docs.extend(request_metrics(metrics, None, &Err(ReceiveError::SignedBodyTooLarge(1))));
    let quarantined = protime_webhooks::receiver::Received {
        collection: protime_webhooks::Collection::Clockings,
        accepted: protime_webhooks::signing::keys::AcceptedKey::Current,
        outcomes: vec![protime_webhooks::receiver::ItemOutcome {
            id: None,
            change_version: None,
            change_type: None,
            outcome: protime_webhooks::receiver::EventOutcome::Quarantined { key: "k".into(), reason: "not_json" },
        }],
        whole_body_quarantined: true,
        store_ms: 0.0,
    };
    docs.extend(request_metrics(metrics, None, &Ok(quarantined)));
    // Every count non-zero: a count of zero is not published, and would go unchecked.
    let written = |outcome, change_type| protime_webhooks::receiver::ItemOutcome {
        id: Some("1".into()),
        change_version: Some("1".into()),
        change_type: Some(change_type),
        outcome: protime_webhooks::receiver::EventOutcome::Written(outcome),
    };
    use protime_webhooks::records::{ChangeType, PutOutcome};
    let stored = protime_webhooks::receiver::Received {
        collection: protime_webhooks::Collection::Clockings,
        accepted: protime_webhooks::signing::keys::AcceptedKey::Previous,
        outcomes: vec![
            written(PutOutcome::Stored, ChangeType::InsertOrUpdate),
            written(PutOutcome::Stored, ChangeType::Delete),
            written(PutOutcome::Duplicate, ChangeType::InsertOrUpdate),
            written(PutOutcome::Stale, ChangeType::InsertOrUpdate),
        ],
        whole_body_quarantined: false,
        store_ms: 1.0,
    };
    docs.extend(request_metrics(metrics, None, &Ok(stored)));
    let unavailable = ReceiveError::StoreUnavailable(protime_webhooks::records::StoreError::Unavailable("down".into()));
    docs.extend(request_metrics(metrics, None, &Err(unavailable)));
    let renewed = |action, ok| protime_webhooks::renewer::SubscriptionReport {
        collection: "people".into(),
        action,
        reason: None,
        ok,
        webhook_id: None,
        valid_until: None,
        hours_until_expiry: Some(700.0),
        resynced: None,
        error: None,
    };
    let stray = protime_webhooks::renewer::StrayReport {
        webhook_id: "w".into(),
        collection: "breaks".into(),
        destination_url: "https://x/webhooks/breaks".into(),
        deleted: false,
        error: None,
    };
    let renewals = vec![
        renewed(protime_webhooks::renewer::plan::ActionKind::Renew, true),
        renewed(protime_webhooks::renewer::plan::ActionKind::Create, false),
    ];
    let report = RunReport::of(renewals, vec![stray]);
    docs.extend(run_metrics(metrics, Some(&report)));
    let subscription = protime_webhooks::renewer::SubscriptionReport {
        collection: "clockings".into(),
        action: protime_webhooks::renewer::plan::ActionKind::Recover,
        reason: None,
        ok: true,
        webhook_id: None,
        valid_until: None,
        hours_until_expiry: Some(700.0),
        resynced: Some(quarantined_records()),
        error: None,
    };
    let report = RunReport::of(vec![subscription], vec![]);
    docs.extend(run_metrics(metrics, Some(&report)));
    // A stack whose credentials secret is not filled in yet.
    docs.extend(run_metrics(metrics, Some(&RunReport::not_configured("why".into()))));
    let unconfigured = protime_webhooks::sync::SyncReport::not_configured("why".into());
    docs.extend(protime_webhooks::sync::sync_metrics(metrics, &unconfigured));
    let collection = protime_webhooks::sync::CollectionReport {
        collection: "clockings".into(),
        // A delta load not complete yet: InitialLoadPending is counted.
        mode: Some(protime_webhooks::sync::state::SyncMode::Delta),
        phase: None,
        outcome: protime_webhooks::sync::Outcome::Error,
        pages: 1,
        records: quarantined_records(),
        cursor_age_seconds: Some(60),
        lag_seconds: Some(60),
        initial_completed_at: None,
        delta_expired: true,
        error_runs: 2,
        verified_at: None,
        drift: Some(protime_webhooks::sync::sweep::Drift { missing: 1, ..Default::default() }),
        reconciling: false,
        sweep: Some(protime_webhooks::sync::SweepVerdict::Held),
        held: Some(protime_webhooks::sync::state::HeldSweep {
            at: chrono::Utc::now(),
            would_sweep: 101,
            limit: 100,
            unreadable_ids: 0,
            sample_ids: vec!["1".into()],
        }),
        pages_set_aside: 1,
        history_failing: None,
        reconcile_failing: None,
        waiting: None,
        error: Some("e".into()),
    };
    let sync = protime_webhooks::sync::SyncReport::of(vec![collection]);
    docs.extend(protime_webhooks::sync::sync_metrics(metrics, &sync));
    let published = protime_webhooks::publisher::PublishReport {
        published: 1,
        suppressed: 1,
        failures: 1,
        data_omitted: 1,
        ..Default::default()
    };
    docs.push(protime_webhooks::publisher::publish_metrics(metrics, &published));
    docs
}

/// Metric name -> the functions (the `Function` dimension) that publish it.
pub(crate) fn emitted(metrics: &Metrics) -> BTreeMap<String, BTreeSet<String>> {
    let mut emitted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for doc in published_docs(metrics) {
        let json = doc.to_json(0);
        for m in json["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
            let function = json["Function"].as_str().unwrap().to_owned();
            emitted.entry(m["Name"].as_str().unwrap().to_owned()).or_default().insert(function);
        }
    }
    emitted
}

/// (alarm, metric, function) for every metric of ours an alarm watches, alone or in math.
fn watched_metrics() -> Vec<(String, String, String)> {
    let t = template();
    let resources = at(&t, &["Resources"]).as_mapping().unwrap();
    let mut watched = Vec::new();
    for (name, resource) in resources {
        if text(at(resource, &["Type"])) != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let properties = at(resource, &["Properties"]);
        let mut metrics: Vec<&Value> = Vec::new();
        if properties.get("Namespace").is_some_and(is_ours) {
            metrics.push(properties);
        }
        if let Some(queries) = properties.get("Metrics").and_then(Value::as_sequence) {
            metrics.extend(
                queries
                    .iter()
                    .filter_map(|q| q.get("MetricStat"))
                    .map(|stat| at(stat, &["Metric"]))
                    .filter(|m| is_ours(at(m, &["Namespace"]))),
            );
        }
        for metric in metrics {
            let dimensions = at(metric, &["Dimensions"]).as_sequence().unwrap();
            let function = dimensions
                .iter()
                .find(|d| text(at(d, &["Name"])) == "Function")
                .map(|d| text(at(d, &["Value"])))
                .unwrap_or_else(|| panic!("alarm {name:?} has no Function dimension"));
            watched.push((text(name), text(at(metric, &["MetricName"])), function));
        }
    }
    watched
}

/// (metric, function) of every metric of ours an alarm watches.
fn alarm_metrics() -> BTreeSet<(String, String)> {
    watched_metrics().into_iter().map(|(_, metric, function)| (metric, function)).collect()
}

#[test]
fn alarms_watch_metrics_the_code_emits() {
    let emitted = emitted(&Metrics::new("Ns"));
    let watched = watched_metrics();
    let mut checked = BTreeSet::new();
    for (name, metric, function) in &watched {
        let Some(functions) = emitted.get(metric) else {
            panic!("alarm {name:?} watches {metric}, which the code does not emit")
        };
        assert!(functions.contains(function), "alarm {name:?}: {metric} is emitted by {functions:?}, not {function}");
        checked.insert(name.clone());
    }
    // Every function that quarantines is watched by the one alarm.
    let quarantined: BTreeSet<&str> =
        watched.iter().filter(|(_, m, _)| m == "Quarantined").map(|(_, _, f)| f.as_str()).collect();
    assert_eq!(quarantined, BTreeSet::from(["receiver", "renewer", "syncer"]));
    let checked = checked.len();
    assert_eq!(
        checked, 13,
        "signature rejections, quarantined, credentials not configured, subscriptions unhealthy, expiry, disabled, sync lag, sync errors, delta expired, drift, sweep held, history failing and publish failures alarms"
    );
}

/// The metrics of ours the dashboard shows: (metric, function), from its widgets' rows.
fn dashboard_metrics() -> BTreeSet<(String, String)> {
    let dashboard = super::switches::Deployed::with(&[]).dashboard();
    let mut shown = BTreeSet::new();
    for widget in dashboard["widgets"].as_array().unwrap() {
        let rows = widget["properties"]["metrics"].as_array().cloned().unwrap_or_default();
        let (mut namespace, mut metric, mut function) = (String::new(), String::new(), String::new());
        for row in rows {
            let cells: Vec<String> =
                row.as_array().unwrap().iter().filter_map(|c| c.as_str().map(str::to_owned)).collect();
            if cells.first().map(String::as_str) == Some("...") {
                continue;
            }
            let cell = |i: usize, before: &str| match cells.get(i).map(String::as_str) {
                Some(".") | None => before.to_owned(),
                Some(value) => value.to_owned(),
            };
            (namespace, metric, function) = (cell(0, &namespace), cell(1, &metric), cell(3, &function));
            assert!(cells.len() <= 4, "a dashboard row of ours is at the function level only: {cells:?}");
            if namespace == "${MetricsNamespace}" {
                shown.insert((metric.clone(), function.clone()));
            }
        }
    }
    shown
}

/// CloudWatch bills every metric (name and dimension values) in each hour it gets a value: by
/// default each function publishes only what an alarm or the dashboard reads, at the function
/// level, whatever the number of collections.
#[test]
fn by_default_every_metric_is_function_level_and_read_by_an_alarm_or_the_dashboard() {
    let t = template();
    assert_eq!(text(at(&t, &["Parameters", "DetailedMetrics", "Default"])), "false");
    for doc in published_docs(&Metrics::new("Ns")) {
        for (metric, dimension_sets) in doc.published() {
            assert_eq!(dimension_sets, [["Function"]], "{metric}: no per-collection (or finer) dimension by default");
        }
    }
    let shown = dashboard_metrics();
    let alarmed = alarm_metrics();
    for (metric, functions) in emitted(&Metrics::new("Ns")) {
        for function in functions {
            let key = (metric.clone(), function.clone());
            assert!(
                shown.contains(&key) || alarmed.contains(&key),
                "{function} publishes {metric}, which no alarm or dashboard reads"
            );
        }
    }
    // Detailed: the same function-level metrics, and a dimension per finer value beside them.
    let detailed = published_docs(&Metrics::detailed("Ns"));
    assert!(detailed
        .iter()
        .flat_map(|d| d.published())
        .any(|(_, sets)| sets.contains(&vec!["Function", "Collection"])));
}

#[test]
fn the_syncer_has_its_alarms() {
    let t = template();
    let alarm = |name: &str| at(&t, &["Resources", name, "Properties"]).clone();
    let dimension = |a: &Value| text(at(&at(a, &["Dimensions"]).as_sequence().unwrap()[0], &["Value"]));
    let failure = alarm("SyncerFailureAlarm");
    assert_eq!(
        (text(at(&failure, &["Namespace"])), text(at(&failure, &["MetricName"]))),
        ("AWS/Lambda".into(), "Errors".into())
    );
    assert_eq!(dimension(&failure), "!Ref SyncerFunction");
    let dead_letters = alarm("SyncerDeadLetterAlarm");
    assert_eq!(dimension(&dead_letters), "!GetAtt SyncerDeadLetterQueue.QueueName");
    let lag = alarm("SyncLagAlarm");
    assert_eq!(text(at(&lag, &["MetricName"])), "SyncLagSeconds");
    assert_eq!(text(at(&lag, &["Statistic"])), "Maximum");
    assert_eq!(text(at(&lag, &["Threshold"])), "!Ref SyncLagAlarmSeconds");
    assert_eq!(text(at(&lag, &["ComparisonOperator"])), "GreaterThanThreshold");
    assert_eq!(text(at(&t, &["Parameters", "SyncLagAlarmSeconds", "Default"])), "2700", "3 x rate(15 minutes)");
    let errors = alarm("SyncErrorRunsAlarm");
    assert_eq!(
        (text(at(&errors, &["MetricName"])), text(at(&errors, &["Statistic"]))),
        ("SyncErrorRuns".into(), "Maximum".into())
    );
    assert_eq!(
        (text(at(&errors, &["Threshold"])), text(at(&errors, &["ComparisonOperator"]))),
        ("2".into(), "GreaterThanOrEqualToThreshold".into())
    );
    let expired = alarm("DeltaExpiredAlarm");
    assert_eq!(
        (text(at(&expired, &["MetricName"])), text(at(&expired, &["Statistic"]))),
        ("DeltaExpired".into(), "Sum".into())
    );
    assert_eq!(
        (text(at(&expired, &["Threshold"])), text(at(&expired, &["ComparisonOperator"]))),
        ("1".into(), "GreaterThanOrEqualToThreshold".into())
    );
    // A held sweep (its maximum) and pages set aside (their sum): any in an hour.
    for (name, metric, statistic) in
        [("SweepHeldAlarm", "SweepHeld", "Maximum"), ("HistoryFailingAlarm", "PagesSetAside", "Sum")]
    {
        let a = alarm(name);
        assert_eq!((text(at(&a, &["MetricName"])), text(at(&a, &["Statistic"]))), (metric.into(), statistic.into()));
        assert_eq!(dimension(&a), "syncer", "{name}");
        assert_eq!((text(at(&a, &["Period"])), text(at(&a, &["EvaluationPeriods"]))), ("3600".into(), "1".into()));
        assert_eq!(
            (text(at(&a, &["Threshold"])), text(at(&a, &["ComparisonOperator"]))),
            ("1".into(), "GreaterThanOrEqualToThreshold".into())
        );
        assert_eq!(text(at(&a, &["TreatMissingData"])), "notBreaching", "{name}");
    }
    // The sweep's bound: the code's default, passed as SWEEP_LIMIT (checked with the other
    // defaults in the_syncer_parameter_defaults_are_the_code_defaults).
    let limit = at(&t, &["Parameters", "SweepLimit"]);
    assert_eq!((text(at(limit, &["Type"])), text(at(limit, &["MinValue"]))), ("Number".into(), "0".into()));
    let variables = at(&function("SyncerFunction"), &["Properties", "Environment", "Variables"]).clone();
    assert_eq!(text(at(&variables, &["SWEEP_LIMIT"])), "!Ref SweepLimit");
    // The same actions as every other alarm.
    let actions = text(at(&alarm("RenewerFailureAlarm"), &["AlarmActions"]));
    for name in [
        "SyncerFailureAlarm",
        "SyncerDeadLetterAlarm",
        "SyncLagAlarm",
        "SyncErrorRunsAlarm",
        "DeltaExpiredAlarm",
        "DriftAlarm",
        "SweepHeldAlarm",
        "HistoryFailingAlarm",
    ] {
        assert_eq!(text(at(&alarm(name), &["AlarmActions"])), actions, "{name}");
    }
    for output in ["SyncerFunctionName", "SyncerDeadLetterQueueUrl"] {
        at(&t, &["Outputs", output, "Value"]);
    }
}

#[test]
fn the_change_feed_reads_the_tables_stream_and_reports_batch_item_failures() {
    let t = template();
    let table = at(super::switches::Deployed::with(&[]).resource("RecordTable"), &["Properties"]).clone();
    assert_eq!(text(at(&table, &["StreamSpecification", "StreamViewType"])), "NEW_AND_OLD_IMAGES");
    let mapping = super::switches::Deployed::with(&[]).resource("PublisherStreamMapping").clone();
    assert_eq!(text(at(&mapping, &["Type"])), "AWS::Lambda::EventSourceMapping");
    let m = at(&mapping, &["Properties"]);
    assert_eq!(text(at(m, &["EventSourceArn"])), "!GetAtt RecordTable.StreamArn");
    assert_eq!(text(at(m, &["FunctionName"])), "!Ref PublisherFunction");
    assert_eq!(text(at(m, &["FunctionResponseTypes"])), "- ReportBatchItemFailures\n");
    assert_eq!(text(at(m, &["BisectBatchOnFunctionError"])), "true");
    // Retried until the stream record expires (24 h): a throttled PutEvents never dead-letters.
    assert_eq!(text(at(m, &["MaximumRetryAttempts"])), "-1");
    assert_eq!(text(at(m, &["MaximumRecordAgeInSeconds"])), "-1");
    assert_eq!(text(at(m, &["ParallelizationFactor"])), "1", "one batch per shard at a time: per-record order");
    assert_eq!(text(at(m, &["StartingPosition"])), "TRIM_HORIZON");
    let batch: u32 = text(at(m, &["BatchSize"])).parse().unwrap();
    assert!((1..=1000).contains(&batch), "{batch}");
    assert_eq!(text(at(m, &["DestinationConfig", "OnFailure", "Destination"])), "!GetAtt PublisherDeadLetterQueue.Arn");
    // The mapping is not a SAM event: SAM would attach a managed policy for every stream.
    assert!(at(&function("PublisherFunction"), &["Properties"]).get("Events").is_none());

    let publisher = function("PublisherFunction");
    assert_eq!(text(at(&publisher, &["Properties", "Environment", "Variables", "EVENT_BUS_NAME"])), "!Ref ChangeBus");
    let by_sid = |sid: &str| {
        statements(&publisher).into_iter().find(|s| text(at(s, &["Sid"])) == sid).unwrap_or_else(|| panic!("{sid}"))
    };
    let put = by_sid("PutChangeEvents");
    assert_eq!(
        (text(action_list(&put)), text(at(&put, &["Resource"]))),
        ("- events:PutEvents\n".into(), "!GetAtt ChangeBus.Arn".into())
    );
    let stream = by_sid("ReadTableStream");
    assert_eq!(
        text(action_list(&stream)),
        "- dynamodb:DescribeStream\n- dynamodb:GetRecords\n- dynamodb:GetShardIterator\n- dynamodb:ListStreams\n"
    );
    let failed = by_sid("SendFailedBatches");
    assert_eq!(
        (text(action_list(&failed)), text(at(&failed, &["Resource"]))),
        ("- sqs:SendMessage\n".into(), "!GetAtt PublisherDeadLetterQueue.Arn".into())
    );
    assert_eq!(text(at(&t, &["Resources", "ChangeBus", "Type"])), "AWS::Events::EventBus");
    assert_eq!(text(at(&t, &["Outputs", "ChangeBusName", "Value"])), "!Ref ChangeBus");
    let archive = at(&t, &["Resources", "ChangeArchive"]);
    assert_eq!(text(at(archive, &["Condition"])), "HasChangeArchive");
    assert_eq!(text(at(archive, &["Properties", "SourceArn"])), "!GetAtt ChangeBus.Arn");
    assert_eq!(text(at(&t, &["Parameters", "ChangeArchiveRetentionDays", "Default"])), "0");
    assert_eq!(text(at(&t, &["Parameters", "PublishUnchanged", "Default"])), "false");
    let config =
        protime_webhooks::config::PublisherConfig::from_lookup(|k| (k == "EVENT_BUS_NAME").then(|| "b".into()))
            .unwrap();
    assert!(!config.publish_unchanged, "the template's default is the code's");
}

#[test]
fn the_change_feed_has_its_alarms() {
    let t = template();
    let alarm = |name: &str| at(&t, &["Resources", name, "Properties"]).clone();
    let failures = alarm("PublishFailuresAlarm");
    assert_eq!(text(at(&failures, &["MetricName"])), "PublishFailures");
    let failed = protime_webhooks::publisher::PublishReport { failures: 1, ..Default::default() };
    let emitted = protime_webhooks::publisher::publish_metrics(&Metrics::new("Ns"), &failed).to_json(0);
    assert!(emitted.get("PublishFailures").is_some(), "the code emits what the alarm watches");
    assert_eq!(text(at(&failures, &["Dimensions"])), "- Name: Function\n  Value: publisher\n");
    let age = alarm("StreamIteratorAgeAlarm");
    assert_eq!(
        (text(at(&age, &["Namespace"])), text(at(&age, &["MetricName"]))),
        ("AWS/Lambda".into(), "IteratorAge".into())
    );
    let dead = alarm("PublisherDeadLetterAlarm");
    assert_eq!(
        text(at(&dead, &["Dimensions"])),
        "- Name: QueueName\n  Value: !GetAtt PublisherDeadLetterQueue.QueueName\n"
    );
}
