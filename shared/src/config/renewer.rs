//! The renewer's settings (it also writes through the receiver's table and key prefix).

use super::{ConfigError, Env, KeysLocation};
use crate::collection::Collection;

/// `RENEW_BEFORE_HOURS` when unset.
pub const DEFAULT_RENEW_BEFORE_HOURS: u64 = 48;
/// `RESYNC_DEFAULT_GAP_HOURS` when unset: a week.
pub const DEFAULT_GAP_HOURS: u64 = 168;
/// The `(Company)` of the User-Agent when `PROTIME_USER_AGENT_COMPANY` is unset.
pub const DEFAULT_USER_AGENT_COMPANY: &str = "unspecified";

/// The renewer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewerConfig {
    /// `TABLE_NAME`
    pub table_name: String,
    /// `SIGNING_KEYS_SECRET`, `SIGNING_KEY_SECRET_PREFIX`
    pub signing_keys: KeysLocation,
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
    /// `RESYNC_DEFAULT_GAP_HOURS`: where a recovery's gap is taken to start when no history tells
    /// (default 168; reported and logged, the syncer covers it).
    pub default_gap: chrono::Duration,
    /// `METRICS_NAMESPACE`, `DETAILED_METRICS`
    pub metrics: crate::observability::metrics::Metrics,
    /// `QUARANTINE_BUCKET`: where re-synced records DynamoDB refuses are kept (none: counted only).
    pub quarantine_bucket: Option<String>,
    /// `FIELD_POLICY`, `TOMBSTONE_RETENTION_DAYS`
    pub data: crate::records::policy::DataPolicy,
}

impl RenewerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        Ok(RenewerConfig {
            table_name: env.required("TABLE_NAME")?,
            signing_keys: env.keys_location(),
            protime_credentials_secret: env.required("PROTIME_CREDENTIALS_SECRET")?,
            destination_base_url: destination_base_url(&env)?,
            collections: collections(&env, "COLLECTIONS")?.unwrap_or_else(|| Collection::ALL.to_vec()),
            external_references: env.optional("EXTERNAL_REFERENCES").unwrap_or_default(),
            renew_before: env.hours("RENEW_BEFORE_HOURS", DEFAULT_RENEW_BEFORE_HOURS)?,
            protime_api_base_url: env.optional("PROTIME_API_BASE_URL"),
            protime_token_url: env.optional("PROTIME_TOKEN_URL"),
            user_agent_company: env
                .optional("PROTIME_USER_AGENT_COMPANY")
                .unwrap_or_else(|| DEFAULT_USER_AGENT_COMPANY.into()),
            delete_stray_webhooks: env.flag("DELETE_STRAY_WEBHOOKS", false)?,
            default_gap: env.hours("RESYNC_DEFAULT_GAP_HOURS", DEFAULT_GAP_HOURS)?,
            metrics: env.metrics()?,
            quarantine_bucket: env.optional("QUARANTINE_BUCKET"),
            data: env.data_policy()?,
        })
    }
}

/// A comma-separated list of collection names (`COLLECTIONS`), each once, in the order given;
/// `None` when unset.
pub(super) fn collections(env: &Env<'_>, name: &'static str) -> Result<Option<Vec<Collection>>, ConfigError> {
    let Some(list) = env.optional(name) else {
        return Ok(None);
    };
    let mut collections = Vec::new();
    for item in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let c: Collection = item.parse().map_err(|_| ConfigError::Invalid {
            name,
            expected: "comma-separated collection names",
            value: item.to_owned(),
        })?;
        if !collections.contains(&c) {
            collections.push(c);
        }
    }
    Ok(Some(collections))
}

/// `DESTINATION_BASE_URL`: an http(s) URL, kept without a trailing slash.
fn destination_base_url(env: &Env<'_>) -> Result<String, ConfigError> {
    let url = env.required("DESTINATION_BASE_URL")?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ConfigError::Invalid { name: "DESTINATION_BASE_URL", expected: "an http(s) URL", value: url });
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<RenewerConfig, ConfigError> {
        RenewerConfig::from_lookup(crate::config::lookup_from(vars))
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
            ("DELETE_STRAY_WEBHOOKS", "true"),
            ("RENEW_BEFORE_HOURS", "12"),
        ]);
        let c = from(&vars).unwrap();
        assert_eq!(c.collections, [Collection::Clockings, Collection::PaidPresences]);
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
