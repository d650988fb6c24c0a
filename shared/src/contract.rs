//! The names the deployment (template.yaml) relies on, in one place: the route, the binaries,
//! the environment variables each function reads and the AWS actions each one calls. The
//! template test in `tests/` checks template.yaml against these lists, and the unit tests
//! below check the lists against the code.

/// The receiver's route (API Gateway syntax).
pub const ROUTE_METHOD: &str = "POST";
pub const ROUTE_PATH: &str = "/webhooks/{collection}";

pub const RECEIVER_BINARY: &str = "receiver";
pub const RENEWER_BINARY: &str = "renewer";
pub const SYNCER_BINARY: &str = "syncer";

/// The table's key schema: one string partition key.
pub const TABLE_PARTITION_KEY: &str = crate::records::item::attr::PK;

/// Environment variables the receiver reads: (name, required).
pub const RECEIVER_ENV: &[(&str, bool)] = &[
    ("TABLE_NAME", true),
    ("SIGNING_KEY_SECRET_PREFIX", false),
    ("SIGNING_KEY_CACHE_TTL_SECONDS", false),
    ("SIGNING_KEY_RELOAD_INTERVAL_SECONDS", false),
    ("PREVIOUS_KEY_GRACE_SECONDS", false),
    ("MAX_BODY_BYTES", false),
    ("METRICS_NAMESPACE", false),
    ("QUARANTINE_BUCKET", false),
];

/// Environment variables the renewer reads (besides `RESYNC_FILTER_<COLLECTION>`): (name, required).
pub const RENEWER_ENV: &[(&str, bool)] = &[
    ("TABLE_NAME", true),
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
    ("RESYNC_LOOKBACK_DAYS", false),
    ("RESYNC_LOOKAHEAD_DAYS", false),
    ("RESYNC_DEFAULT_GAP_HOURS", false),
    ("METRICS_NAMESPACE", false),
    ("QUARANTINE_BUCKET", false),
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
    ("SYNC_LIST_COLLECTIONS", false),
    ("SYNC_CONCURRENCY", false),
    ("SYNC_MAX_PAGES_PER_RUN", false),
    ("SYNC_DEADLINE_MARGIN_SECONDS", false),
    ("LIST_SYNC_INTERVAL_HOURS", false),
    ("METRICS_NAMESPACE", false),
    ("QUARANTINE_BUCKET", false),
];

/// AWS actions the receiver calls: reading keys, writing records (and, once a minute, the last
/// event's time on a subscription item), keeping unstorable bodies.
pub const RECEIVER_ACTIONS: &[&str] =
    &["secretsmanager:GetSecretValue", "dynamodb:PutItem", "dynamodb:UpdateItem", "s3:PutObject"];

/// AWS actions the renewer calls: reading credentials, storing keys, reading and writing
/// subscription state, writing re-synced records, keeping those DynamoDB refuses, and (to catch
/// up through a deltaLink) taking a collection's sync lease and checkpointing its state.
pub const RENEWER_ACTIONS: &[&str] = &[
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:CreateSecret",
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "s3:PutObject",
    "s3:GetObject",
    "s3:DeleteObject",
];

/// AWS actions the syncer calls: reading credentials, reading stored heads, writing records and
/// its state, taking a collection's lease, keeping records DynamoDB refuses.
pub const SYNCER_ACTIONS: &[&str] = &[
    "secretsmanager:GetSecretValue",
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "s3:PutObject",
    "s3:GetObject",
    "s3:DeleteObject",
];

/// The folders and files of `src/` whose AWS calls each function makes. Other code the functions
/// share (config, observability, startup, aws) makes no AWS call; a unit test checks both claims.
pub const RECEIVER_MODULES: &[&str] = &[
    "receiver",
    "records/event.rs",
    "records/item.rs",
    "records/json.rs",
    "records/order.rs",
    "records/quarantine.rs",
    "records/store.rs",
];
pub const RENEWER_MODULES: &[&str] = &[
    "renewer",
    "sync",
    "protime",
    "records/event.rs",
    "records/heads.rs",
    "records/item.rs",
    "records/json.rs",
    "records/order.rs",
    "records/quarantine.rs",
    "records/store.rs",
];
pub const SYNCER_MODULES: &[&str] = &[
    "sync",
    "protime",
    "records/event.rs",
    "records/heads.rs",
    "records/item.rs",
    "records/json.rs",
    "records/order.rs",
    "records/quarantine.rs",
    "records/store.rs",
];

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
        let read: BTreeSet<String> = read.into_iter().filter(|n| !n.starts_with("RESYNC_FILTER_")).collect();
        assert_eq!(read, declared(RENEWER_ENV));
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

    fn calls_in(folders: &[&str]) -> BTreeSet<String> {
        actions_called(&folders.iter().flat_map(|f| sources(f)).collect::<Vec<_>>())
    }

    fn set(actions: &[&str]) -> BTreeSet<String> {
        actions.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn every_environment_variable_is_in_the_configuration_page() {
        let page = include_str!("../../docs/configuration.md");
        let all = RECEIVER_ENV.iter().chain(RENEWER_ENV).chain(SYNCER_ENV).map(|(name, _)| *name);
        let missing: Vec<&str> = all
            .chain(["RESYNC_FILTER_<COLLECTION>", "SYNC_FILTER_<COLLECTION>"])
            .filter(|n| !page.contains(&format!("`{n}`")))
            .collect();
        assert!(missing.is_empty(), "docs/configuration.md does not document {missing:?}");
    }

    #[test]
    fn the_receivers_actions_are_exactly_the_calls_its_code_makes() {
        assert_eq!(calls_in(RECEIVER_MODULES), set(RECEIVER_ACTIONS));
    }

    #[test]
    fn the_renewers_actions_are_exactly_the_calls_its_code_makes() {
        assert_eq!(calls_in(RENEWER_MODULES), set(RENEWER_ACTIONS));
    }

    #[test]
    fn the_syncers_actions_are_exactly_the_calls_its_code_makes() {
        assert_eq!(calls_in(SYNCER_MODULES), set(SYNCER_ACTIONS));
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
    fn every_aws_call_in_the_library_belongs_to_a_listed_folder() {
        let listed: Vec<&str> = RECEIVER_MODULES.iter().chain(RENEWER_MODULES).chain(SYNCER_MODULES).copied().collect();
        let unlisted: Vec<(String, String)> = sources("")
            .into_iter()
            .filter(|(path, _)| {
                path != "testing.rs" && !listed.iter().any(|f| path == f || path.starts_with(&format!("{f}/")))
            })
            .collect();
        let called = actions_called(&unlisted);
        assert!(called.is_empty(), "AWS calls outside the folders listed in contract.rs: {called:?}");
    }

    #[test]
    fn the_pure_modules_import_no_aws_or_http_client_code() {
        for file in ["receiver/signature.rs", "records/event.rs", "records/order.rs", "renewer/plan.rs", "sync/plan.rs"]
        {
            let (_, text) = sources(file).pop().expect(file);
            for client in ["aws_sdk", "aws_config", "aws_smithy", "reqwest", "lambda_http"] {
                assert!(!text.contains(client), "{file} uses {client}");
            }
        }
    }

    #[test]
    fn operations_map_to_iam_actions() {
        assert_eq!(iam_action("dynamodb", "batch_get_item"), "dynamodb:BatchGetItem");
        assert_eq!(iam_action("secretsmanager", "get_secret_value"), "secretsmanager:GetSecretValue");
    }
}
