//! The sync engine: for each collection, take its lease, start or resume its load, follow its
//! pages in order until the round ends, the page budget is spent or the invocation's deadline
//! nears, checkpointing the cursor after every page. Collections run in parallel (bounded);
//! one collection's failure never stops the others.
//!
//! The rules (where to start, how a page moves the cursor, what an error does) are the pure
//! functions of [`super::plan`]; this module carries them out against Protime, the record
//! store and the state store.

use super::apply::{apply_pass_records, apply_records, RecordCounts};
use super::kept::{self, KeepError, PageKeep};
use super::plan::{self, AfterPage, Start};
use super::settings::SyncerConfig;
use super::state::{save_page_seen, Failing, FullPass, HeldSweep, Reconcile, SeenSlot};
use super::state::{DynamoSyncStateStore, Phase, SyncMode, SyncState, SyncStateError, SyncStateStore};
use super::sweep::{sweep, Drift, DriftKind, LiveRecords, PassTally, SweepScope, SweepStep, Swept, Window};
use crate::collection::Collection;
use crate::protime::client::{within_deadline, ClientOptions};
use crate::protime::LinksFollowed;
use crate::protime::{Connect, ConnectError, CredentialsFromSecret, Page, ProtimeError, RecordPages};
use crate::records::quarantine::{NoQuarantine, Note, Quarantine, S3Quarantine};
use crate::records::set_aside::SetAsideMarks;
use crate::records::{DynamoRecordStore, RecordStore, Source, StoreError, StoredHeads};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::time::Instant;

/// How long a lease lasts when the invocation's deadline is unknown (the function's timeout);
/// it is extended at every checkpoint.
const DEFAULT_LEASE: Duration = Duration::from_secs(900);
/// Pages one delta round of the renewer follows at most (a round is normally one page).
const MAX_ROUND_PAGES: u64 = 1_000;

/// What an invocation asks for. A scheduled event (or `{}`) is a normal run of every
/// configured collection; `{"collections":["clockings"],"reinitialize":true,"from":"2024-01-01"}`
/// restarts those collections' initial load (a manual backfill);
/// `{"collections":["clockings"],"reconcile":true}` starts their reconciliation now (with
/// `"dryRun":true`, a comparison that writes no record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncRequest {
    pub collections: Option<Vec<String>>,
    pub reinitialize: bool,
    pub from: Option<NaiveDate>,
    /// Start a reconciliation (a full pass with sweep) of the named collections now.
    pub reconcile: bool,
    /// With `reconcile`: compare and report only; no record is written, the delta left alone.
    #[serde(rename = "dryRun")]
    pub dry_run: bool,
    /// With `reconcile`: the most its sweep may tombstone (an operator allowing a held sweep
    /// through); without it, `SWEEP_LIMIT`.
    #[serde(rename = "maxSweep")]
    pub max_sweep: Option<u64>,
}

impl SyncRequest {
    /// The invocation's payload as a request: an EventBridge event (it has a `detail-type`) is a
    /// scheduled run; anything else must be a request with no unknown field, so a misspelt
    /// `collection` never turns a backfill of one collection into a run of all.
    pub fn from_payload(payload: serde_json::Value) -> Result<SyncRequest, SyncRunError> {
        if payload.get("detail-type").is_some() {
            return Ok(SyncRequest::default());
        }
        serde_json::from_value(payload).map_err(|e| SyncRunError::InvalidRequest(e.to_string()))
    }
}

/// How a collection's part of a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionReport {
    pub collection: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<SyncMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    pub outcome: Outcome,
    /// Pages applied in this run.
    pub pages: u64,
    /// Records by outcome in this run.
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
    pub delta_expired: bool,
    /// Runs in a row that ended in error or conflict on this collection.
    pub error_runs: u32,
    /// When a full pass last completed on this collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<DateTime<Utc>>,
    /// What a full pass that completed in this run found (a dry run's, with sample ids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// A reconciliation is under way (it goes on next run).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
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
    #[serde(skip_serializing_if = "super::state::is_zero")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SweepVerdict {
    Done,
    Held,
}

impl CollectionReport {
    fn new(collection: Collection, outcome: Outcome) -> Self {
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
    fn failed(collection: Collection, message: impl Into<String>) -> Self {
        CollectionReport { error: Some(message.into()), ..CollectionReport::new(collection, Outcome::Error) }
    }

    /// Waiting for the baseline: no initial load has completed yet (unknown when the state could
    /// not be read, or another invocation holds it).
    pub fn initial_load_pending(&self) -> bool {
        self.mode.is_some() && self.initial_completed_at.is_none()
    }
}

/// What a run did; `healthy` is false when any collection ended in error.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub healthy: bool,
    pub collections: Vec<CollectionReport>,
}

impl SyncReport {
    /// The collections that ended in error.
    pub fn failing(&self) -> Vec<&str> {
        self.collections.iter().filter(|c| c.outcome == Outcome::Error).map(|c| c.collection.as_str()).collect()
    }
}

/// A run that could not start, or ended with collections in error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncRunError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("the request names collections that are not configured: {}", .0.join(", "))]
    UnknownCollections(Vec<String>),
    #[error("the request is invalid: {0}")]
    InvalidRequest(String),
    /// The run's report, every collection in it, with each error's sentence.
    #[error("collections in error: {}", failing_sentences(.0))]
    Failing(Box<SyncReport>),
}

/// `clockings (…its error…); people (…)`.
fn failing_sentences(report: &SyncReport) -> String {
    let failing = report.collections.iter().filter(|c| c.outcome == Outcome::Error);
    let sentences: Vec<String> =
        failing.map(|c| format!("{} ({})", c.collection, c.error.as_deref().unwrap_or("no message"))).collect();
    sentences.join("; ")
}

impl SyncRunError {
    /// A stable name for the Lambda error type.
    pub fn error_type(&self) -> &'static str {
        match self {
            SyncRunError::Connect(_) => "ProtimeCredentialsUnavailable",
            SyncRunError::UnknownCollections(_) | SyncRunError::InvalidRequest(_) => "InvalidRequest",
            SyncRunError::Failing(_) => "CollectionsFailing",
        }
    }

    /// The invocation's `errorMessage`: the sentence, or for a run with collections in error
    /// the run's whole report as JSON (so whoever invoked it still reads every collection's
    /// outcome; the CLI prints it as a report).
    pub fn error_message(&self) -> String {
        match self {
            SyncRunError::Failing(report) => serde_json::to_string(report).unwrap_or_else(|_| self.to_string()),
            other => other.to_string(),
        }
    }
}

impl From<SyncRunError> for lambda_http::lambda_runtime::Diagnostic {
    fn from(error: SyncRunError) -> Self {
        lambda_http::lambda_runtime::Diagnostic {
            error_type: error.error_type().into(),
            error_message: error.error_message(),
        }
    }
}

/// Time left until an invocation's deadline; `None` when the runtime gave none in the future
/// (Lambda always does; `cargo lambda watch` sends one already past).
pub fn time_left(deadline: std::time::SystemTime) -> Option<Duration> {
    deadline.duration_since(std::time::SystemTime::now()).ok().filter(|left| !left.is_zero())
}

/// The time a run may use: no page starts once less than `margin` is left.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    started: Instant,
    base: DateTime<Utc>,
    time_left: Option<Duration>,
    margin: Duration,
}

impl Budget {
    /// `time_left`: until the invocation's deadline (`None`: unknown, e.g. a test).
    pub fn new(now: DateTime<Utc>, time_left: Option<Duration>, margin: Duration) -> Self {
        Budget { started: Instant::now(), base: now, time_left, margin }
    }

    /// The run's clock: its start time plus the time elapsed since.
    pub fn now(&self) -> DateTime<Utc> {
        self.base + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }

    /// Whether a page may start: more than the margin is left before the deadline.
    pub fn may_start_page(&self) -> bool {
        self.time_left.is_none_or(|left| self.started.elapsed() + self.margin < left)
    }

    /// How long a Protime request (its retries included) may take: the time left less half the
    /// margin, so the page it brings is still applied, checkpointed and reported in time.
    /// `None`: no deadline known.
    pub fn request_time(&self) -> Option<Duration> {
        self.time_left.map(|left| left.saturating_sub(self.started.elapsed() + self.margin / 2))
    }

    /// The invocation's deadline, when known.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.time_left.map(|left| self.base + chrono::Duration::from_std(left).unwrap_or_default())
    }

    /// Leases last until the invocation's deadline: a crashed run's lease frees itself then.
    /// Without a known deadline, [`DEFAULT_LEASE`] from now (extended at every checkpoint).
    fn lease_until(&self) -> DateTime<Utc> {
        match self.time_left {
            Some(left) => self.base + chrono::Duration::from_std(left).unwrap_or_default(),
            None => self.now() + chrono::Duration::from_std(DEFAULT_LEASE).unwrap_or_default(),
        }
    }
}

/// Why following a collection's pages stopped early.
#[derive(Debug)]
enum Stop {
    Gone,
    Conflict,
    Failed(String),
    LeaseLost,
}

impl Stop {
    /// How a collection's part of a run ends on this stop (a 410 and a lost lease are handled
    /// before this).
    fn outcome(self) -> (Outcome, String) {
        match self {
            Stop::Conflict => (Outcome::Conflict, "Protime answered 409: another delta request is in progress".into()),
            Stop::Gone => (Outcome::Error, "Protime answered 410 Gone".into()),
            Stop::Failed(message) => (Outcome::Error, message),
            Stop::LeaseLost => (Outcome::Error, SyncStateError::LeaseLost.to_string()),
        }
    }
}

impl From<ProtimeError> for Stop {
    fn from(e: ProtimeError) -> Self {
        match e {
            ProtimeError::DeltaGone => Stop::Gone,
            ProtimeError::DeltaConflict => Stop::Conflict,
            other => Stop::Failed(format!("fetching a page: {other}")),
        }
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Failed(format!("writing records: {e}"))
    }
}

impl From<SyncStateError> for Stop {
    fn from(e: SyncStateError) -> Self {
        match e {
            SyncStateError::LeaseLost => Stop::LeaseLost,
            other => Stop::Failed(format!("saving the checkpoint: {other}")),
        }
    }
}

/// The syncer as deployed.
pub type AwsSyncer = Syncer<CredentialsFromSecret, DynamoRecordStore, DynamoSyncStateStore, S3Quarantine>;

pub struct Syncer<P, R, S, Q = NoQuarantine> {
    pub config: SyncerConfig,
    /// Opens a Protime session per run (public so tests can shorten its retries).
    pub protime: P,
    records: R,
    states: S,
    quarantine: Option<Q>,
}

impl AwsSyncer {
    pub fn from_config(config: SyncerConfig, sdk: &aws_config::SdkConfig) -> Self {
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let protime = CredentialsFromSecret::new(secrets, &config.protime_credentials_secret, client_options(&config));
        let records = DynamoRecordStore::new(dynamodb.clone(), &config.table_name);
        let states = DynamoSyncStateStore::new(dynamodb, &config.table_name);
        let quarantine =
            config.quarantine_bucket.as_ref().map(|bucket| S3Quarantine::new(S3Quarantine::client(sdk), bucket));
        Syncer::new(config, protime, records, states).with_quarantine(quarantine)
    }
}

/// The Protime client settings of the syncer: read scopes of its collections only. Retries and
/// `Retry-After` waits are bounded by the run's deadline (each page's fetch), not by the default
/// policy's minute.
pub fn client_options(config: &SyncerConfig) -> ClientOptions {
    let scopes = config.collections.iter().map(|c| format!("connector-protimeapi-{c}.read")).collect();
    let mut options = ClientOptions::new(scopes, &config.user_agent_company);
    options.retry.max_elapsed = Duration::from_secs(900);
    options.api_base_url = config.protime_api_base_url.clone();
    options.token_url = config.protime_token_url.clone();
    options
}

impl<P: Connect, R: RecordStore + StoredHeads + SetAsideMarks, S: SyncStateStore> Syncer<P, R, S> {
    pub fn new(config: SyncerConfig, protime: P, records: R, states: S) -> Self {
        Syncer { config, protime, records, states, quarantine: None }
    }
}

impl<
        P: Connect,
        R: RecordStore + StoredHeads + SetAsideMarks + LiveRecords,
        S: SyncStateStore,
        Q: Quarantine + PageKeep,
    > Syncer<P, R, S, Q>
{
    /// Keeps synced records DynamoDB refuses in `quarantine` (counted either way).
    pub fn with_quarantine<Q2: Quarantine + PageKeep>(self, quarantine: Option<Q2>) -> Syncer<P, R, S, Q2> {
        let Syncer { config, protime, records, states, .. } = self;
        Syncer { config, protime, records, states, quarantine }
    }

    /// One run over the requested (or every configured) collection.
    pub async fn run(&self, request: &SyncRequest, budget: Budget) -> Result<SyncReport, SyncRunError> {
        let collections = self.requested(request)?;
        let api = self.protime.connect().await?;
        let owner = format!("{:016x}", rand::random::<u64>());
        let mut reports = Vec::with_capacity(collections.len());
        let mut pending = FuturesUnordered::new();
        for collection in collections {
            if pending.len() >= self.config.concurrency.max(1) {
                if let Some(report) = pending.next().await {
                    reports.push(report);
                }
            }
            pending.push(self.sync_collection(&api, collection, request, &budget, &owner));
        }
        while let Some(report) = pending.next().await {
            reports.push(report);
        }
        let order = |r: &CollectionReport| self.config.collections.iter().position(|c| c.as_str() == r.collection);
        reports.sort_by_key(order);
        let healthy = reports.iter().all(|r| r.outcome != Outcome::Error);
        Ok(SyncReport { healthy, collections: reports })
    }

    fn requested(&self, request: &SyncRequest) -> Result<Vec<Collection>, SyncRunError> {
        if request.dry_run && !request.reconcile {
            return Err(SyncRunError::InvalidRequest(
                "dryRun applies to a reconciliation: add \"reconcile\":true".into(),
            ));
        }
        if request.max_sweep.is_some() && !request.reconcile {
            return Err(SyncRunError::InvalidRequest(
                "maxSweep applies to a reconciliation: add \"reconcile\":true".into(),
            ));
        }
        if request.reconcile && request.reinitialize {
            return Err(SyncRunError::InvalidRequest("reconcile and reinitialize cannot be asked for at once".into()));
        }
        let Some(names) = &request.collections else {
            if request.reconcile {
                return Err(SyncRunError::InvalidRequest("reconcile needs the collections to reconcile".into()));
            }
            if request.reinitialize {
                // Reloading every collection must be asked for by name.
                return Err(SyncRunError::InvalidRequest("reinitialize needs the collections to reload".into()));
            }
            return Ok(self.config.collections.clone());
        };
        let mut wanted = Vec::new();
        let mut unknown = Vec::new();
        for name in names {
            match name.parse::<Collection>() {
                Ok(c) if self.config.collections.contains(&c) => {
                    if !wanted.contains(&c) {
                        wanted.push(c)
                    }
                }
                _ => unknown.push(name.chars().take(64).collect()),
            }
        }
        if unknown.is_empty() {
            Ok(wanted)
        } else {
            Err(SyncRunError::UnknownCollections(unknown))
        }
    }

    /// One collection: lease, start or resume, follow pages, record the outcome, release.
    async fn sync_collection(
        &self,
        api: &P::Api,
        collection: Collection,
        request: &SyncRequest,
        budget: &Budget,
        owner: &str,
    ) -> CollectionReport {
        let plan = self.config.plan(collection);
        let mut state = match self.states.acquire(collection, owner, budget.now(), budget.lease_until()).await {
            Ok(Some(state)) => state,
            Ok(None) if request.reinitialize => {
                // A backfill that did not start must not look like one that did.
                tracing::error!(collection = %collection, "another invocation is syncing this collection; not reinitialized");
                let message = "another invocation holds the collection's lease: not reinitialized, try again";
                return CollectionReport::failed(collection, message);
            }
            Ok(None) => {
                tracing::info!(collection = %collection, "another invocation is syncing this collection");
                return CollectionReport::new(collection, Outcome::Busy);
            }
            Err(e) => {
                tracing::error!(collection = %collection, error = %e, "cannot take the collection's lease");
                return CollectionReport::failed(collection, e.to_string());
            }
        };
        let default_from = self.config.sync_from.unwrap_or_else(|| plan::default_from(budget.now()));
        let mut report = CollectionReport::new(collection, Outcome::Complete);
        let sink = Sink { records: &self.records, states: &self.states, quarantine: self.quarantine.as_ref(), owner };
        // Before anything new starts: a kept page is applied, and a load about to start (asked
        // for, or because the mode or the filter changed) first follows a live deltaLink to its
        // end, so the changes since the last round, deletions included, are not lost.
        let reloading = request.reinitialize
            || matches!(plan::start(&state, &plan, default_from, budget.now()), Start::Begin { .. });
        let max_pages = self.config.max_pages_per_run;
        // A dry run compares only: no delta round, no load (they would write records).
        let ended = if request.dry_run {
            Ok(Outcome::Complete)
        } else {
            'run: {
                if state.kept.is_some() || (reloading && plan::live_delta(&state)) {
                    tracing::info!(collection = %collection, reloading, "catching up before anything new starts");
                    match catch_up(api, &sink, collection, &mut state, budget, max_pages, &mut report, reloading).await
                    {
                        Ok(CatchUp::Round) if !reloading => break 'run Ok(Outcome::Complete),
                        Ok(CatchUp::Round | CatchUp::Applied) => {}
                        Ok(CatchUp::Stopped) if request.reinitialize => {
                            let message = "the deadline or page budget came before the deltaLink was followed to its \
                                       end: not reinitialized, try again";
                            break 'run Err((Outcome::Error, message.to_owned()));
                        }
                        Ok(CatchUp::Stopped) => break 'run Ok(Outcome::Partial),
                        // The deltaLink expired: nothing to catch up on; the load goes on.
                        Err(Stop::Gone) => {
                            tracing::warn!(collection = %collection, "the deltaLink expired (410); starting the initial load again");
                            report.delta_expired = true;
                            plan::delta_expired(&mut state, budget.now());
                        }
                        Err(Stop::LeaseLost) => return self.lease_lost(report, &state, budget),
                        Err(stop) => break 'run Err(stop.outcome()),
                    }
                }
                if request.reinitialize {
                    tracing::info!(collection = %collection, from = ?request.from, "reinitializing on request");
                    plan::reinitialize(&mut state, request.from);
                }
                loop {
                    match plan::start(&state, &plan, default_from, budget.now()) {
                        Start::Follow => {}
                        Start::Begin { filter, from, to, why } => {
                            tracing::info!(collection = %collection, filter = ?filter, why, "beginning a delta load");
                            let link = api.list_url(
                                collection,
                                filter.as_deref(),
                                true,
                                self.config.external_references.trim(),
                            );
                            plan::begin(&mut state, &plan, filter, (from, to), link, budget.now());
                            written_since_now(state.pass.as_mut());
                        }
                    }
                    match follow(api, &sink, collection, &mut state, budget, max_pages, &mut report).await {
                        Ok(true) => break 'run Ok(Outcome::Complete),
                        Ok(false) => break 'run Ok(Outcome::Partial),
                        Err(Stop::Gone) if !report.delta_expired => {
                            tracing::warn!(collection = %collection, "the deltaLink expired (410); starting the initial load again");
                            report.delta_expired = true;
                            plan::delta_expired(&mut state, budget.now());
                        }
                        Err(Stop::Gone) => {
                            break 'run Err((Outcome::Error, "Protime answered 410 Gone to a fresh load".to_owned()))
                        }
                        Err(Stop::LeaseLost) => return self.lease_lost(report, &state, budget),
                        Err(stop) => break 'run Err(stop.outcome()),
                    }
                }
            }
        };
        // With the collection caught up: the sweep of a pass whose pages are all applied, then
        // a reconciliation asked for, due, or under way.
        let ended = match ended {
            Ok(Outcome::Complete) => {
                match self.after_main(api, &sink, collection, &mut state, request, budget, &mut report).await {
                    Ok(true) => Ok(Outcome::Complete),
                    Ok(false) => Ok(Outcome::Partial),
                    Err(Stop::LeaseLost) => return self.lease_lost(report, &state, budget),
                    Err(stop) => Err(stop.outcome()),
                }
            }
            other => other,
        };
        match ended {
            Ok(outcome) => {
                report.outcome = outcome;
                plan::succeeded(&mut state);
            }
            Err((outcome, message)) => {
                tracing::error!(collection = %collection, error = %message, "sync stopped");
                report.outcome = outcome;
                report.error = Some(message.clone());
                plan::failed(&mut state, message, budget.now());
            }
        }
        if let Err(e) = release(&self.states, collection, &mut state, owner).await {
            tracing::error!(collection = %collection, error = %e, "cannot save the sync state");
            report.outcome = Outcome::Error;
            report.error = Some(e.to_string());
        }
        self.finish(report, &state, budget)
    }

    /// After the collection's delta round or load ended: sweeps a load
    /// whose pages are all applied (not in a dry run: it would write), works on a reconciliation
    /// (asked for, due, or under way), then on the history before a rolling window. Each has a
    /// page budget of its own, and neither the reconciliation nor the history holds up the
    /// other or the delta: a page of theirs that cannot be read or fetched is set aside and
    /// retried on a back-off. `Ok(false)`: the deadline or a page budget stopped something; it
    /// goes on next run.
    #[allow(clippy::too_many_arguments)]
    async fn after_main(
        &self,
        api: &P::Api,
        sink: &Sink<'_, R, S, Q>,
        collection: Collection,
        state: &mut SyncState,
        request: &SyncRequest,
        budget: &Budget,
        report: &mut CollectionReport,
    ) -> Result<bool, Stop> {
        let limit = self.config.sweep_limit;
        if !request.dry_run
            && state.pass.as_ref().is_some_and(|p| p.sweeping.is_some())
            && !finish_pass(sink, collection, state, SeenSlot::Load, budget, report, limit).await?
        {
            return Ok(false);
        }
        if state.phase != Some(Phase::Incremental) {
            if request.reconcile {
                tracing::info!(collection = %collection, "the load under way is itself a full pass: no reconciliation started");
            }
            return Ok(true);
        }
        let reconciled = self.reconcile(api, sink, collection, state, request, budget, report).await?;
        let listed = request.dry_run || self.list_history(api, sink, collection, state, budget, report).await?;
        Ok(reconciled && listed)
    }

    /// Starts a reconciliation (asked for in this request, handed over by the renewer, or due)
    /// and follows its pages, then sweeps. `Ok(false)`: stopped by the deadline or its page
    /// budget (a page set aside is reported and waits for its back-off).
    #[allow(clippy::too_many_arguments)]
    async fn reconcile(
        &self,
        api: &P::Api,
        sink: &Sink<'_, R, S, Q>,
        collection: Collection,
        state: &mut SyncState,
        request: &SyncRequest,
        budget: &Budget,
        report: &mut CollectionReport,
    ) -> Result<bool, Stop> {
        // Asked for in this request, or by the renewer after a recovery it could not catch up on.
        let handed_over = state.full_pass_requested_at.is_some() && !request.dry_run;
        let dry_run = request.reconcile && request.dry_run;
        let asked =
            (request.reconcile || handed_over) && state.reconcile.as_ref().is_none_or(|r| r.pass.dry_run != dry_run);
        let due = state.reconcile.is_none()
            && !request.dry_run
            && plan::reconcile_due(state, collection, self.config.reconcile_interval, budget.now());
        if asked || due {
            let filter = state.filter.clone();
            let link = api.list_url(collection, filter.as_deref(), false, self.config.external_references.trim());
            tracing::info!(collection = %collection, dry_run, asked, handed_over, "starting a reconciliation");
            let mut pass = FullPass::new(budget.now(), false, dry_run);
            written_since_now(Some(&mut pass));
            state.reconcile = Some(Reconcile { pass, filter, cursor: Some(link), pages: 0, failing: None });
        }
        let Some(reconcile) = state.reconcile.as_mut() else { return Ok(true) };
        if request.reconcile {
            // An operator's word goes now, back-off or not.
            reconcile.failing = None;
            if request.max_sweep.is_some() {
                reconcile.pass.max_sweep = request.max_sweep;
            }
        }
        if !Failing::may_retry(reconcile.failing.as_ref(), budget.now()) {
            return Ok(true);
        }
        let since = report.pages;
        let mut followed = LinksFollowed::default();
        loop {
            let Some(reconcile) = state.reconcile.as_mut() else { return Ok(true) };
            let Some(link) = reconcile.cursor.clone().filter(|_| reconcile.pass.sweeping.is_none()) else { break };
            if !may_start_page(self.config.max_pages_per_run, report.pages - since, budget) {
                return Ok(false);
            }
            followed.first_time(&link)?;
            let Some(fetched) = fetch_list_page(api, &link, budget, report).await else { return Ok(false) };
            let dry_run = reconcile.pass.dry_run;
            let envelope = match readable(sink, collection, &fetched, dry_run, report).await? {
                Ok(envelope) => envelope,
                Err(error) => {
                    // Reported and retried on its back-off: nothing more this run can do.
                    back_off(&mut reconcile.failing, error, report, budget.now());
                    sink.checkpoint(collection, state, budget).await?;
                    return Ok(true);
                }
            };
            let mut tally = PassTally::new(reconcile.pass.dry_run);
            let counts = apply_pass_records(
                sink.records,
                sink.quarantine,
                collection,
                &envelope.records,
                Source::Resync,
                &mut tally,
            )
            .await?;
            let chunk = reconcile.pass.chunks;
            let seen = std::mem::take(&mut tally.seen);
            reconcile.pass.chunks += save_page_seen(sink.states, collection, SeenSlot::Reconcile, chunk, seen).await?;
            report.pages += 1;
            report.records += counts;
            reconcile.pass.add_page(&tally);
            reconcile.pages += 1;
            reconcile.failing = None;
            reconcile.cursor = envelope.next_link;
            if reconcile.cursor.is_none() {
                reconcile.pass.sweeping = Some(0);
            }
            sink.checkpoint(collection, state, budget).await?;
        }
        finish_pass(sink, collection, state, SeenSlot::Reconcile, budget, report, self.config.sweep_limit).await
    }

    /// Lists a rolling window's history (the days from the floor up to the window's start) once,
    /// range by range, with its own cursor beside the delta; never swept (no full pass sees
    /// it again). A range that cannot be read or fetched is set aside and retried on a back-off.
    /// `Ok(false)`: the deadline or the page budget stopped it (a range set aside is reported and
    /// waits for its back-off).
    async fn list_history(
        &self,
        api: &P::Api,
        sink: &Sink<'_, R, S, Q>,
        collection: Collection,
        state: &mut SyncState,
        budget: &Budget,
        report: &mut CollectionReport,
    ) -> Result<bool, Stop> {
        let plan = self.config.plan(collection);
        let default_from = self.config.sync_from.unwrap_or_else(|| plan::default_from(budget.now()));
        let since = report.pages;
        let mut followed = LinksFollowed::default();
        while let Some((first, last)) = plan::history_range(state, &plan, default_from) {
            let Some(history) = state.history.as_mut() else { return Ok(true) };
            if !Failing::may_retry(history.failing.as_ref(), budget.now()) {
                return Ok(true);
            }
            if !may_start_page(self.config.max_pages_per_run, report.pages - since, budget) {
                return Ok(false);
            }
            let link = match history.cursor.clone() {
                Some(link) => link,
                None => {
                    let filter = plan.filter(first, Some(last));
                    tracing::info!(collection = %collection, filter = ?filter, "listing the history before the window");
                    api.list_url(collection, filter.as_deref(), false, self.config.external_references.trim())
                }
            };
            followed.first_time(&link)?;
            let Some(fetched) = fetch_list_page(api, &link, budget, report).await else { return Ok(false) };
            let envelope = match readable(sink, collection, &fetched, false, report).await? {
                Ok(envelope) => envelope,
                Err(error) => {
                    // Reported and retried on its back-off: nothing more this run can do.
                    back_off(&mut history.failing, error, report, budget.now());
                    sink.checkpoint(collection, state, budget).await?;
                    return Ok(true);
                }
            };
            let counts =
                apply_records(sink.records, sink.quarantine, collection, &envelope.records, Source::Resync, true)
                    .await?;
            report.pages += 1;
            report.records += counts;
            plan::after_history_page(history, last, envelope.next_link);
            sink.checkpoint(collection, state, budget).await?;
        }
        Ok(true)
    }

    /// Another invocation owns the collection now: its state is left alone.
    fn lease_lost(&self, mut report: CollectionReport, state: &SyncState, budget: &Budget) -> CollectionReport {
        tracing::warn!(collection = %report.collection, "the lease was taken over; stopping");
        report.outcome = Outcome::Error;
        report.error = Some(SyncStateError::LeaseLost.to_string());
        self.finish(report, state, budget)
    }

    fn finish(&self, mut report: CollectionReport, state: &SyncState, budget: &Budget) -> CollectionReport {
        let now = budget.now();
        report.mode = state.mode;
        report.phase = state.phase;
        report.cursor_age_seconds = state.cursor_at.map(|at| (now - at).num_seconds().max(0));
        report.lag_seconds = plan::lag_seconds(state, now);
        report.initial_completed_at = state.initial_completed_at;
        report.error_runs = state.error_runs;
        report.verified_at = state.verified_at;
        report.reconciling = state.reconcile.is_some();
        report.held = state.sweep_held.clone();
        report.history_failing = state.history.as_ref().and_then(|h| h.failing.clone());
        report.reconcile_failing = state.reconcile.as_ref().and_then(|r| r.failing.clone());
        tracing::info!(
            collection = %report.collection,
            outcome = ?report.outcome,
            phase = ?report.phase,
            pages = report.pages,
            stored = report.records.stored,
            deleted = report.records.deleted,
            lag_s = report.lag_seconds,
            "collection synced"
        );
        report
    }
}

/// Where followed pages go: the record table (and quarantine), and the checkpoints under the
/// lease of `owner`.
struct Sink<'a, R, S, Q> {
    records: &'a R,
    states: &'a S,
    quarantine: Option<&'a Q>,
    owner: &'a str,
}

impl<R, S: SyncStateStore, Q> Sink<'_, R, S, Q> {
    /// Saves the state with the lease renewed to the run's deadline (conditional on still
    /// holding it).
    async fn checkpoint(
        &self,
        collection: Collection,
        state: &mut SyncState,
        budget: &Budget,
    ) -> Result<(), SyncStateError> {
        state.lease_until = Some(budget.lease_until().timestamp_millis());
        self.states.checkpoint(collection, state, self.owner).await
    }
}

/// Whether another page may start: `used` pages of the activity's budget (the delta round or
/// load, a reconciliation, the history: each has its own) leave room, and the deadline leaves
/// time for one.
fn may_start_page(max_pages: Option<u64>, used: u64, budget: &Budget) -> bool {
    max_pages.is_none_or(|max| used < max) && budget.may_start_page()
}

/// Fetches one page within [`Budget::request_time`] (its retries included): `Ok(None)` when the
/// deadline would come first; the same link is fetched next run. A `Retry-After` (429, a 503
/// during maintenance) is waited out when it ends before the deadline; one that would end after
/// it stops the collection's part of the run at once, like the deadline, with the sentence
/// saying so in the report's `waiting` ([`ProtimeError::RetryAfterTooLong`]).
async fn fetch<A: RecordPages>(
    api: &A,
    link: &str,
    budget: &Budget,
    report: &mut CollectionReport,
) -> Result<Option<Page>, ProtimeError> {
    let answer = match budget.request_time() {
        None => api.fetch_page(link).await.map(Some),
        Some(time) => {
            let deadline = tokio::time::Instant::now() + time;
            within_deadline_or_none(time, within_deadline(deadline, api.fetch_page(link))).await
        }
    };
    match answer {
        Err(e @ ProtimeError::RetryAfterTooLong { .. }) => {
            tracing::warn!(collection = %report.collection, error = %e, "Protime asked to wait past the run's time");
            report.waiting = Some(e.to_string());
            Ok(None)
        }
        other => other,
    }
}

/// `call` bounded by `time`: `Ok(None)` when the time runs out first.
async fn within_deadline_or_none(
    time: Duration,
    call: impl std::future::Future<Output = Result<Page, ProtimeError>>,
) -> Result<Option<Page>, ProtimeError> {
    match tokio::time::timeout(time, call).await {
        Ok(page) => page.map(Some),
        Err(_) => {
            tracing::warn!(
                waited_ms = time.as_millis() as u64,
                "a page request ran into the deadline; fetched again next run"
            );
            Ok(None)
        }
    }
}

/// Fetches one page of a list that must not hold anything else up: `None` when the deadline
/// came first, `Err` why it could not be fetched (the caller sets it aside).
async fn fetch_list_page<A: RecordPages>(
    api: &A,
    link: &str,
    budget: &Budget,
    report: &mut CollectionReport,
) -> Option<Result<Page, String>> {
    match fetch(api, link, budget, report).await {
        Ok(Some(page)) => Some(Ok(page)),
        Ok(None) => None,
        Err(e) => Some(Err(format!("fetching a page: {e}"))),
    }
}

/// The records of a fetched list page, or why it is set aside: it could not be fetched, or read
/// (then its body is quarantined and counted, when a quarantine is configured and it is no dry
/// run). Only an unavailable quarantine stops the run.
async fn readable<'p, R, S: SyncStateStore, Q: Quarantine>(
    sink: &Sink<'_, R, S, Q>,
    collection: Collection,
    fetched: &'p Result<Page, String>,
    dry_run: bool,
    report: &mut CollectionReport,
) -> Result<Result<crate::protime::Envelope<'p>, String>, Stop> {
    let page = match fetched {
        Ok(page) => page,
        Err(error) => return Ok(Err(error.clone())),
    };
    let error = match page.envelope() {
        Ok(envelope) => return Ok(Ok(envelope)),
        Err(e) => e,
    };
    let Some(quarantine) = sink.quarantine.filter(|_| !dry_run) else {
        return Ok(Err(format!("{error}; not quarantined (no quarantine is configured, or a dry run)")));
    };
    let key = quarantine_page(quarantine, collection, page, Source::Resync, report)
        .await
        .map_err(|e| Stop::Failed(format!("the quarantine: {e}")))?;
    Ok(Err(format!("{error}; the page is quarantined as {key}")))
}

/// Keeps a page that cannot be read in the quarantine, whole, and counts it for the
/// `Quarantined` metric; the object's key.
async fn quarantine_page<Q: Quarantine>(
    quarantine: &Q,
    collection: Collection,
    page: &Page,
    source: Source,
    report: &mut CollectionReport,
) -> Result<String, crate::records::quarantine::QuarantineError> {
    let note = Note { reason: UNREADABLE, source, record_id: None, change_type: None, change_version: None };
    let key = quarantine.keep(collection, &page.body, note).await?;
    report.records.quarantined_by.add(UNREADABLE, 1);
    Ok(key)
}

/// Records a list page set aside: the back-off of its list, and the run's count.
fn back_off(failing: &mut Option<Failing>, error: String, report: &mut CollectionReport, now: DateTime<Utc>) {
    tracing::error!(collection = %report.collection, error = %error, "a page was set aside; retried on a back-off");
    *failing = Some(Failing::after(failing.as_ref(), error, now));
    report.pages_set_aside += 1;
}

/// The quarantine reason of a page that cannot be read.
const UNREADABLE: &str = "unreadable_page";

/// Follows the cursor page by page; `Ok(true)` when the round or pass ended, `Ok(false)` when
/// the page budget or the deadline stopped it. Each fetched page is kept (and the state points
/// at it) before any of its records is written; a page already kept is applied before anything
/// is fetched. The cursor moves (and is checkpointed) only after every record of its page has
/// its verdict.
async fn follow<
    A: RecordPages,
    R: RecordStore + StoredHeads + SetAsideMarks,
    S: SyncStateStore,
    Q: Quarantine + PageKeep,
>(
    api: &A,
    sink: &Sink<'_, R, S, Q>,
    collection: Collection,
    state: &mut SyncState,
    budget: &Budget,
    max_pages: Option<u64>,
    report: &mut CollectionReport,
) -> Result<bool, Stop> {
    let mut followed = LinksFollowed::default();
    loop {
        if !may_start_page(max_pages, report.pages, budget) {
            return Ok(false);
        }
        // Plain records (an initial load): write only what is new or newer. A delta's changes
        // are written as they come.
        let plain = state.phase == Some(Phase::Initial);
        let source = Source::Delta;
        let loaded = match &state.kept {
            Some(kept) => {
                tracing::info!(collection = %collection, kept = ?kept, "applying the page kept by an earlier run");
                Some(kept::load(sink.quarantine, kept).await)
            }
            None => None,
        };
        let page = match loaded {
            Some(Ok(page)) => page,
            Some(Err(KeepError::Unavailable(e))) => {
                return Err(Stop::Failed(format!("reading the kept page (read again next run): {e}")))
            }
            Some(Err(e)) => {
                // Gone for good (expired, or its bucket no longer configured): its link is
                // fetched again (a spent deltaLink answers 410 and the collection reloads).
                tracing::error!(collection = %collection, error = %e, "the kept page is gone; fetching its link again");
                state.kept = None;
                continue;
            }
            None => {
                let Some(link) = state.cursor.clone() else {
                    return Err(Stop::Failed("no page to follow".into()));
                };
                followed.first_time(&link)?;
                let Some(page) = fetch(api, &link, budget, report).await? else { return Ok(false) };
                keep_page(sink, collection, state, &page, budget).await?;
                page
            }
        };
        let envelope = match page.envelope() {
            Ok(envelope) => envelope,
            Err(e) => return Err(set_aside_page(sink, collection, state, report, &page, source, e).await),
        };
        let counts = match state.pass.as_mut().filter(|_| plain) {
            // A page of a full pass: what it holds is saved before the cursor moves past it.
            Some(pass) => {
                let mut tally = PassTally::new(false);
                let counts = apply_pass_records(
                    sink.records,
                    sink.quarantine,
                    collection,
                    &envelope.records,
                    source,
                    &mut tally,
                )
                .await?;
                let seen = std::mem::take(&mut tally.seen);
                pass.chunks += save_page_seen(sink.states, collection, SeenSlot::Load, pass.chunks, seen).await?;
                pass.add_page(&tally);
                counts
            }
            None => apply_records(sink.records, sink.quarantine, collection, &envelope.records, source, plain).await?,
        };
        report.pages += 1;
        report.records += counts;
        let discard = state.kept.as_ref().and_then(|k| k.object.clone());
        let (next_link, delta_link) = (envelope.next_link, envelope.delta_link);
        drop(page);
        let after = plan::after_page(state, counts, next_link, delta_link, budget.now());
        if after == AfterPage::Done && plain {
            if let Some(pass) = state.pass.as_mut() {
                pass.sweeping = Some(0);
            }
        }
        sink.checkpoint(collection, state, budget).await?;
        if let (Some(key), Some(store)) = (discard, sink.quarantine) {
            // Best effort: an object left behind expires by the bucket's lifecycle rule.
            if let Err(e) = store.discard_page(&key).await {
                tracing::warn!(collection = %collection, key, error = %e, "cannot discard an applied kept page");
            }
        }
        match after {
            AfterPage::More => continue,
            AfterPage::Done => return Ok(true),
            AfterPage::NoDeltaLink => {
                return Err(Stop::Failed("the delta's last page carried no deltaLink; the load starts over".into()))
            }
        }
    }
}

/// A pass's start, as the sweep compares it with `receivedAt`: the wall clock every writer
/// stamps its writes with (the run's clock may be a test's).
fn written_since_now(pass: Option<&mut FullPass>) {
    if let Some(pass) = pass {
        pass.started_at = Utc::now();
    }
}

/// Completes a full pass whose pages are all applied: sweeps the collection's live records in
/// the pass's window that it did not see (see [`super::sweep`]) — first counting them, then,
/// within the pass's limit, tombstoning them — then records `verifiedAt` and the drift (a dry
/// run only reports it) and forgets the pass. A count over the limit (or a pass that returned
/// an unreadable id, with anything to sweep) tombstones nothing: the sweep is held for an
/// operator. `Ok(false)`: the deadline came first; the sweep resumes next run.
async fn finish_pass<
    R: RecordStore + StoredHeads + SetAsideMarks + LiveRecords,
    S: SyncStateStore,
    Q: Quarantine + PageKeep,
>(
    sink: &Sink<'_, R, S, Q>,
    collection: Collection,
    state: &mut SyncState,
    slot: SeenSlot,
    budget: &Budget,
    report: &mut CollectionReport,
    sweep_limit: u64,
) -> Result<bool, Stop> {
    let (pass, filter) = match slot {
        SeenSlot::Load => (state.pass.clone(), state.filter.clone()),
        SeenSlot::Reconcile => match &state.reconcile {
            Some(r) => (Some(r.pass.clone()), r.filter.clone()),
            None => (None, None),
        },
    };
    let Some(mut pass) = pass else { return Ok(true) };
    if pass.sweeping.is_none() {
        return Ok(true);
    }
    let set = |state: &mut SyncState, pass: Option<FullPass>| match slot {
        SeenSlot::Load => state.pass = pass,
        SeenSlot::Reconcile => match (pass, state.reconcile.as_mut()) {
            (Some(pass), Some(r)) => r.pass = pass,
            _ => state.reconcile = None,
        },
    };
    let today = budget.now().date_naive();
    let limit = pass.max_sweep.unwrap_or(sweep_limit);
    let mut held = None;
    match Window::of_filter(filter.as_deref()).and_then(|w| Some((w, w.reads(collection, today)?))) {
        None => {
            tracing::warn!(collection = %collection, filter = ?filter, "the pass's filter is not a date range: nothing is swept");
        }
        Some((window, reads)) => {
            let seen = match sink.states.load_seen(collection, slot, pass.chunks).await {
                Ok(seen) => seen,
                Err(SyncStateError::Unreadable(e)) => {
                    // The pass cannot be proven: it is dropped (the next full pass sweeps).
                    set(state, None);
                    return Err(Stop::Failed(format!("the ids the pass saw cannot be read ({e}); nothing swept")));
                }
                Err(e) => return Err(e.into()),
            };
            let scope =
                SweepScope { collection, reads: &reads, seen: &seen, window: &window, started: pass.started_at };
            let stepped = sweep_steps(sink.records, &scope, &mut pass, limit, budget).await;
            if !matches!(stepped, Ok(true)) {
                // Where the sweep stands (and what it tombstoned) is saved, stopped or failed.
                set(state, Some(pass));
                sink.checkpoint(collection, state, budget).await?;
                return stepped.map(|_| false);
            }
            held = held_sweep(&pass, &scope, limit, budget.now());
        }
    }
    report.sweep = Some(if held.is_some() { SweepVerdict::Held } else { SweepVerdict::Done });
    if !pass.dry_run {
        state.full_pass_requested_at = None;
        if held.is_none() {
            state.verified_at = Some(budget.now());
            state.drift = Some(Drift { samples: None, ..pass.drift.clone() });
        }
        state.sweep_held = held;
    }
    tracing::info!(
        collection = %collection,
        missing = pass.drift.missing,
        behind = pass.drift.behind,
        swept = pass.drift.swept,
        would_sweep = pass.gone,
        held = state.sweep_held.is_some(),
        dry_run = pass.dry_run,
        baseline = pass.drift.baseline,
        "full pass complete"
    );
    let chunks = pass.chunks;
    report.drift = Some(pass.drift);
    set(state, None);
    sink.checkpoint(collection, state, budget).await?;
    if let Err(e) = sink.states.discard_seen(collection, slot, chunks).await {
        tracing::warn!(collection = %collection, error = %e, "cannot discard the ids a pass saw (a new pass overwrites them)");
    }
    Ok(true)
}

/// Runs a pass's sweep from where it stands: the count, then (when there is something to
/// tombstone, within the limit, and it is no dry run) the tombstones. `Ok(false)`: the deadline
/// came first (`pass.sweeping` says where it resumes).
async fn sweep_steps<L: LiveRecords>(
    store: &L,
    scope: &SweepScope<'_>,
    pass: &mut FullPass,
    limit: u64,
    budget: &Budget,
) -> Result<bool, Stop> {
    loop {
        let first = pass.sweeping.unwrap_or(0);
        let step = match pass.tombstoning {
            true => SweepStep::Tombstone { at_most: limit.saturating_sub(pass.drift.swept) },
            false => SweepStep::Count,
        };
        let found = |n: u64, ids: &[String]| match step {
            SweepStep::Count => {
                pass.gone += n;
                let room = super::sweep::SAMPLES.saturating_sub(pass.gone_samples.len());
                pass.gone_samples.extend(ids.iter().take(room).cloned());
            }
            SweepStep::Tombstone { .. } => ids.iter().for_each(|id| pass.drift.add(DriftKind::Swept, id)),
        };
        let swept = sweep(store, scope, first, step, found, || budget.may_start_page())
            .await
            .map_err(|e| Stop::Failed(format!("sweeping (resumed next run): {e}")))?;
        match swept {
            Swept::Stopped(next) => {
                pass.sweeping = Some(next);
                return Ok(false);
            }
            Swept::OverLimit => {
                // More is gone than was counted: held, at more than the limit.
                pass.tombstoning = false;
                pass.gone = pass.gone.max(limit.saturating_add(1));
                return Ok(true);
            }
            Swept::Done if pass.tombstoning => return Ok(true),
            Swept::Done => {}
        }
        if pass.dry_run {
            // What a real pass would tombstone, reported as swept.
            pass.drift.swept += pass.gone;
            if let Some(samples) = pass.drift.samples.as_mut() {
                samples.swept = pass.gone_samples.clone();
            }
            return Ok(true);
        }
        if pass.gone == 0 || held_sweep(pass, scope, limit, budget.now()).is_some() {
            return Ok(true);
        }
        pass.tombstoning = true;
        pass.sweeping = Some(0);
    }
}

/// The held sweep of a counted pass: more to tombstone than `limit`, or anything to tombstone
/// while the pass saw no record at all (an empty answer) or returned a record whose id cannot
/// be read. `None`: the sweep may go ahead.
fn held_sweep(pass: &FullPass, scope: &SweepScope<'_>, limit: u64, now: DateTime<Utc>) -> Option<HeldSweep> {
    let counted = !pass.tombstoning && !pass.dry_run;
    // An operator's --max-sweep, given after checking the samples, answers every doubt.
    let unsure = pass.unreadable_ids > 0 || scope.seen.is_empty();
    let doubtful = pass.gone > limit || (pass.max_sweep.is_none() && unsure);
    (counted && pass.gone > 0 && doubtful).then(|| HeldSweep {
        at: now,
        would_sweep: pass.gone,
        limit,
        unreadable_ids: pass.unreadable_ids,
        sample_ids: pass.gone_samples.clone(),
    })
}

/// A page whose envelope cannot be read (not JSON, no `value`): quarantined whole, so the
/// collection is not stuck on it; its link is fetched again next run. While the quarantine
/// cannot be written it stays kept and is read again next run.
async fn set_aside_page<R: RecordStore + StoredHeads + SetAsideMarks, S: SyncStateStore, Q: Quarantine + PageKeep>(
    sink: &Sink<'_, R, S, Q>,
    collection: Collection,
    state: &mut SyncState,
    report: &mut CollectionReport,
    page: &crate::protime::Page,
    source: Source,
    error: ProtimeError,
) -> Stop {
    let Some(quarantine) = sink.quarantine else {
        state.kept = None;
        return Stop::Failed(format!(
            "{error}; no quarantine is configured: the page is dropped and its link fetched again next run"
        ));
    };
    match quarantine_page(quarantine, collection, page, source, report).await {
        Ok(key) => {
            tracing::error!(collection = %collection, key, error = %error, "a page that cannot be read was quarantined");
            if let Some(object) = state.kept.take().and_then(|k| k.object) {
                if let Err(e) = quarantine.discard_page(&object).await {
                    tracing::warn!(collection = %collection, key = object, error = %e, "cannot discard a kept page");
                }
            }
            Stop::Failed(format!("{error}; the page is quarantined as {key} and its link fetched again next run"))
        }
        Err(e) => Stop::Failed(format!("{error}; the page stays kept and is read again next run ({e})")),
    }
}

/// What catching up did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CatchUp {
    /// A delta round was followed to its end (a kept page of it first, if there was one).
    Round,
    /// A kept page of a load was applied; the pass goes on (or is replaced).
    Applied,
    /// The page budget or the deadline came first.
    Stopped,
}

/// Before anything new starts on a collection: a kept page is applied; with a load about to
/// start (`reloading`), a live deltaLink is followed to its end — once more after a kept page
/// that ended a round, so the changes since it are not lost either.
#[allow(clippy::too_many_arguments)]
async fn catch_up<
    A: RecordPages,
    R: RecordStore + StoredHeads + SetAsideMarks,
    S: SyncStateStore,
    Q: Quarantine + PageKeep,
>(
    api: &A,
    sink: &Sink<'_, R, S, Q>,
    collection: Collection,
    state: &mut SyncState,
    budget: &Budget,
    max_pages: Option<u64>,
    report: &mut CollectionReport,
    reloading: bool,
) -> Result<CatchUp, Stop> {
    if state.kept.is_some() && !plan::live_delta(state) {
        // A page of a load: applied alone.
        let ended = follow(api, sink, collection, state, budget, Some(report.pages + 1), report).await?;
        return Ok(if ended || state.kept.is_none() { CatchUp::Applied } else { CatchUp::Stopped });
    }
    let from_kept = state.kept.is_some();
    if !follow(api, sink, collection, state, budget, max_pages, report).await? {
        return Ok(CatchUp::Stopped);
    }
    if from_kept
        && reloading
        && plan::live_delta(state)
        && !follow(api, sink, collection, state, budget, max_pages, report).await?
    {
        return Ok(CatchUp::Stopped);
    }
    Ok(CatchUp::Round)
}

/// Keeps a fetched page and checkpoints the state pointing at it, before any record is written.
/// A page that can be kept nowhere is applied anyway (it was fetched; dropping it would lose it
/// for certain), and the log says so.
async fn keep_page<R: RecordStore + StoredHeads + SetAsideMarks, S: SyncStateStore, Q: Quarantine + PageKeep>(
    sink: &Sink<'_, R, S, Q>,
    collection: Collection,
    state: &mut SyncState,
    page: &crate::protime::Page,
    budget: &Budget,
) -> Result<(), Stop> {
    match kept::keep(sink.quarantine, collection, page, budget.now()).await {
        Ok(kept) => {
            state.kept = Some(kept);
            sink.checkpoint(collection, state, budget).await?;
        }
        Err(e) => {
            tracing::warn!(collection = %collection, bytes = page.body.len(), error = %e, "the page cannot be kept; applying it unkept");
        }
    }
    Ok(())
}

/// Saves the state with the lease cleared: the collection is free for the next invocation.
async fn release<S: SyncStateStore>(
    states: &S,
    collection: Collection,
    state: &mut SyncState,
    owner: &str,
) -> Result<(), SyncStateError> {
    state.lease_owner = None;
    state.lease_until = None;
    states.checkpoint(collection, state, owner).await
}

/// What a delta round of the renewer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaRound {
    /// The deltaLink was followed to its end: every change since the syncer's last round.
    CaughtUp,
    /// No live deltaLink to follow (no complete delta load yet, the syncer is working on the
    /// collection, the link expired or answered 409, or the round did not reach its end): the
    /// caller lists the gap instead.
    NotLive,
    /// Less than the budget's margin is left before the invocation's deadline: no page started.
    OutOfTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaRoundError {
    #[error(transparent)]
    State(#[from] SyncStateError),
    #[error("{0}")]
    Failed(String),
}

/// One delta round for the renewer's recovery of a Disabled subscription: takes the
/// collection's lease, applies a page the syncer kept, follows the stored deltaLink to the end
/// (every change since, deletions included), checkpoints and releases. No page starts once less
/// than the budget's margin is left. What it applied (stored, quarantined, …) is added to
/// `counts` whatever the round's outcome, so a failed round's quarantines are still counted.
pub async fn delta_round<
    A: RecordPages,
    R: RecordStore + StoredHeads + SetAsideMarks,
    S: SyncStateStore,
    Q: Quarantine + PageKeep,
>(
    api: &A,
    records: &R,
    states: &S,
    quarantine: Option<&Q>,
    collection: Collection,
    budget: &Budget,
    counts: &mut RecordCounts,
) -> Result<DeltaRound, DeltaRoundError> {
    if !budget.may_start_page() {
        return Ok(DeltaRound::OutOfTime);
    }
    let owner = format!("renewer-{:016x}", rand::random::<u64>());
    let Some(mut state) = states.acquire(collection, &owner, budget.now(), budget.lease_until()).await? else {
        return Ok(DeltaRound::NotLive);
    };
    // A live deltaLink is followed (a page kept by an earlier run first, then the round after
    // it); a page kept during an initial load is applied alone (the syncer goes on with the load).
    let live = plan::live_delta(&state);
    let from_kept = state.kept.is_some();
    let max_pages = Some(if live { MAX_ROUND_PAGES } else { 1 });
    let sink = Sink { records, states, quarantine, owner: &owner };
    let mut report = CollectionReport::new(collection, Outcome::Complete);
    let result = if live || from_kept {
        let mut followed = follow(api, &sink, collection, &mut state, budget, max_pages, &mut report).await;
        if live && from_kept && matches!(followed, Ok(true)) && plan::live_delta(&state) {
            followed = follow(api, &sink, collection, &mut state, budget, max_pages, &mut report).await;
        }
        *counts += report.records;
        match followed {
            Ok(true) if live => Ok(DeltaRound::CaughtUp),
            Ok(_) if !budget.may_start_page() => Ok(DeltaRound::OutOfTime),
            // A kept page of a load applied, or not at the end after MAX_ROUND_PAGES: what was
            // applied is stored; the gap is listed too.
            Ok(_) => Ok(DeltaRound::NotLive),
            // The state is left as it is: the syncer's next run meets the 410 itself, reports
            // and alarms on it, and loads the collection again.
            Err(Stop::Gone | Stop::Conflict) => Ok(DeltaRound::NotLive),
            Err(Stop::LeaseLost) => return Err(SyncStateError::LeaseLost.into()),
            Err(Stop::Failed(message)) => Err(DeltaRoundError::Failed(message)),
        }
    } else {
        Ok(DeltaRound::NotLive)
    };
    release(states, collection, &mut state, &owner).await?;
    result
}

/// Hands a collection's catch-up to the syncer (the renewer's recovery, when no delta round
/// covered the gap): marks it for a full pass with sweep on the syncer's next run. `false`: an
/// invocation of the syncer holds the collection right now (it is catching up already).
pub async fn request_full_pass<S: SyncStateStore>(
    states: &S,
    collection: Collection,
    budget: &Budget,
) -> Result<bool, SyncStateError> {
    let owner = format!("renewer-{:016x}", rand::random::<u64>());
    let Some(mut state) = states.acquire(collection, &owner, budget.now(), budget.lease_until()).await? else {
        return Ok(false);
    };
    state.full_pass_requested_at = Some(budget.now());
    release(states, collection, &mut state, &owner).await?;
    Ok(true)
}

/// The metric documents of a run: per collection (lag, pages, pending initial load, delta
/// expiry, runs in error) and per record outcome.
pub fn sync_metrics(namespace: &str, report: &SyncReport) -> Vec<crate::observability::metrics::MetricDoc> {
    use crate::observability::metrics::{MetricDoc, Unit};
    let mut docs = Vec::new();
    let mut totals = RecordCounts::default();
    for c in &report.collections {
        totals += c.records;
        let mut doc = MetricDoc::new(namespace, "syncer")
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
                    MetricDoc::new(namespace, "syncer")
                        .dimension("Collection", &c.collection)
                        .dimension("Kind", kind)
                        .count("DriftRecords", n),
                );
            }
        }
    }
    for (outcome, count) in totals.by_outcome() {
        docs.push(MetricDoc::new(namespace, "syncer").dimension("Outcome", outcome).count("SyncRecords", count));
    }
    // The metric the Quarantined alarm watches, as the receiver emits it.
    docs.extend(
        totals
            .quarantined_by
            .iter()
            .map(|(reason, n)| MetricDoc::new(namespace, "syncer").dimension("Reason", reason).count("Quarantined", n)),
    );
    docs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protime::Page;
    use crate::records::json::{parse, Json};
    use crate::testing::{FakeProtime, Journal, MemoryRecordStore, MemorySyncStateStore};
    use std::sync::Arc;

    fn config(vars: &[(&str, &str)]) -> SyncerConfig {
        // Clockings with an open-ended filter here: the rolling window and its history are
        // proven against the simulator (integration tests, `windows.rs`).
        let mut all = vec![
            ("TABLE_NAME", "t"),
            ("PROTIME_CREDENTIALS_SECRET", "c"),
            ("COLLECTIONS", "clockings,people"),
            ("SYNC_FILTER_CLOCKINGS", "date ge '{from}'"),
        ];
        all.extend_from_slice(vars);
        let all: std::collections::HashMap<_, _> = all.into_iter().collect();
        SyncerConfig::from_lookup(|k| all.get(k).map(|v| v.to_string())).unwrap()
    }

    type FakeSyncer = Syncer<Arc<FakeProtime>, Arc<MemoryRecordStore>, Arc<MemorySyncStateStore>>;

    struct Fixture {
        syncer: FakeSyncer,
        protime: Arc<FakeProtime>,
        records: Arc<MemoryRecordStore>,
        states: Arc<MemorySyncStateStore>,
    }

    fn fixture(vars: &[(&str, &str)]) -> Fixture {
        let protime = Arc::new(FakeProtime::new(Utc::now(), Journal::default()));
        let records = Arc::new(MemoryRecordStore::default());
        let states = Arc::new(MemorySyncStateStore::default());
        let syncer = Syncer::new(config(vars), protime.clone(), records.clone(), states.clone());
        Fixture { syncer, protime, records, states }
    }

    impl Fixture {
        async fn run(&self, request: SyncRequest) -> SyncReport {
            self.syncer.run(&request, Budget::new(Utc::now(), None, Duration::ZERO)).await.unwrap()
        }

        fn page(&self, link: &str, records: &[&str], next: Option<&str>, delta: Option<&str>) {
            let records: Vec<Json> = records.iter().map(|r| parse(r.as_bytes()).unwrap()).collect();
            let page = Page::from_parts(&records, next, delta);
            self.protime.script(link, Ok(page));
        }

        fn cursor(&self, collection: Collection) -> Option<String> {
            self.states.state(collection).and_then(|s| s.cursor)
        }

        /// The three-page initial load of clockings (an empty page in the middle).
        fn initial_clockings(&self) {
            self.page(
                "clockings?page=0",
                &[r#"{"id":1,"changeVersion":"01"}"#, r#"{"id":2,"changeVersion":"01"}"#],
                Some("clockings?page=1"),
                None,
            );
            self.page("clockings?page=1", &[], Some("clockings?page=2"), None);
            self.page("clockings?page=2", &[r#"{"id":3,"changeVersion":"01"}"#], None, Some("delta/clockings?t=1"));
        }
    }

    fn people(records: &[(u32, &str)]) -> Vec<Json> {
        records
            .iter()
            .map(|(id, v)| parse(format!(r#"{{"id":{id},"changeVersion":"{v}"}}"#).as_bytes()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn an_initial_load_follows_every_page_then_the_next_run_follows_the_delta_link_once() {
        let f = fixture(&[]);
        f.initial_clockings();
        f.protime.set_records(Collection::People, people(&[(7, "01")]));
        let report = f.run(SyncRequest::default()).await;
        assert!(report.healthy, "{report:?}");
        let clockings = &report.collections[0];
        assert_eq!((clockings.outcome, clockings.pages, clockings.records.stored), (Outcome::Complete, 3, 3));
        assert_eq!((clockings.phase, clockings.initial_completed_at.is_some()), (Some(Phase::Incremental), true));
        assert_eq!(f.cursor(Collection::Clockings).as_deref(), Some("delta/clockings?t=1"));
        assert_eq!(f.states.state(Collection::Clockings).unwrap().lease_owner, None, "the lease is released");
        assert_eq!(f.records.change_version(Collection::People, "7").as_deref(), Some("01"));
        assert_eq!(f.records.attribute(Collection::Clockings, "1", "source"), Some(AttributeValue::S("delta".into())));
        assert_eq!(f.records.attribute(Collection::People, "7", "source"), Some(AttributeValue::S("delta".into())));
        assert_eq!(f.cursor(Collection::People).as_deref(), Some("delta/people?t=fake"), "people follow a delta too");

        f.page(
            "delta/clockings?t=1",
            &[r#"{"changeType":"Delete","data":{"id":2,"changeVersion":"02"}}"#],
            None,
            Some("delta/clockings?t=2"),
        );
        let report = f.run(SyncRequest::default()).await;
        assert_eq!(report.collections[0].records.deleted, 1);
        assert_eq!(report.collections[1].outcome, Outcome::Complete, "people: a delta round");
        assert_eq!(report.collections[1].pages, 1, "one page, nothing listed again");
        assert_eq!(f.cursor(Collection::Clockings).as_deref(), Some("delta/clockings?t=2"));
        assert_eq!(f.records.attribute(Collection::Clockings, "2", "deleted"), Some(AttributeValue::Bool(true)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_delta_round_late_in_a_run_stamps_its_writes_with_their_own_time() {
        // The renewer's recovery runs its delta round after the other subscriptions: its
        // cursorAt, lastSyncedAt and lease are the time of each write, not the run's start.
        let f = fixture(&[("COLLECTIONS", "clockings")]);
        f.initial_clockings();
        assert!(f.run(SyncRequest::default()).await.healthy);
        f.page("delta/clockings?t=1", &[r#"{"id":4,"changeVersion":"02"}"#], None, Some("delta/clockings?t=2"));
        let started = Utc::now();
        let budget = Budget::new(started, None, Duration::ZERO);
        tokio::time::advance(Duration::from_secs(600)).await;
        let mut counts = RecordCounts::default();
        let round = delta_round(
            &*f.protime,
            &*f.records,
            &*f.states,
            None::<&crate::testing::MemoryQuarantine>,
            Collection::Clockings,
            &budget,
            &mut counts,
        )
        .await
        .unwrap();
        assert_eq!(round, DeltaRound::CaughtUp);
        assert_eq!(counts.stored, 1);
        let state = f.states.state(Collection::Clockings).unwrap();
        let ten_minutes_in = started + chrono::Duration::seconds(600);
        assert!(state.cursor_at.unwrap() >= ten_minutes_in, "cursorAt {:?}", state.cursor_at);
        assert!(state.last_synced_at.unwrap() >= ten_minutes_in, "lastSyncedAt {:?}", state.last_synced_at);
        assert_eq!(f.cursor(Collection::Clockings).as_deref(), Some("delta/clockings?t=2"));
        assert_eq!(budget.lease_until(), budget.now() + chrono::Duration::from_std(DEFAULT_LEASE).unwrap());
        assert!(budget.lease_until() >= ten_minutes_in + chrono::Duration::from_std(DEFAULT_LEASE).unwrap());
    }

    #[tokio::test]
    async fn a_delta_round_that_fails_on_an_unreadable_page_still_counts_what_it_quarantined() {
        let f = fixture(&[("COLLECTIONS", "clockings")]);
        f.initial_clockings();
        assert!(f.run(SyncRequest::default()).await.healthy);
        f.protime.script("delta/clockings?t=1", Ok(crate::protime::Page::new("not json")));
        let quarantine = crate::testing::MemoryQuarantine::default();
        let mut counts = RecordCounts::default();
        let budget = Budget::new(Utc::now(), None, Duration::ZERO);
        let round = delta_round(
            &*f.protime,
            &*f.records,
            &*f.states,
            Some(&quarantine),
            Collection::Clockings,
            &budget,
            &mut counts,
        )
        .await;
        assert!(matches!(round, Err(DeltaRoundError::Failed(_))), "{round:?}");
        assert_eq!(quarantine.bodies(), [("unreadable_page".to_owned(), b"not json".to_vec())]);
        let counted: Vec<(&str, u64)> = counts.quarantined_by.iter().collect();
        assert_eq!(counted, [("unreadable_page", 1)], "the renewer's Quarantined metric sees it");
    }

    use aws_sdk_dynamodb::types::AttributeValue;

    #[tokio::test]
    async fn the_page_budget_stops_a_run_and_the_next_resumes_from_the_checkpoint() {
        let f = fixture(&[("SYNC_MAX_PAGES_PER_RUN", "2"), ("COLLECTIONS", "clockings")]);
        f.initial_clockings();
        let report = f.run(SyncRequest::default()).await;
        assert_eq!((report.collections[0].outcome, report.collections[0].pages), (Outcome::Partial, 2));
        assert_eq!(f.cursor(Collection::Clockings).as_deref(), Some("clockings?page=2"));
        let report = f.run(SyncRequest::default()).await;
        assert_eq!((report.collections[0].outcome, report.collections[0].pages), (Outcome::Complete, 1));
        let gets: Vec<String> =
            f.protime.journal.lines().into_iter().filter(|l| l.starts_with("protime GET")).collect();
        assert_eq!(
            gets,
            ["protime GET clockings?page=0", "protime GET clockings?page=1", "protime GET clockings?page=2"],
            "no page fetched twice, none skipped"
        );
    }

    #[tokio::test]
    async fn an_expired_delta_link_starts_the_initial_load_again_in_the_same_run() {
        let f = fixture(&[("COLLECTIONS", "clockings")]);
        f.initial_clockings();
        f.run(SyncRequest::default()).await;
        f.protime.script("delta/clockings?t=1", Err(ProtimeError::DeltaGone));
        f.initial_clockings();
        let report = f.run(SyncRequest::default()).await;
        let c = &report.collections[0];
        assert!(c.delta_expired && report.healthy, "{report:?}");
        assert_eq!((c.outcome, c.records.duplicate), (Outcome::Complete, 3), "unchanged records are not written again");
        assert_eq!(f.cursor(Collection::Clockings).as_deref(), Some("delta/clockings?t=1"));
        assert!(f.states.state(Collection::Clockings).unwrap().delta_expired_at.is_some());
    }

    #[tokio::test]
    async fn a_conflict_is_recorded_and_retried_next_run_without_failing_the_run() {
        let f = fixture(&[("COLLECTIONS", "clockings")]);
        f.protime.script("clockings?page=0", Err(ProtimeError::DeltaConflict));
        let report = f.run(SyncRequest::default()).await;
        assert_eq!((report.collections[0].outcome, report.healthy), (Outcome::Conflict, true));
        let state = f.states.state(Collection::Clockings).unwrap();
        assert_eq!((state.error_runs, state.last_error.is_some()), (1, true));
        f.initial_clockings();
        let report = f.run(SyncRequest::default()).await;
        assert_eq!(report.collections[0].outcome, Outcome::Complete);
        assert_eq!(f.states.state(Collection::Clockings).unwrap().error_runs, 0);
    }

    #[tokio::test]
    async fn one_failing_collection_does_not_stop_the_others_and_fails_the_run() {
        let f = fixture(&[]);
        f.protime.script(
            "clockings?page=0",
            Err(ProtimeError::Api { status: 403, code: "Forbidden".into(), message: String::new(), reasons: vec![] }),
        );
        f.protime.set_records(Collection::People, people(&[(7, "01"), (8, "01"), (9, "01")]));
        let report = f.run(SyncRequest::default()).await;
        assert!(!report.healthy);
        assert_eq!(report.failing(), ["clockings"]);
        assert_eq!((report.collections[1].outcome, report.collections[1].records.stored), (Outcome::Complete, 3));
    }

    #[tokio::test]
    async fn a_collection_leased_by_another_invocation_is_left_alone() {
        let f = fixture(&[("COLLECTIONS", "clockings")]);
        let later = Utc::now() + chrono::Duration::minutes(10);
        f.states.acquire(Collection::Clockings, "other", Utc::now(), later).await.unwrap().unwrap();
        let report = f.run(SyncRequest::default()).await;
        assert_eq!(report.collections[0].outcome, Outcome::Busy);
        assert!(!f.protime.journal.lines().iter().any(|l| l.starts_with("protime GET")), "no page fetched");
        assert_eq!(f.states.state(Collection::Clockings).unwrap().lease_owner.as_deref(), Some("other"));
    }

    #[tokio::test]
    async fn an_unavailable_table_leaves_the_cursor_on_the_page_that_failed() {
        let f = fixture(&[("COLLECTIONS", "clockings")]);
        f.initial_clockings();
        f.records.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let report = f.run(SyncRequest::default()).await;
        assert_eq!(report.collections[0].outcome, Outcome::Error);
        assert_eq!(f.cursor(Collection::Clockings).as_deref(), Some("clockings?page=0"));
    }

    #[tokio::test]
    async fn a_manual_backfill_restarts_the_named_collections_from_its_date() {
        let f = fixture(&[]);
        f.initial_clockings();
        f.protime.set_records(Collection::People, people(&[(7, "01")]));
        f.run(SyncRequest::default()).await;
        // The live deltaLink is followed to its end first: its Delete is not lost to the reload.
        f.page(
            "delta/clockings?t=1",
            &[r#"{"changeType":"Delete","data":{"id":3,"changeVersion":"02"}}"#],
            None,
            Some("delta/clockings?t=2"),
        );
        f.initial_clockings();
        let request = SyncRequest {
            collections: Some(vec!["clockings".into()]),
            reinitialize: true,
            from: NaiveDate::from_ymd_opt(2024, 1, 1),
            ..Default::default()
        };
        let report = f.run(request).await;
        assert_eq!(report.collections.len(), 1);
        assert_eq!(report.collections[0].records.deleted, 1, "{report:?}");
        assert_eq!(f.records.attribute(Collection::Clockings, "3", "deleted"), Some(AttributeValue::Bool(true)));
        let gets: Vec<String> =
            f.protime.journal.lines().into_iter().filter(|l| l.starts_with("protime GET clockings")).collect();
        assert_eq!(gets.len(), 6, "the load ran twice: {gets:?}");
        let lines = f.protime.journal.lines();
        let delta = lines.iter().position(|l| l == "protime GET delta/clockings?t=1").expect("the deltaLink followed");
        let reload = lines.iter().rposition(|l| l == "protime GET clockings?page=0").unwrap();
        assert!(delta < reload, "the deltaLink before the reload: {lines:?}");
        let state = f.states.state(Collection::Clockings).unwrap();
        assert_eq!(state.filter.as_deref(), Some("date ge '2024-01-01'"));
        assert_eq!(state.phase, Some(Phase::Incremental));
        let unknown = SyncRequest { collections: Some(vec!["timesheets".into()]), ..Default::default() };
        let err = f.syncer.run(&unknown, Budget::new(Utc::now(), None, Duration::ZERO)).await.unwrap_err();
        assert_eq!(err, SyncRunError::UnknownCollections(vec!["timesheets".into()]));
    }

    fn dated(records: &[(u32, &str)]) -> Vec<Json> {
        let today = Utc::now().format("%Y-%m-%d");
        records
            .iter()
            .map(|(id, v)| {
                parse(format!(r#"{{"id":{id},"changeVersion":"{v}","date":"{today}"}}"#).as_bytes()).unwrap()
            })
            .collect()
    }

    fn reconcile(collection: &str, dry_run: bool) -> SyncRequest {
        SyncRequest { collections: Some(vec![collection.into()]), reconcile: true, dry_run, ..Default::default() }
    }

    #[tokio::test]
    async fn a_reconciliation_sweeps_a_person_protime_no_longer_has_and_records_the_drift() {
        let f = fixture(&[("COLLECTIONS", "people")]);
        f.protime.set_records(Collection::People, people(&[(7, "01"), (8, "01"), (9, "01")]));
        let first = f.run(SyncRequest::default()).await;
        let drift = first.collections[0].drift.clone().expect("the load's pass completed");
        assert_eq!((drift.missing, drift.swept, drift.baseline), (3, 0, true), "{first:?}");
        f.protime.set_records(Collection::People, people(&[(7, "01"), (9, "02")]));
        let second = f.run(reconcile("people", false)).await;
        let c = &second.collections[0];
        let drift = c.drift.clone().expect("the reconciliation completed");
        assert_eq!((drift.missing, drift.behind, drift.swept, drift.baseline), (0, 1, 1, false), "{c:?}");
        assert_eq!(f.records.attribute(Collection::People, "8", "deleted"), Some(AttributeValue::Bool(true)));
        assert_eq!(f.records.attribute(Collection::People, "8", "source"), Some(AttributeValue::S("sweep".into())));
        assert_eq!(f.records.attribute(Collection::People, "7", "deleted"), Some(AttributeValue::Bool(false)));
        let state = f.states.state(Collection::People).unwrap();
        assert!(state.verified_at.is_some() && state.pass.is_none(), "{state:?}");
        assert!(f.states.seen.lock().unwrap().is_empty(), "the pass's ids are discarded");
        let metrics = sync_metrics("Ns", &second);
        let drift_docs: Vec<_> =
            metrics.iter().map(|d| d.to_json(0)).filter(|j| j.get("DriftRecords").is_some()).collect();
        assert_eq!(drift_docs.len(), 3, "one per kind");
        assert!(sync_metrics("Ns", &first).iter().all(|d| d.to_json(0).get("DriftRecords").is_none()), "baseline");
    }

    #[tokio::test]
    async fn a_reconciliation_reports_drift_a_dry_run_changes_nothing_and_the_real_one_repairs_it() {
        let f = fixture(&[("COLLECTIONS", "clockings")]);
        f.initial_clockings();
        assert!(f.run(SyncRequest::default()).await.healthy);
        // Protime holds 1 (newer) and 3 and 4; the copy holds 1, 2 and 3, and lacks 4.
        f.protime.set_records(Collection::Clockings, dated(&[(1, "02"), (3, "01"), (4, "01")]));
        // The copy's records were loaded without a date: give them today's, as Protime has them.
        for (id, version) in [(1, "01"), (2, "01"), (3, "01")] {
            let record = &dated(&[(id, version)])[0];
            let event = crate::records::event::parse_record(
                &serde_json::value::RawValue::from_string(record.to_string()).unwrap(),
            )
            .unwrap();
            let item =
                crate::records::item::record_item(Collection::Clockings, &event, Source::Delta, "2020-01-01T00:00:00Z");
            f.records.items.lock().unwrap().insert(format!("clockings#{id}"), item);
        }
        let before = f.records.items.lock().unwrap().clone();
        let loaded = f.states.state(Collection::Clockings).unwrap().verified_at;
        assert!(loaded.is_some(), "the initial load was a full pass");
        let dry = f.run(reconcile("clockings", true)).await;
        let c = &dry.collections[0];
        let drift = c.drift.clone().expect("the dry run completed");
        assert_eq!((drift.missing, drift.behind, drift.swept), (1, 1, 1), "{c:?}");
        let samples = drift.samples.expect("a dry run's samples");
        assert_eq!(
            (samples.missing, samples.behind, samples.swept),
            (vec!["4".into()], vec!["1".into()], vec!["2".into()])
        );
        assert_eq!(*f.records.items.lock().unwrap(), before, "a dry run writes no record");
        assert!(!f.protime.journal.lines().iter().any(|l| l.contains("delta/clockings?t=1")), "the delta left alone");
        assert_eq!(f.states.state(Collection::Clockings).unwrap().verified_at, loaded, "a dry run verifies nothing");

        // A real reconciliation follows the delta first, as every run does.
        f.page("delta/clockings?t=1", &[], None, Some("delta/clockings?t=2"));
        let real = f.run(reconcile("clockings", false)).await;
        let c = &real.collections[0];
        let drift = c.drift.clone().expect("the reconciliation completed");
        assert_eq!((drift.missing, drift.behind, drift.swept, drift.samples), (1, 1, 1, None), "{c:?}");
        assert_eq!(f.records.change_version(Collection::Clockings, "1").as_deref(), Some("02"));
        assert_eq!(f.records.change_version(Collection::Clockings, "4").as_deref(), Some("01"));
        assert_eq!(f.records.attribute(Collection::Clockings, "2", "deleted"), Some(AttributeValue::Bool(true)));
        let state = f.states.state(Collection::Clockings).unwrap();
        assert_eq!(state.drift.map(|d| (d.missing, d.behind, d.swept)), Some((1, 1, 1)));
        assert!(state.verified_at.is_some() && state.reconcile.is_none());
        assert_eq!(
            f.cursor(Collection::Clockings).as_deref(),
            Some("delta/clockings?t=2"),
            "the delta followed, not replaced"
        );

        f.page("delta/clockings?t=2", &[], None, Some("delta/clockings?t=3"));
        let again = f.run(reconcile("clockings", false)).await;
        let drift = again.collections[0].drift.clone().unwrap();
        assert_eq!((drift.missing, drift.behind, drift.swept, again.collections[0].records.stored), (0, 0, 0, 0));
        let dry_alone = SyncRequest { dry_run: true, ..reconcile("clockings", false) };
        assert!(f
            .syncer
            .run(&SyncRequest { reconcile: false, ..dry_alone }, Budget::new(Utc::now(), None, Duration::ZERO))
            .await
            .is_err());
    }

    #[test]
    fn the_time_left_comes_from_the_deadline() {
        use std::time::SystemTime;
        assert_eq!(time_left(SystemTime::UNIX_EPOCH), None);
        let left = time_left(SystemTime::now() + Duration::from_secs(900)).unwrap();
        assert!(left > Duration::from_secs(890) && left <= Duration::from_secs(900));
        assert_eq!(time_left(SystemTime::now() - Duration::from_secs(5)), None);
    }

    #[test]
    fn a_scheduled_event_is_a_normal_run_and_a_backfill_request_parses_strictly() {
        let payload = |text: &str| SyncRequest::from_payload(serde_json::from_str(text).unwrap());
        assert_eq!(payload(include_str!("../../../events/scheduled.json")).unwrap(), SyncRequest::default());
        assert_eq!(payload("{}").unwrap(), SyncRequest::default());
        let backfill = payload(r#"{"collections":["clockings"],"reinitialize":true,"from":"2024-01-01"}"#).unwrap();
        assert_eq!(backfill.from, NaiveDate::from_ymd_opt(2024, 1, 1));
        assert!(backfill.reinitialize);
        assert!(payload(r#"{"collection":["clockings"],"reinitialize":true}"#).is_err(), "a misspelt field");
        assert!(payload(r#"{"collections":5}"#).is_err());
    }

    #[tokio::test]
    async fn a_backfill_must_name_its_collections_and_one_that_cannot_start_is_an_error() {
        let f = fixture(&[("COLLECTIONS", "clockings")]);
        let all = SyncRequest { reinitialize: true, ..Default::default() };
        let err = f.syncer.run(&all, Budget::new(Utc::now(), None, Duration::ZERO)).await.unwrap_err();
        assert!(matches!(err, SyncRunError::InvalidRequest(_)), "{err:?}");
        let later = Utc::now() + chrono::Duration::minutes(10);
        f.states.acquire(Collection::Clockings, "other", Utc::now(), later).await.unwrap().unwrap();
        let one = SyncRequest { collections: Some(vec!["clockings".into()]), reinitialize: true, ..Default::default() };
        let report = f.run(one).await;
        assert_eq!((report.collections[0].outcome, report.healthy), (Outcome::Error, false));
    }
}
