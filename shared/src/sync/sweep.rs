//! Proving the copy: what a full pass saw, and the sweep that follows it.
//!
//! A full pass (an initial load, a reconciliation) sees the whole of a collection's
//! window. It records the id of every record it saw ([`SeenIds`], saved page by page beside the
//! sync state, so a pass can span many runs) and counts what the copy lacked (`missing`) or
//! held at an older version (`behind`). When its last page is applied, the sweep reads the
//! collection's live records inside the pass's window through the `byDate` index (that
//! collection's partitions only, never the whole table; a table deployed without that index is
//! scanned instead, see [`LiveRead`]) and tombstones each one the pass did not see and that was
//! last written before the pass started (`swept`): Protime no longer has it. See
//! `docs/decisions/0012-a-full-pass-proves-the-copy.md`.
//!
//! Pure except for [`SweepScope::sweep`], which works through the [`LiveRecords`] capability.

use crate::collection::Collection;
use crate::records::index::ReadIndexes;
use crate::records::item::{attr, sweep_tombstone};
use crate::records::query::{self, IndexRead, RecordQuery};
use crate::records::store::received_now;
use crate::records::{DynamoRecordStore, RecordId, StoreError};
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use roaring::RoaringTreemap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;

/// The most a saved chunk of seen ids holds: under DynamoDB's 400 KB item limit with room for
/// its key and attribute names.
pub const SEEN_CHUNK_BYTES: usize = 350_000;
/// Sample ids kept per kind of drift (a dry run reports them).
pub const SAMPLES: usize = 20;
/// How far past today an open-ended window is swept (records dated later are never swept).
pub const OPEN_END_DAYS: i64 = 400;
/// Segments of the Scan a sweep makes of a table without `byDate`: each is a read of its own, so
/// a sweep cut short by the deadline resumes at the segment it was in.
pub const SCAN_SEGMENTS: u32 = 8;

/// One read of a sweep: a partition of the `byDate` index, or, when the table has no such index
/// (`READ_INDEXES`), one segment of a Scan of the whole table filtered to the collection's live
/// records (every item is read, and paid for, once per sweep: see `docs/cost.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveRead {
    Index(IndexRead),
    Scan { collection: Collection, segment: u32 },
}

/// Why saved seen ids cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnreadableSeenIds {
    #[error("empty")]
    Empty,
    #[error("unknown format {0}")]
    Format(u8),
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("{0}")]
    Part(String),
}

/// The ids a pass saw: Protime's integer ids in a compressed bitmap (a few bytes per id, far
/// less when ids are dense), any other id text in a set beside it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeenIds {
    numbers: RoaringTreemap,
    texts: BTreeSet<String>,
}

/// An id as a plain decimal integer (no sign, no leading zero), if it is one.
fn integer(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
        && text.len() <= 20;
    canonical.then(|| text.parse().ok()).flatten()
}

/// The first byte of the saved form (its layout may change with it).
const FORMAT: u8 = 1;

impl SeenIds {
    pub fn insert(&mut self, id: &str) {
        match integer(id) {
            Some(n) => {
                self.numbers.insert(n);
            }
            None => {
                self.texts.insert(id.to_owned());
            }
        }
    }

    pub fn insert_id(&mut self, id: &RecordId) {
        self.insert(id.as_str());
    }

    pub fn contains(&self, id: &str) -> bool {
        match integer(id) {
            Some(n) => self.numbers.contains(n),
            None => self.texts.contains(id),
        }
    }

    pub fn len(&self) -> u64 {
        self.numbers.len() + self.texts.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds every id of `other`.
    pub fn union_with(&mut self, other: SeenIds) {
        self.numbers |= other.numbers;
        self.texts.extend(other.texts);
    }

    /// The saved form: a format byte, the bitmap's length (8 bytes, little-endian), the bitmap
    /// in the portable roaring format, then the other ids as a JSON array.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.numbers.serialized_size());
        out.push(FORMAT);
        out.extend_from_slice(&(self.numbers.serialized_size() as u64).to_le_bytes());
        // Writing into a Vec cannot fail.
        let _ = self.numbers.serialize_into(&mut out);
        if !self.texts.is_empty() {
            out.extend_from_slice(serde_json::to_string(&self.texts).unwrap_or_default().as_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<SeenIds, UnreadableSeenIds> {
        let truncated = |part| UnreadableSeenIds::Truncated(part);
        let (&format, rest) = bytes.split_first().ok_or(UnreadableSeenIds::Empty)?;
        if format != FORMAT {
            return Err(UnreadableSeenIds::Format(format));
        }
        let (len, rest) = rest.split_at_checked(8).ok_or(truncated("length"))?;
        let len = u64::from_le_bytes(len.try_into().map_err(|_| truncated("length"))?) as usize;
        let (bitmap, texts) = rest.split_at_checked(len).ok_or(truncated("bitmap"))?;
        let numbers = RoaringTreemap::deserialize_from(bitmap).map_err(|e| UnreadableSeenIds::Part(e.to_string()))?;
        let texts = if texts.is_empty() {
            BTreeSet::new()
        } else {
            serde_json::from_slice(texts).map_err(|e| UnreadableSeenIds::Part(e.to_string()))?
        };
        Ok(SeenIds { numbers, texts })
    }

    /// The set in parts whose saved forms each fit in `max_bytes` (one part when it fits; an
    /// id larger than that alone is a part of its own).
    pub fn split(self, max_bytes: usize) -> Vec<SeenIds> {
        if self.len() <= 1 || self.to_bytes().len() <= max_bytes {
            return vec![self];
        }
        let half = self.len() / 2;
        let (mut low, mut high) = (SeenIds::default(), SeenIds::default());
        for (n, number) in self.numbers.iter().enumerate() {
            let part = if (n as u64) < half { &mut low } else { &mut high };
            part.numbers.insert(number);
        }
        let numbers = self.numbers.len();
        for (n, text) in self.texts.into_iter().enumerate() {
            let part = if numbers + (n as u64) < half { &mut low } else { &mut high };
            part.texts.insert(text);
        }
        let mut parts = low.split(max_bytes);
        parts.extend(high.split(max_bytes));
        parts
    }

    /// The size of the saved form (about the memory the set takes).
    pub fn saved_bytes(&self) -> usize {
        9 + self.numbers.serialized_size() + self.texts.iter().map(|t| t.len() + 3).sum::<usize>()
    }
}

/// A pass's window on the `date` field; no bound on a side means that side is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
}

impl Window {
    /// The window of a filter a pass used: none is the whole collection; `date ge '…'` and
    /// `date le '…'` joined by `and` bound it. Any other filter selects records by something the
    /// sweep cannot check, so it returns `None` and such a pass sweeps nothing.
    pub fn of_filter(filter: Option<&str>) -> Option<Window> {
        let Some(filter) = filter.map(str::trim).filter(|f| !f.is_empty()) else {
            return Some(Window::default());
        };
        let mut window = Window::default();
        for part in filter.split(" and ") {
            let part = part.trim();
            let (rest, lower) = if let Some(rest) = part.strip_prefix("date ge ") {
                (rest, true)
            } else if let Some(rest) = part.strip_prefix("date le ") {
                (rest, false)
            } else {
                return None;
            };
            let day: NaiveDate = rest.trim().strip_prefix('\'')?.strip_suffix('\'')?.get(..10)?.parse().ok()?;
            let side = if lower { &mut window.from } else { &mut window.to };
            if side.replace(day).is_some() {
                return None;
            }
        }
        Some(window)
    }

    /// Whether a record dated `date` (`YYYY-MM-DD…`, or none) lies inside.
    pub fn contains(&self, date: Option<&str>) -> bool {
        if self.from.is_none() && self.to.is_none() {
            return true;
        }
        let Some(day) = date.and_then(|d| d.get(..10)).and_then(|d| d.parse::<NaiveDate>().ok()) else {
            return false;
        };
        self.from.is_none_or(|from| day >= from) && self.to.is_none_or(|to| day <= to)
    }

    /// The index reads that list the live records of `collection` inside the window: a dated
    /// collection's month partitions from `from` to `to` (an open end: [`OPEN_END_DAYS`] past
    /// `today`), a reference collection's shards. `None`: a dated collection without a lower
    /// bound, which no pass of this syncer makes (its records reach back without limit).
    pub fn reads(&self, collection: Collection, today: NaiveDate) -> Option<Vec<IndexRead>> {
        let dates = if collection.is_dated() {
            let to = self.to.unwrap_or(today + Duration::days(OPEN_END_DAYS));
            Some((self.from?, to))
        } else {
            None
        };
        let query = RecordQuery { collection, person: None, dates, include_deleted: false, limit: None };
        query::plan(&query).ok().map(|groups| groups.into_iter().flatten().collect())
    }

    /// The sweep's reads: [`Window::reads`] when the table has `byDate`, else the
    /// [`SCAN_SEGMENTS`] segments of a Scan (the window is then checked record by record).
    pub fn live_reads(&self, collection: Collection, today: NaiveDate, indexes: ReadIndexes) -> Option<Vec<LiveRead>> {
        if !indexes.by_date {
            return Some((0..SCAN_SEGMENTS).map(|segment| LiveRead::Scan { collection, segment }).collect());
        }
        self.reads(collection, today).map(|reads| reads.into_iter().map(LiveRead::Index).collect())
    }
}

/// How far the copy was from Protime, as one full pass measured it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Drift {
    /// Records Protime has that the copy lacked (or held only as a tombstone).
    pub missing: u64,
    /// Records the copy held at an older version.
    pub behind: u64,
    /// Live records the copy held that Protime no longer has (tombstoned by the sweep).
    pub swept: u64,
    /// The collection's first load: the copy was empty, so everything was missing; not alarmed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub baseline: bool,
    /// A dry run's sample ids (at most [`SAMPLES`] of each kind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<DriftSamples>,
}

/// Sample ids of each kind of drift.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DriftSamples {
    pub missing: Vec<String>,
    pub behind: Vec<String>,
    pub swept: Vec<String>,
}

/// The kinds of drift, as the `DriftRecords` metric's `Kind` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftKind {
    Missing,
    Behind,
    Swept,
}

impl Drift {
    /// Counts one record of `kind` (and keeps its id as a sample when samples are kept).
    pub fn add(&mut self, kind: DriftKind, id: &str) {
        let (count, samples) = match kind {
            DriftKind::Missing => (&mut self.missing, self.samples.as_mut().map(|s| &mut s.missing)),
            DriftKind::Behind => (&mut self.behind, self.samples.as_mut().map(|s| &mut s.behind)),
            DriftKind::Swept => (&mut self.swept, self.samples.as_mut().map(|s| &mut s.swept)),
        };
        *count += 1;
        if let Some(samples) = samples.filter(|s| s.len() < SAMPLES) {
            samples.push(id.to_owned());
        }
    }

    /// Adds another tally's counts (and samples, up to the limit).
    pub fn absorb(&mut self, other: &Drift) {
        for (kind, ids, n) in [
            (DriftKind::Missing, other.samples.as_ref().map(|s| &s.missing), other.missing),
            (DriftKind::Behind, other.samples.as_ref().map(|s| &s.behind), other.behind),
            (DriftKind::Swept, other.samples.as_ref().map(|s| &s.swept), other.swept),
        ] {
            let ids: &[String] = ids.map(Vec::as_slice).unwrap_or_default();
            for id in ids {
                self.add(kind, id);
            }
            let counted = ids.len() as u64;
            match kind {
                DriftKind::Missing => self.missing += n - counted,
                DriftKind::Behind => self.behind += n - counted,
                DriftKind::Swept => self.swept += n - counted,
            }
        }
    }

    /// The counts by `Kind` name, for the metric.
    pub fn by_kind(&self) -> [(&'static str, u64); 3] {
        [("missing", self.missing), ("behind", self.behind), ("swept", self.swept)]
    }

    pub fn total(&self) -> u64 {
        self.missing + self.behind + self.swept
    }
}

/// What one page of a full pass saw, filled in by `apply_records`.
#[derive(Debug, Default)]
pub struct PassTally {
    pub seen: SeenIds,
    /// Records returned whose id cannot be read at all.
    pub unreadable_ids: u64,
    pub drift: Drift,
    /// Compare only: no record is written (a dry run).
    pub dry_run: bool,
}

impl PassTally {
    pub fn new(dry_run: bool) -> Self {
        let samples = dry_run.then(DriftSamples::default);
        PassTally { seen: SeenIds::default(), unreadable_ids: 0, drift: Drift { samples, ..Drift::default() }, dry_run }
    }
}

/// A live record as the sweep reads it from the index.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRecord {
    /// The record's id text (from its key, as Protime sent it).
    pub id: String,
    pub date: Option<String>,
    /// When it was last written (`receivedAt`); unreadable: never swept.
    pub written_at: Option<DateTime<Utc>>,
    /// The item as read: the tombstone keeps its fields, and is written only if it is unchanged.
    pub item: HashMap<String, AttributeValue>,
}

/// One page of an index read, and where the next starts.
pub type LivePage = (Vec<LiveRecord>, Option<HashMap<String, AttributeValue>>);

/// Reading a collection's live records and tombstoning those Protime no longer has.
pub trait LiveRecords: Send + Sync {
    /// One page of `read` (an index partition or a scan segment), from `start`.
    fn live_page(
        &self,
        read: &LiveRead,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> impl Future<Output = Result<LivePage, StoreError>> + Send;

    /// Writes `record` as a tombstone (`deleted`, `source = sweep`, its fields kept) if it has
    /// not changed since it was read; `false` when it had.
    fn tombstone(
        &self,
        collection: Collection,
        record: &LiveRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<T: LiveRecords> LiveRecords for std::sync::Arc<T> {
    fn live_page(
        &self,
        read: &LiveRead,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> impl Future<Output = Result<LivePage, StoreError>> + Send {
        (**self).live_page(read, start)
    }

    fn tombstone(
        &self,
        collection: Collection,
        record: &LiveRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).tombstone(collection, record)
    }
}

/// Where a sweep stands: the index reads done so far (a sweep cut short by the deadline resumes
/// at the read it was in; a count forgets that read's part, tombstones already written stay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swept {
    Done,
    /// Stopped in read number `.0` (the deadline came first).
    Stopped(usize),
    /// The tombstones would have gone past their limit (more is gone than was counted, e.g.
    /// records that entered the index since): the ones within it are written, no more.
    OverLimit,
}

/// Whether a live record is one Protime no longer has: not seen by the pass, inside its window,
/// and last written before it started (a record written since, by a webhook or the pass itself,
/// is newer than anything the pass could have missed).
pub fn is_gone(record: &LiveRecord, seen: &SeenIds, window: &Window, started: DateTime<Utc>) -> bool {
    !seen.contains(&record.id)
        && window.contains(record.date.as_deref())
        && record.written_at.is_some_and(|at| at < started)
}

/// What a sweep looks at: the live records of `reads` inside `window` that the pass did not see
/// and that were last written before it started.
pub struct SweepScope<'a> {
    pub collection: Collection,
    pub reads: &'a [LiveRead],
    pub seen: &'a SeenIds,
    pub window: &'a Window,
    pub started: DateTime<Utc>,
}

/// The two steps of a sweep: count what it would tombstone (nothing written), then, when that
/// is within the limit, tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepStep {
    Count,
    /// Tombstone, writing at most this many.
    Tombstone {
        at_most: u64,
    },
}

/// Tombstones written at once.
pub const TOMBSTONE_CONCURRENCY: usize = 16;

impl SweepScope<'_> {
    /// Sweeps `reads[first..]` one step: each gone record ([`is_gone`]) is counted, or
    /// tombstoned (in parallel batches, each under its condition). `found(n, ids)` is told what
    /// was found: a count once per completed read (`ids`: up to [`SAMPLES`]), tombstones once per
    /// page (the ids written). `may_go_on` is asked before every page.
    pub async fn sweep<L: LiveRecords>(
        &self,
        store: &L,
        first: usize,
        step: SweepStep,
        mut found: impl FnMut(u64, &[String]),
        may_go_on: impl Fn() -> bool,
    ) -> Result<Swept, StoreError> {
        let mut room = match step {
            SweepStep::Tombstone { at_most } => at_most,
            SweepStep::Count => u64::MAX,
        };
        for (n, read) in self.reads.iter().enumerate().skip(first) {
            let (mut count, mut samples) = (0u64, Vec::new());
            let mut start = None;
            loop {
                if !may_go_on() {
                    return Ok(Swept::Stopped(n));
                }
                let (records, next) = store.live_page(read, start.take()).await?;
                let gone: Vec<&LiveRecord> =
                    records.iter().filter(|r| is_gone(r, self.seen, self.window, self.started)).collect();
                match step {
                    SweepStep::Count => {
                        count += gone.len() as u64;
                        let room = SAMPLES.saturating_sub(samples.len());
                        samples.extend(gone.iter().take(room).map(|r| r.id.clone()));
                    }
                    SweepStep::Tombstone { .. } => {
                        let within = gone.len().min(usize::try_from(room).unwrap_or(usize::MAX));
                        let (written, failed) = tombstone_all(store, self.collection, &gone[..within]).await;
                        // What was written is told before any error: those tombstones stand.
                        found(written.len() as u64, &written);
                        room = room.saturating_sub(written.len() as u64);
                        if let Some(e) = failed {
                            return Err(e);
                        }
                        if within < gone.len() {
                            return Ok(Swept::OverLimit);
                        }
                    }
                }
                match next {
                    Some(key) => start = Some(key),
                    None => break,
                }
            }
            if step == SweepStep::Count {
                found(count, &samples);
            }
        }
        Ok(Swept::Done)
    }
}

/// Tombstones `records` in batches of [`TOMBSTONE_CONCURRENCY`]: the ids written (a record
/// changed since it was read is left alone) and, if a write failed, the error (no batch starts
/// after it).
async fn tombstone_all<L: LiveRecords>(
    store: &L,
    collection: Collection,
    records: &[&LiveRecord],
) -> (Vec<String>, Option<StoreError>) {
    let mut written = Vec::new();
    let mut failed = None;
    for batch in records.chunks(TOMBSTONE_CONCURRENCY) {
        let answers = futures_util::future::join_all(batch.iter().map(|r| store.tombstone(collection, r))).await;
        for (record, answer) in batch.iter().zip(answers) {
            match answer {
                Ok(true) => written.push(record.id.clone()),
                Ok(false) => {}
                Err(e) => failed = Some(e),
            }
        }
        if failed.is_some() {
            break;
        }
    }
    (written, failed)
}

/// A live record from an item of the index (`pk` is `<collection>#<id>`).
pub fn live_record(item: HashMap<String, AttributeValue>) -> LiveRecord {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let id = text(attr::PK).and_then(|pk| pk.split_once('#').map(|(_, id)| id.to_owned())).unwrap_or_default();
    let written_at =
        text(attr::RECEIVED_AT).and_then(|at| DateTime::parse_from_rfc3339(&at).ok()).map(|at| at.to_utc());
    LiveRecord { id, date: text("date"), written_at, item }
}

impl LiveRecords for DynamoRecordStore {
    async fn live_page(
        &self,
        read: &LiveRead,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<LivePage, StoreError> {
        let (items, next) = match read {
            LiveRead::Index(read) => self.query_page(read, start).await?,
            LiveRead::Scan { collection, segment } => self.scan_page(*collection, *segment, start).await?,
        };
        Ok((items.into_iter().map(live_record).collect(), next))
    }

    async fn tombstone(&self, collection: Collection, record: &LiveRecord) -> Result<bool, StoreError> {
        let (Some(order), Some(received)) = (record.item.get(attr::CHANGE_ORDER), record.item.get(attr::RECEIVED_AT))
        else {
            return Ok(false);
        };
        let answer = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(self.kept_tombstone(collection, &record.item)))
            .condition_expression("#order = :order AND #received = :received AND #deleted = :false")
            .expression_attribute_names("#order", attr::CHANGE_ORDER)
            .expression_attribute_names("#received", attr::RECEIVED_AT)
            .expression_attribute_names("#deleted", attr::DELETED)
            .expression_attribute_values(":order", order.clone())
            .expression_attribute_values(":received", received.clone())
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) => {
                Ok(false)
            }
            Err(e) => Err(StoreError::Unavailable(DisplayErrorContext(e).to_string())),
        }
    }
}

type ItemPage = (Vec<HashMap<String, AttributeValue>>, Option<HashMap<String, AttributeValue>>);

impl DynamoRecordStore {
    /// A sweep's tombstone of `item` as the store keeps it: under the field policy (the item
    /// may predate it), with its `expiresAt`.
    fn kept_tombstone(
        &self,
        collection: Collection,
        item: &HashMap<String, AttributeValue>,
    ) -> HashMap<String, AttributeValue> {
        let tombstone = sweep_tombstone(item, &received_now());
        let mut tombstone =
            crate::records::rewrite::policed(self.policy(), collection, &tombstone).unwrap_or(tombstone);
        self.policy().expire(&mut tombstone, Utc::now());
        tombstone
    }

    /// One page of an index partition.
    async fn query_page(
        &self,
        read: &IndexRead,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<ItemPage, StoreError> {
        let request = read.query(self.client(), self.table()).set_exclusive_start_key(start);
        let page = request.send().await.map_err(|e| StoreError::Unavailable(DisplayErrorContext(e).to_string()))?;
        Ok((page.items.unwrap_or_default(), page.last_evaluated_key))
    }

    /// One page of a segment of the table's Scan: the live records of `collection` in it.
    async fn scan_page(
        &self,
        collection: Collection,
        segment: u32,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<ItemPage, StoreError> {
        let page = self
            .client()
            .scan()
            .table_name(self.table())
            .segment(segment as i32)
            .total_segments(SCAN_SEGMENTS as i32)
            .filter_expression("begins_with(#pk, :collection) AND #deleted = :false")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#deleted", attr::DELETED)
            .expression_attribute_values(":collection", AttributeValue::S(format!("{}#", collection.as_str())))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(e).to_string()))?;
        Ok((page.items.unwrap_or_default(), page.last_evaluated_key))
    }
}

#[cfg(test)]
mod tests;
