//! The renewer's run: load state, ask Protime, plan, and carry out each subscription's action.
//!
//! A renewal is ordered so that a crash anywhere is repaired by the next run: the intent is
//! recorded first (`renewingSince`), then the POST, then the new key is stored at once (the old
//! key stops matching the moment Protime issues the new one), then the state. A run that finds
//! the intent still recorded renews again. One subscription's failure does not stop the others.

use crate::collection::Collection;
use crate::config::RenewerConfig;
use crate::invocation::Budget;
use crate::protime::client::{scopes_for, within_deadline, ClientOptions, FunctionClient};
use crate::protime::{Connect, ConnectError, CredentialsFromSecret, ProtimeError, Webhook, WebhookApi, WebhookStatus};
use crate::records::quarantine::{Quarantine, S3Quarantine};
use crate::records::set_aside::SetAsideMarks;
use crate::records::{DynamoRecordStore, RecordStore, StoredHeads};
use crate::renewer::plan::{self, Action, ActionKind, Decision, Desired, PlanInput, RenewReason, SubscriptionState};
use crate::renewer::state::{DynamoSubscriptionStore, StateError, SubscriptionStore};
use crate::signing::keys::{KeySourceError, SecretsManagerKeySource};
use crate::signing::writer::KeyWriter;
use crate::sync::apply::RecordCounts;
use crate::sync::handoff::{delta_round, request_full_pass, DeltaRound, Stores};
use crate::sync::kept::PageKeep;
/// What a recovery's delta round applied.
pub type ResyncCounts = RecordCounts;
use crate::sync::state::{DynamoSyncStateStore, SyncStateStore};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// The outcome of one subscription in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionReport {
    pub collection: String,
    pub action: ActionKind,
    /// Why a renewal was due (only for `renew`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<RenewReason>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hours_until_expiry: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resynced: Option<ResyncCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A webhook at our destination base that no wanted subscription uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StrayReport {
    pub webhook_id: String,
    pub collection: String,
    pub destination_url: String,
    pub deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a run did; `healthy` is false if any subscription was left failing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub healthy: bool,
    /// Another run held the renewer's run lease: this one did nothing (and is healthy).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub busy: bool,
    pub subscriptions: Vec<SubscriptionReport>,
    pub strays: Vec<StrayReport>,
    /// The credentials secret still holds the template's placeholders: why nothing was asked of
    /// Protime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_configured: Option<String>,
}

impl RunReport {
    /// A run that carried out its plan: healthy when no subscription is left failing and every
    /// stray webhook was handled.
    pub fn of(subscriptions: Vec<SubscriptionReport>, strays: Vec<StrayReport>) -> RunReport {
        let healthy = subscriptions.iter().all(|s| s.ok) && strays.iter().all(|s| s.error.is_none());
        RunReport { healthy, busy: false, subscriptions, strays, not_configured: None }
    }

    /// Another run holds the run lease.
    pub fn busy() -> RunReport {
        RunReport { healthy: true, busy: true, subscriptions: Vec::new(), strays: Vec::new(), not_configured: None }
    }

    /// The credentials secret is not filled in yet (`why`, naming the secret).
    pub fn not_configured(why: String) -> RunReport {
        RunReport { healthy: false, not_configured: Some(why), ..RunReport::of(Vec::new(), Vec::new()) }
    }

    /// The collections left failing, in the report's order.
    pub fn unhealthy(&self) -> Vec<&str> {
        self.subscriptions.iter().filter(|s| !s.ok).map(|s| s.collection.as_str()).collect()
    }
}

/// A run that could not even start planning. (A run that carried out its plan answers its report,
/// subscriptions left failing or not: the handler never fails for them.)
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Protime(#[from] ProtimeError),
    #[error(transparent)]
    State(#[from] StateError),
}

impl RunError {
    /// A stable name for the Lambda error type, so alarms and logs can tell the cases apart.
    pub fn error_type(&self) -> &'static str {
        match self {
            RunError::Connect(_) => "ProtimeCredentialsUnavailable",
            RunError::Protime(_) => "ProtimeUnavailable",
            RunError::State(_) => "StateUnavailable",
        }
    }
}

impl From<RunError> for lambda_http::lambda_runtime::Diagnostic {
    fn from(error: RunError) -> Self {
        lambda_http::lambda_runtime::Diagnostic {
            error_type: error.error_type().into(),
            error_message: error.to_string(),
        }
    }
}

/// One subscription's action in a run: the Protime session, the decision being carried out,
/// the run's time and its deadline.
struct Act<'a, A> {
    protime: &'a A,
    decision: &'a Decision,
    now: DateTime<Utc>,
    budget: &'a Budget,
}

impl<A> Clone for Act<'_, A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A> Copy for Act<'_, A> {}

/// Why one subscription's action failed, step by step.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("recording the renewal intent: {0}")]
    RecordIntent(StateError),
    #[error("creating or re-enabling the webhook: {0}")]
    Post(ProtimeError),
    #[error("storing the new key: {0}")]
    StoreKey(KeySourceError),
    #[error("recording the renewal: {0}")]
    RecordRenewal(StateError),
    #[error("Protime answered the renewal with status {0}")]
    NotEnabled(String),
    #[error("deleting webhook {id}: {source}")]
    Delete { id: String, source: ProtimeError },
    #[error("saving the subscription state: {0}")]
    SaveState(StateError),
}

/// The renewer as deployed: Protime through the credentials secret, keys in Secrets Manager,
/// state and records in DynamoDB, re-synced records DynamoDB refuses in the S3 quarantine.
pub type AwsRenewer = Renewer<
    CredentialsFromSecret,
    SecretsManagerKeySource,
    DynamoSubscriptionStore,
    DynamoRecordStore,
    S3Quarantine,
    DynamoSyncStateStore,
>;

/// `T`: the syncer's state, so a recovery can catch up through the collection's deltaLink.
pub struct Renewer<P, K, S, R, Q, T> {
    pub config: RenewerConfig,
    /// Opens a Protime session per run (public so tests can shorten its retries).
    pub protime: P,
    keys: K,
    subscriptions: S,
    records: R,
    quarantine: Option<Q>,
    sync_states: T,
}

impl AwsRenewer {
    /// The renewer as deployed, on the AWS clients of `sdk`.
    pub fn from_config(config: RenewerConfig, sdk: &aws_config::SdkConfig) -> Self {
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let protime =
            CredentialsFromSecret::new(secrets.clone(), &config.protime_credentials_secret, client_options(&config));
        let keys = config.signing_keys.source(secrets);
        let subscriptions = DynamoSubscriptionStore::new(dynamodb.clone(), &config.table_name);
        let records = DynamoRecordStore::new(dynamodb.clone(), &config.table_name)
            .with_policy(std::sync::Arc::new(config.data.clone()));
        let sync_states = DynamoSyncStateStore::new(dynamodb, &config.table_name);
        let quarantine =
            config.quarantine_bucket.as_ref().map(|bucket| S3Quarantine::new(S3Quarantine::client(sdk), bucket));
        Renewer::new(config, protime, RenewerStores { keys, subscriptions, records, quarantine, sync_states })
    }
}

/// The Protime client settings the renewer's configuration asks for: the webhook scopes and
/// each collection's read scope. A `Retry-After` is waited out within the invocation's time
/// ([`Renewer::run_within`]).
pub fn client_options(config: &RenewerConfig) -> ClientOptions {
    ClientOptions::for_function(
        scopes_for(config.collections.iter().map(|c| c.as_str())),
        FunctionClient {
            company: &config.user_agent_company,
            api_base_url: config.protime_api_base_url.as_deref(),
            token_url: config.protime_token_url.as_deref(),
        },
    )
}

/// What a [`Renewer`] keeps and reads besides Protime.
pub struct RenewerStores<K, S, R, Q, T> {
    /// Where each subscription's signing key is stored (the receiver reads it).
    pub keys: K,
    /// Each subscription's state, and the renewer's run lease.
    pub subscriptions: S,
    /// The record table a recovery's delta round writes to.
    pub records: R,
    /// Where re-synced records DynamoDB refuses are kept (counted either way); `None` without a
    /// quarantine bucket.
    pub quarantine: Option<Q>,
    /// The syncer's state, so a recovery can catch up through the collection's deltaLink.
    pub sync_states: T,
}

impl<
        P: Connect,
        K: KeyWriter,
        S: SubscriptionStore,
        R: RecordStore + StoredHeads + SetAsideMarks,
        Q: Quarantine + PageKeep,
        T: SyncStateStore,
    > Renewer<P, K, S, R, Q, T>
{
    pub fn new(config: RenewerConfig, protime: P, stores: RenewerStores<K, S, R, Q, T>) -> Self {
        let RenewerStores { keys, subscriptions, records, quarantine, sync_states } = stores;
        Renewer { config, protime, keys, subscriptions, records, quarantine, sync_states }
    }

    /// One scheduled run at `now`, with no deadline (tests, the CLI).
    pub async fn run(&self, now: DateTime<Utc>) -> Result<RunReport, RunError> {
        self.run_within(Budget::new(now, None, std::time::Duration::ZERO)).await
    }

    /// One scheduled run within `budget`: a delta round of a recovery never starts a page once
    /// less than the budget's margin is left before the invocation's deadline.
    ///
    /// The run holds the renewer's run lease throughout (until the invocation's deadline, or
    /// [`crate::invocation::DEFAULT_LEASE`] without one), so a second run at once — a manual invoke during the
    /// scheduled one — reports `busy` and touches nothing, whatever the reserved concurrency.
    pub async fn run_within(&self, budget: Budget) -> Result<RunReport, RunError> {
        let now = budget.now();
        let owner = crate::invocation::lease_owner("renewer");
        let until = budget.lease_until();
        if !self.subscriptions.take_run_lease(&owner, until, now).await? {
            tracing::warn!("another renewer run holds the run lease: nothing to do");
            return Ok(RunReport::busy());
        }
        // No Retry-After is waited out past what the invocation has left (less half its margin).
        let report = match budget.request_time() {
            Some(time) => within_deadline(tokio::time::Instant::now() + time, self.run_leased(&budget)).await,
            None => self.run_leased(&budget).await,
        };
        if let Err(e) = self.subscriptions.release_run_lease(&owner).await {
            // It frees itself at its deadline; the next scheduled run is an hour away.
            tracing::warn!(error = %e, "could not release the renewer's run lease");
        }
        report
    }

    async fn run_leased(&self, budget: &Budget) -> Result<RunReport, RunError> {
        let now = budget.now();
        let stored = self.subscriptions.load(&self.config.collections).await?;
        self.ensure_hash_key().await;
        self.carry_keys_over(&stored, now).await;
        let protime = self.protime.connect().await?;
        let reported = protime.list_webhooks().await?;
        let desired =
            Desired::all(&self.config.destination_base_url, &self.config.collections, &self.config.external_references);
        let plan = plan::plan(PlanInput {
            now,
            desired: &desired,
            reported: &reported,
            stored: &stored,
            renew_before: self.config.renew_before,
            destination_base: &self.config.destination_base_url,
            default_gap: self.config.default_gap,
        });

        let mut subscriptions = Vec::with_capacity(plan.decisions.len());
        for decision in &plan.decisions {
            let mut state = stored.get(&decision.desired.collection).cloned().unwrap_or_default();
            let report = self.execute(&protime, decision, &mut state, now, budget).await;
            log_report(&report);
            subscriptions.push(report);
        }
        // The plan was made from the list before the POSTs: a webhook it called a stray or a
        // leftover may be the one a re-enable just answered with, so it is never deleted.
        let in_use: Vec<&str> = subscriptions.iter().filter_map(|s| s.webhook_id.as_deref()).collect();
        let mut strays = Vec::with_capacity(plan.strays.len() + plan.leftovers.len());
        for webhook in &plan.strays {
            let delete = self.config.delete_stray_webhooks && !in_use.contains(&webhook.id.as_str());
            strays.push(self.handle_stray(&protime, webhook, delete).await);
        }
        for webhook in &plan.leftovers {
            let delete = !in_use.contains(&webhook.id.as_str());
            strays.push(self.handle_stray(&protime, webhook, delete).await);
        }
        Ok(RunReport::of(subscriptions, strays))
    }

    /// Generates the field hash key in the signing-keys secret when it has none (a new stack's
    /// first run): a `FieldPolicy` with `hash` entries needs it at every function's start. A
    /// failure is logged and tried again next run.
    async fn ensure_hash_key(&self) {
        match self.keys.ensure_hash_key().await {
            Ok(true) => tracing::info!("generated the field hash key in the signing-keys secret"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not make sure the field hash key exists; trying again next run")
            }
        }
    }

    /// Moves the keys release 0.1 kept in one secret per collection into the signing-keys
    /// secret, for the collections this stack has a webhook of (another stack's keys in the
    /// same account are never touched). A failure is logged, not fatal: the receiver still
    /// reads them where they are.
    async fn carry_keys_over(
        &self,
        stored: &std::collections::HashMap<Collection, SubscriptionState>,
        now: DateTime<Utc>,
    ) {
        let ours: Vec<Collection> =
            stored.iter().filter(|(_, state)| state.webhook_id.is_some()).map(|(c, _)| *c).collect();
        match self.keys.carry_over(&ours, now.into()).await {
            Ok(moved) if !moved.is_empty() => {
                let moved: Vec<&str> = moved.iter().map(|c| c.as_str()).collect();
                tracing::info!(collections = ?moved, "carried signing keys over into the signing-keys secret");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not carry signing keys over; the receiver still reads them where they are")
            }
        }
    }

    /// Reports a webhook at our destination that no subscription uses, and deletes it if `delete`.
    async fn handle_stray(&self, protime: &P::Api, webhook: &crate::protime::Webhook, delete: bool) -> StrayReport {
        let mut report = StrayReport {
            webhook_id: webhook.id.clone(),
            collection: webhook.collection_name.clone(),
            destination_url: webhook.destination_url.clone(),
            deleted: false,
            error: None,
        };
        if delete {
            match protime.delete_webhook(&webhook.id).await {
                Ok(()) => report.deleted = true,
                Err(e) => report.error = Some(e.to_string()),
            }
        }
        tracing::warn!(webhook_id = %report.webhook_id, collection = %report.collection, deleted = report.deleted, "stray webhook at our destination");
        report
    }

    async fn execute(
        &self,
        protime: &P::Api,
        decision: &Decision,
        state: &mut SubscriptionState,
        now: DateTime<Utc>,
        budget: &Budget,
    ) -> SubscriptionReport {
        let collection = decision.desired.collection;
        let mut resynced = None;
        let result = match &decision.action {
            Action::Keep { webhook } => self.keep(collection, webhook, state, now).await,
            Action::Create | Action::Renew { .. } => self.renew(protime, decision, state, now).await,
            Action::Recover { gap_start, .. } => {
                let act = Act { protime, decision, now, budget };
                self.recover(&act, state, *gap_start, &mut resynced).await
            }
            Action::Recreate { webhook, gap_start } => {
                let act = Act { protime, decision, now, budget };
                self.recreate(&act, &webhook.id, *gap_start, state, &mut resynced).await
            }
        };
        if let Err(error) = &result {
            state.last_error = Some(error.to_string());
            if let Err(e) = self.subscriptions.save(collection, state).await {
                tracing::error!(collection = %collection, error = %e, "could not record the failure");
            }
        }
        SubscriptionReport {
            collection: collection.as_str().to_owned(),
            action: decision.action.kind(),
            reason: decision.action.reason(),
            ok: result.is_ok(),
            webhook_id: state.webhook_id.clone(),
            valid_until: state.valid_until.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            hours_until_expiry: state
                .valid_until
                .map(|t| ((t - now).num_seconds() as f64 / 3600.0 * 10.0).round() / 10.0),
            resynced,
            error: result.err().map(|e| e.to_string()),
        }
    }

    /// Healthy and not due: record that it was seen Enabled.
    async fn keep(
        &self,
        collection: Collection,
        webhook: &crate::protime::Webhook,
        state: &mut SubscriptionState,
        now: DateTime<Utc>,
    ) -> Result<(), SubscriptionError> {
        state.status = Some(webhook.status.clone());
        state.valid_until = Some(webhook.valid_until);
        state.webhook_id = Some(webhook.id.clone());
        state.last_seen_enabled_at = Some(now);
        state.last_error = None;
        self.subscriptions.save(collection, state).await.map_err(SubscriptionError::SaveState)
    }

    /// Catch up on the gap, renew, then catch up once more: changes made between the first
    /// round and the renewal were neither delivered (the webhook was Disabled) nor fetched; after
    /// the renewal every change is delivered, so the second round closes the window. Neither
    /// round holds up the renewal: what they cannot cover is the syncer's.
    async fn recover(
        &self,
        act: &Act<'_, P::Api>,
        state: &mut SubscriptionState,
        gap_start: DateTime<Utc>,
        resynced: &mut Option<ResyncCounts>,
    ) -> Result<(), SubscriptionError> {
        let Act { protime, decision, now, budget } = *act;
        let collection = decision.desired.collection;
        self.resync(protime, collection, gap_start, budget, resynced).await;
        state.last_resync_at = Some(now);
        self.renew(protime, decision, state, now).await?;
        self.resync(protime, collection, gap_start, budget, resynced).await;
        self.subscriptions.save(collection, state).await.map_err(SubscriptionError::SaveState)
    }

    /// External references changed: re-sync first if it was Disabled, delete, create anew.
    async fn recreate(
        &self,
        act: &Act<'_, P::Api>,
        webhook_id: &str,
        gap_start: Option<DateTime<Utc>>,
        state: &mut SubscriptionState,
        resynced: &mut Option<ResyncCounts>,
    ) -> Result<(), SubscriptionError> {
        let Act { protime, decision, now, budget } = *act;
        if let Some(gap_start) = gap_start {
            self.resync(protime, decision.desired.collection, gap_start, budget, resynced).await;
            state.last_resync_at = Some(now);
        }
        protime
            .delete_webhook(webhook_id)
            .await
            .map_err(|source| SubscriptionError::Delete { id: webhook_id.to_owned(), source })?;
        self.renew(protime, decision, state, now).await
    }

    /// Catches up on the gap as far as it can without holding up the re-enable: one delta round
    /// when the syncer holds a live deltaLink for the collection (every change since its last
    /// round, deletions included), bounded by the invocation's deadline. Anything else — no live
    /// deltaLink, no time left — is handed to the syncer: its next run gives
    /// the collection a full pass with sweep (a reload, when the link expired). The renewer never
    /// lists a collection itself. What the round applied is added to `resynced` as it goes.
    async fn resync(
        &self,
        protime: &P::Api,
        collection: Collection,
        gap_start: DateTime<Utc>,
        budget: &Budget,
        resynced: &mut Option<ResyncCounts>,
    ) {
        let stores = Stores {
            records: &self.records,
            states: &self.sync_states,
            quarantine: self.quarantine.as_ref(),
            inline_pages: !self.config.data.fields.names(collection),
        };
        let counts = resynced.get_or_insert_with(ResyncCounts::default);
        match delta_round(protime, stores, collection, budget, counts).await {
            Ok(DeltaRound::CaughtUp) => {
                tracing::info!(collection = %collection, stored = counts.stored, "caught up through the deltaLink");
                return;
            }
            Ok(DeltaRound::OutOfTime) => {
                tracing::warn!(collection = %collection, "no time left for a delta round; handing the gap to the syncer")
            }
            Ok(DeltaRound::NotLive) => {}
            Err(e) => {
                tracing::warn!(collection = %collection, error = %e, "the delta round failed; handing the gap to the syncer")
            }
        }
        match request_full_pass(&self.sync_states, collection, budget).await {
            Ok(true) => {
                tracing::info!(collection = %collection, gap_start = %gap_start, "the syncer's next run gives the collection a full pass")
            }
            Ok(false) => {
                tracing::info!(collection = %collection, "the syncer is working on the collection; it catches up")
            }
            // The syncer still catches up on its own schedule (a live deltaLink, or the reload
            // after it expired); only the full pass waits for its next scheduled reconciliation.
            Err(e) => tracing::warn!(collection = %collection, error = %e, "cannot hand the gap to the syncer"),
        }
    }

    /// Intent, POST, key, state: in this order (see the module docs).
    async fn renew(
        &self,
        protime: &P::Api,
        decision: &Decision,
        state: &mut SubscriptionState,
        now: DateTime<Utc>,
    ) -> Result<(), SubscriptionError> {
        let collection = decision.desired.collection;
        if let Some(reason) = decision.action.reason() {
            tracing::info!(collection = %collection, reason = ?reason, "renewing");
        }
        state.renewing_since = Some(now);
        self.subscriptions.save(collection, state).await.map_err(SubscriptionError::RecordIntent)?;
        let created = protime
            .create_webhook(&decision.desired.destination_url, collection, &decision.desired.external_references)
            .await
            .map_err(SubscriptionError::Post)?;
        self.keys.store(collection, &created.key).await.map_err(SubscriptionError::StoreKey)?;
        *state = SubscriptionState {
            webhook_id: Some(created.id.clone()),
            status: Some(created.status.clone()),
            valid_until: Some(created.valid_until),
            destination_url: Some(decision.desired.destination_url.clone()),
            external_references: Some(decision.desired.external_references.clone()),
            renewing_since: None,
            last_renewed_at: Some(now),
            last_resync_at: state.last_resync_at,
            last_seen_enabled_at: Some(now),
            last_error: None,
            last_event_at: state.last_event_at,
        };
        self.subscriptions.save(collection, state).await.map_err(SubscriptionError::RecordRenewal)?;
        if created.status != WebhookStatus::Enabled {
            return Err(SubscriptionError::NotEnabled(created.status.as_str().to_owned()));
        }
        // Protime may answer a re-enable with a new webhook: the old one (ours, by destination and
        // collection) is deleted once its replacement is Enabled; if that fails, the next run's
        // plan finds it as a leftover.
        let re_enabled = matches!(decision.action, Action::Renew { .. } | Action::Recover { .. });
        let replaced = |old: &&Webhook| re_enabled && !old.id.trim().eq_ignore_ascii_case(created.id.trim());
        if let Some(old) = decision.action.webhook().filter(replaced) {
            if let Err(e) = protime.delete_webhook(&old.id).await {
                tracing::warn!(collection = %collection, webhook_id = %old.id, error = %e, "could not delete the replaced webhook");
            }
        }
        Ok(())
    }
}

/// The metrics of a run: one summary (the soonest expiry, every run, for its alarm; counts of
/// what happened), one document per quarantine reason and, when detailed, one per
/// subscription (dimension `Collection`). `run` is `None` when the run failed before planning:
/// Lambda's own `Errors` counts that, and a run that found the lease taken reports nothing
/// (the run holding it does).
pub fn run_metrics(
    metrics: &crate::observability::metrics::Metrics,
    run: Option<&RunReport>,
) -> Vec<crate::observability::metrics::MetricDoc> {
    use crate::observability::metrics::{MetricDoc, Unit};
    let Some(report) = run.filter(|r| !r.busy) else {
        return Vec::new();
    };
    if report.not_configured.is_some() {
        // Only then, so a configured stack pays for no such metric.
        return vec![metrics.doc("renewer").count("CredentialsNotConfigured", 1)];
    }
    let renewed = |s: &SubscriptionReport| {
        s.ok && matches!(s.action, ActionKind::Create | ActionKind::Renew | ActionKind::Recreate)
    };
    let was_disabled = |s: &SubscriptionReport| s.action == ActionKind::Recover;
    let per_subscription = report.subscriptions.iter().filter(|_| metrics.detailed);
    let mut docs: Vec<MetricDoc> = per_subscription
        .map(|s| {
            metrics
                .doc("renewer")
                .dimension("Collection", &s.collection)
                .metric("HoursUntilExpiry", Unit::None, s.hours_until_expiry.unwrap_or(f64::NAN))
                .count("Renewals", u64::from(renewed(s)))
                .count("Recoveries", u64::from(s.ok && was_disabled(s)))
                .count("Disabled", u64::from(was_disabled(s)))
                .count("ResyncedRecords", s.resynced.map_or(0, |r| r.stored))
                .count("Failures", u64::from(!s.ok))
        })
        .collect();
    let min_hours = report.subscriptions.iter().filter_map(|s| s.hours_until_expiry).fold(f64::INFINITY, f64::min);
    docs.push(
        metrics
            .doc("renewer")
            .count("SubscriptionsUnhealthy", report.subscriptions.iter().filter(|s| !s.ok).count() as u64)
            .count("SubscriptionsDisabled", report.subscriptions.iter().filter(|s| was_disabled(s)).count() as u64)
            .count("Renewals", report.subscriptions.iter().filter(|s| renewed(s)).count() as u64)
            .count("Recoveries", report.subscriptions.iter().filter(|s| s.ok && was_disabled(s)).count() as u64)
            .count("ResyncedRecords", report.subscriptions.iter().filter_map(|s| s.resynced).map(|r| r.stored).sum())
            .count("StrayWebhooks", report.strays.len() as u64)
            .metric("MinHoursUntilExpiry", Unit::None, min_hours),
    );
    // Re-synced records DynamoDB refused, by reason: the metric the Quarantined alarm watches.
    let mut quarantined = ResyncCounts::default();
    for counts in report.subscriptions.iter().filter_map(|s| s.resynced) {
        quarantined += counts;
    }
    docs.extend(
        quarantined
            .quarantined_by
            .iter()
            .map(|(reason, n)| metrics.doc("renewer").dimension("Reason", reason).count("Quarantined", n)),
    );
    docs
}

fn log_report(report: &SubscriptionReport) {
    if report.ok {
        tracing::info!(
            collection = %report.collection,
            action = report.action.as_str(),
            reason = report.reason.map(|r| format!("{r:?}")).unwrap_or_default(),
            webhook_id = report.webhook_id.as_deref().unwrap_or(""),
            valid_until = report.valid_until.as_deref().unwrap_or(""),
            hours_until_expiry = report.hours_until_expiry.unwrap_or(f64::NAN),
            "subscription"
        );
    } else {
        tracing::error!(
            collection = %report.collection,
            action = report.action.as_str(),
            error = report.error.as_deref().unwrap_or(""),
            "subscription left unhealthy"
        );
    }
}

#[cfg(test)]
mod tests;
