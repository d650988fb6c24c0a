//! The names the deployment (template.yaml) relies on, in one place: the route, the binaries,
//! the environment variables each function reads and the AWS actions each one calls. The
//! template test in `tests/` checks template.yaml against these lists, and the unit tests
//! below check the lists against the code.

/// The receiver's route (API Gateway syntax).
pub const ROUTE_METHOD: &str = "POST";
pub const ROUTE_PATH: &str = "/webhooks/{collection}";

pub const RECEIVER_BINARY: &str = "receiver";
pub const RENEWER_BINARY: &str = "renewer";

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
];

/// AWS actions the receiver calls: reading keys, writing records.
pub const RECEIVER_ACTIONS: &[&str] = &["secretsmanager:GetSecretValue", "dynamodb:PutItem"];

/// AWS actions the renewer calls: reading credentials, storing keys, reading and writing
/// subscription state, writing re-synced records.
pub const RENEWER_ACTIONS: &[&str] = &[
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:CreateSecret",
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
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

    /// Every SDK operation called anywhere in the library, as IAM actions.
    fn actions_called_in_source() -> BTreeSet<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![dir];
        let mut sources = Vec::new();
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push(std::fs::read_to_string(&path).unwrap());
            }
        }
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
        ];
        let mut found = BTreeSet::new();
        for source in &sources {
            // SDK operations are builder calls without arguments: `.put_item()`.
            let compact: String = source.split_whitespace().collect();
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

    #[test]
    fn every_aws_call_in_the_code_is_declared_for_some_function() {
        let declared: BTreeSet<String> =
            RECEIVER_ACTIONS.iter().chain(RENEWER_ACTIONS).map(|a| a.to_string()).collect();
        let called = actions_called_in_source();
        assert_eq!(called, declared, "an SDK call was added or removed: update contract.rs and template.yaml");
    }

    #[test]
    fn operations_map_to_iam_actions() {
        assert_eq!(iam_action("dynamodb", "batch_get_item"), "dynamodb:BatchGetItem");
        assert_eq!(iam_action("secretsmanager", "get_secret_value"), "secretsmanager:GetSecretValue");
    }
}
