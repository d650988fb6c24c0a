//! Configuration from environment variables, read once at cold start.

use crate::signing_keys::KeyCacheConfig;
use std::time::Duration;

pub const DEFAULT_SIGNING_KEY_SECRET_PREFIX: &str = "protime-webhooks/signing-key/";
/// Well under API Gateway's 10 MB and Lambda's 6 MB payload limits, and far above any event.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} must be {expected}, got {value:?}")]
    Invalid { name: &'static str, expected: &'static str, value: String },
}

/// The receiver's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// `TABLE_NAME`
    pub table_name: String,
    /// `SIGNING_KEY_SECRET_PREFIX`
    pub signing_key_secret_prefix: String,
    /// `SIGNING_KEY_CACHE_TTL_SECONDS`, `SIGNING_KEY_RELOAD_INTERVAL_SECONDS`, `PREVIOUS_KEY_GRACE_SECONDS`
    pub key_cache: KeyCacheConfig,
    /// `MAX_BODY_BYTES`
    pub max_body_bytes: usize,
}

impl ReceiverConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let defaults = KeyCacheConfig::default();
        Ok(ReceiverConfig {
            table_name: env.required("TABLE_NAME")?,
            signing_key_secret_prefix: env
                .optional("SIGNING_KEY_SECRET_PREFIX")
                .unwrap_or_else(|| DEFAULT_SIGNING_KEY_SECRET_PREFIX.into()),
            key_cache: KeyCacheConfig {
                ttl: env.seconds("SIGNING_KEY_CACHE_TTL_SECONDS", defaults.ttl)?,
                reload_min_interval: env
                    .seconds("SIGNING_KEY_RELOAD_INTERVAL_SECONDS", defaults.reload_min_interval)?,
                previous_grace: env.seconds("PREVIOUS_KEY_GRACE_SECONDS", defaults.previous_grace)?,
            },
            max_body_bytes: env.number("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES as u64)? as usize,
        })
    }
}

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<ReceiverConfig, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ReceiverConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_table_is_set() {
        let c = from(&[("TABLE_NAME", "t")]).unwrap();
        assert_eq!(c.table_name, "t");
        assert_eq!(c.signing_key_secret_prefix, "protime-webhooks/signing-key/");
        assert_eq!(c.key_cache, KeyCacheConfig::default());
        assert_eq!(c.max_body_bytes, 1024 * 1024);
    }

    #[test]
    fn every_setting_can_be_overridden() {
        let c = from(&[
            ("TABLE_NAME", "t"),
            ("SIGNING_KEY_SECRET_PREFIX", "p/"),
            ("SIGNING_KEY_CACHE_TTL_SECONDS", "60"),
            ("SIGNING_KEY_RELOAD_INTERVAL_SECONDS", "5"),
            ("PREVIOUS_KEY_GRACE_SECONDS", "0"),
            ("MAX_BODY_BYTES", "2048"),
        ])
        .unwrap();
        assert_eq!(c.signing_key_secret_prefix, "p/");
        assert_eq!(c.key_cache.ttl, Duration::from_secs(60));
        assert_eq!(c.key_cache.reload_min_interval, Duration::from_secs(5));
        assert_eq!(c.key_cache.previous_grace, Duration::ZERO);
        assert_eq!(c.max_body_bytes, 2048);
    }

    #[test]
    fn missing_or_invalid_values_are_named() {
        assert_eq!(from(&[]), Err(ConfigError::Missing("TABLE_NAME")));
        assert_eq!(from(&[("TABLE_NAME", "  ")]), Err(ConfigError::Missing("TABLE_NAME")));
        let err = from(&[("TABLE_NAME", "t"), ("MAX_BODY_BYTES", "lots")]).unwrap_err();
        assert_eq!(err.to_string(), "environment variable MAX_BODY_BYTES must be a whole number, got \"lots\"");
    }
}
