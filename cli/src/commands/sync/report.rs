//! The syncer's answer as the CLI reads it: each collection's part read into the library's
//! [`CollectionReport`], whose outcome may be one of another release ([`RunOutcome`]); the report
//! the CLI gives for an invoke Lambda refused; and the pages and records of every run.

use protime_webhooks::sync::apply::RecordCounts;
use protime_webhooks::sync::{CollectionReport, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How a collection's run ended, as the syncer named it.
///
/// A syncer of another release than this CLI may name an outcome the library does not know
/// (0.1's `idle`, or one added later). Its report still reads, so the operator still sees every
/// collection's pages, records and errors: such an outcome is shown as named, needs no operator
/// and is not waited for by `--wait`, as the outcomes that are not `error`, `conflict`,
/// `partial` or `busy`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(super) enum RunOutcome {
    Known(Outcome),
    Unknown(String),
}

impl RunOutcome {
    /// The library's outcome, if it is one.
    pub(super) fn known(&self) -> Option<Outcome> {
        match self {
            RunOutcome::Known(outcome) => Some(*outcome),
            RunOutcome::Unknown(_) => None,
        }
    }

    /// The name the syncer gave it.
    pub(super) fn name(&self) -> String {
        match self {
            RunOutcome::Known(outcome) => name_of(outcome),
            RunOutcome::Unknown(name) => name.clone(),
        }
    }
}

impl PartialEq<&str> for RunOutcome {
    fn eq(&self, name: &&str) -> bool {
        self.name() == *name
    }
}

/// A unit variant's name in the syncer's JSON (`partial`, `incremental`).
pub(super) fn name_of(variant: &impl Serialize) -> String {
    match serde_json::to_value(variant) {
        Ok(Value::String(name)) => name,
        _ => unreachable!("a unit variant serializes as its name"),
    }
}

/// A collection's part of the syncer's report.
pub(super) type CollectionRun = CollectionReport<RunOutcome>;

/// The syncer's report, as far as the CLI reads it (unknown fields are kept in the JSON output,
/// which is the report as returned).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct Report {
    pub(super) collections: Vec<CollectionRun>,
    /// Set by the CLI for an invoke Lambda refused (see [`throttled`]).
    pub(super) throttled: bool,
    /// The syncer found the credentials secret not filled in yet (why, naming the secret).
    #[serde(rename = "notConfigured")]
    pub(super) not_configured: Option<String>,
}

/// Needs an operator: ended in error or conflict, a sweep held, a reconciliation's page set aside.
pub(super) fn needs_attention(run: &CollectionRun) -> bool {
    matches!(run.outcome.known(), Some(Outcome::Error | Outcome::Conflict))
        || run.held.is_some()
        || run.reconcile_failing.is_some()
}

/// The collections a `--wait` invokes again for: their run stopped early, or another
/// invocation held them.
pub(super) fn pending(report: &Report) -> Vec<String> {
    report
        .collections
        .iter()
        .filter(|c| matches!(c.outcome.known(), Some(Outcome::Partial | Outcome::Busy)))
        .map(|c| c.collection.clone())
        .collect()
}

/// The report the CLI gives for an invoke Lambda refused.
#[derive(Serialize)]
struct ThrottledReport<'a> {
    collections: Vec<BusyRun<'a>>,
    throttled: bool,
}

/// A collection of a refused invoke: busy, nothing done.
#[derive(Serialize)]
struct BusyRun<'a> {
    collection: &'a str,
    outcome: Outcome,
    pages: u64,
    records: RecordCounts,
}

/// The report of an invoke Lambda refused at the function's reserved concurrency: every
/// collection busy, nothing done.
pub(super) fn throttled(collections: &[&str]) -> (Value, Report) {
    let busy = |&collection| BusyRun { collection, outcome: Outcome::Busy, pages: 0, records: RecordCounts::default() };
    let refused = ThrottledReport { collections: collections.iter().map(busy).collect(), throttled: true };
    let raw = serde_json::to_value(refused).expect("a report the CLI builds serializes");
    let report = serde_json::from_value(raw.clone()).expect("a report the CLI builds reads back");
    (raw, report)
}

/// Pages and records of a collection over every run.
#[derive(Debug, Clone, Default)]
pub(super) struct Total {
    pub(super) collection: String,
    pub(super) pages: u64,
    pub(super) records: RecordCounts,
}

/// Adds a run's pages and records to the totals of its collections.
pub(super) fn add(totals: &mut Vec<Total>, report: &Report) {
    for run in &report.collections {
        let index = match totals.iter().position(|t| t.collection == run.collection) {
            Some(index) => index,
            None => {
                totals.push(Total { collection: run.collection.clone(), ..Default::default() });
                totals.len() - 1
            }
        };
        totals[index].pages += run.pages;
        totals[index].records += run.records;
    }
}

/// `12 pages, 30 stored so far`, over every collection.
pub(super) fn progress_of(totals: &[Total]) -> String {
    let pages: u64 = totals.iter().map(|t| t.pages).sum();
    let stored: u64 = totals.iter().map(|t| t.records.stored).sum();
    format!("{pages} pages, {stored} stored so far")
}

pub(super) fn totals_json(totals: &[Total]) -> Value {
    let map: serde_json::Map<String, Value> =
        totals.iter().map(|t| (t.collection.clone(), json!({ "pages": t.pages, "records": t.records }))).collect();
    Value::Object(map)
}
