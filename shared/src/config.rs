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

/// The renewer's settings (it also writes through the receiver's table and key prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewerConfig {
    /// `TABLE_NAME`
    pub table_name: String,
    /// `SIGNING_KEY_SECRET_PREFIX`
    pub signing_key_secret_prefix: String,
    /// `PROTIME_CREDENTIALS_SECRET`: id of the secret with the client credentials JSON.
    pub protime_credentials_secret: String,
    /// `DESTINATION_BASE_URL`: the API's URL; a collection's destination is `<base>/webhooks/<collection>`.
    pub destination_base_url: String,
    /// `COLLECTIONS`: comma-separated (default: all 18).
    pub collections: Vec<Collection>,
    /// `EXTERNAL_REFERENCES`, in Protime's syntax, e.g. `(people,@badge-number)`.
    pub external_references: String,
    /// `RENEW_BEFORE_HOURS` (default 48).
    pub renew_before: chrono::Duration,
    /// `PROTIME_API_BASE_URL`, `PROTIME_TOKEN_URL`: override the URLs derived from the credentials.
    pub protime_api_base_url: Option<String>,
    pub protime_token_url: Option<String>,
    /// `PROTIME_USER_AGENT_COMPANY`: the `(Company)` of the User-Agent.
    pub user_agent_company: String,
    /// `DELETE_STRAY_WEBHOOKS`: delete webhooks at our destination for unwanted collections.
    pub delete_stray_webhooks: bool,
    /// `RESYNC_LOOKBACK_DAYS`, `RESYNC_LOOKAHEAD_DAYS`, `RESYNC_FILTER_<COLLECTION>`.
    pub resync: crate::resync::ResyncSettings,
    /// `RESYNC_DEFAULT_GAP_HOURS`: how far back a recovery reaches when no history tells (default 168).
    pub default_gap: chrono::Duration,
}

use crate::collection::Collection;

impl RenewerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let collections = match env.optional("COLLECTIONS") {
            None => Collection::ALL.to_vec(),
            Some(list) => {
                let mut collections = Vec::new();
                for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let c: Collection = name.parse().map_err(|_| ConfigError::Invalid {
                        name: "COLLECTIONS",
                        expected: "comma-separated collection names",
                        value: name.to_owned(),
                    })?;
                    if !collections.contains(&c) {
                        collections.push(c);
                    }
                }
                collections
            }
        };
        let destination_base_url = env.required("DESTINATION_BASE_URL")?;
        if !(destination_base_url.starts_with("https://") || destination_base_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "DESTINATION_BASE_URL",
                expected: "an http(s) URL",
                value: destination_base_url,
            });
        }
        let mut resync = crate::resync::ResyncSettings {
            lookback: chrono::Duration::days(env.number("RESYNC_LOOKBACK_DAYS", 31)? as i64),
            lookahead: chrono::Duration::days(env.number("RESYNC_LOOKAHEAD_DAYS", 92)? as i64),
            ..Default::default()
        };
        for &c in Collection::ALL {
            if let Some(filter) = env.optional(&resync_filter_variable(c)) {
                resync.overrides.insert(c, crate::resync::ResyncFilter::parse(&filter));
            }
        }
        let delete_stray_webhooks = match env.optional("DELETE_STRAY_WEBHOOKS").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "DELETE_STRAY_WEBHOOKS",
                    expected: "true or false",
                    value: other.into(),
                })
            }
        };
        Ok(RenewerConfig {
            table_name: env.required("TABLE_NAME")?,
            signing_key_secret_prefix: env
                .optional("SIGNING_KEY_SECRET_PREFIX")
                .unwrap_or_else(|| DEFAULT_SIGNING_KEY_SECRET_PREFIX.into()),
            protime_credentials_secret: env.required("PROTIME_CREDENTIALS_SECRET")?,
            destination_base_url: destination_base_url.trim_end_matches('/').to_owned(),
            collections,
            external_references: env.optional("EXTERNAL_REFERENCES").unwrap_or_default(),
            renew_before: chrono::Duration::hours(env.number("RENEW_BEFORE_HOURS", 48)? as i64),
            protime_api_base_url: env.optional("PROTIME_API_BASE_URL"),
            protime_token_url: env.optional("PROTIME_TOKEN_URL"),
            user_agent_company: env.optional("PROTIME_USER_AGENT_COMPANY").unwrap_or_else(|| "unspecified".into()),
            delete_stray_webhooks,
            resync,
            default_gap: chrono::Duration::hours(env.number("RESYNC_DEFAULT_GAP_HOURS", 168)? as i64),
        })
    }
}

/// `RESYNC_FILTER_PAID_PRESENCES` for `paid-presences`.
pub fn resync_filter_variable(collection: Collection) -> String {
    format!("RESYNC_FILTER_{}", collection.as_str().to_ascii_uppercase().replace('-', "_"))
}

#[cfg(test)]
mod renewer_tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<RenewerConfig, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        RenewerConfig::from_lookup(|k| map.get(k).cloned())
    }

    const REQUIRED: &[(&str, &str)] = &[
        ("TABLE_NAME", "t"),
        ("PROTIME_CREDENTIALS_SECRET", "creds"),
        ("DESTINATION_BASE_URL", "https://api.example.com/"),
    ];

    #[test]
    fn defaults_cover_all_collections() {
        let c = from(REQUIRED).unwrap();
        assert_eq!(c.collections.len(), 18);
        assert_eq!(c.destination_base_url, "https://api.example.com");
        assert_eq!(c.renew_before, chrono::Duration::hours(48));
        assert!(!c.delete_stray_webhooks);
        assert_eq!(c.external_references, "");
    }

    #[test]
    fn collections_and_filters_are_parsed() {
        let mut vars = REQUIRED.to_vec();
        vars.extend([
            ("COLLECTIONS", "clockings, paid-presences,clockings"),
            ("RESYNC_FILTER_PAID_PRESENCES", "date ge '{from}'"),
            ("DELETE_STRAY_WEBHOOKS", "true"),
            ("RENEW_BEFORE_HOURS", "12"),
        ]);
        let c = from(&vars).unwrap();
        assert_eq!(c.collections, [Collection::Clockings, Collection::PaidPresences]);
        assert_eq!(
            c.resync.overrides[&Collection::PaidPresences],
            crate::resync::ResyncFilter::DateWindow("date ge '{from}'".into())
        );
        assert!(c.delete_stray_webhooks);
        assert_eq!(c.renew_before, chrono::Duration::hours(12));
    }

    #[test]
    fn bad_values_are_named() {
        let mut vars = REQUIRED.to_vec();
        vars.push(("COLLECTIONS", "clockings,timesheets"));
        assert!(from(&vars).unwrap_err().to_string().contains("timesheets"));
        assert_eq!(from(&REQUIRED[..2]), Err(ConfigError::Missing("DESTINATION_BASE_URL")));
    }
}
