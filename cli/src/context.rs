//! The AWS clients and the resource names a command needs, and what can go wrong finding them.
//!
//! Resources come from flags or the functions' own variables first, then from the outputs of
//! `--stack` (CloudFormation DescribeStacks). Endpoints: `--endpoint-url` (or
//! `AWS_ENDPOINT_URL`) for every service, except that a service's own variable
//! (`AWS_ENDPOINT_URL_LAMBDA`, `AWS_ENDPOINT_URL_DYNAMODB`, …) wins for that service, as the
//! SDK's documented precedence has it for the environment.

use crate::Global;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{Region, SdkConfig};
use protime_webhooks::config::{ConfigError, RenewerConfig, SyncerConfig};
use protime_webhooks::signing::keys::SecretsManagerKeySource;
use protime_webhooks::sync::kept::KEPT_PAGES_PREFIX;
use std::collections::HashMap;
use std::time::Duration;

/// Why a command could not run. Never holds a key, a signature or a body.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}: pass --{1} or set {2}")]
    Missing(&'static str, &'static str, &'static str),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Aws(String),
    /// The function ran and failed (Lambda's `X-Amz-Function-Error`).
    #[error("{0}")]
    Function(String),
    /// Some checks could not be made (doctor: their lines say why).
    #[error("{0}")]
    Incomplete(String),
}

/// A setting in this shell that differs from the deployed one: the deployed one decides what
/// the functions keep, so a command writing records must not keep another.
fn refuse_other_settings(
    shell: &HashMap<String, String>,
    deployed: &HashMap<String, String>,
    names: &[&str],
) -> Result<(), CliError> {
    for name in names {
        if let Some(mine) = shell.get(*name).filter(|mine| deployed.get(*name) != Some(*mine)) {
            let theirs = deployed.get(*name).map_or("unset (the default)".to_owned(), |v| format!("{v:?}"));
            return Err(CliError::Input(format!(
                "{name} in this shell ({mine:?}) differs from the stack's ({theirs}): unset it, or deploy it first"
            )));
        }
    }
    Ok(())
}

/// The stack outputs the CLI reads (template.yaml's `Outputs`).
pub mod outputs {
    pub const TABLE: &str = "TableName";
    pub const BUCKET: &str = "QuarantineBucketName";
    pub const SYNCER: &str = "SyncerFunctionName";
    /// The change bus the publisher puts events on (`republish` puts them there again).
    pub const BUS: &str = "ChangeBusName";
    /// The signing-keys secret.
    pub const KEYS_SECRET: &str = "SigningKeysSecretArn";
    /// The Protime client credentials secret (doctor, webhooks).
    pub const CREDENTIALS: &str = "ProtimeCredentialsSecretArn";
    /// `<base>/webhooks/<collection>`: the renewer's DESTINATION_BASE_URL is what comes before.
    pub const DESTINATION_PATTERN: &str = "DestinationUrlPattern";
    /// The renewer, whose environment holds the collections and the Protime settings.
    pub const RENEWER: &str = "RenewerFunctionName";
}

/// The variables the Protime settings are read from (the renewer's and the syncer's), in the
/// CLI's own environment or, with `--stack` / `--renewer-function`, the functions'.
const PROTIME_SETTINGS: &[&str] = &[
    "COLLECTIONS",
    "EXTERNAL_REFERENCES",
    "RENEW_BEFORE_HOURS",
    "PROTIME_API_BASE_URL",
    "PROTIME_TOKEN_URL",
    "PROTIME_USER_AGENT_COMPANY",
    "FIELD_POLICY",
    "TOMBSTONE_RETENTION_DAYS",
];

/// How long a synchronous invoke may take: the syncer's timeout (900 s) and some.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(16 * 60);

pub struct Context {
    pub global: Global,
    pub sdk: SdkConfig,
}

impl Context {
    /// Loads the SDK configuration and, with `--stack`, fills what no flag or variable named
    /// from the stack's outputs.
    pub async fn new(global: &Global) -> Result<Self, CliError> {
        let mut loader = protime_webhooks::aws::config_loader();
        if let Some(region) = &global.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &global.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &global.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let mut context = Context { global: global.clone(), sdk: loader.load().await };
        if let Some(stack) = global.stack.clone() {
            let outputs = context.stack_outputs(&stack).await?;
            apply_stack_outputs(&mut context.global, &outputs);
        }
        Ok(context)
    }

    pub fn table(&self) -> Result<&str, CliError> {
        self.global.table.as_deref().ok_or(CliError::Missing("no record table", "table", "TABLE_NAME"))
    }

    pub fn bucket(&self) -> Result<&str, CliError> {
        self.global.bucket.as_deref().ok_or(CliError::Missing("no quarantine bucket", "bucket", "QUARANTINE_BUCKET"))
    }

    pub fn syncer_function(&self) -> Result<&str, CliError> {
        self.global.syncer_function.as_deref().ok_or(CliError::Missing(
            "no syncer function",
            "syncer-function",
            "SYNCER_FUNCTION",
        ))
    }

    pub fn event_bus(&self) -> Result<&str, CliError> {
        self.global.event_bus.as_deref().ok_or(CliError::Missing(
            "no change bus (a stack deployed with ChangeFeed=false has none)",
            "event-bus",
            "EVENT_BUS_NAME",
        ))
    }

    /// The variables the renewer's and the syncer's settings are read with
    /// (`RenewerConfig::from_lookup`, `SyncerConfig::from_lookup`), for doctor and webhooks: the
    /// credentials secret and destination base from their flags (or variables, or the stack's
    /// outputs); every other setting from this shell's environment, then the renewer function's
    /// (with `--renewer-function` or `--stack`), then the syncer function's (with `--stack`:
    /// its `SYNC_FILTER_<COLLECTION>` overrides). `TABLE_NAME` is never read by these commands.
    pub async fn settings_lookup(&self) -> Result<SettingsLookup, CliError> {
        let mut functions = HashMap::new();
        if self.global.stack.is_some() {
            if let Some(syncer) = &self.global.syncer_function {
                functions.extend(self.function_environment(syncer).await?);
            }
        }
        if let Some(renewer) = &self.global.renewer_function {
            functions.extend(self.function_environment(renewer).await?);
        }
        let mut flags = HashMap::new();
        let named = [
            ("PROTIME_CREDENTIALS_SECRET", &self.global.credentials_secret),
            ("DESTINATION_BASE_URL", &self.global.destination_base_url),
            ("TABLE_NAME", &self.global.table),
            ("SIGNING_KEYS_SECRET", &self.global.keys_secret),
        ];
        for (name, value) in named {
            if let Some(value) = value.as_ref().filter(|v| !v.trim().is_empty()) {
                flags.insert(name.to_owned(), value.clone());
            }
        }
        let shell = std::env::vars()
            .filter(|(name, value)| {
                (PROTIME_SETTINGS.contains(&name.as_str()) || name.starts_with("SYNC_FILTER_"))
                    && !value.trim().is_empty()
            })
            .collect();
        Ok(SettingsLookup { flags, functions, shell })
    }

    /// What the stack keeps of a record, for a command that writes records as the functions do
    /// (quarantine replay, apply-field-policy), and where that came from: with `--stack`, the
    /// syncer function's `FIELD_POLICY` and `TOMBSTONE_RETENTION_DAYS` (the same in this shell,
    /// or unset there: a different one is refused, the deployed policy decides); without, this
    /// shell's, else the defaults. With the field hash key when the policy hashes.
    pub async fn data_policy(&self) -> Result<(protime_webhooks::records::policy::DataPolicy, &'static str), CliError> {
        const NAMES: [&str; 2] = ["FIELD_POLICY", "TOMBSTONE_RETENTION_DAYS"];
        let shell: HashMap<String, String> = NAMES
            .iter()
            .filter_map(|name| Some((name.to_string(), std::env::var(name).ok().filter(|v| !v.trim().is_empty())?)))
            .collect();
        let (settings, from) = match (&self.global.stack, &self.global.syncer_function) {
            (Some(_), Some(syncer)) => {
                let deployed = self.function_environment(syncer).await?;
                refuse_other_settings(&shell, &deployed, &NAMES)?;
                (deployed, "the stack's syncer function")
            }
            _ if shell.contains_key("FIELD_POLICY") => (shell, "FIELD_POLICY in this shell"),
            _ => (shell, "the default: FIELD_POLICY is unset"),
        };
        let mut policy = protime_webhooks::config::data_policy_from(|k| settings.get(k).cloned())
            .map_err(|e| CliError::Input(e.to_string()))?;
        if policy.fields.hashes() {
            let key = self
                .keys()
                .field_hash_key()
                .await
                .map_err(|e| CliError::Aws(format!("FIELD_POLICY hashes fields, but {e}")))?;
            policy.hash_key = Some(key);
        }
        Ok((policy, from))
    }

    /// A Lambda function's environment variables (GetFunctionConfiguration).
    async fn function_environment(&self, function: &str) -> Result<HashMap<String, String>, CliError> {
        let client = aws_sdk_lambda::Client::new(&self.sdk_for("LAMBDA"));
        let answer = client
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(|e| aws_error(&format!("reading the configuration of function {function}"), e))?;
        Ok(answer.environment().and_then(|e| e.variables()).cloned().unwrap_or_default())
    }

    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_for("SECRETS_MANAGER"))
    }

    pub fn keys_secret(&self) -> &str {
        self.global.keys_secret.as_deref().unwrap_or(protime_webhooks::config::DEFAULT_SIGNING_KEYS_SECRET)
    }

    /// The SDK configuration for one service: its own endpoint variable
    /// (`AWS_ENDPOINT_URL_<SERVICE>`) wins over `--endpoint-url`.
    pub fn sdk_for(&self, service: &str) -> SdkConfig {
        match service_endpoint(service, |name| std::env::var(name).ok()) {
            Some(endpoint) => self.sdk.to_builder().endpoint_url(endpoint).build(),
            None => self.sdk.clone(),
        }
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_for("DYNAMODB"))
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        protime_webhooks::records::quarantine::S3Quarantine::client(&self.sdk_for("S3"))
    }

    pub fn keys(&self) -> SecretsManagerKeySource {
        SecretsManagerKeySource::new(self.secrets(), self.keys_secret())
    }

    /// A Lambda client for synchronous invokes of the syncer: it may run for its whole timeout,
    /// and is never retried by the SDK (a second run would only find the collections busy).
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        let config = aws_sdk_lambda::config::Builder::from(&self.sdk_for("LAMBDA"))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(INVOKE_TIMEOUT)
                    .operation_timeout(INVOKE_TIMEOUT)
                    .build(),
            )
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_lambda::Client::from_conf(config)
    }

    /// The outputs of a deployed stack, by name.
    async fn stack_outputs(&self, stack: &str) -> Result<HashMap<String, String>, CliError> {
        let client = aws_sdk_cloudformation::Client::new(&self.sdk_for("CLOUDFORMATION"));
        let answer = client
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| aws_error(&format!("reading the outputs of stack {stack}"), e))?;
        let found = answer.stacks().first().ok_or_else(|| CliError::Input(format!("no stack {stack}")))?;
        Ok(found
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect())
    }
}

/// Where the Protime settings come from: flags first, then this shell, then the functions.
pub struct SettingsLookup {
    flags: HashMap<String, String>,
    functions: HashMap<String, String>,
    /// The settings this shell's environment sets (only those: see `PROTIME_SETTINGS`).
    shell: HashMap<String, String>,
}

impl SettingsLookup {
    pub fn get(&self, name: &str) -> Option<String> {
        if name == "TABLE_NAME" {
            // Required by the renewer's reader; doctor and webhooks never read the table.
            return Some(self.flags.get(name).cloned().unwrap_or_else(|| "-".to_owned()));
        }
        self.flags.get(name).or_else(|| self.shell.get(name)).or_else(|| self.functions.get(name)).cloned()
    }

    /// The renewer's settings, a missing one named with its flag.
    pub fn renewer(&self) -> Result<RenewerConfig, CliError> {
        RenewerConfig::from_lookup(|name| self.get(name)).map_err(|e| match e {
            ConfigError::Missing("PROTIME_CREDENTIALS_SECRET") => CliError::Missing(
                "no Protime credentials secret (or pass --stack)",
                "credentials-secret",
                "PROTIME_CREDENTIALS_SECRET",
            ),
            ConfigError::Missing("DESTINATION_BASE_URL") => CliError::Missing(
                "no destination base URL (or pass --stack)",
                "destination-base-url",
                "DESTINATION_BASE_URL",
            ),
            other => CliError::Input(other.to_string()),
        })
    }

    /// The syncer's settings (its filters), or why they could not be read.
    pub fn syncer(&self) -> Result<SyncerConfig, ConfigError> {
        SyncerConfig::from_lookup(|name| self.get(name))
    }
}

/// `AWS_ENDPOINT_URL_<SERVICE>` if set and not empty.
fn service_endpoint(service: &str, var: impl Fn(&str) -> Option<String>) -> Option<String> {
    var(&format!("AWS_ENDPOINT_URL_{service}")).filter(|v| !v.trim().is_empty())
}

/// Fills every resource no flag or variable named from the stack's outputs.
pub fn apply_stack_outputs(global: &mut Global, outputs: &HashMap<String, String>) {
    let fill = |slot: &mut Option<String>, name: &str| {
        if slot.is_none() {
            *slot = outputs.get(name).filter(|v| !v.is_empty()).cloned();
        }
    };
    fill(&mut global.table, outputs::TABLE);
    fill(&mut global.bucket, outputs::BUCKET);
    fill(&mut global.syncer_function, outputs::SYNCER);
    fill(&mut global.event_bus, outputs::BUS);
    fill(&mut global.credentials_secret, outputs::CREDENTIALS);
    fill(&mut global.renewer_function, outputs::RENEWER);
    fill(&mut global.keys_secret, outputs::KEYS_SECRET);
    if global.destination_base_url.is_none() {
        global.destination_base_url = outputs.get(outputs::DESTINATION_PATTERN).and_then(|p| destination_base_of(p));
    }
}

/// The base in `<base>/webhooks/<collection>`.
fn destination_base_of(pattern: &str) -> Option<String> {
    pattern.strip_suffix("/webhooks/<collection>").filter(|b| !b.is_empty()).map(str::to_owned)
}

/// Every object in the quarantine bucket under `prefix` (all pages), with the time it was kept.
pub async fn quarantined_under(context: &Context, prefix: &str) -> Result<Vec<Kept>, CliError> {
    let mut pages = context.s3().list_objects_v2().bucket(context.bucket()?).prefix(prefix).into_paginator().send();
    let mut objects = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("listing the quarantine", e))?;
        // The sync's kept pages share the bucket under `pages/`: they are not quarantined bodies.
        let quarantined =
            page.contents().iter().filter(|o| !o.key().unwrap_or_default().starts_with(KEPT_PAGES_PREFIX));
        objects.extend(quarantined.map(|o| Kept {
            key: o.key().unwrap_or_default().to_owned(),
            size: o.size(),
            kept_at: o.last_modified().and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0)),
        }));
    }
    Ok(objects)
}

/// One quarantined object as the listing shows it.
pub struct Kept {
    pub key: String,
    pub size: Option<i64>,
    pub kept_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An SDK error as one line that names the service's answer.
pub fn aws_error<E: std::error::Error + 'static>(what: &str, error: E) -> CliError {
    CliError::Aws(format!("{what}: {}", aws_sdk_s3::error::DisplayErrorContext(error)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global() -> Global {
        Global {
            region: None,
            profile: None,
            endpoint_url: None,
            stack: Some("pw".into()),
            table: None,
            bucket: None,
            syncer_function: None,
            event_bus: None,
            keys_secret: None,
            credentials_secret: None,
            destination_base_url: None,
            renewer_function: None,
            json: false,
        }
    }

    fn deployed() -> HashMap<String, String> {
        HashMap::from([
            ("TableName".into(), "pw-RecordTable-1X".into()),
            ("QuarantineBucketName".into(), "pw-quarantinebucket-9z".into()),
            ("SyncerFunctionName".into(), "pw-SyncerFunction-AB".into()),
            ("RenewerFunctionName".into(), "pw-RenewerFunction-CD".into()),
            ("ChangeBusName".into(), "pw-changes".into()),
            (
                "SigningKeysSecretArn".into(),
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pw/signing-keys-GhIjKl".into(),
            ),
            (
                "ProtimeCredentialsSecretArn".into(),
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pw-credentials-AbCdEf".into(),
            ),
            (
                "DestinationUrlPattern".into(),
                "https://abc.execute-api.eu-west-1.amazonaws.com/webhooks/<collection>".into(),
            ),
        ])
    }

    #[test]
    fn the_stack_outputs_fill_the_table_bucket_syncer_and_keys_secret() {
        let mut g = global();
        apply_stack_outputs(&mut g, &deployed());
        assert_eq!(g.table.as_deref(), Some("pw-RecordTable-1X"));
        assert_eq!(g.bucket.as_deref(), Some("pw-quarantinebucket-9z"));
        assert_eq!(g.syncer_function.as_deref(), Some("pw-SyncerFunction-AB"));
        assert_eq!(g.event_bus.as_deref(), Some("pw-changes"));
        assert_eq!(
            g.keys_secret.as_deref(),
            Some("arn:aws:secretsmanager:eu-west-1:123456789012:secret:pw/signing-keys-GhIjKl")
        );
        assert_eq!(
            g.credentials_secret.as_deref(),
            Some("arn:aws:secretsmanager:eu-west-1:123456789012:secret:pw-credentials-AbCdEf")
        );
        assert_eq!(g.destination_base_url.as_deref(), Some("https://abc.execute-api.eu-west-1.amazonaws.com"));
        assert_eq!(g.renewer_function.as_deref(), Some("pw-RenewerFunction-CD"));
    }

    #[test]
    fn the_settings_come_from_the_flags_then_the_shell_then_the_functions() {
        let lookup = SettingsLookup {
            flags: HashMap::from([("PROTIME_CREDENTIALS_SECRET".to_owned(), "from-flag".to_owned())]),
            functions: HashMap::from([
                ("PROTIME_CREDENTIALS_SECRET".to_owned(), "from-function".to_owned()),
                ("DESTINATION_BASE_URL".to_owned(), "https://api.example.com/".to_owned()),
                ("COLLECTIONS".to_owned(), "clockings,breaks".to_owned()),
                ("EXTERNAL_REFERENCES".to_owned(), "(people,@badge-number)".to_owned()),
            ]),
            shell: HashMap::from([("COLLECTIONS".to_owned(), "people".to_owned())]),
        };
        let renewer = lookup.renewer().unwrap();
        assert_eq!(renewer.protime_credentials_secret, "from-flag");
        assert_eq!(renewer.destination_base_url, "https://api.example.com");
        assert_eq!(renewer.collections, [protime_webhooks::Collection::People]);
        assert_eq!(renewer.external_references, "(people,@badge-number)");
        let missing = SettingsLookup { flags: HashMap::new(), functions: HashMap::new(), shell: HashMap::new() };
        assert!(missing.renewer().unwrap_err().to_string().contains("--credentials-secret"));
    }

    #[test]
    fn flags_and_variables_win_over_the_stack_outputs() {
        let mut g = global();
        g.table = Some("mine".into());
        g.syncer_function = Some("syncer".into());
        g.keys_secret = Some("other/keys".into());
        apply_stack_outputs(&mut g, &deployed());
        assert_eq!(
            (g.table.as_deref(), g.syncer_function.as_deref(), g.keys_secret.as_deref()),
            (Some("mine"), Some("syncer"), Some("other/keys"))
        );
        assert_eq!(g.bucket.as_deref(), Some("pw-quarantinebucket-9z"));
    }

    #[test]
    fn missing_or_empty_outputs_leave_the_settings_unset() {
        let mut g = global();
        let outputs = HashMap::from([("TableName".to_owned(), String::new())]);
        apply_stack_outputs(&mut g, &outputs);
        assert_eq!((g.table, g.bucket, g.syncer_function, g.keys_secret), (None, None, None, None));
    }

    #[test]
    fn a_services_own_endpoint_variable_is_read_when_set_and_not_empty() {
        let vars = HashMap::from([
            ("AWS_ENDPOINT_URL_LAMBDA".to_owned(), "http://127.0.0.1:9000".to_owned()),
            ("AWS_ENDPOINT_URL_S3".to_owned(), " ".to_owned()),
        ]);
        let var = |name: &str| vars.get(name).cloned();
        assert_eq!(service_endpoint("LAMBDA", var).as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(service_endpoint("S3", var), None);
        assert_eq!(service_endpoint("DYNAMODB", var), None);
    }
}
