//! The template's switches, `ChangeFeed`, `ReadIndexes` and `DataKmsKeyArn`: the stack each value deploys — the
//! template's conditions evaluated as CloudFormation evaluates them, resources whose condition
//! is false left out, every `!If` resolved — holds exactly that choice's resources, permissions
//! and settings, and the code reads the setting the template passes.

use super::template::{at, template, text};
use protime_webhooks::records::index::ReadIndexes;
use serde_norway::value::TaggedValue;
use serde_norway::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The template as a stack deployed with `parameters` (the others at their defaults).
pub(crate) struct Deployed {
    pub conditions: BTreeMap<String, bool>,
    pub resources: Mapping,
    pub outputs: Mapping,
}

fn tag(value: &TaggedValue) -> String {
    value.tag.to_string().trim_start_matches('!').to_owned()
}

impl Deployed {
    pub(crate) fn with(parameters: &[(&str, &str)]) -> Deployed {
        let t = template();
        let value_of = |name: &str| match parameters.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => (*value).to_owned(),
            None => text(at(&t, &["Parameters", name, "Default"])),
        };
        let declared = at(&t, &["Conditions"]).as_mapping().expect("conditions").clone();
        let conditions = declared
            .keys()
            .map(|name| {
                let name = name.as_str().expect("a condition's name").to_owned();
                let holds = holds(&declared[name.as_str()], &declared, &value_of);
                (name, holds)
            })
            .collect::<BTreeMap<_, _>>();
        let kept = |section: &str| -> Mapping {
            at(&t, &[section])
                .as_mapping()
                .expect(section)
                .iter()
                .filter(|(_, body)| body.get("Condition").is_none_or(|c| conditions[&text(c)]))
                .filter_map(|(name, body)| resolve(body, &conditions).map(|body| (name.clone(), body)))
                .collect()
        };
        let (resources, outputs) = (kept("Resources"), kept("Outputs"));
        Deployed { conditions, resources, outputs }
    }

    pub(crate) fn resource(&self, name: &str) -> &Value {
        self.resources.get(name).unwrap_or_else(|| panic!("no resource {name}"))
    }

    fn names(&self) -> BTreeSet<String> {
        self.resources.keys().map(|k| k.as_str().unwrap().to_owned()).collect()
    }

    fn of_type(&self, kind: &str) -> usize {
        self.resources.values().filter(|r| text(at(r, &["Type"])) == kind).count()
    }

    /// The syncer's statements (each with its actions and resource, as written).
    fn syncer_grants(&self) -> Vec<(String, String)> {
        at(self.resource("SyncerFunction"), &["Properties", "Policies"])
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|p| at(p, &["Statement"]).as_sequence().unwrap().clone())
            .map(|s| (text(at(&s, &["Action"])), text(at(&s, &["Resource"]))))
            .collect()
    }

    /// The dashboard's body with its variables filled in, as JSON.
    pub(crate) fn dashboard(&self) -> serde_json::Value {
        let Value::Tagged(sub) = at(self.resource("Dashboard"), &["Properties", "DashboardBody"]) else {
            panic!("the dashboard's body is a !Sub");
        };
        let parts = sub.value.as_sequence().expect("!Sub [body, variables]");
        let feed = match at(&parts[1], &["FeedWidgets"]) {
            Value::Tagged(inner) => text(&inner.value.as_sequence().expect("!Sub [widgets, variables]")[0]),
            other => text(other),
        };
        assert!(super::template::is_ours(at(&parts[1], &["Namespace"])), "the metrics' namespace");
        // Named as the template's parameter, for the readers of the body.
        let body = text(&parts[0])
            .replace("${FeedWidgets}", &feed)
            .replace("${Namespace}", "${MetricsNamespace}")
            .replace("${SyncLagAlarmSeconds}", "1")
            .replace("${ExpiryAlarmHours}", "1");
        serde_json::from_str(&body).expect("the dashboard is JSON once its variables are filled in")
    }
}

/// A text operand of `!Equals`: a parameter's value, `!Join` of a `!Split`, or text.
fn operand(value: &Value, value_of: &dyn Fn(&str) -> String) -> String {
    match value {
        Value::Tagged(r) if tag(r) == "Ref" => value_of(&text(&r.value)),
        Value::Tagged(j) if tag(j) == "Join" => {
            let args = j.value.as_sequence().expect("!Join [separator, list]");
            parts(&args[1], value_of).join(&text(&args[0]))
        }
        other => text(other),
    }
}

/// A list operand: `!Split [delimiter, text]` or a list of text operands.
fn parts(value: &Value, value_of: &dyn Fn(&str) -> String) -> Vec<String> {
    match value {
        Value::Tagged(s) if tag(s) == "Split" => {
            let args = s.value.as_sequence().expect("!Split [delimiter, text]");
            operand(&args[1], value_of).split(&text(&args[0])).map(str::to_owned).collect()
        }
        Value::Sequence(items) => items.iter().map(|v| operand(v, value_of)).collect(),
        other => panic!("a list this test does not know: {other:?}"),
    }
}

/// Whether a condition holds: `!Equals` of parameters and text, `!Not`, `!And`, `!Or`, `!Condition`.
fn holds(condition: &Value, declared: &Mapping, value_of: &dyn Fn(&str) -> String) -> bool {
    let Value::Tagged(tagged) = condition else { panic!("a condition is a function: {condition:?}") };
    let operands = || tagged.value.as_sequence().cloned().unwrap_or_default();
    let operand = |v: &Value| operand(v, value_of);
    match tag(tagged).as_str() {
        "Equals" => operand(&operands()[0]) == operand(&operands()[1]),
        "Not" => !holds(&operands()[0], declared, value_of),
        "And" => operands().iter().all(|c| holds(c, declared, value_of)),
        "Or" => operands().iter().any(|c| holds(c, declared, value_of)),
        "Condition" => holds(&declared[text(&tagged.value).as_str()], declared, value_of),
        other => panic!("a condition function this test does not know: {other}"),
    }
}

/// `value` with every `!If` replaced by its branch; `None` for `!Ref AWS::NoValue`, which also
/// leaves a list or a map.
fn resolve(value: &Value, conditions: &BTreeMap<String, bool>) -> Option<Value> {
    match value {
        Value::Tagged(t) if tag(t) == "If" => {
            let branches = t.value.as_sequence().expect("!If [condition, then, else]");
            resolve(&branches[if conditions[&text(&branches[0])] { 1 } else { 2 }], conditions)
        }
        Value::Tagged(t) if tag(t) == "Ref" && text(&t.value) == "AWS::NoValue" => None,
        Value::Tagged(t) => Some(Value::Tagged(Box::new(TaggedValue {
            tag: t.tag.clone(),
            value: resolve(&t.value, conditions).unwrap_or(Value::Null),
        }))),
        Value::Sequence(items) => Some(Value::Sequence(items.iter().filter_map(|v| resolve(v, conditions)).collect())),
        Value::Mapping(map) => Some(Value::Mapping(
            map.iter().filter_map(|(k, v)| resolve(v, conditions).map(|v| (k.clone(), v))).collect(),
        )),
        other => Some(other.clone()),
    }
}

#[test]
fn each_read_indexes_value_deploys_exactly_its_indexes_and_the_sweeps_read() {
    let t = template();
    let allowed: Vec<String> =
        at(&t, &["Parameters", "ReadIndexes", "AllowedValues"]).as_sequence().unwrap().iter().map(text).collect();
    assert_eq!(allowed, ["byDate,byPerson", "byDate", "byPerson", "none"]);
    let default: ReadIndexes = text(at(&t, &["Parameters", "ReadIndexes", "Default"])).parse().unwrap();
    assert_eq!(default, ReadIndexes::ALL, "both by default, as the code without READ_INDEXES");
    for value in &allowed {
        let indexes: ReadIndexes = value.parse().expect("the code reads every allowed value");
        let stack = Deployed::with(&[("ReadIndexes", value)]);
        let table = at(stack.resource("RecordTable"), &["Properties"]);
        let deployed: Vec<String> = table
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_sequence)
            .map(|list| list.iter().map(|i| text(at(i, &["IndexName"]))).collect())
            .unwrap_or_default();
        let wanted: Vec<&str> =
            protime_webhooks::contract::TABLE_INDEXES.iter().filter(|i| indexes.has(i.name)).map(|i| i.name).collect();
        assert_eq!(deployed, wanted, "ReadIndexes={value}");
        // DynamoDB refuses an attribute definition no key uses.
        let defined: BTreeSet<String> = at(table, &["AttributeDefinitions"])
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| text(at(a, &["AttributeName"])))
            .collect();
        let keys: BTreeSet<String> = protime_webhooks::contract::TABLE_INDEXES
            .iter()
            .filter(|i| indexes.has(i.name))
            .flat_map(|i| [i.partition_key.to_owned(), i.sort_key.to_owned()])
            .chain([protime_webhooks::contract::TABLE_PARTITION_KEY.to_owned()])
            .collect();
        assert_eq!(defined, keys, "ReadIndexes={value}");
        // The sweep reads through byDate (Query on it alone) or, without it, scans the table.
        let grants = stack.syncer_grants();
        let query = grants.iter().any(|(a, r)| a.contains("dynamodb:Query") && r.ends_with("/index/byDate"));
        let scan = grants.iter().any(|(a, r)| a.contains("dynamodb:Scan") && r == "!GetAtt RecordTable.Arn");
        assert_eq!((query, scan), (indexes.by_date, !indexes.by_date), "ReadIndexes={value}");
        let env = at(stack.resource("SyncerFunction"), &["Properties", "Environment", "Variables", "READ_INDEXES"]);
        assert_eq!(text(env), "!Ref ReadIndexes");
    }
}

#[test]
fn without_the_change_feed_nothing_of_it_is_deployed_and_nothing_refers_to_it() {
    let feed_parts = [
        "ChangeBus",
        "ChangeArchive",
        "PublisherFunction",
        "PublisherLogGroup",
        "PublisherDeadLetterQueue",
        "PublisherStreamMapping",
        "PublishFailuresAlarm",
        "StreamIteratorAgeAlarm",
        "PublisherDeadLetterAlarm",
    ];
    let on = Deployed::with(&[("ChangeArchiveRetentionDays", "7")]);
    assert_eq!(text(at(&template(), &["Parameters", "ChangeFeed", "Default"])), "true");
    for part in feed_parts {
        assert!(on.names().contains(part), "{part} is deployed with the feed");
    }
    let table = at(on.resource("RecordTable"), &["Properties"]);
    assert_eq!(text(at(table, &["StreamSpecification", "StreamViewType"])), "NEW_AND_OLD_IMAGES");
    assert!(on.outputs.contains_key("ChangeBusName"));
    let shown = on.dashboard().to_string();
    assert!(shown.contains("ChangesPublished") && shown.contains("${PublisherFunction}"));

    let off = Deployed::with(&[("ChangeFeed", "false"), ("ChangeArchiveRetentionDays", "7")]);
    for part in feed_parts {
        assert!(!off.names().contains(part), "{part} is not deployed without the feed");
    }
    assert!(!off.conditions["HasChangeArchive"], "no archive without a bus");
    assert!(at(off.resource("RecordTable"), &["Properties"]).get("StreamSpecification").is_none(), "no stream");
    assert!(!off.outputs.contains_key("ChangeBusName"));
    // Nothing deployed names a part that is not (a dangling Ref would fail the deployment).
    let everything = serde_norway::to_string(&off.resources).unwrap() + &serde_norway::to_string(&off.outputs).unwrap();
    for part in feed_parts {
        assert!(!everything.contains(part), "{part} is named by a deployed resource or output");
    }
    let shown = off.dashboard().to_string();
    assert!(!shown.contains("ChangesPublished") && !shown.contains("publisher"), "no feed widgets");
    assert_eq!(off.of_type("AWS::CloudWatch::Alarm") + 3, on.of_type("AWS::CloudWatch::Alarm"));
}

#[test]
fn the_syncer_may_read_the_field_hash_key_exactly_when_the_field_policy_hashes() {
    use protime_webhooks::records::policy::{FieldPolicy, DEFAULT_FIELD_POLICY, DEFAULT_TOMBSTONE_RETENTION_DAYS};
    let t = template();
    assert_eq!(text(at(&t, &["Parameters", "FieldPolicy", "Default"])), DEFAULT_FIELD_POLICY);
    let days = text(at(&t, &["Parameters", "TombstoneRetentionDays", "Default"]));
    assert_eq!(days, DEFAULT_TOMBSTONE_RETENTION_DAYS.to_string());
    for policy in [
        DEFAULT_FIELD_POLICY,
        "none",
        "people.email=hash",
        "people.pinCode=drop,absences.comment=hash",
        "people.hashtag=drop,people.hash=drop",
    ] {
        let hashes = policy.parse::<FieldPolicy>().expect("a valid policy").hashes();
        let stack = Deployed::with(&[("FieldPolicy", policy)]);
        assert_eq!(stack.conditions["HashesFields"], hashes, "{policy}");
        let reads_keys = stack.syncer_grants().iter().any(|(_, resource)| resource == "!Ref SigningKeysSecret");
        assert_eq!(reads_keys, hashes, "{policy}");
    }
    // The secret starts empty and the renewer generates the hash key: a GenerateSecretString
    // (or a changed SecretString) would make CloudFormation write a version without the keys.
    let secret = at(&t, &["Resources", "SigningKeysSecret", "Properties"]);
    assert_eq!(text(at(secret, &["SecretString"])), "{}");
    assert!(secret.get("GenerateSecretString").is_none());
    let ttl = at(&t, &["Resources", "RecordTable", "Properties", "TimeToLiveSpecification"]);
    assert_eq!(text(at(ttl, &["AttributeName"])), protime_webhooks::records::item::attr::EXPIRES_AT);
}

/// Every alarm tells the same targets when it fires and when it recovers: `AlarmTopicArn`,
/// the stack's own topic for `AlarmEmail`, both, or none.
#[test]
fn every_alarm_notifies_its_targets_when_it_fires_and_when_it_recovers() {
    /// (the parameters, the targets every alarm should name).
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 4] = [
        (&[], &[]),
        (&[("AlarmTopicArn", "arn:aws:sns:eu-west-1:123456789012:oncall")], &["!Ref AlarmTopicArn"]),
        (&[("AlarmEmail", "oncall@example.com")], &["!Ref AlarmEmailTopic"]),
        (
            &[("AlarmTopicArn", "arn:aws:sns:eu-west-1:123456789012:oncall"), ("AlarmEmail", "oncall@example.com")],
            &["!Ref AlarmTopicArn", "!Ref AlarmEmailTopic"],
        ),
    ];
    for (parameters, wanted) in cases {
        let stack = Deployed::with(parameters);
        let mut alarms = 0;
        for (name, resource) in &stack.resources {
            if text(at(resource, &["Type"])) != "AWS::CloudWatch::Alarm" {
                continue;
            }
            alarms += 1;
            let properties = at(resource, &["Properties"]);
            let targets = |key: &str| -> Vec<String> {
                properties
                    .get(key)
                    .and_then(Value::as_sequence)
                    .map(|l| l.iter().map(text).collect())
                    .unwrap_or_default()
            };
            assert_eq!(targets("AlarmActions"), wanted, "{name:?} with {parameters:?}");
            assert_eq!(targets("OKActions"), wanted, "{name:?} recovers to the same targets");
        }
        assert!(alarms >= 18);
        let topic = stack.resources.get("AlarmEmailTopic");
        assert_eq!(topic.is_some(), wanted.contains(&"!Ref AlarmEmailTopic"));
        if let Some(topic) = topic {
            let subscription = &at(topic, &["Properties", "Subscription"]).as_sequence().unwrap()[0];
            assert_eq!(text(at(subscription, &["Protocol"])), "email");
            assert_eq!(text(at(subscription, &["Endpoint"])), "!Ref AlarmEmail");
        }
    }
}

/// The dashboard shows every function's errors and every dead-letter queue the stack has.
#[test]
fn the_dashboard_shows_every_function_and_every_dead_letter_queue() {
    for feed in ["true", "false"] {
        let stack = Deployed::with(&[("ChangeFeed", feed)]);
        let shown = stack.dashboard().to_string();
        for (kind, name) in
            stack.resources.iter().map(|(n, r)| (text(at(r, &["Type"])), n.as_str().unwrap().to_owned()))
        {
            match kind.as_str() {
                "AWS::Serverless::Function" => {
                    assert!(
                        shown.contains(&format!("${{{name}}}")),
                        "ChangeFeed={feed}: {name} is not on the dashboard"
                    )
                }
                "AWS::SQS::Queue" => assert!(
                    shown.contains(&format!("${{{name}.QueueName}}")),
                    "ChangeFeed={feed}: {name} is not on the dashboard"
                ),
                _ => {}
            }
        }
    }
}

/// `ExistingTableName`: a stack that takes over a kept table creates none, and every function,
/// grant, stream mapping and output names that table; left empty, the stack creates its own.
#[test]
fn a_stack_given_a_kept_table_creates_none_and_names_that_table_everywhere() {
    let label = "2026-12-07T16:00:00.000";
    let kept = Deployed::with(&[("ExistingTableName", "kept-table"), ("ExistingTableStreamLabel", label)]);
    assert!(!kept.names().contains("RecordTable"));
    let everything = format!("{:?}{:?}", kept.resources, kept.outputs);
    assert!(!everything.contains("RecordTable"), "nothing names a table the stack did not create");
    for function in ["ReceiverFunction", "RenewerFunction", "SyncerFunction"] {
        let variables = at(kept.resource(function), &["Properties", "Environment", "Variables"]);
        assert_eq!(text(at(variables, &["TABLE_NAME"])), "!Ref ExistingTableName", "{function}");
    }
    assert_eq!(text(&kept.outputs["TableName"]["Value"]), "!Ref ExistingTableName");
    let stream = at(kept.resource("PublisherStreamMapping"), &["Properties", "EventSourceArn"]);
    assert!(text(stream).ends_with("table/${ExistingTableName}/stream/${ExistingTableStreamLabel}"), "{stream:?}");

    let created = Deployed::with(&[]);
    assert!(created.names().contains("RecordTable"));
    assert_eq!(text(&created.outputs["TableName"]["Value"]), "!Ref RecordTable");

    // With the feed, the stream's label is required: the template's rule says so at deploy time.
    let t = template();
    let rule = at(&t, &["Rules", "AdoptedTableStream"]);
    let asserted = format!("{:?}", at(rule, &["Assertions"]));
    assert!(asserted.contains("ExistingTableStreamLabel"), "{asserted}");
    let when = format!("{:?}", at(rule, &["RuleCondition"]));
    assert!(when.contains("ExistingTableName") && when.contains("ChangeFeed"), "{when}");
}

/// A function's statements as deployed (every `!If` resolved).
fn grants(function: &Value) -> Vec<Value> {
    at(function, &["Properties", "Policies"])
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|p| at(p, &["Statement"]).as_sequence().unwrap().clone())
        .collect()
}

/// `DataKmsKeyArn` empty (the default): every store keeps its own encryption (the table the AWS
/// managed key, the bucket SSE-S3, the queues SSE-SQS, the log groups CloudWatch Logs') and no
/// role may use a key. Set: the table, the bucket, every dead-letter queue and every log group
/// are encrypted under that key, and each function may use it through exactly the services
/// whose stores it touches (DynamoDB, S3 where it reads or writes the bucket, SQS where a
/// failed invocation or batch is sent to its queue as its role).
#[test]
fn a_data_key_encrypts_every_store_and_each_function_uses_it_only_through_its_stores() {
    let key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    assert_eq!(text(at(&template(), &["Parameters", "DataKmsKeyArn", "Default"])), "");
    for keyed in [false, true] {
        let parameters: &[(&str, &str)] = if keyed { &[("DataKmsKeyArn", key)] } else { &[] };
        let stack = Deployed::with(parameters);
        let the_key = |value: Option<&Value>| {
            assert_eq!(value.map(text), keyed.then(|| "!Ref DataKmsKeyArn".to_owned()), "keyed: {keyed}");
        };
        let table = at(stack.resource("RecordTable"), &["Properties", "SSESpecification"]);
        assert_eq!(text(at(table, &["SSEEnabled"])), "true");
        the_key(table.get("KMSMasterKeyId"));
        let bucket = at(stack.resource("QuarantineBucket"), &["Properties", "BucketEncryption"]);
        let sse = &at(bucket, &["ServerSideEncryptionConfiguration"]).as_sequence().unwrap()[0];
        let by_default = at(sse, &["ServerSideEncryptionByDefault"]);
        assert_eq!(text(at(by_default, &["SSEAlgorithm"])), if keyed { "aws:kms" } else { "AES256" });
        the_key(by_default.get("KMSMasterKeyID"));
        let (mut queues, mut log_groups) = (0, 0);
        for (name, resource) in &stack.resources {
            let properties = at(resource, &["Properties"]);
            match text(at(resource, &["Type"])).as_str() {
                "AWS::SQS::Queue" => {
                    queues += 1;
                    the_key(properties.get("KmsMasterKeyId"));
                    let sse_sqs = text(at(properties, &["SqsManagedSseEnabled"]));
                    assert_eq!(sse_sqs, (!keyed).to_string(), "{name:?}: SSE-SQS or the key, never neither");
                }
                "AWS::Logs::LogGroup" => {
                    log_groups += 1;
                    the_key(properties.get("KmsKeyId"));
                }
                "AWS::Serverless::Function" => {
                    let statements = grants(resource);
                    let using: Vec<&Value> =
                        statements.iter().filter(|s| text(at(s, &["Resource"])) == "!Ref DataKmsKeyArn").collect();
                    if !keyed {
                        assert!(using.is_empty(), "{name:?} may use no data key");
                        continue;
                    }
                    assert_eq!(using.len(), 1, "{name:?}: one statement for the data key");
                    assert_eq!(text(at(using[0], &["Action"])), "- kms:Decrypt\n- kms:GenerateDataKey\n", "{name:?}");
                    let through: BTreeSet<String> = at(using[0], &["Condition", "StringEquals", "kms:ViaService"])
                        .as_sequence()
                        .expect("a list of services")
                        .iter()
                        .map(|s| text(s).trim_start_matches("!Sub ").split('.').next().unwrap().to_owned())
                        .collect();
                    let actions = statements.iter().map(|s| text(at(s, &["Action"]))).collect::<String>();
                    let sends_failures = text(&properties.get("EventInvokeConfig").cloned().unwrap_or(Value::Null))
                        .contains("Type: SQS");
                    let wanted: BTreeSet<String> = [
                        ("dynamodb", actions.contains("dynamodb:")),
                        ("s3", actions.contains("s3:")),
                        ("sqs", actions.contains("sqs:") || sends_failures),
                    ]
                    .into_iter()
                    .filter(|(_, uses)| *uses)
                    .map(|(service, _)| service.to_owned())
                    .collect();
                    assert_eq!(through, wanted, "{name:?}");
                }
                _ => {}
            }
        }
        assert_eq!((queues, log_groups), (3, 5), "every dead-letter queue and log group of the default stack");
    }
}
