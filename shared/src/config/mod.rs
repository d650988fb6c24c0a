//! The functions' settings from environment variables, read once at cold start.
//!
//! - `receiver.rs`: [`ReceiverConfig`], the receiver's settings.
//! - `renewer.rs`: [`RenewerConfig`], the renewer's settings.
//! - `publisher.rs`: [`PublisherConfig`], the publisher's settings.
//! - `syncer.rs`: [`SyncerConfig`], the syncer's settings (the type lives in `sync::settings`,
//!   beside the sync run that uses it, so `sync` never imports `config`).
//!
//! Every default is defined once, here or beside the setting it belongs to. Settings are read
//! through a lookup function, so tests never touch the process environment.

mod publisher;
mod receiver;
mod renewer;
mod syncer;

pub use crate::sync::settings::{default_filter, SyncerConfig, SYNC_DATE_FILTER};
pub use publisher::PublisherConfig;
pub use receiver::ReceiverConfig;
pub use renewer::RenewerConfig;
pub use syncer::sync_filter_variable;

use std::time::Duration;

pub use crate::signing::document::DEFAULT_SIGNING_KEYS_SECRET;

/// Where the signing keys are: `SIGNING_KEYS_SECRET`, and while a deployment upgrades from
/// release 0.1, `SIGNING_KEY_SECRET_PREFIX` (unset or empty: no such place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysLocation {
    pub secret: String,
    pub legacy_prefix: Option<String>,
}

impl KeysLocation {
    /// The secret alone, no release 0.1 place.
    pub fn secret(secret: impl Into<String>) -> Self {
        KeysLocation { secret: secret.into(), legacy_prefix: None }
    }

    /// When `policy` hashes, reads the field hash key (the secret's `fieldHashKey`) into it: a
    /// function that cannot stops at start, naming the secret.
    pub async fn load_hash_key(&self, sdk: &aws_config::SdkConfig, policy: &mut DataPolicy) -> Result<(), ConfigError> {
        if !policy.fields.hashes() {
            return Ok(());
        }
        let source =
            crate::signing::keys::SecretsManagerKeySource::new(aws_sdk_secretsmanager::Client::new(sdk), &self.secret);
        policy.hash_key = Some(source.field_hash_key().await.map_err(ConfigError::HashKey)?);
        Ok(())
    }

    /// The Secrets Manager source of the keys.
    pub fn source(&self, client: aws_sdk_secretsmanager::Client) -> crate::signing::keys::SecretsManagerKeySource {
        crate::signing::keys::SecretsManagerKeySource::new(client, &self.secret)
            .with_legacy_prefix(self.legacy_prefix.clone())
    }
}
use crate::records::policy::{DataPolicy, DEFAULT_FIELD_POLICY, DEFAULT_TOMBSTONE_RETENTION_DAYS};

/// Well under API Gateway's 10 MB and Lambda's 6 MB payload limits, and far above any event.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} must be {expected}, got {value:?}")]
    Invalid { name: &'static str, expected: &'static str, value: String },
    /// A filter set for a collection whose delta takes none (Protime refuses it).
    #[error("environment variable {name} must be unset or `all`: Protime's {collection} delta takes no filter")]
    Unfiltered { name: String, collection: &'static str },
    #[error(transparent)]
    FieldPolicy(#[from] crate::records::policy::PolicyError),
    /// The policy hashes, and the field hash key cannot be read.
    #[error("FIELD_POLICY hashes fields, but {0}")]
    HashKey(String),
}

/// Typed reads of the environment; blank values count as unset.
pub(crate) struct Env<'a>(pub &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn number(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid { name, expected: "a whole number", value: v }),
        }
    }

    pub fn seconds(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        self.number(name, default.as_secs()).map(Duration::from_secs)
    }

    pub fn hours(&self, name: &'static str, default_hours: u64) -> Result<chrono::Duration, ConfigError> {
        Ok(chrono::Duration::hours(self.number(name, default_hours)? as i64))
    }

    /// A `YYYY-MM-DD` date, or `None` when unset.
    pub fn date(&self, name: &'static str) -> Result<Option<chrono::NaiveDate>, ConfigError> {
        self.optional(name)
            .map(|v| v.parse().map_err(|_| ConfigError::Invalid { name, expected: "a date (YYYY-MM-DD)", value: v }))
            .transpose()
    }

    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(name).as_deref() {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(ConfigError::Invalid { name, expected: "true or false", value: other.into() }),
        }
    }

    /// `SIGNING_KEYS_SECRET` and `SIGNING_KEY_SECRET_PREFIX`, shared by the receiver and the renewer.
    pub fn keys_location(&self) -> KeysLocation {
        KeysLocation {
            secret: self.optional("SIGNING_KEYS_SECRET").unwrap_or_else(|| DEFAULT_SIGNING_KEYS_SECRET.into()),
            legacy_prefix: self.optional("SIGNING_KEY_SECRET_PREFIX").filter(|p| !p.is_empty()),
        }
    }

    /// `FIELD_POLICY` (unset: [`DEFAULT_FIELD_POLICY`]; `none`: no rule) and
    /// `TOMBSTONE_RETENTION_DAYS`; the hash key is loaded at start ([`KeysLocation::load_hash_key`]).
    pub fn data_policy(&self) -> Result<DataPolicy, ConfigError> {
        let fields = self.optional("FIELD_POLICY").as_deref().unwrap_or(DEFAULT_FIELD_POLICY).parse()?;
        let tombstone_days = self.number("TOMBSTONE_RETENTION_DAYS", DEFAULT_TOMBSTONE_RETENTION_DAYS)?;
        Ok(DataPolicy { fields, hash_key: None, tombstone_days })
    }

    /// `METRICS_NAMESPACE` and `DETAILED_METRICS`, shared by every function.
    pub fn metrics(&self) -> Result<crate::observability::metrics::Metrics, ConfigError> {
        Ok(crate::observability::metrics::Metrics {
            namespace: self
                .optional("METRICS_NAMESPACE")
                .unwrap_or_else(|| crate::observability::metrics::DEFAULT_NAMESPACE.into()),
            detailed: self.flag("DETAILED_METRICS", false)?,
        })
    }
}

/// `FIELD_POLICY` and `TOMBSTONE_RETENTION_DAYS` read through `lookup` (for the CLI, which
/// writes records as the functions do), without the hash key.
pub fn data_policy_from(lookup: impl Fn(&str) -> Option<String>) -> Result<DataPolicy, ConfigError> {
    Env(&lookup).data_policy()
}

#[cfg(test)]
pub(crate) fn lookup_from(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> =
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}
