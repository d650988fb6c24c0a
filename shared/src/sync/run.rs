//! The syncer's run: for each collection, take its lease, start or resume its load, follow its
//! pages in order until the round ends, the page budget is spent or the invocation's deadline
//! nears, checkpointing the cursor after every page. Collections run in parallel (bounded);
//! one collection's failure never stops the others.
//!
//! The rules (where to start, how a page moves the cursor, what an error does) are the pure
//! functions of [`super::plan`]; the page loop is in `sync/pages.rs`, full passes (the sweep,
//! reconciliation, history) in `sync/passes.rs`.

use super::kept::PageKeep;
use super::pages::PageLimit;
use super::plan::{self, CollectionPlan, Start};
use super::report::{CollectionReport, Outcome, SyncReport};
use super::request::{SyncRequest, SyncRunError};
use super::settings::SyncerConfig;
use super::state::{DynamoSyncStateStore, SyncState, SyncStateError, SyncStateStore};
use super::stop::{Halt, Stop};
use super::sweep::LiveRecords;
use crate::collection::Collection;
use crate::invocation::Budget;
use crate::protime::client::{ClientOptions, FunctionClient};
use crate::protime::{Connect, CredentialsFromSecret, RecordPages};
use crate::records::quarantine::{Quarantine, S3Quarantine};
use crate::records::set_aside::SetAsideMarks;
use crate::records::{DynamoRecordStore, RecordStore, StoredHeads};
use chrono::NaiveDate;
use futures_util::stream::{FuturesUnordered, StreamExt};

/// The syncer as deployed.
pub type AwsSyncer = Syncer<CredentialsFromSecret, DynamoRecordStore, DynamoSyncStateStore, S3Quarantine>;

pub struct Syncer<P, R, S, Q> {
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
        let records = DynamoRecordStore::new(dynamodb.clone(), &config.table_name)
            .with_policy(std::sync::Arc::new(config.data.clone()));
        let states = DynamoSyncStateStore::new(dynamodb, &config.table_name);
        let quarantine =
            config.quarantine_bucket.as_ref().map(|bucket| S3Quarantine::new(S3Quarantine::client(sdk), bucket));
        Syncer::new(config, protime, records, states, quarantine)
    }
}

/// The Protime client settings of the syncer: read scopes of its collections only.
pub fn client_options(config: &SyncerConfig) -> ClientOptions {
    let scopes = config.collections.iter().map(|c| format!("connector-protimeapi-{c}.read")).collect();
    ClientOptions::for_function(
        scopes,
        FunctionClient {
            company: &config.user_agent_company,
            api_base_url: config.protime_api_base_url.as_deref(),
            token_url: config.protime_token_url.as_deref(),
        },
    )
}

impl<
        P: Connect,
        R: RecordStore + StoredHeads + SetAsideMarks + LiveRecords,
        S: SyncStateStore,
        Q: Quarantine + PageKeep,
    > Syncer<P, R, S, Q>
{
    /// `quarantine`: where synced records DynamoDB refuses (and pages too large for the state
    /// item) are kept; `None` without a quarantine bucket (refused records are counted either way).
    pub fn new(config: SyncerConfig, protime: P, records: R, states: S, quarantine: Option<Q>) -> Self {
        Syncer { config, protime, records, states, quarantine }
    }

    /// One run over the requested (or every configured) collection.
    pub async fn run(&self, request: &SyncRequest, budget: Budget) -> Result<SyncReport, SyncRunError> {
        let collections = self.requested(request)?;
        let api = self.protime.connect().await?;
        let owner = crate::invocation::lease_owner("syncer");
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
        Ok(SyncReport::of(reports))
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
        let mut state = match self.lease(collection, request, budget, owner).await {
            Ok(state) => state,
            Err(report) => return report,
        };
        let mut report = CollectionReport::new(collection, Outcome::Complete);
        let lane = Lane {
            api,
            records: &self.records,
            states: &self.states,
            quarantine: self.quarantine.as_ref(),
            owner,
            collection,
            budget,
            page_limit: PageLimit { max: self.config.max_pages_per_run, from: 0 },
            inline_pages: !self.config.data.fields.names(collection),
        };
        // With the collection caught up: the sweep of a pass whose pages are all applied, then
        // a reconciliation asked for, due, or under way.
        let ended = match self.catch_up_and_follow(&lane, &mut state, request, &mut report).await {
            Ok(Outcome::Complete) => match self.after_main(&lane, &mut state, request, &mut report).await {
                Ok(true) => Ok(Outcome::Complete),
                Ok(false) => Ok(Outcome::Partial),
                Err(stop) => Err(Halt::from(stop)),
            },
            other => other,
        };
        match ended {
            Err(Halt::LeaseLost) => return self.lease_lost(report, &state, budget),
            Ok(outcome) => {
                report.outcome = outcome;
                state.run_succeeded();
            }
            Err(Halt::Failed(outcome, message)) => {
                tracing::error!(collection = %collection, error = %message, "sync stopped");
                report.outcome = outcome;
                report.error = Some(message.clone());
                state.run_failed(message, budget.now());
            }
        }
        if let Err(e) = release(&self.states, collection, &mut state, owner).await {
            tracing::error!(collection = %collection, error = %e, "cannot save the sync state");
            report.outcome = Outcome::Error;
            report.error = Some(e.to_string());
        }
        self.finish(report, &state, budget)
    }

    /// Takes the collection's lease; `Err` is the collection's report when it cannot.
    async fn lease(
        &self,
        collection: Collection,
        request: &SyncRequest,
        budget: &Budget,
        owner: &str,
    ) -> Result<SyncState, CollectionReport> {
        match self.states.acquire(collection, owner, budget.now(), budget.lease_until()).await {
            Ok(Some(state)) => Ok(state),
            Ok(None) if request.reinitialize => {
                // A backfill that did not start must not look like one that did.
                tracing::error!(collection = %collection, "another invocation is syncing this collection; not reinitialized");
                let message = "another invocation holds the collection's lease: not reinitialized, try again";
                Err(CollectionReport::failed(collection, message))
            }
            Ok(None) => {
                tracing::info!(collection = %collection, "another invocation is syncing this collection");
                Err(CollectionReport::new(collection, Outcome::Busy))
            }
            Err(e) => {
                tracing::error!(collection = %collection, error = %e, "cannot take the collection's lease");
                Err(CollectionReport::failed(collection, e.to_string()))
            }
        }
    }

    /// The collection's delta round or load. Before anything new starts: a kept page is
    /// applied, and a load about to start (asked for, or because the filter changed) first
    /// follows a live deltaLink to its end, so the changes since the last round, deletions
    /// included, are not lost. A dry run compares only: no delta round, no load (they would
    /// write records).
    async fn catch_up_and_follow(
        &self,
        lane: &Lane<'_, P::Api, R, S, Q>,
        state: &mut SyncState,
        request: &SyncRequest,
        report: &mut CollectionReport,
    ) -> Result<Outcome, Halt> {
        if request.dry_run {
            return Ok(Outcome::Complete);
        }
        let plan = self.config.plan(lane.collection);
        let default_from = self.config.sync_from.unwrap_or_else(|| plan::default_from(lane.budget.now()));
        let reloading = request.reinitialize
            || matches!(plan::start(state, &plan, default_from, lane.budget.now()), Start::Begin { .. });
        if state.kept.is_some() || (reloading && plan::live_delta(state)) {
            tracing::info!(collection = %lane.collection, reloading, "catching up before anything new starts");
            if let Some(ended) = lane.catch_up_first(state, request, report, reloading).await? {
                return Ok(ended);
            }
        }
        if request.reinitialize {
            tracing::info!(collection = %lane.collection, from = ?request.from, "reinitializing on request");
            state.reload_asked(request.from);
        }
        self.load_or_round(lane, state, report, (&plan, default_from)).await
    }

    /// Starts a load where one is due, then follows the cursor: the load's pages, or the delta
    /// round. A 410 starts the load again, once.
    async fn load_or_round(
        &self,
        lane: &Lane<'_, P::Api, R, S, Q>,
        state: &mut SyncState,
        report: &mut CollectionReport,
        (plan, default_from): (&CollectionPlan, NaiveDate),
    ) -> Result<Outcome, Halt> {
        let (collection, budget) = (lane.collection, lane.budget);
        loop {
            if let Start::Begin { filter, from, to, why } = plan::start(state, plan, default_from, budget.now()) {
                tracing::info!(collection = %collection, filter = ?filter, why, "beginning a delta load");
                let references = self.config.external_references.trim();
                let link = lane.api.list_url(collection, filter.as_deref(), true, references);
                state.load_begun(plan, (from, to), link, budget.now());
                if let Some(pass) = state.pass.as_mut() {
                    pass.started_now();
                }
            }
            match lane.follow(state, report).await {
                Ok(true) => return Ok(Outcome::Complete),
                Ok(false) => return Ok(Outcome::Partial),
                Err(Stop::Gone) if !report.delta_expired => {
                    tracing::warn!(collection = %collection, "the deltaLink expired (410); starting the initial load again");
                    report.delta_expired = true;
                    state.delta_expired(budget.now());
                }
                Err(Stop::Gone) => {
                    return Err(Halt::Failed(Outcome::Error, "Protime answered 410 Gone to a fresh load".to_owned()))
                }
                Err(stop) => return Err(Halt::from(stop)),
            }
        }
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

/// One collection's part of a run: where its pages come from (`api`), where they go (the record
/// table and quarantine, the checkpoints under the lease of `owner`), its deadline and the
/// pages the activity at hand may apply. Every step of the run takes it.
pub(super) struct Lane<'a, A, R, S, Q> {
    pub(super) api: &'a A,
    pub(super) records: &'a R,
    pub(super) states: &'a S,
    pub(super) quarantine: Option<&'a Q>,
    pub(super) owner: &'a str,
    pub(super) collection: Collection,
    pub(super) budget: &'a Budget,
    pub(super) page_limit: PageLimit,
    /// Whether a small page may be kept in the sync item: not when the field policy names the
    /// collection (the page is as Protime sent it; only the bucket may hold it, until applied).
    pub(super) inline_pages: bool,
}

impl<A, R, S, Q> Clone for Lane<'_, A, R, S, Q> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A, R, S, Q> Copy for Lane<'_, A, R, S, Q> {}

impl<A, R, S: SyncStateStore, Q> Lane<'_, A, R, S, Q> {
    /// Saves the state with the lease renewed to the run's deadline (conditional on still
    /// holding it).
    pub(super) async fn checkpoint(&self, state: &mut SyncState) -> Result<(), SyncStateError> {
        state.lease_renewed(self.budget.lease_until());
        self.states.checkpoint(self.collection, state, self.owner).await
    }

    /// This lane with a page budget of its own from here on (a reconciliation's, the history's).
    pub(super) fn own_pages(&self, report: &CollectionReport) -> Self {
        Lane { page_limit: PageLimit { from: report.pages, ..self.page_limit }, ..*self }
    }
}

/// Saves the state with the lease cleared: the collection is free for the next invocation.
pub(super) async fn release<S: SyncStateStore>(
    states: &S,
    collection: Collection,
    state: &mut SyncState,
    owner: &str,
) -> Result<(), SyncStateError> {
    state.lease_released();
    states.checkpoint(collection, state, owner).await
}

#[cfg(test)]
mod tests;
