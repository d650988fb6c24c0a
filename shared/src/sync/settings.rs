//! The syncer's settings as the syncer uses them; `config` reads them from the environment.

use super::plan::CollectionPlan;
use crate::collection::Collection;
use chrono::NaiveDate;
use std::collections::HashMap;
use std::time::Duration;

/// The default filter of collections whose records carry a `date`.
pub const SYNC_DATE_FILTER: &str = "date ge '{from}'";

/// The default filter of the collections Protime answers only for a range of at most a year
/// (clockings, assignments, paid-presences): a rolling window, see [`super::plan::CollectionPlan::window`].
pub const SYNC_WINDOW_FILTER: &str = "date ge '{from}' and date le '{to}'";

/// The syncer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncerConfig {
    /// `TABLE_NAME`
    pub table_name: String,
    /// `PROTIME_CREDENTIALS_SECRET`
    pub protime_credentials_secret: String,
    /// `COLLECTIONS`: comma-separated (default: all 18).
    pub collections: Vec<Collection>,
    /// `EXTERNAL_REFERENCES`: asked for on every page, so synced records look like the events.
    pub external_references: String,
    /// `PROTIME_API_BASE_URL`, `PROTIME_TOKEN_URL`
    pub protime_api_base_url: Option<String>,
    pub protime_token_url: Option<String>,
    /// `PROTIME_USER_AGENT_COMPANY`
    pub user_agent_company: String,
    /// `SYNC_FROM`: the `{from}` of initial loads (default: 1 January of the previous year).
    pub sync_from: Option<NaiveDate>,
    /// `SYNC_FILTER_<COLLECTION>`: a filter template with `{from}` (and `{to}`: a rolling window),
    /// or `all` for none.
    pub filters: HashMap<Collection, Option<String>>,
    /// `SYNC_CONCURRENCY` (default 4).
    pub concurrency: usize,
    /// `SYNC_MAX_PAGES_PER_RUN`: pages of one collection per run (default unlimited).
    pub max_pages_per_run: Option<u64>,
    /// `SYNC_DEADLINE_MARGIN_SECONDS`: no page starts with less time than this left (default 60).
    pub deadline_margin: Duration,
    /// `RECONCILE_INTERVAL_HOURS` (default 168; 0: only on request): how often each collection
    /// gets a full pass with sweep, staggered over the interval.
    pub reconcile_interval: chrono::Duration,
    /// `SWEEP_LIMIT` (default 100): a full pass that would tombstone more records than this
    /// tombstones none and waits for an operator (`reconcile --max-sweep N`).
    pub sweep_limit: u64,
    /// `READ_INDEXES` (default both): without `byDate`, the sweep scans the table.
    pub read_indexes: crate::records::index::ReadIndexes,
    /// `METRICS_NAMESPACE`, `DETAILED_METRICS`
    pub metrics: crate::observability::metrics::Metrics,
    /// `QUARANTINE_BUCKET`: where synced records DynamoDB refuses are kept.
    pub quarantine_bucket: Option<String>,
    /// `FIELD_POLICY`, `TOMBSTONE_RETENTION_DAYS`
    pub data: crate::records::policy::DataPolicy,
    /// `SIGNING_KEYS_SECRET`: read only for the field hash key, when `FIELD_POLICY` hashes.
    pub signing_keys: crate::config::KeysLocation,
}

/// What a sweep needs of the settings: its limit, and how it reads the live records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepSettings {
    /// `SWEEP_LIMIT`, unless the pass names its own.
    pub limit: u64,
    /// `READ_INDEXES`: through `byDate` when the table has it, else by a Scan.
    pub indexes: crate::records::index::ReadIndexes,
}

impl SyncerConfig {
    pub fn sweep(&self) -> SweepSettings {
        SweepSettings { limit: self.sweep_limit, indexes: self.read_indexes }
    }

    /// How a collection is synced: its delta's filter template.
    pub fn plan(&self, collection: Collection) -> CollectionPlan {
        let filter_template = match self.filters.get(&collection) {
            Some(overridden) => overridden.clone(),
            None => default_filter(collection).map(str::to_owned),
        };
        CollectionPlan { filter_template }
    }
}

/// The built-in filter: the collections Protime answers only for a year at most through a
/// rolling window, other dated collections from `{from}`, reference collections unfiltered.
pub fn default_filter(collection: Collection) -> Option<&'static str> {
    match collection {
        Collection::Clockings | Collection::Assignments | Collection::PaidPresences => Some(SYNC_WINDOW_FILTER),
        c if c.is_dated() => Some(SYNC_DATE_FILTER),
        _ => None,
    }
}
