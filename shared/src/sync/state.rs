//! Sync state, one item per collection under `sync#<collection>` in the record table: where the
//! collection's load stands (mode, phase, cursor, filter, counters, times, last error) and who
//! is working on it (a lease). Every change of it is a transition named after what happened
//! (`state/transitions.rs`); why it is one item of optional fields:
//! `docs/decisions/0016-the-sync-states-shape.md`.
//!
//! The lease is taken with one conditional UpdateItem (free, expired, or already ours) and every
//! checkpoint is a PutItem conditional on still holding it, so two invocations never work on
//! one collection at once: the second finds it busy, and a run whose lease was taken over stops
//! at its next checkpoint.

use super::apply::RecordCounts;
use super::sweep::{Drift, SeenIds};
use crate::collection::Collection;
use crate::records::item::attr;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;

/// The partition key of a collection's sync state.
pub fn sync_key(collection: Collection) -> String {
    format!("sync#{}", collection.as_str())
}

/// How a collection is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// A delta initial load, then the deltaLink followed every run (deletions included).
    Delta,
    /// Read only: `people` as earlier releases (0.1) copied it, listed again once a day. Such a
    /// state begins a delta load on its next run ([`super::plan::start`]).
    List,
}

/// Where a collection's copy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The baseline is being loaded, page by page.
    Initial,
    /// The baseline is complete; changes are followed through the deltaLink.
    Incremental,
}

/// One collection's sync state. Every field is optional in the item, so an item holding only a
/// lease (or written by an older release) still reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<SyncMode>,
    /// `None`: no load has started (or one must start again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The next page's link, or (between delta rounds) the deltaLink. Holds an opaque delta
    /// token: stored, never logged or reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// A page fetched and kept but not yet applied (the cursor still names the link it came
    /// from): the next run applies it before it fetches anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<super::kept::KeptPage>,
    /// When the cursor was last advanced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor_at: Option<DateTime<Utc>>,
    /// The filter of the current load (`None`: unfiltered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The template the filter was made from: a changed template starts a new load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_template: Option<String>,
    /// The `{from}` of the current load's filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    /// The `{to}` of the current load's filter: the end of a rolling window (a template with
    /// `{to}`), which is loaded again further ahead when it comes near.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
    /// The history before a rolling window, listed once (never swept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
    /// A start date a manual backfill asked for; loads that start again on their own (after a
    /// 410) use it too. `None`: `SYNC_FROM`, or its default, at the time the load starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_from: Option<NaiveDate>,
    /// Pages applied since the current load started.
    pub pages: u64,
    /// Records by outcome since the current load started.
    pub records: RecordCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_completed_at: Option<DateTime<Utc>>,
    /// The end of the last complete delta round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_synced_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<DateTime<Utc>>,
    /// Runs in a row that ended in error on this collection.
    pub error_runs: u32,
    /// When Protime last answered 410 Gone (the deltaLink expired; the load started over).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta_expired_at: Option<DateTime<Utc>>,
    /// The full pass under way in the load (what it saw so far is saved beside the
    /// state, [`SeenSlot::Load`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<FullPass>,
    /// A reconciliation under way: a full read of the list endpoint beside the delta, with its
    /// own cursor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<Reconcile>,
    /// The renewer recovered a Disabled subscription without catching up through the delta:
    /// the syncer's next run gives the collection a full pass with sweep (cleared once one
    /// completes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_pass_requested_at: Option<DateTime<Utc>>,
    /// When a full pass last completed (the copy equalled Protime in its window, once its drift
    /// was repaired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<DateTime<Utc>>,
    /// What that pass found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// A full pass's sweep that tombstoned nothing because it would have tombstoned more than
    /// its limit (or the pass returned a record whose id cannot be read): it waits for an
    /// operator (`reconcile --max-sweep N`); no reconciliation starts on its own meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep_held: Option<HeldSweep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    /// Epoch milliseconds (a number, so the lease condition compares numerically).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<i64>,
}

impl SyncState {
    /// The full pass under way in `slot`: the load's, or the reconciliation's.
    pub fn pass_mut(&mut self, slot: SeenSlot) -> Option<&mut FullPass> {
        match slot {
            SeenSlot::Load => self.pass.as_mut(),
            SeenSlot::Reconcile => self.reconcile.as_mut().map(|r| &mut r.pass),
        }
    }
}

/// A full pass in progress: when it started (records written since are never swept), what it
/// has measured, and how many pages of seen ids it saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FullPass {
    pub started_at: DateTime<Utc>,
    /// Chunks of seen ids saved (numbered from 0).
    #[serde(default)]
    pub chunks: u32,
    /// `missing` and `behind` so far (the sweep adds `swept`).
    #[serde(default)]
    pub drift: Drift,
    /// Compare only: no record written, the verification not recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Every page is applied; the sweep is under way from index read number `n`: first it
    /// counts what it would tombstone, then (within the limit) it tombstones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweeping: Option<usize>,
    /// Records the sweep's count found gone in the reads before `sweeping`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gone: u64,
    /// Up to [`super::sweep::SAMPLES`] of their ids (a held sweep reports them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gone_samples: Vec<String>,
    /// The count is done and within the limit: the sweep is tombstoning.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tombstoning: bool,
    /// Records a page returned whose id cannot be read: the pass cannot tell what it saw, so its
    /// sweep is held.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unreadable_ids: u64,
    /// The most this pass may tombstone (an operator's `--max-sweep`); `None`: `SWEEP_LIMIT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sweep: Option<u64>,
}

/// For `skip_serializing_if`: a count of nothing is left out.
pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A sweep held back: what it would have tombstoned, for the operator to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldSweep {
    pub at: DateTime<Utc>,
    /// Records the sweep would have tombstoned.
    pub would_sweep: u64,
    /// The limit it was held at.
    pub limit: u64,
    /// Records returned whose id could not be read (any holds the sweep).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unreadable_ids: u64,
    /// Up to 20 ids it would have tombstoned.
    #[serde(default)]
    pub sample_ids: Vec<String>,
}

/// A list of pages (history, reconciliation) that keeps failing: it is retried on a back-off,
/// and never holds up the delta or the other work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failing {
    pub since: DateTime<Utc>,
    /// Attempts in a row that failed.
    pub attempts: u32,
    /// No attempt before this time.
    pub retry_at: DateTime<Utc>,
    pub error: String,
}

impl Failing {
    /// The longest wait between attempts.
    pub const MAX_BACKOFF_HOURS: i64 = 24;

    /// One more failed attempt at `now`: the wait doubles from one hour, up to a day.
    pub fn after(previous: Option<&Failing>, error: String, now: DateTime<Utc>) -> Failing {
        let attempts = previous.map_or(1, |f| f.attempts.saturating_add(1));
        let hours = (1i64 << (attempts - 1).min(5)).min(Self::MAX_BACKOFF_HOURS);
        Failing {
            since: previous.map_or(now, |f| f.since),
            attempts,
            retry_at: now + chrono::Duration::hours(hours),
            error,
        }
    }

    /// Whether an attempt may start at `now`.
    pub fn may_retry(failing: Option<&Failing>, now: DateTime<Utc>) -> bool {
        failing.is_none_or(|f| f.retry_at <= now)
    }
}

impl FullPass {
    pub fn new(started_at: DateTime<Utc>, baseline: bool, dry_run: bool) -> Self {
        let samples = dry_run.then(super::sweep::DriftSamples::default);
        FullPass {
            started_at,
            chunks: 0,
            drift: Drift { baseline, samples, ..Drift::default() },
            dry_run,
            sweeping: None,
            gone: 0,
            gone_samples: Vec::new(),
            tombstoning: false,
            unreadable_ids: 0,
            max_sweep: None,
        }
    }
}

/// A reconciliation: a full read of the collection's window through its list endpoint, beside
/// its delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconcile {
    pub pass: FullPass,
    /// The filter it lists with (the collection's current one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The next page; `None` once every page is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Pages applied.
    #[serde(default)]
    pub pages: u64,
    /// Its pages keep failing: retried on a back-off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing: Option<Failing>,
}

/// The records dated before a rolling window's start, listed once through the list endpoint in
/// ranges of at most [`super::plan::HISTORY_RANGE_DAYS`] days, with their own cursor. The list
/// covers `[from, until)`; as the window moves ahead, the days it leaves are listed too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// The first day listed.
    pub from: NaiveDate,
    /// Listed up to this day (exclusive).
    pub until: NaiveDate,
    /// The range being listed: its last day and its next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_to: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Pages applied.
    #[serde(default)]
    pub pages: u64,
    /// The range keeps failing: retried on a back-off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing: Option<Failing>,
}

/// Which pass a chunk of seen ids belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenSlot {
    /// The initial load.
    Load,
    Reconcile,
}

impl SeenSlot {
    fn as_str(self) -> &'static str {
        match self {
            SeenSlot::Load => "load",
            SeenSlot::Reconcile => "reconcile",
        }
    }
}

/// The key of a chunk of seen ids: `sync#<collection>#seen#<slot>#<n>`.
pub fn seen_key(collection: Collection, slot: SeenSlot, chunk: u32) -> String {
    format!("sync#{}#seen#{}#{chunk}", collection.as_str(), slot.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncStateError {
    #[error("reading or writing the sync state: {0}")]
    Unavailable(String),
    #[error("the sync state item cannot be read: {0}")]
    Unreadable(String),
    #[error("another invocation took over the collection's lease")]
    LeaseLost,
}

/// Saves the ids one page of a pass saw from chunk `first` on, in as many chunks as keep each
/// under DynamoDB's item limit; returns how many it wrote.
pub async fn save_page_seen<S: SyncStateStore>(
    states: &S,
    collection: Collection,
    slot: SeenSlot,
    first: u32,
    ids: SeenIds,
) -> Result<u32, SyncStateError> {
    let mut written = 0;
    for part in ids.split(super::sweep::SEEN_CHUNK_BYTES) {
        states.save_seen(collection, slot, first + written, &part).await?;
        written += 1;
    }
    Ok(written)
}

/// Where sync state lives.
pub trait SyncStateStore: Send + Sync {
    /// Takes the collection's lease for `owner` until `until` if it is free, expired or already
    /// `owner`'s, and returns the state; `None` when another invocation holds it.
    fn acquire(
        &self,
        collection: Collection,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<SyncState>, SyncStateError>> + Send;

    /// Writes the state while `owner` holds the lease ([`SyncStateError::LeaseLost`] otherwise).
    /// A state without a lease owner releases it.
    fn checkpoint(
        &self,
        collection: Collection,
        state: &SyncState,
        owner: &str,
    ) -> impl Future<Output = Result<(), SyncStateError>> + Send;

    /// Saves chunk `chunk` of the ids a pass saw (replacing one of that number).
    fn save_seen(
        &self,
        collection: Collection,
        slot: SeenSlot,
        chunk: u32,
        ids: &SeenIds,
    ) -> impl Future<Output = Result<(), SyncStateError>> + Send;

    /// Every id of chunks `0..chunks`; a chunk that is gone is an error (the pass must start over).
    fn load_seen(
        &self,
        collection: Collection,
        slot: SeenSlot,
        chunks: u32,
    ) -> impl Future<Output = Result<SeenIds, SyncStateError>> + Send;

    /// Deletes chunks `0..chunks` (best effort: a new pass overwrites them anyway).
    fn discard_seen(
        &self,
        collection: Collection,
        slot: SeenSlot,
        chunks: u32,
    ) -> impl Future<Output = Result<(), SyncStateError>> + Send;
}

impl<T: SyncStateStore> SyncStateStore for std::sync::Arc<T> {
    fn acquire(
        &self,
        collection: Collection,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<SyncState>, SyncStateError>> + Send {
        (**self).acquire(collection, owner, now, until)
    }

    fn checkpoint(
        &self,
        collection: Collection,
        state: &SyncState,
        owner: &str,
    ) -> impl Future<Output = Result<(), SyncStateError>> + Send {
        (**self).checkpoint(collection, state, owner)
    }

    fn save_seen(
        &self,
        collection: Collection,
        slot: SeenSlot,
        chunk: u32,
        ids: &SeenIds,
    ) -> impl Future<Output = Result<(), SyncStateError>> + Send {
        (**self).save_seen(collection, slot, chunk, ids)
    }

    fn load_seen(
        &self,
        collection: Collection,
        slot: SeenSlot,
        chunks: u32,
    ) -> impl Future<Output = Result<SeenIds, SyncStateError>> + Send {
        (**self).load_seen(collection, slot, chunks)
    }

    fn discard_seen(
        &self,
        collection: Collection,
        slot: SeenSlot,
        chunks: u32,
    ) -> impl Future<Output = Result<(), SyncStateError>> + Send {
        (**self).discard_seen(collection, slot, chunks)
    }
}

/// The item as stored.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SyncItem {
    pk: String,
    collection: String,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
    #[serde(flatten)]
    state: SyncState,
}

pub fn sync_item(collection: Collection, state: &SyncState) -> Result<HashMap<String, AttributeValue>, SyncStateError> {
    let item = SyncItem {
        pk: sync_key(collection),
        collection: collection.as_str().to_owned(),
        updated_at: Some(Utc::now()),
        state: state.clone(),
    };
    serde_dynamo::to_item(item).map_err(|e| SyncStateError::Unreadable(e.to_string()))
}

pub fn state_from_item(item: HashMap<String, AttributeValue>) -> Result<SyncState, SyncStateError> {
    serde_dynamo::from_item::<_, SyncItem>(item).map(|i| i.state).map_err(|e| SyncStateError::Unreadable(e.to_string()))
}

#[derive(Debug, Clone)]
pub struct DynamoSyncStateStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoSyncStateStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoSyncStateStore { client, table: table.into() }
    }
}

impl SyncStateStore for DynamoSyncStateStore {
    async fn acquire(
        &self,
        collection: Collection,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SyncState>, SyncStateError> {
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::PK, AttributeValue::S(sync_key(collection)))
            .update_expression("SET #owner = :me, #until = :until, #collection = :collection")
            .condition_expression("attribute_not_exists(#until) OR #until < :now OR #owner = :me")
            .expression_attribute_names("#owner", "leaseOwner")
            .expression_attribute_names("#until", "leaseUntil")
            .expression_attribute_names("#collection", attr::COLLECTION)
            .expression_attribute_values(":me", AttributeValue::S(owner.to_owned()))
            .expression_attribute_values(":until", AttributeValue::N(until.timestamp_millis().to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp_millis().to_string()))
            .expression_attribute_values(":collection", AttributeValue::S(collection.as_str().to_owned()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match answer {
            Ok(output) => state_from_item(output.attributes.unwrap_or_default()).map(Some),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(SyncStateError::Unavailable(DisplayErrorContext(e).to_string())),
        }
    }

    async fn checkpoint(&self, collection: Collection, state: &SyncState, owner: &str) -> Result<(), SyncStateError> {
        let answer = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(sync_item(collection, state)?))
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", "leaseOwner")
            .expression_attribute_values(":me", AttributeValue::S(owner.to_owned()))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) => {
                Err(SyncStateError::LeaseLost)
            }
            Err(e) => Err(SyncStateError::Unavailable(DisplayErrorContext(e).to_string())),
        }
    }

    async fn save_seen(
        &self,
        collection: Collection,
        slot: SeenSlot,
        chunk: u32,
        ids: &SeenIds,
    ) -> Result<(), SyncStateError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(attr::PK, AttributeValue::S(seen_key(collection, slot, chunk)))
            .item(SEEN_IDS, AttributeValue::B(ids.to_bytes().into()))
            .item(SEEN_COUNT, AttributeValue::N(ids.len().to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| SyncStateError::Unavailable(DisplayErrorContext(e).to_string()))
    }

    async fn load_seen(&self, collection: Collection, slot: SeenSlot, chunks: u32) -> Result<SeenIds, SyncStateError> {
        let keys: Vec<String> = (0..chunks).map(|n| seen_key(collection, slot, n)).collect();
        let mut seen = SeenIds::default();
        let mut found = 0usize;
        for batch in keys.chunks(100) {
            let mut pending: Vec<HashMap<String, AttributeValue>> =
                batch.iter().map(|k| HashMap::from([(attr::PK.to_owned(), AttributeValue::S(k.clone()))])).collect();
            for round in 0.. {
                if pending.is_empty() {
                    break;
                }
                if round == 8 {
                    return Err(SyncStateError::Unavailable("seen ids left unprocessed".into()));
                }
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| SyncStateError::Unavailable(e.to_string()))?;
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| SyncStateError::Unavailable(DisplayErrorContext(e).to_string()))?;
                for item in answer.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                    let Some(AttributeValue::B(bytes)) = item.get(SEEN_IDS) else {
                        return Err(SyncStateError::Unreadable("a chunk of seen ids holds no ids".into()));
                    };
                    seen.union_with(
                        SeenIds::from_bytes(bytes.as_ref()).map_err(|e| SyncStateError::Unreadable(e.to_string()))?,
                    );
                    found += 1;
                }
                if let Some(mut left) = answer.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    pending = std::mem::take(&mut left.keys);
                    tokio::time::sleep(std::time::Duration::from_millis(50 << round.min(4))).await;
                }
            }
        }
        if found != keys.len() {
            return Err(SyncStateError::Unreadable(format!(
                "{} of {} chunks of seen ids are gone",
                keys.len() - found,
                keys.len()
            )));
        }
        Ok(seen)
    }

    async fn discard_seen(&self, collection: Collection, slot: SeenSlot, chunks: u32) -> Result<(), SyncStateError> {
        use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
        let keys: Vec<String> = (0..chunks).map(|n| seen_key(collection, slot, n)).collect();
        for batch in keys.chunks(25) {
            let mut requests = Vec::with_capacity(batch.len());
            for key in batch {
                let delete = DeleteRequest::builder()
                    .key(attr::PK, AttributeValue::S(key.clone()))
                    .build()
                    .map_err(|e| SyncStateError::Unavailable(e.to_string()))?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
            let mut pending = requests;
            for round in 0..8u32 {
                let answer = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| SyncStateError::Unavailable(DisplayErrorContext(e).to_string()))?;
                pending = answer.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << round.min(4))).await;
            }
        }
        Ok(())
    }
}

/// The attributes of a chunk of seen ids: the saved [`SeenIds`], and how many it holds.
const SEEN_IDS: &str = "ids";
const SEEN_COUNT: &str = "count";

mod transitions;

#[cfg(test)]
mod tests;
