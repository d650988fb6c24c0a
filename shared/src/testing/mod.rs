//! In-memory fakes of everything the functions talk to, for unit tests without any server:
//! the signing-key store, the record table, the quarantine, the subscription state, the sync
//! state and Protime.
//!
//! Built for this crate's own tests and, with the `test-util` feature, for crates that use it.
//! Each fake can share a [`Journal`], a log of the calls made to all of them in order, so a test
//! can assert the order of operations across components (the renewer's intent → POST → key →
//! state). The integration tests in `tests/` run the real adapters against moto and the
//! Protime simulator instead.

use crate::collection::Collection;
use crate::invocation::lock;
use crate::protime::model::{CreatedWebhook, Webhook, WebhookStatus};
use crate::protime::{Connect, ConnectError, Page, ProtimeError, RecordPages, WebhookApi};
use crate::receiver::last_event::EventNotes;
use crate::records::heads::StoredHeads;
use crate::records::item::{attr, record_item, record_key, Source};
use crate::records::json::Json;
use crate::records::quarantine::{object_key, unique_suffix, Note, Quarantine, QuarantineError};
use crate::records::store::{rejected_outcome, StoredHead};
use crate::records::{order_key, ChangeType, Event, PutOutcome, RecordStore, StoreError};
use crate::renewer::plan::SubscriptionState;
use crate::renewer::state::{StateError, SubscriptionStore};
use crate::signing::signature::SigningKey;
use crate::sync::kept::{page_key, KeepError, PageKeep};
use crate::sync::state::{seen_key, SeenSlot, SyncState, SyncStateError, SyncStateStore};
use crate::sync::sweep::{LivePage, LiveRead, LiveRecord, LiveRecords, SeenIds};
use aws_sdk_dynamodb::types::AttributeValue;

mod keys;
use chrono::{DateTime, Duration, Utc};
pub use keys::MemoryKeySource;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The calls made to the fakes that share it, in order, as short lines (`"protime POST clockings"`).
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    pub fn record(&self, line: impl Into<String>) {
        lock(&self.0).push(line.into());
    }

    pub fn lines(&self) -> Vec<String> {
        lock(&self.0).clone()
    }
}

/// The record table in memory, with the same condition as the DynamoDB adapter. A write of a
/// record id listed in `delays` takes that many milliseconds; each finished write is journalled.
#[derive(Default)]
pub struct MemoryRecordStore {
    pub items: Mutex<HashMap<String, HashMap<String, AttributeValue>>>,
    pub fail: AtomicBool,
    pub delays: Mutex<HashMap<String, u64>>,
    /// Milliseconds every `note_event` takes (a slow or hanging table for the side write).
    pub note_delay_ms: std::sync::atomic::AtomicU64,
    pub journal: Journal,
    /// Set-aside marks: record key → (order key, quarantine object).
    pub set_aside: Mutex<HashMap<String, (String, String)>>,
    /// What is kept of a record, as the DynamoDB adapter's policy (the default unless set).
    pub policy: crate::records::policy::DataPolicy,
}

impl crate::records::set_aside::SetAsideMarks for MemoryRecordStore {
    async fn set_aside_as(&self, collection: Collection, id: &str, order: &str) -> Result<Option<String>, StoreError> {
        let marks = lock(&self.set_aside);
        let mark = marks.get(&crate::records::set_aside::set_aside_key(collection, id));
        Ok(mark.filter(|(o, _)| o == order).map(|(_, key)| key.clone()))
    }

    async fn mark_set_aside(&self, collection: Collection, id: &str, order: &str, key: &str) -> Result<(), StoreError> {
        let mark = (order.to_owned(), key.to_owned());
        lock(&self.set_aside).insert(crate::records::set_aside::set_aside_key(collection, id), mark);
        Ok(())
    }
}

impl MemoryRecordStore {
    /// The stored `changeVersion` of a record, for assertions.
    pub fn change_version(&self, collection: Collection, id: &str) -> Option<String> {
        self.attribute(collection, id, attr::CHANGE_VERSION).and_then(|v| v.as_s().ok().cloned())
    }

    /// One attribute of a stored record, for assertions.
    pub fn attribute(&self, collection: Collection, id: &str, name: &str) -> Option<AttributeValue> {
        lock(&self.items).get(&format!("{}#{id}", collection.as_str()))?.get(name).cloned()
    }
}

impl StoredHeads for MemoryRecordStore {
    async fn heads(
        &self,
        collection: Collection,
        ids: &[crate::records::RecordId],
    ) -> Result<HashMap<String, StoredHead>, StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected failure".into()));
        }
        let items = lock(&self.items);
        Ok(ids
            .iter()
            .filter_map(|id| {
                let head = StoredHead::of(items.get(&record_key(collection, id))?)?;
                Some((id.as_str().to_owned(), head))
            })
            .collect())
    }
}

impl EventNotes for MemoryRecordStore {
    async fn note_event(&self, collection: Collection, _at: &str) -> Result<(), StoreError> {
        let delay = self.note_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        self.journal.record(format!("store note {collection}"));
        Ok(())
    }
}

impl RecordStore for MemoryRecordStore {
    fn kept<'a>(&self, collection: Collection, event: &'a Event) -> std::borrow::Cow<'a, Event> {
        self.policy.event(collection, event)
    }

    async fn put(&self, collection: Collection, event: &Event, source: Source) -> Result<PutOutcome, StoreError> {
        let delay = lock(&self.delays).get(event.id.as_str()).copied();
        if let Some(ms) = delay {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected failure".into()));
        }
        self.journal.record(format!("store put {}", event.id.as_str()));
        let event = &*self.policy.event(collection, event);
        let mut item = record_item(collection, event, source, &crate::records::store::received_now());
        self.policy.expire(&mut item, chrono::Utc::now());
        if let Some(rejected) = StoreError::rejected_item(&item) {
            return Err(rejected);
        }
        let order = order_key(&event.change_version);
        let deleting = event.change_type == ChangeType::Delete;
        let key = record_key(collection, &event.id);
        let mut items = lock(&self.items);
        if let Some(old) = items.get(&key) {
            match StoredHead::of(old) {
                Some(head) if head.yields_to(&order, deleting) => {}
                _ => return Ok(rejected_outcome(Some(old), &order)),
            }
        }
        items.insert(key, item);
        Ok(PutOutcome::Stored)
    }
}

impl LiveRecords for MemoryRecordStore {
    async fn live_page(
        &self,
        read: &LiveRead,
        _start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<LivePage, StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected failure".into()));
        }
        let items = lock(&self.items);
        let mut records: Vec<LiveRecord> = items
            .iter()
            .filter(|(key, item)| in_read(read, key, item))
            .map(|(_, item)| crate::sync::sweep::live_record(item.clone()))
            .collect();
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((records, None))
    }

    async fn tombstone(&self, collection: Collection, record: &LiveRecord) -> Result<bool, StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected failure".into()));
        }
        let mut items = lock(&self.items);
        let key = format!("{}#{}", collection.as_str(), record.id);
        let unchanged = items.get(&key).is_some_and(|now| {
            [attr::CHANGE_ORDER, attr::RECEIVED_AT, attr::DELETED]
                .iter()
                .all(|name| now.get(*name) == record.item.get(*name))
        });
        if unchanged {
            self.journal.record(format!("store sweep {}", record.id));
            let tombstone = crate::records::item::sweep_tombstone(&record.item, &crate::records::store::received_now());
            items.insert(key, tombstone);
        }
        Ok(unchanged)
    }
}

/// Whether the item under `key` is one `read` returns: in the index partition (and sort range),
/// or a live record of the collection in the scan segment (segments split the keys by a hash).
fn in_read(read: &LiveRead, key: &str, item: &HashMap<String, AttributeValue>) -> bool {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    match read {
        LiveRead::Index(read) => {
            let sort = text(crate::records::index::attr::DATE_SORT).unwrap_or_default();
            text(read.partition_attribute).as_deref() == Some(read.partition.as_str())
                && read.sort_between.as_ref().is_none_or(|(low, high)| sort >= *low && sort <= *high)
        }
        LiveRead::Scan { collection, segment } => {
            let hash = key.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
            key.starts_with(&format!("{}#", collection.as_str()))
                && item.get(attr::DELETED) == Some(&AttributeValue::Bool(false))
                && hash % crate::sync::sweep::SCAN_SEGMENTS == *segment
        }
    }
}

/// One body the in-memory quarantine holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptBody {
    pub key: String,
    pub bytes: Vec<u8>,
    pub reason: String,
    pub record_id: Option<String>,
    pub source: Option<String>,
    pub change_type: Option<String>,
}

/// A quarantine in memory: every kept body with its reason and record id; can be made to fail.
#[derive(Default)]
pub struct MemoryQuarantine {
    pub kept: Mutex<Vec<KeptBody>>,
    pub fail: AtomicBool,
    /// Kept pages by key (the bucket's `pages/`).
    pub pages: Mutex<HashMap<String, bytes::Bytes>>,
    /// Every kept-page call fails while set.
    pub pages_fail: AtomicBool,
}

impl MemoryQuarantine {
    /// The bytes kept under each reason, in order.
    pub fn bodies(&self) -> Vec<(String, Vec<u8>)> {
        lock(&self.kept).iter().map(|k| (k.reason.clone(), k.bytes.clone())).collect()
    }
}

impl Quarantine for MemoryQuarantine {
    async fn keep(&self, collection: Collection, bytes: &[u8], note: Note<'_>) -> Result<String, QuarantineError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(QuarantineError::Unavailable("injected failure".into()));
        }
        let key = object_key(collection, chrono::Utc::now(), &unique_suffix());
        let kept = KeptBody {
            key: key.clone(),
            bytes: bytes.to_vec(),
            reason: note.reason.to_owned(),
            record_id: note.record_id.map(str::to_owned),
            source: Some(note.source.as_str().to_owned()),
            change_type: note.change_type.map(|c| c.as_str().to_owned()),
        };
        lock(&self.kept).push(kept);
        Ok(key)
    }
}

impl PageKeep for MemoryQuarantine {
    async fn put_page(&self, collection: Collection, body: bytes::Bytes) -> Result<String, KeepError> {
        if self.pages_fail.load(Ordering::SeqCst) {
            return Err(KeepError::Unavailable("injected failure".into()));
        }
        let key = page_key(collection, chrono::Utc::now(), &unique_suffix());
        lock(&self.pages).insert(key.clone(), body);
        Ok(key)
    }

    async fn get_page(&self, key: &str) -> Result<bytes::Bytes, KeepError> {
        if self.pages_fail.load(Ordering::SeqCst) {
            return Err(KeepError::Unavailable("injected failure".into()));
        }
        lock(&self.pages).get(key).cloned().ok_or_else(|| KeepError::Missing(key.to_owned()))
    }

    async fn discard_page(&self, key: &str) -> Result<(), KeepError> {
        lock(&self.pages).remove(key);
        Ok(())
    }
}

/// Subscription state in memory.
#[derive(Default)]
pub struct MemorySubscriptionStore {
    pub states: Mutex<HashMap<Collection, SubscriptionState>>,
    pub journal: Journal,
    /// The renewer's run lease: (owner, until), with the DynamoDB adapter's rule.
    pub run_lease: Mutex<Option<(String, DateTime<Utc>)>>,
}

impl SubscriptionStore for MemorySubscriptionStore {
    async fn take_run_lease(&self, owner: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool, StateError> {
        let mut lease = lock(&self.run_lease);
        let free = lease.as_ref().is_none_or(|(held_by, held_until)| *held_until < now || held_by == owner);
        if free {
            *lease = Some((owner.to_owned(), until));
        }
        Ok(free)
    }

    async fn release_run_lease(&self, owner: &str) -> Result<(), StateError> {
        let mut lease = lock(&self.run_lease);
        if lease.as_ref().is_some_and(|(held_by, _)| held_by == owner) {
            *lease = None;
        }
        Ok(())
    }

    async fn load(&self, collections: &[Collection]) -> Result<HashMap<Collection, SubscriptionState>, StateError> {
        let states = lock(&self.states);
        Ok(collections.iter().filter_map(|c| states.get(c).map(|s| (*c, s.clone()))).collect())
    }

    async fn save(&self, collection: Collection, state: &SubscriptionState) -> Result<(), StateError> {
        let what = if state.renewing_since.is_some() { "intent" } else { "state" };
        self.journal.record(format!("state save {collection} {what}"));
        lock(&self.states).insert(collection, state.clone());
        Ok(())
    }
}

/// Sync state in memory, with the same lease rule as the DynamoDB adapter. A clone is the same
/// store (its state is shared).
#[derive(Clone, Default)]
pub struct MemorySyncStateStore {
    pub states: Arc<Mutex<HashMap<Collection, SyncState>>>,
    /// Saved chunks of seen ids, by key.
    pub seen: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    pub fail: Arc<AtomicBool>,
    pub journal: Journal,
}

impl MemorySyncStateStore {
    /// A collection's state, for assertions.
    pub fn state(&self, collection: Collection) -> Option<SyncState> {
        lock(&self.states).get(&collection).cloned()
    }
}

impl SyncStateStore for MemorySyncStateStore {
    async fn acquire(
        &self,
        collection: Collection,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SyncState>, SyncStateError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(SyncStateError::Unavailable("injected failure".into()));
        }
        let mut states = lock(&self.states);
        let state = states.entry(collection).or_default();
        if !crate::sync::plan::lease_free(state, owner, now) {
            return Ok(None);
        }
        state.lease_owner = Some(owner.to_owned());
        state.lease_until = Some(until.timestamp_millis());
        self.journal.record(format!("sync lease {collection}"));
        Ok(Some(state.clone()))
    }

    async fn checkpoint(&self, collection: Collection, state: &SyncState, owner: &str) -> Result<(), SyncStateError> {
        let mut states = lock(&self.states);
        let held = states.get(&collection).and_then(|s| s.lease_owner.as_deref()) == Some(owner);
        if !held {
            return Err(SyncStateError::LeaseLost);
        }
        self.journal.record(format!("sync checkpoint {collection} {}", state.cursor.as_deref().unwrap_or("-")));
        states.insert(collection, state.clone());
        Ok(())
    }

    async fn save_seen(
        &self,
        collection: Collection,
        slot: SeenSlot,
        chunk: u32,
        ids: &SeenIds,
    ) -> Result<(), SyncStateError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(SyncStateError::Unavailable("injected failure".into()));
        }
        lock(&self.seen).insert(seen_key(collection, slot, chunk), ids.to_bytes());
        Ok(())
    }

    async fn load_seen(&self, collection: Collection, slot: SeenSlot, chunks: u32) -> Result<SeenIds, SyncStateError> {
        let saved = lock(&self.seen);
        let mut seen = SeenIds::default();
        for n in 0..chunks {
            let bytes = saved
                .get(&seen_key(collection, slot, n))
                .ok_or_else(|| SyncStateError::Unreadable(format!("chunk {n} of seen ids is gone")))?;
            seen.union_with(SeenIds::from_bytes(bytes).map_err(|e| SyncStateError::Unreadable(e.to_string()))?);
        }
        Ok(seen)
    }

    async fn discard_seen(&self, collection: Collection, slot: SeenSlot, chunks: u32) -> Result<(), SyncStateError> {
        let mut saved = lock(&self.seen);
        for n in 0..chunks {
            saved.remove(&seen_key(collection, slot, n));
        }
        Ok(())
    }
}

/// A webhook as the fake keeps it.
#[derive(Debug, Clone)]
pub struct FakeWebhook {
    pub webhook: Webhook,
    pub key: String,
}

#[derive(Default)]
struct FakeState {
    webhooks: Vec<FakeWebhook>,
    records: HashMap<Collection, Vec<Json>>,
    issued: u64,
    fail_posts: u32,
    fail_deletes: u32,
    /// The next POST re-enables this webhook (and answers with it), whatever else is listed.
    re_enable: Option<String>,
}

/// The answers scripted for one link, served in order.
type Scripted = std::collections::VecDeque<Result<Page, ProtimeError>>;

/// Protime in memory: webhooks (a POST for an existing destination and collection re-enables it
/// with a new key and a new `validUntil`) and paged record lists. Links are
/// `<collection>?page=<n>`; every call is journalled.
///
/// A clone is the same Protime (its state is shared), so a test keeps one to script and inspect
/// while the function under test connects to another.
#[derive(Clone)]
pub struct FakeProtime {
    state: Arc<Mutex<FakeState>>,
    /// `validUntil` of a created or renewed webhook: this long after `now`.
    pub valid_for: Duration,
    pub now: Arc<Mutex<DateTime<Utc>>>,
    pub page_size: usize,
    pub journal: Journal,
    /// A POST for a Disabled webhook creates a new one instead of re-enabling it (Protime's
    /// webhook reference says a disabled webhook is not reused).
    pub new_webhook_on_re_enable: Arc<AtomicBool>,
    /// Scripted answers by link, served (in order) before the paged lists.
    scripted: Arc<Mutex<HashMap<String, Scripted>>>,
    /// Collections whose last list request was a delta initial request.
    deltas: Arc<Mutex<std::collections::HashSet<Collection>>>,
}

impl FakeProtime {
    pub fn new(now: DateTime<Utc>, journal: Journal) -> Self {
        FakeProtime {
            state: Default::default(),
            valid_for: Duration::days(30),
            now: Arc::new(Mutex::new(now)),
            page_size: 2,
            journal,
            new_webhook_on_re_enable: Default::default(),
            scripted: Default::default(),
            deltas: Default::default(),
        }
    }

    /// The next fetch of `link` gets `answer` (answers for one link are served in order).
    pub fn script(&self, link: &str, answer: Result<Page, ProtimeError>) {
        lock(&self.scripted).entry(link.to_owned()).or_default().push_back(answer);
    }

    /// The webhooks as the fake holds them, with their current keys.
    pub fn webhooks(&self) -> Vec<FakeWebhook> {
        lock(&self.state).webhooks.clone()
    }

    /// Sets a webhook's status, as expiry or exhausted retries would.
    pub fn set_status(&self, collection: Collection, status: WebhookStatus) {
        for w in &mut lock(&self.state).webhooks {
            if w.webhook.collection_name == collection.as_str() {
                w.webhook.status = status.clone();
            }
        }
    }

    /// The collection's records as its list endpoint returns them.
    pub fn set_records(&self, collection: Collection, records: Vec<Json>) {
        lock(&self.state).records.insert(collection, records);
    }

    /// The next `n` POSTs answer 500.
    pub fn fail_next_posts(&self, n: u32) {
        lock(&self.state).fail_posts = n;
    }

    /// Lists a Disabled webhook with this id beside the collection's others.
    pub fn add_disabled_twin(&self, collection: Collection, id: &str) {
        let mut state = lock(&self.state);
        let Some(first) = state.webhooks.iter().find(|w| w.webhook.collection_name == collection.as_str()).cloned()
        else {
            return;
        };
        let webhook = Webhook { id: id.to_owned(), status: WebhookStatus::Disabled, ..first.webhook };
        state.webhooks.push(FakeWebhook { webhook, key: "unknown".into() });
    }

    /// The next POST re-enables `id` and answers with it.
    pub fn re_enable_instead(&self, id: &str) {
        lock(&self.state).re_enable = Some(id.to_owned());
    }

    /// The next `n` DELETEs answer 500.
    pub fn fail_next_deletes(&self, n: u32) {
        lock(&self.state).fail_deletes = n;
    }
}

impl WebhookApi for FakeProtime {
    async fn list_webhooks(&self) -> Result<Vec<Webhook>, ProtimeError> {
        self.journal.record("protime GET /webhooks");
        Ok(lock(&self.state).webhooks.iter().map(|w| w.webhook.clone()).collect())
    }

    async fn create_webhook(
        &self,
        destination_url: &str,
        collection: Collection,
        _external_references: &str,
    ) -> Result<CreatedWebhook, ProtimeError> {
        self.journal.record(format!("protime POST {collection}"));
        let mut state = lock(&self.state);
        injected_failure(&mut state.fail_posts)?;
        state.issued += 1;
        let key = format!("key-{}", state.issued);
        let valid_until = *lock(&self.now) + self.valid_for;
        let fresh_for_disabled = self.new_webhook_on_re_enable.load(Ordering::SeqCst);
        let chosen = state.re_enable.take();
        let existing = state.webhooks.iter_mut().find(|w| match &chosen {
            Some(id) => &w.webhook.id == id,
            None => {
                w.webhook.collection_name == collection.as_str()
                    && w.webhook.destination_url == destination_url
                    && !(fresh_for_disabled && w.webhook.status == WebhookStatus::Disabled)
            }
        });
        let webhook = match existing {
            Some(w) => {
                w.webhook.status = WebhookStatus::Enabled;
                w.webhook.valid_until = valid_until;
                w.key = key.clone();
                w.webhook.clone()
            }
            None => {
                let webhook = Webhook {
                    id: format!("w{}", state.issued),
                    valid_until,
                    status: WebhookStatus::Enabled,
                    destination_url: destination_url.to_owned(),
                    collection_name: collection.as_str().to_owned(),
                };
                state.webhooks.push(FakeWebhook { webhook: webhook.clone(), key: key.clone() });
                webhook
            }
        };
        Ok(CreatedWebhook { id: webhook.id, valid_until, status: webhook.status, key: SigningKey::new(key) })
    }

    async fn delete_webhook(&self, id: &str) -> Result<(), ProtimeError> {
        self.journal.record(format!("protime DELETE {id}"));
        let mut state = lock(&self.state);
        injected_failure(&mut state.fail_deletes)?;
        state.webhooks.retain(|w| w.webhook.id != id);
        Ok(())
    }
}

impl RecordPages for FakeProtime {
    /// The first page's link is `<collection>?page=0` either way; after a delta initial
    /// request, the collection's last page carries the deltaLink `delta/<collection>?t=fake`,
    /// which (unless scripted) answers that nothing changed.
    fn list_url(&self, collection: Collection, _filter: Option<&str>, delta: bool, references: &str) -> String {
        self.journal.record(format!("protime LIST {collection} externalReferences={references}"));
        let mut deltas = lock(&self.deltas);
        if delta {
            deltas.insert(collection);
        } else {
            deltas.remove(&collection);
        }
        format!("{collection}?page=0")
    }

    async fn fetch_page(&self, link: &str) -> Result<Page, ProtimeError> {
        self.journal.record(format!("protime GET {link}"));
        if let Some(answer) = lock(&self.scripted).get_mut(link).and_then(|q| q.pop_front()) {
            return answer;
        }
        let invalid = || ProtimeError::InvalidResponse(format!("the fake has no page {link}"));
        if link.strip_prefix("delta/").is_some_and(|l| l.ends_with("?t=fake")) {
            return Ok(Page::from_parts(&[], None, Some(link)));
        }
        let (collection, page) = link.split_once("?page=").ok_or_else(invalid)?;
        let collection: Collection = collection.parse().map_err(|_| invalid())?;
        let page: usize = page.parse().map_err(|_| invalid())?;
        let state = lock(&self.state);
        let all = state.records.get(&collection).map(Vec::as_slice).unwrap_or_default();
        let start = (page * self.page_size).min(all.len());
        let end = (start + self.page_size).min(all.len());
        let more = end < all.len();
        let next_link = more.then(|| format!("{collection}?page={}", page + 1));
        let delta = !more && lock(&self.deltas).contains(&collection);
        let delta_link = delta.then(|| format!("delta/{collection}?t=fake"));
        Ok(Page::from_parts(&all[start..end], next_link.as_deref(), delta_link.as_deref()))
    }
}

/// A 500 while `remaining` failures are still to be injected.
fn injected_failure(remaining: &mut u32) -> Result<(), ProtimeError> {
    if *remaining == 0 {
        return Ok(());
    }
    *remaining -= 1;
    Err(ProtimeError::Api { status: 500, code: "Injected".into(), message: String::new(), reasons: vec![] })
}

/// Hands out the same [`FakeProtime`] (a clone sharing its state) for every run.
impl Connect for FakeProtime {
    type Api = FakeProtime;

    async fn connect(&self) -> Result<FakeProtime, ConnectError> {
        Ok(self.clone())
    }
}
