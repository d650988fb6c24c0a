//! The receiver's settings.

use super::{ConfigError, Env, KeysLocation, DEFAULT_MAX_BODY_BYTES};
use crate::observability::metrics::DEFAULT_NAMESPACE;
use crate::signing::keys::KeyCacheConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// `TABLE_NAME`
    pub table_name: String,
    /// `SIGNING_KEYS_SECRET`, `SIGNING_KEY_SECRET_PREFIX`
    pub signing_keys: KeysLocation,
    /// `SIGNING_KEY_CACHE_TTL_SECONDS`, `SIGNING_KEY_RELOAD_INTERVAL_SECONDS`, `PREVIOUS_KEY_GRACE_SECONDS`
    pub key_cache: KeyCacheConfig,
    /// `MAX_BODY_BYTES`
    pub max_body_bytes: usize,
    /// `METRICS_NAMESPACE`, `DETAILED_METRICS`
    pub metrics: crate::observability::metrics::Metrics,
    /// `QUARANTINE_BUCKET`: where signed but unstorable bodies are kept (none: answered 400).
    pub quarantine_bucket: Option<String>,
    /// `FIELD_POLICY`, `TOMBSTONE_RETENTION_DAYS`
    pub data: crate::records::policy::DataPolicy,
}

impl ReceiverConfig {
    /// The defaults for everything but the table and the signing-keys secret.
    pub fn new(table_name: impl Into<String>, signing_keys_secret: impl Into<String>) -> Self {
        ReceiverConfig {
            table_name: table_name.into(),
            signing_keys: KeysLocation::secret(signing_keys_secret),
            key_cache: KeyCacheConfig::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            metrics: crate::observability::metrics::Metrics::new(DEFAULT_NAMESPACE),
            quarantine_bucket: None,
            data: Default::default(),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let defaults = KeyCacheConfig::default();
        Ok(ReceiverConfig {
            table_name: env.required("TABLE_NAME")?,
            signing_keys: env.keys_location(),
            key_cache: KeyCacheConfig {
                ttl: env.seconds("SIGNING_KEY_CACHE_TTL_SECONDS", defaults.ttl)?,
                reload_min_interval: env
                    .seconds("SIGNING_KEY_RELOAD_INTERVAL_SECONDS", defaults.reload_min_interval)?,
                previous_grace: env.seconds("PREVIOUS_KEY_GRACE_SECONDS", defaults.previous_grace)?,
            },
            max_body_bytes: env.number("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES as u64)? as usize,
            metrics: env.metrics()?,
            quarantine_bucket: env.optional("QUARANTINE_BUCKET"),
            data: env.data_policy()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn from(vars: &[(&str, &str)]) -> Result<ReceiverConfig, ConfigError> {
        ReceiverConfig::from_lookup(crate::config::lookup_from(vars))
    }

    #[test]
    fn defaults_apply_when_only_the_table_is_set() {
        let c = from(&[("TABLE_NAME", "t")]).unwrap();
        assert_eq!(c.table_name, "t");
        assert_eq!(c.signing_keys, KeysLocation::secret("protime-webhooks/signing-keys"));
        assert_eq!(c.key_cache, KeyCacheConfig::default());
        assert_eq!(c.max_body_bytes, 1024 * 1024);
        assert_eq!(c.metrics, crate::observability::metrics::Metrics::new("ProtimeWebhooks"));
        assert_eq!(c, ReceiverConfig::new("t", "protime-webhooks/signing-keys"));
    }

    #[test]
    fn every_setting_can_be_overridden() {
        let c = from(&[
            ("TABLE_NAME", "t"),
            ("SIGNING_KEYS_SECRET", "keys"),
            ("SIGNING_KEY_SECRET_PREFIX", "p/"),
            ("SIGNING_KEY_CACHE_TTL_SECONDS", "60"),
            ("SIGNING_KEY_RELOAD_INTERVAL_SECONDS", "5"),
            ("PREVIOUS_KEY_GRACE_SECONDS", "0"),
            ("MAX_BODY_BYTES", "2048"),
            ("METRICS_NAMESPACE", "Custom"),
            ("DETAILED_METRICS", "true"),
            ("QUARANTINE_BUCKET", "q"),
        ])
        .unwrap();
        assert_eq!(c.signing_keys, KeysLocation { secret: "keys".into(), legacy_prefix: Some("p/".into()) });
        assert_eq!(c.key_cache.ttl, Duration::from_secs(60));
        assert_eq!(c.key_cache.reload_min_interval, Duration::from_secs(5));
        assert_eq!(c.key_cache.previous_grace, Duration::ZERO);
        assert_eq!(c.max_body_bytes, 2048);
        assert_eq!(c.metrics, crate::observability::metrics::Metrics::detailed("Custom"));
        assert_eq!(c.quarantine_bucket.as_deref(), Some("q"));
    }

    #[test]
    fn missing_or_invalid_values_are_named() {
        assert_eq!(from(&[]), Err(ConfigError::Missing("TABLE_NAME")));
        assert_eq!(from(&[("TABLE_NAME", "  ")]), Err(ConfigError::Missing("TABLE_NAME")));
        let err = from(&[("TABLE_NAME", "t"), ("MAX_BODY_BYTES", "lots")]).unwrap_err();
        assert_eq!(err.to_string(), "environment variable MAX_BODY_BYTES must be a whole number, got \"lots\"");
    }
}
