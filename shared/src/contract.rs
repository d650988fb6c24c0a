//! The names the deployment (template.yaml) relies on, in one place: the route, the binaries,
//! the environment variables each function reads and the AWS actions each one calls. The
//! template test in `tests/` checks template.yaml against these lists, and the unit tests
//! below check the lists against the code.
//!
//! A function's AWS actions are those of the capabilities (traits) it composes; see
//! `docs/decisions/0005-capability-traits.md`.

use crate::collection::Collection;
use std::collections::BTreeSet;

/// The receiver's route (API Gateway syntax).
pub const ROUTE_METHOD: &str = "POST";
pub const ROUTE_PATH: &str = "/webhooks/{collection}";

pub const RECEIVER_BINARY: &str = "receiver";
pub const RENEWER_BINARY: &str = "renewer";
pub const SYNCER_BINARY: &str = "syncer";
pub const PUBLISHER_BINARY: &str = "publisher";

/// The table's key schema: one string partition key.
pub const TABLE_PARTITION_KEY: &str = crate::records::item::attr::PK;

/// A global secondary index of the table: string keys, every attribute projected (`ALL`: a
/// query reads no base item; see `docs/decisions/0010-read-indexes.md`).
#[derive(Debug, Clone, Copy)]
pub struct TableIndex {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
}

/// The projection of every index.
pub const INDEX_PROJECTION: &str = "ALL";

/// The table's read indexes (see `records::index`).
pub const TABLE_INDEXES: &[TableIndex] = {
    use crate::records::index::{attr, DATE_INDEX, PERSON_INDEX};
    &[
        TableIndex { name: DATE_INDEX, partition_key: attr::DATE_PARTITION, sort_key: attr::DATE_SORT },
        TableIndex { name: PERSON_INDEX, partition_key: attr::PERSON_PARTITION, sort_key: attr::DATE_SORT },
    ]
};

/// Environment variables the receiver reads: (name, required).
pub const RECEIVER_ENV: &[(&str, bool)] = &[
    ("TABLE_NAME", true),
    ("SIGNING_KEYS_SECRET", false),
    ("SIGNING_KEY_SECRET_PREFIX", false),
    ("SIGNING_KEY_CACHE_TTL_SECONDS", false),
    ("SIGNING_KEY_RELOAD_INTERVAL_SECONDS", false),
    ("PREVIOUS_KEY_GRACE_SECONDS", false),
    ("MAX_BODY_BYTES", false),
    ("METRICS_NAMESPACE", false),
    ("DETAILED_METRICS", false),
    ("QUARANTINE_BUCKET", false),
    ("FIELD_POLICY", false),
    ("TOMBSTONE_RETENTION_DAYS", false),
];

/// Environment variables the renewer reads: (name, required).
pub const RENEWER_ENV: &[(&str, bool)] = &[
    ("TABLE_NAME", true),
    ("SIGNING_KEYS_SECRET", false),
    ("SIGNING_KEY_SECRET_PREFIX", false),
    ("PROTIME_CREDENTIALS_SECRET", true),
    ("DESTINATION_BASE_URL", true),
    ("COLLECTIONS", false),
    ("EXTERNAL_REFERENCES", false),
    ("RENEW_BEFORE_HOURS", false),
    ("PROTIME_API_BASE_URL", false),
    ("PROTIME_TOKEN_URL", false),
    ("PROTIME_USER_AGENT_COMPANY", false),
    ("DELETE_STRAY_WEBHOOKS", false),
    ("RESYNC_DEFAULT_GAP_HOURS", false),
    ("METRICS_NAMESPACE", false),
    ("DETAILED_METRICS", false),
    ("QUARANTINE_BUCKET", false),
    ("FIELD_POLICY", false),
    ("TOMBSTONE_RETENTION_DAYS", false),
];

/// Environment variables the syncer reads (besides `SYNC_FILTER_<COLLECTION>`): (name, required).
pub const SYNCER_ENV: &[(&str, bool)] = &[
    ("TABLE_NAME", true),
    ("PROTIME_CREDENTIALS_SECRET", true),
    ("COLLECTIONS", false),
    ("EXTERNAL_REFERENCES", false),
    ("PROTIME_API_BASE_URL", false),
    ("PROTIME_TOKEN_URL", false),
    ("PROTIME_USER_AGENT_COMPANY", false),
    ("SYNC_FROM", false),
    ("SYNC_CONCURRENCY", false),
    ("SYNC_MAX_PAGES_PER_RUN", false),
    ("SYNC_DEADLINE_MARGIN_SECONDS", false),
    ("RECONCILE_INTERVAL_HOURS", false),
    ("SWEEP_LIMIT", false),
    ("READ_INDEXES", false),
    ("METRICS_NAMESPACE", false),
    ("DETAILED_METRICS", false),
    ("QUARANTINE_BUCKET", false),
    ("FIELD_POLICY", false),
    ("TOMBSTONE_RETENTION_DAYS", false),
    ("SIGNING_KEYS_SECRET", false),
];

/// Environment variables the publisher reads: (name, required).
pub const PUBLISHER_ENV: &[(&str, bool)] = &[
    ("EVENT_BUS_NAME", true),
    ("PUBLISH_UNCHANGED", false),
    ("METRICS_NAMESPACE", false),
    ("DETAILED_METRICS", false),
];

/// One thing a function may do in AWS: the trait that stands for it in the code, the files that
/// make its calls and the IAM actions those calls need. A function's permissions are the union
/// of the capabilities it composes ([`RECEIVER`], [`RENEWER`], [`SYNCER`]); the unit tests below
/// check each capability's actions against the calls in its files and each function's list
/// against the traits its code names, and the template test checks each function's policy
/// against the union.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    pub name: &'static str,
    /// The trait through which the code reaches it.
    pub through: &'static str,
    /// The files, relative to `shared/src`, whose AWS calls it makes.
    pub files: &'static [&'static str],
    pub actions: &'static [&'static str],
}

/// Conditional writes of records (every writer).
pub const WRITE_RECORDS: Capability = Capability {
    name: "write records",
    through: "records::RecordStore",
    files: &["records/store.rs"],
    actions: &["dynamodb:PutItem"],
};

/// The stored heads of a page's records, so unchanged records are not written again.
pub const READ_HEADS: Capability = Capability {
    name: "read stored heads",
    through: "records::StoredHeads",
    files: &["records/heads.rs"],
    actions: &["dynamodb:BatchGetItem"],
};

/// The receiver's `lastEventAt` note on a subscription item.
pub const NOTE_EVENTS: Capability = Capability {
    name: "note the last event",
    through: "receiver::last_event::EventNotes",
    files: &["receiver/last_event.rs"],
    actions: &["dynamodb:UpdateItem"],
};

/// Keeping what was signed (or fetched) but cannot be stored, for replay.
pub const QUARANTINE: Capability = Capability {
    name: "quarantine",
    through: "records::quarantine::Quarantine",
    files: &["records/quarantine.rs"],
    actions: &["s3:PutObject"],
};

/// Keeping a fetched page before it is applied, reading it back, discarding it.
pub const KEEP_PAGES: Capability = Capability {
    name: "keep fetched pages",
    through: "sync::kept::PageKeep",
    files: &["sync/kept.rs"],
    actions: &["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
};

/// Reading the webhook signing keys (the signing-keys secret; release 0.1's per-collection
/// secrets while a deployment upgrades).
pub const READ_SIGNING_KEYS: Capability = Capability {
    name: "read signing keys",
    through: "signing::keys::KeySource",
    files: &["signing/source.rs"],
    actions: &["secretsmanager:GetSecretValue"],
};

/// Storing each new signing key the moment Protime issues it (a read of the secret, then a
/// put), and scheduling the deletion of release 0.1's per-collection secrets once their keys
/// are carried over.
pub const WRITE_SIGNING_KEYS: Capability = Capability {
    name: "write signing keys",
    through: "signing::writer::KeyWriter",
    files: &["signing/writer.rs", "signing/source.rs"],
    actions: &["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:DeleteSecret"],
};

/// Opening a Protime session with the client credentials secret.
pub const PROTIME_SESSION: Capability = Capability {
    name: "open a Protime session",
    through: "protime::Connect",
    files: &["protime/connect.rs"],
    actions: &["secretsmanager:GetSecretValue"],
};

/// The subscription state items (read in one batch; the renewer's attributes updated, the
/// receiver's `lastEventAt` left alone).
pub const SUBSCRIPTION_STATE: Capability = Capability {
    name: "subscription state",
    through: "renewer::state::SubscriptionStore",
    files: &["renewer/state.rs", "records/heads.rs"],
    actions: &["dynamodb:BatchGetItem", "dynamodb:UpdateItem"],
};

/// A collection's sync state: its lease (conditional updates), checkpoints, and the ids a full
/// pass saw (saved, read back in batches and deleted beside it).
pub const SYNC_STATE: Capability = Capability {
    name: "sync state and leases",
    through: "sync::state::SyncStateStore",
    files: &["sync/state.rs"],
    actions: &["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"],
};

/// Which version of a record the sync set aside, so a later pass or round does not keep it again.
pub const SET_ASIDE_MARKS: Capability = Capability {
    name: "remember what was set aside",
    through: "records::set_aside::SetAsideMarks",
    files: &["records/set_aside.rs"],
    actions: &["dynamodb:GetItem", "dynamodb:PutItem"],
};

/// The sweep after a full pass: one collection's live records read through the `byDate` index
/// (Query), or by a Scan of a table deployed without it, and a conditional tombstone for each
/// that Protime no longer has. The template grants the Query or the Scan, whichever its
/// `ReadIndexes` needs.
pub const SWEEP: Capability = Capability {
    name: "sweep what Protime deleted",
    through: "sync::sweep::LiveRecords",
    // The Query is built by `records::query::IndexRead::query`, as every index reader's.
    files: &["sync/sweep.rs", "records/query.rs"],
    actions: &["dynamodb:Query", "dynamodb:Scan", "dynamodb:PutItem"],
};

/// Reading one collection by date, by person or whole through the read indexes: the operator's
/// (the CLI's `query`), no function's.
pub const QUERY_INDEXES: Capability = Capability {
    name: "query the read indexes",
    through: "records::query::run",
    files: &["records/query.rs"],
    actions: &["dynamodb:Query"],
};

/// The operator's passes over the table, with their positions (the CLI's `migrate-indexes`,
/// which gives older items their index keys, and `apply-field-policy`), no function's.
pub const MIGRATE_INDEXES: Capability = Capability {
    name: "passes over the table: index keys, a new field policy",
    through: "records::migrate::add_index_keys",
    files: &["records/migrate.rs", "records/rewrite.rs"],
    actions: &["dynamodb:Scan", "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
};

/// Putting change events on the change bus (the publisher's only AWS call).
pub const PUBLISH_CHANGES: Capability = Capability {
    name: "publish change events",
    through: "publisher::feed::EventBus",
    files: &["publisher/bus.rs"],
    actions: &["events:PutEvents"],
};

/// Every capability, for the checks.
pub const CAPABILITIES: &[Capability] = &[
    WRITE_RECORDS,
    READ_HEADS,
    NOTE_EVENTS,
    QUARANTINE,
    KEEP_PAGES,
    READ_SIGNING_KEYS,
    WRITE_SIGNING_KEYS,
    PROTIME_SESSION,
    SUBSCRIPTION_STATE,
    SYNC_STATE,
    SWEEP,
    SET_ASIDE_MARKS,
    QUERY_INDEXES,
    MIGRATE_INDEXES,
    PUBLISH_CHANGES,
];

/// The receiver: reads keys, writes records (and, once a minute, the last event's time on a
/// subscription item), keeps unstorable bodies. `receiver::AwsReceiver` composes these.
pub const RECEIVER: &[Capability] = &[READ_SIGNING_KEYS, WRITE_RECORDS, NOTE_EVENTS, QUARANTINE];

/// The renewer: reads credentials, stores keys, keeps subscription state, re-syncs records
/// (reading heads, keeping what DynamoDB refuses) and catches up through a deltaLink under the
/// collection's sync lease, keeping each fetched page. `renewer::AwsRenewer` composes these.
pub const RENEWER: &[Capability] = &[
    PROTIME_SESSION,
    WRITE_SIGNING_KEYS,
    SUBSCRIPTION_STATE,
    WRITE_RECORDS,
    READ_HEADS,
    QUARANTINE,
    SET_ASIDE_MARKS,
    KEEP_PAGES,
    SYNC_STATE,
];

/// The syncer: reads credentials, reads heads, writes records and its state under a lease, keeps
/// each fetched page and what DynamoDB refuses, sweeps after a full pass. `sync::AwsSyncer` composes these.
pub const SYNCER: &[Capability] =
    &[PROTIME_SESSION, WRITE_RECORDS, READ_HEADS, QUARANTINE, SET_ASIDE_MARKS, KEEP_PAGES, SYNC_STATE, SWEEP];

/// The publisher: puts one event per effective record change on the change bus (the stream
/// is read by Lambda's event source mapping, not by the code). `publisher::Publisher` is
/// bounded by it.
pub const PUBLISHER: &[Capability] = &[PUBLISH_CHANGES];

/// The IAM actions a function composed of these capabilities needs, sorted, once each.
pub fn actions(function: &[Capability]) -> BTreeSet<&'static str> {
    function.iter().flat_map(|c| c.actions.iter().copied()).collect()
}

/// The DynamoDB actions that write items: a function's statement granting any of them names the
/// partition keys it may write ([`keys_written`]) in a `dynamodb:LeadingKeys` condition.
pub const TABLE_WRITES: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:TransactWriteItems",
];

/// The partition keys a capability writes.
type KeysWritten = fn() -> Vec<String>;

/// The partition keys each capability that writes the table writes, as the code builds them.
const KEYS: &[(Capability, KeysWritten)] = &[
    (WRITE_RECORDS, record_keys),
    (NOTE_EVENTS, subscription_keys),
    (SUBSCRIPTION_STATE, subscription_keys),
    (SUBSCRIPTION_STATE, || vec![crate::records::item::RENEWER_LEASE_KEY.to_owned()]),
    (SYNC_STATE, || vec![any_collection(crate::sync::state::sync_key)]),
    (SWEEP, record_keys),
    (SET_ASIDE_MARKS, || vec![any_collection(|c| crate::records::set_aside::set_aside_key(c, ""))]),
    (MIGRATE_INDEXES, record_keys),
    (MIGRATE_INDEXES, || vec![format!("{}*", crate::records::migrate::POSITION_PREFIX)]),
    (MIGRATE_INDEXES, || vec![format!("{}*", crate::records::rewrite::POSITION_PREFIX)]),
];

/// `<collection>#*` for each collection: record keys share no prefix but their collection's.
fn record_keys() -> Vec<String> {
    let any_id = crate::records::RecordId::String("*".into());
    Collection::ALL.iter().map(|&c| crate::records::item::record_key(c, &any_id)).collect()
}

fn subscription_keys() -> Vec<String> {
    vec![any_collection(crate::records::item::subscription_key)]
}

/// A per-collection key with its collection (and whatever follows it) as `*`: `sync#*` covers
/// `sync#<collection>` and the seen-id chunks under it, whatever collections are configured.
fn any_collection(key: fn(Collection) -> String) -> String {
    let one = Collection::Clockings;
    let key = key(one);
    match key.find(one.as_str()) {
        Some(at) => format!("{}*", &key[..at]),
        None => key,
    }
}

/// The partition keys a capability writes, as `ForAllValues:StringLike` patterns of
/// `dynamodb:LeadingKeys` (`*`: any rest); none for a capability that does not write the table.
pub fn keys_written(capability: &Capability) -> BTreeSet<String> {
    KEYS.iter().filter(|(c, _)| c == capability).flat_map(|(_, keys)| keys()).collect()
}

/// The partition keys a function composed of these capabilities writes: exactly the
/// `dynamodb:LeadingKeys` its role's write statement names (the template test checks it), so
/// the internet-facing receiver cannot touch the sync or subscription state, and no function
/// another's items.
pub fn write_keys(function: &[Capability]) -> BTreeSet<String> {
    function.iter().flat_map(keys_written).collect()
}

/// The IAM action of an SDK operation as the code calls it (`.put_item()` → `dynamodb:PutItem`).
pub fn iam_action(service: &str, operation: &str) -> String {
    let pascal: String = operation
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect();
    format!("{service}:{pascal}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    /// Runs a config reader with a lookup that records every name asked for.
    fn names_read(read: impl Fn(&dyn Fn(&str) -> Option<String>)) -> BTreeSet<String> {
        let asked = RefCell::new(BTreeSet::new());
        let lookup = |name: &str| {
            asked.borrow_mut().insert(name.to_owned());
            match name {
                "DESTINATION_BASE_URL" => Some("https://x".into()),
                "TABLE_NAME" | "PROTIME_CREDENTIALS_SECRET" => Some("x".into()),
                _ => None,
            }
        };
        read(&lookup);
        asked.into_inner()
    }

    fn declared(list: &[(&str, bool)]) -> BTreeSet<String> {
        list.iter().map(|(n, _)| n.to_string()).collect()
    }

    #[test]
    fn the_receiver_env_list_is_exactly_what_its_config_reads() {
        let read = names_read(|l| {
            crate::config::ReceiverConfig::from_lookup(l).unwrap();
        });
        assert_eq!(read, declared(RECEIVER_ENV));
    }

    #[test]
    fn the_renewer_env_list_is_exactly_what_its_config_reads() {
        let read = names_read(|l| {
            crate::config::RenewerConfig::from_lookup(l).unwrap();
        });
        let read: BTreeSet<String> = read.into_iter().collect();
        assert_eq!(read, declared(RENEWER_ENV));
    }

    #[test]
    fn the_publisher_env_list_is_exactly_what_its_config_reads() {
        let read = names_read(|l| {
            let _ = crate::config::PublisherConfig::from_lookup(|n| {
                l(n).or_else(|| (n == "EVENT_BUS_NAME").then(|| "b".into()))
            });
        });
        assert_eq!(read, declared(PUBLISHER_ENV));
    }

    #[test]
    fn required_variables_are_the_ones_config_refuses_to_run_without() {
        for (name, required) in RECEIVER_ENV {
            let result =
                crate::config::ReceiverConfig::from_lookup(|n| (n == "TABLE_NAME" && n != *name).then(|| "t".into()));
            assert_eq!(result.is_err(), *required, "{name}");
        }
    }

    /// Every `.rs` file under `src/<folder>` (or `src/` itself), as (path relative to src, text).
    fn sources(folder: &str) -> Vec<(String, String)> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut pending = vec![src.join(folder)];
        let mut found = Vec::new();
        while let Some(path) = pending.pop() {
            if path.is_dir() {
                pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
                found.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
        found
    }

    /// The SDK operations called in these sources, as IAM actions. Test code and the in-memory
    /// fakes make no AWS call and are left out.
    fn actions_called(sources: &[(String, String)]) -> BTreeSet<String> {
        let operations = [
            (
                "dynamodb",
                &[
                    "put_item",
                    "get_item",
                    "batch_get_item",
                    "batch_write_item",
                    "update_item",
                    "delete_item",
                    "query",
                    "scan",
                    "transact_write_items",
                ][..],
            ),
            (
                "secretsmanager",
                &[
                    "get_secret_value",
                    "put_secret_value",
                    "create_secret",
                    "describe_secret",
                    "update_secret_version_stage",
                    "delete_secret",
                ][..],
            ),
            ("s3", &["put_object", "get_object", "list_objects_v2", "head_object", "delete_object"][..]),
            ("events", &["put_events"][..]),
        ];
        let mut found = BTreeSet::new();
        for (_, source) in sources {
            let code = source.split("#[cfg(test)]").next().unwrap_or_default();
            let code: Vec<&str> = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
            // SDK operations are builder calls without arguments: `.put_item()`.
            let compact: String = code.concat().split_whitespace().collect();
            for (service, ops) in operations {
                for op in ops {
                    if compact.contains(&format!(".{op}()")) {
                        found.insert(iam_action(service, op));
                    }
                }
            }
        }
        found
    }

    fn calls_in(files: &[&str]) -> BTreeSet<String> {
        actions_called(&files.iter().flat_map(|f| sources(f)).collect::<Vec<_>>())
    }

    #[test]
    fn each_capabilitys_actions_are_exactly_the_calls_its_files_make() {
        for capability in CAPABILITIES {
            let wanted: BTreeSet<String> = capability.actions.iter().map(|a| a.to_string()).collect();
            assert_eq!(calls_in(capability.files), wanted, "{}", capability.name);
        }
    }

    #[test]
    fn every_file_that_calls_aws_belongs_to_a_capability() {
        let listed: BTreeSet<&str> = CAPABILITIES.iter().flat_map(|c| c.files.iter().copied()).collect();
        for (path, text) in sources("") {
            if path == "testing.rs" || listed.contains(path.as_str()) {
                continue;
            }
            let called = actions_called(&[(path.clone(), text)]);
            assert!(called.is_empty(), "{path} calls {called:?} but belongs to no capability in contract.rs");
        }
    }

    /// The traits each function's core type is bounded by, as its file spells them, are the
    /// capabilities its list names: a new bound without a new capability (or the reverse) fails.
    #[test]
    fn each_function_lists_exactly_the_capabilities_its_code_is_bounded_by() {
        for (function, file, capabilities) in [
            ("receiver", "receiver/handler.rs", RECEIVER),
            ("renewer", "renewer/run.rs", RENEWER),
            ("syncer", "sync/run.rs", SYNCER),
            ("publisher", "publisher/run.rs", PUBLISHER),
        ] {
            let (_, text) = sources(file).pop().expect(file);
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for capability in CAPABILITIES {
                let name = capability.through.rsplit("::").next().unwrap_or_default();
                let bound = [": ", "+ "].iter().any(|p| {
                    code.match_indices(&format!("{p}{name}")).any(|(at, found)| {
                        !code[at + found.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                    })
                });
                assert_eq!(
                    bound,
                    capabilities.contains(capability),
                    "{function}: {file} {} {name}, its list {} {}",
                    if bound { "is bounded by" } else { "is not bounded by" },
                    if capabilities.contains(capability) { "names" } else { "does not name" },
                    capability.name
                );
            }
        }
    }

    #[test]
    fn a_functions_actions_are_the_union_of_its_capabilities() {
        assert_eq!(
            actions(RECEIVER).into_iter().collect::<Vec<_>>(),
            ["dynamodb:PutItem", "dynamodb:UpdateItem", "s3:PutObject", "secretsmanager:GetSecretValue"]
        );
        // The renewer's delta round does the syncer's work, all but the sweep (the Query or Scan).
        let mut syncer = actions(SYNCER);
        syncer.remove("dynamodb:Query");
        syncer.remove("dynamodb:Scan");
        assert!(syncer.is_subset(&actions(RENEWER)));
    }

    #[test]
    fn every_environment_variable_is_in_the_configuration_page() {
        let page = include_str!("../../docs/configuration.md");
        let all = RECEIVER_ENV.iter().chain(RENEWER_ENV).chain(SYNCER_ENV).map(|(name, _)| *name);
        let missing: Vec<&str> =
            all.chain(["SYNC_FILTER_<COLLECTION>"]).filter(|n| !page.contains(&format!("`{n}`"))).collect();
        assert!(missing.is_empty(), "docs/configuration.md does not document {missing:?}");
    }

    #[test]
    fn the_syncer_env_list_is_exactly_what_its_config_reads() {
        let read = names_read(|l| {
            crate::config::SyncerConfig::from_lookup(l).unwrap();
        });
        let read: BTreeSet<String> = read.into_iter().filter(|n| !n.starts_with("SYNC_FILTER_")).collect();
        assert_eq!(read, declared(SYNCER_ENV));
    }

    #[test]
    fn the_pure_modules_import_no_aws_or_http_client_code() {
        for file in ["signing/signature.rs", "records/event.rs", "records/order.rs", "renewer/plan.rs", "sync/plan.rs"]
        {
            let (_, text) = sources(file).pop().expect(file);
            for client in ["aws_sdk", "aws_config", "aws_smithy", "reqwest", "lambda_http"] {
                assert!(!text.contains(client), "{file} uses {client}");
            }
        }
    }

    /// IAM's `StringLike`: `*` any run of characters, `?` one.
    fn like(pattern: &str, text: &str) -> bool {
        match pattern.chars().next() {
            None => text.is_empty(),
            Some('*') => {
                (0..=text.len()).filter(|&i| text.is_char_boundary(i)).any(|i| like(&pattern[1..], &text[i..]))
            }
            Some(p) => text
                .chars()
                .next()
                .is_some_and(|t| (p == '?' || p == t) && like(&pattern[p.len_utf8()..], &text[t.len_utf8()..])),
        }
    }

    fn writes(function: &[Capability], key: &str) -> bool {
        write_keys(function).iter().any(|pattern| like(pattern, key))
    }

    #[test]
    fn a_capability_names_the_keys_it_writes_exactly_when_it_writes_the_table() {
        for capability in CAPABILITIES {
            let writes = capability.actions.iter().any(|a| TABLE_WRITES.contains(a));
            assert_eq!(!keys_written(capability).is_empty(), writes, "{}", capability.name);
        }
    }

    /// Every key each function's code writes is among its patterns, and no other function's
    /// state is: the receiver writes records and its notes only, the syncer never a subscription.
    #[test]
    fn each_function_may_write_the_keys_its_code_writes_and_no_other_state() {
        use crate::records::item::{record_key, subscription_key, RENEWER_LEASE_KEY};
        use crate::records::RecordId;
        use crate::sync::state::{seen_key, sync_key, SeenSlot};
        let position = format!("{}0", crate::records::migrate::POSITION_PREFIX);
        for &c in Collection::ALL {
            let record = record_key(c, &RecordId::String("a#b:c".into()));
            let sync = [sync_key(c), seen_key(c, SeenSlot::Load, 0), seen_key(c, SeenSlot::Reconcile, 12)];
            for function in [RECEIVER, RENEWER, SYNCER] {
                assert!(writes(function, &record), "{record}");
            }
            assert!(writes(RECEIVER, &subscription_key(c)) && writes(RENEWER, &subscription_key(c)));
            assert!(!writes(SYNCER, &subscription_key(c)));
            for key in &sync {
                assert!(writes(SYNCER, key) && writes(RENEWER, key), "{key}");
                assert!(!writes(RECEIVER, key), "{key}");
            }
        }
        assert!(writes(RENEWER, RENEWER_LEASE_KEY));
        assert!(!writes(RECEIVER, RENEWER_LEASE_KEY) && !writes(SYNCER, RENEWER_LEASE_KEY));
        assert!(write_keys(PUBLISHER).is_empty());
        for function in [RECEIVER, RENEWER, SYNCER] {
            assert!(!writes(function, &position), "the migration's positions are the operator's");
        }
        assert!(writes(&[MIGRATE_INDEXES], &position));
    }

    #[test]
    fn operations_map_to_iam_actions() {
        assert_eq!(iam_action("dynamodb", "batch_get_item"), "dynamodb:BatchGetItem");
        assert_eq!(iam_action("secretsmanager", "get_secret_value"), "secretsmanager:GetSecretValue");
    }
}
