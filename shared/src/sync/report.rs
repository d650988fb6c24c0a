//! What a run did: one [`CollectionReport`] per collection in a [`SyncReport`], and the
//! metrics the report gives ([`sync_metrics`]).

use super::apply::RecordCounts;
use super::state::{Failing, HeldSweep};
use super::state::{Phase, SyncMode};
use super::sweep::Drift;
use crate::collection::Collection;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a collection's part of a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The load or delta round reached its end.
    Complete,
    /// The page budget or the deadline stopped it; the next run resumes from the checkpoint.
    Partial,
    /// Another invocation holds the collection's lease.
    Busy,
    /// Protime answered 409 (another delta request is in progress); retried next run.
    Conflict,
    Error,
}

/// One collection's part of a run.
///
/// Read back (by the CLI, from the syncer's answer), every field but `collection` and `outcome`
/// may be missing: a report of another release, or one the reader made itself, still reads. `O`
/// is how the outcome is read: an [`Outcome`], or a reader's own type that also keeps an outcome
/// of another release it does not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionReport<O = Outcome> {
    pub collection: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<SyncMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    pub outcome: O,
    /// Pages applied in this run.
    #[serde(default)]
    pub pages: u64,
    /// Records by outcome in this run.
    #[serde(default)]
    pub records: RecordCounts,
    /// Seconds since the cursor last moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor_age_seconds: Option<i64>,
    /// Seconds since the copy was last complete (the end of the last delta round).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_completed_at: Option<DateTime<Utc>>,
    /// Protime answered 410 Gone in this run; the collection went back to an initial load.
    #[serde(default)]
    pub delta_expired: bool,
    /// Runs in a row that ended in error or conflict on this collection.
    #[serde(default)]
    pub error_runs: u32,
    /// When a full pass last completed on this collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<DateTime<Utc>>,
    /// What a full pass that completed in this run found (a dry run's, with sample ids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// A reconciliation is under way (it goes on next run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconciling: bool,
    /// `held` when a full pass's sweep tombstoned nothing because it would have tombstoned more
    /// than its limit (see `held`); `done` when a sweep completed in this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepVerdict>,
    /// The sweep waiting for an operator, if any (kept until a full pass sweeps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<HeldSweep>,
    /// Pages of history or reconciliation that could not be read or fetched in this run: set
    /// aside (an unreadable body is quarantined), retried on a back-off.
    #[serde(default, skip_serializing_if = "super::state::is_zero")]
    pub pages_set_aside: u64,
    /// The history before a rolling window keeps failing (retried on a back-off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_failing: Option<Failing>,
    /// The reconciliation under way keeps failing (retried on a back-off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile_failing: Option<Failing>,
    /// Why the run stopped early on the collection because Protime asked to wait (429, or 503
    /// during maintenance) longer than the run had left: the next run goes on from there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a sweep ended in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SweepVerdict {
    Done,
    Held,
}

impl CollectionReport {
    pub(super) fn new(collection: Collection, outcome: Outcome) -> Self {
        CollectionReport {
            collection: collection.as_str().to_owned(),
            mode: None,
            phase: None,
            outcome,
            pages: 0,
            records: RecordCounts::default(),
            cursor_age_seconds: None,
            lag_seconds: None,
            initial_completed_at: None,
            delta_expired: false,
            error_runs: 0,
            verified_at: None,
            drift: None,
            reconciling: false,
            sweep: None,
            held: None,
            pages_set_aside: 0,
            history_failing: None,
            reconcile_failing: None,
            waiting: None,
            error: None,
        }
    }

    /// A collection that ended in error before its state was read or worked on.
    pub(super) fn failed(collection: Collection, message: impl Into<String>) -> Self {
        CollectionReport { error: Some(message.into()), ..CollectionReport::new(collection, Outcome::Error) }
    }

    /// Waiting for the baseline: no initial load has completed yet (unknown when the state could
    /// not be read, or another invocation holds it).
    pub fn initial_load_pending(&self) -> bool {
        self.mode.is_some() && self.initial_completed_at.is_none()
    }
}

/// What a run did; `healthy` is false when any collection ended in error, or when the stack is
/// not configured yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub healthy: bool,
    pub collections: Vec<CollectionReport>,
    /// The credentials secret still holds the template's placeholders: why nothing ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_configured: Option<String>,
}

impl SyncReport {
    /// A run over `collections`.
    pub fn of(collections: Vec<CollectionReport>) -> SyncReport {
        let healthy = collections.iter().all(|r| r.outcome != Outcome::Error);
        SyncReport { healthy, collections, not_configured: None }
    }

    /// A run that found the credentials secret not filled in yet (`why`, naming the secret).
    pub fn not_configured(why: String) -> SyncReport {
        SyncReport { healthy: false, collections: Vec::new(), not_configured: Some(why) }
    }

    /// The collections that ended in error.
    pub fn failing(&self) -> Vec<&str> {
        self.collections.iter().filter(|c| c.outcome == Outcome::Error).map(|c| c.collection.as_str()).collect()
    }
}

/// The metric documents of a run: one per collection (lag, pages, pending initial load, delta
/// expiry, runs in error: at the function level, where the alarms read the maximum or the sum,
/// unless detailed), and the records by outcome.
pub fn sync_metrics(
    metrics: &crate::observability::metrics::Metrics,
    report: &SyncReport,
) -> Vec<crate::observability::metrics::MetricDoc> {
    use crate::observability::metrics::Unit;
    if report.not_configured.is_some() {
        // The one signal of a stack deployed but not configured yet (its alarm); only then, so a
        // configured stack pays for no such metric.
        return vec![metrics.doc("syncer").count("CredentialsNotConfigured", 1)];
    }
    let mut docs = Vec::new();
    let mut totals = RecordCounts::default();
    for c in &report.collections {
        totals += c.records;
        let mut doc = metrics
            .doc("syncer")
            .dimension("Collection", &c.collection)
            .count("SyncPages", c.pages)
            .count("InitialLoadPending", u64::from(c.initial_load_pending()))
            .count("DeltaExpired", u64::from(c.delta_expired))
            .count("SyncErrorRuns", u64::from(c.error_runs));
        if let Some(lag) = c.lag_seconds {
            doc = doc.metric("SyncLagSeconds", Unit::Seconds, lag as f64);
        }
        // Every run while a sweep waits for an operator, so its alarm stays raised until then.
        doc = doc.count("SweepHeld", u64::from(c.held.is_some())).count("PagesSetAside", c.pages_set_aside);
        docs.push(doc);
        // What a full pass found, by kind (the drift alarm watches it); a first load found
        // everything missing by definition, so it is not counted.
        if let Some(drift) = c.drift.as_ref().filter(|d| !d.baseline) {
            for (kind, n) in drift.by_kind() {
                docs.push(
                    metrics
                        .doc("syncer")
                        .dimension("Collection", &c.collection)
                        .dimension("Kind", kind)
                        .count("DriftRecords", n),
                );
            }
        }
    }
    for (outcome, count) in totals.by_outcome() {
        docs.push(metrics.doc("syncer").dimension("Outcome", outcome).count("SyncRecords", count));
    }
    // The metric the Quarantined alarm watches, as the receiver emits it.
    docs.extend(
        totals
            .quarantined_by
            .iter()
            .map(|(reason, n)| metrics.doc("syncer").dimension("Reason", reason).count("Quarantined", n)),
    );
    docs
}
