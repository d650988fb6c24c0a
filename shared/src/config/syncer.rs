//! Reading the syncer's settings ([`SyncerConfig`], defined beside the sync run that uses them)
//! from the environment: it writes through the receiver's table and reads Protime as the
//! renewer does.

use super::renewer::{collections, DEFAULT_USER_AGENT_COMPANY};
use super::{ConfigError, Env};
use crate::collection::Collection;
use crate::records::index::ReadIndexes;
use crate::signing::document::DEFAULT_SIGNING_KEYS_SECRET;
use crate::sync::settings::SyncerConfig;
use std::time::Duration;

/// `SYNC_CONCURRENCY` when unset: collections worked on at once.
pub const DEFAULT_SYNC_CONCURRENCY: u64 = 4;
/// `SYNC_DEADLINE_MARGIN_SECONDS` when unset.
pub const DEFAULT_DEADLINE_MARGIN_SECONDS: u64 = 60;
/// `SYNC_DEADLINE_MARGIN_SECONDS` must stay under Lambda's longest timeout.
const MAX_DEADLINE_MARGIN_SECONDS: u64 = 900;
/// `RECONCILE_INTERVAL_HOURS` when unset: every collection is reconciled once a week.
pub const DEFAULT_RECONCILE_INTERVAL_HOURS: u64 = 168;
/// `SWEEP_LIMIT` when unset: an ordinary day's deletions arrive through webhooks and the delta, so
/// a sweep normally tombstones none; more than this in one pass is an answer to look at first
/// (docs/syncer.md, "A bounded sweep").
pub const DEFAULT_SWEEP_LIMIT: u64 = 100;

impl SyncerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let concurrency = env.number("SYNC_CONCURRENCY", DEFAULT_SYNC_CONCURRENCY)?;
        if concurrency == 0 {
            return Err(ConfigError::Invalid { name: "SYNC_CONCURRENCY", expected: "at least 1", value: "0".into() });
        }
        let max_pages = env.number("SYNC_MAX_PAGES_PER_RUN", 0)?;
        let margin = env.number("SYNC_DEADLINE_MARGIN_SECONDS", DEFAULT_DEADLINE_MARGIN_SECONDS)?;
        if margin >= MAX_DEADLINE_MARGIN_SECONDS {
            // A margin as long as the function's timeout would start no page, ever.
            return Err(ConfigError::Invalid {
                name: "SYNC_DEADLINE_MARGIN_SECONDS",
                expected: "under 900 (Lambda's longest timeout)",
                value: margin.to_string(),
            });
        }
        Ok(SyncerConfig {
            table_name: env.required("TABLE_NAME")?,
            protime_credentials_secret: env.required("PROTIME_CREDENTIALS_SECRET")?,
            collections: collections(&env, "COLLECTIONS")?.unwrap_or_else(|| Collection::ALL.to_vec()),
            external_references: env.optional("EXTERNAL_REFERENCES").unwrap_or_default(),
            protime_api_base_url: env.optional("PROTIME_API_BASE_URL"),
            protime_token_url: env.optional("PROTIME_TOKEN_URL"),
            user_agent_company: env
                .optional("PROTIME_USER_AGENT_COMPANY")
                .unwrap_or_else(|| DEFAULT_USER_AGENT_COMPANY.into()),
            sync_from: env.date("SYNC_FROM")?,
            filters: filters(&env)?,
            concurrency: concurrency as usize,
            max_pages_per_run: (max_pages > 0).then_some(max_pages),
            deadline_margin: env
                .seconds("SYNC_DEADLINE_MARGIN_SECONDS", Duration::from_secs(DEFAULT_DEADLINE_MARGIN_SECONDS))?,
            reconcile_interval: env.hours("RECONCILE_INTERVAL_HOURS", DEFAULT_RECONCILE_INTERVAL_HOURS)?,
            sweep_limit: env.number("SWEEP_LIMIT", DEFAULT_SWEEP_LIMIT)?,
            read_indexes: read_indexes(&env)?,
            metrics: env.metrics()?,
            quarantine_bucket: env.optional("QUARANTINE_BUCKET"),
            data: env.data_policy()?,
            signing_keys: crate::config::KeysLocation::secret(
                env.optional("SIGNING_KEYS_SECRET").unwrap_or_else(|| DEFAULT_SIGNING_KEYS_SECRET.into()),
            ),
        })
    }
}

/// `READ_INDEXES`: the read indexes the table has (default both).
fn read_indexes(env: &Env) -> Result<ReadIndexes, ConfigError> {
    let Some(text) = env.optional("READ_INDEXES") else { return Ok(ReadIndexes::ALL) };
    text.parse().map_err(|_| ConfigError::Invalid {
        name: "READ_INDEXES",
        expected: "byDate,byPerson, byDate, byPerson or none",
        value: text,
    })
}

/// The `SYNC_FILTER_<COLLECTION>` overrides (`all` or `none`: unfiltered). The deltas of
/// people, contracts and counter-groups take no filter: one set for them is refused.
fn filters(env: &Env) -> Result<std::collections::HashMap<Collection, Option<String>>, ConfigError> {
    let mut filters = std::collections::HashMap::new();
    for &collection in Collection::ALL {
        let name = sync_filter_variable(collection);
        let Some(text) = env.optional(&name) else { continue };
        let filter = (!matches!(text.as_str(), "all" | "none")).then_some(text);
        if filter.is_some() && !takes_a_filter(collection) {
            return Err(ConfigError::Unfiltered { name, collection: collection.as_str() });
        }
        filters.insert(collection, filter);
    }
    Ok(filters)
}

/// Whether Protime's delta of the collection accepts a filter.
pub fn takes_a_filter(collection: Collection) -> bool {
    !matches!(collection, Collection::People | Collection::Contracts | Collection::CounterGroups)
}

/// `SYNC_FILTER_PAID_PRESENCES` for `paid-presences`.
pub fn sync_filter_variable(collection: Collection) -> String {
    format!("SYNC_FILTER_{}", collection.as_str().to_ascii_uppercase().replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn from(vars: &[(&str, &str)]) -> Result<SyncerConfig, ConfigError> {
        SyncerConfig::from_lookup(crate::config::lookup_from(vars))
    }

    const REQUIRED: &[(&str, &str)] = &[("TABLE_NAME", "t"), ("PROTIME_CREDENTIALS_SECRET", "creds")];

    #[test]
    fn defaults() {
        let c = from(REQUIRED).unwrap();
        assert_eq!(c.collections.len(), 18);
        assert_eq!((c.concurrency, c.max_pages_per_run, c.sync_from), (4, None, None));
        assert_eq!(c.deadline_margin, Duration::from_secs(60));
        assert_eq!(c.reconcile_interval, chrono::Duration::hours(168));
        assert_eq!(c.sweep_limit, 100);
        assert_eq!(c.read_indexes, ReadIndexes::ALL);
        assert_eq!(c.plan(Collection::People).filter_template, None, "people's delta takes no filter");
        assert_eq!(
            c.plan(Collection::Clockings).filter_template.as_deref(),
            Some("date ge '{from}' and date le '{to}'")
        );
        assert_eq!(c.plan(Collection::Absences).filter_template.as_deref(), Some("date ge '{from}'"));
        assert_eq!(c.plan(Collection::CounterGroups).filter_template, None);
    }

    #[test]
    fn overrides() {
        let mut vars = REQUIRED.to_vec();
        vars.extend([
            ("SYNC_FROM", "2024-01-01"),
            ("SYNC_FILTER_CLOCKINGS", "all"),
            ("SYNC_FILTER_ABSENCES", "date ge '{from}' and type eq 'Sick'"),
            ("SYNC_FILTER_PEOPLE", "all"),
            ("SYNC_CONCURRENCY", "2"),
            ("SYNC_MAX_PAGES_PER_RUN", "10"),
            ("READ_INDEXES", "byPerson"),
        ]);
        let c = from(&vars).unwrap();
        assert_eq!(c.read_indexes, ReadIndexes { by_date: false, by_person: true });
        assert_eq!(c.sync_from, NaiveDate::from_ymd_opt(2024, 1, 1));
        assert_eq!(c.plan(Collection::Clockings).filter_template, None);
        assert_eq!(
            c.plan(Collection::Absences).filter_template.as_deref(),
            Some("date ge '{from}' and type eq 'Sick'")
        );
        assert_eq!(c.plan(Collection::People).filter_template, None);
        assert_eq!((c.concurrency, c.max_pages_per_run), (2, Some(10)));
    }

    #[test]
    fn bad_values_are_named() {
        let mut vars = REQUIRED.to_vec();
        vars.push(("SYNC_FROM", "last year"));
        assert!(from(&vars).unwrap_err().to_string().contains("SYNC_FROM"));
        let mut vars = REQUIRED.to_vec();
        vars.push(("SYNC_CONCURRENCY", "0"));
        assert!(from(&vars).is_err());
        let mut vars = REQUIRED.to_vec();
        vars.push(("SYNC_DEADLINE_MARGIN_SECONDS", "900"));
        assert!(from(&vars).unwrap_err().to_string().contains("SYNC_DEADLINE_MARGIN_SECONDS"));
        let mut vars = REQUIRED.to_vec();
        vars.push(("READ_INDEXES", "byDate,byMonth"));
        let error = from(&vars).unwrap_err().to_string();
        assert!(error.contains("READ_INDEXES") && error.contains("byMonth"), "{error}");
        // The people, contracts and counter-groups deltas take no filter.
        for (name, collection) in [("SYNC_FILTER_PEOPLE", "people"), ("SYNC_FILTER_COUNTER_GROUPS", "counter-groups")] {
            let mut vars = REQUIRED.to_vec();
            vars.push((name, "hireDate ge '{from}'"));
            let error = from(&vars).unwrap_err().to_string();
            assert!(error.contains(name) && error.contains(&format!("{collection} delta takes no filter")), "{error}");
        }
    }
}
