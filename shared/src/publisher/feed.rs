//! From changes to PutEvents calls: one entry per change, batched within EventBridge's limits,
//! published in stream order, retried, and stopped at the first change that could not be
//! published so that the stream resumes from it (at least once, in order per record).

use super::change::Change;
use crate::records::json::Json;
use std::future::Future;
use std::ops::Range;
use std::time::Duration;
use tokio::time::Instant;

/// Every event's `source`.
pub const EVENT_SOURCE: &str = "protime-webhooks";
/// EventBridge's limit on one PutEvents request, and so on one entry (256 KB).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// EventBridge's limit on entries per PutEvents request.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// One event to put.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub detail_type: &'static str,
    /// The detail's JSON text (numbers exactly as Protime sent them).
    pub detail: String,
    /// The record it is about: a batch holds at most one change per record.
    pub record_key: String,
    /// Whether `data` was left out to fit EventBridge's size limit.
    pub data_omitted: bool,
}

impl Entry {
    /// The entry's size as EventBridge counts it: source, detail-type and detail bytes.
    pub fn size(&self) -> usize {
        EVENT_SOURCE.len() + self.detail_type.len() + self.detail.len()
    }
}

/// The event of one change: `{"collection","id","changeVersion","previousChangeVersion",
/// "source","receivedAt","sequence","data"}`, or with `"dataOmitted": true` instead of `data` when the
/// entry would exceed [`MAX_REQUEST_BYTES`] (the consumer reads the table).
pub fn entry(change: &Change) -> Entry {
    let text = |s: &Option<String>| s.clone().map(Json::String).unwrap_or(Json::Null);
    let mut fields = vec![
        ("collection".to_owned(), Json::String(change.collection.as_str().to_owned())),
        ("id".to_owned(), change.id.clone()),
        ("changeVersion".to_owned(), Json::String(change.change_version.clone())),
        ("previousChangeVersion".to_owned(), text(&change.previous_change_version)),
        ("source".to_owned(), text(&change.source)),
        ("receivedAt".to_owned(), text(&change.received_at)),
        ("sequence".to_owned(), Json::String(change.sequence.clone())),
    ];
    let head = Json::Object(fields.clone()).to_string();
    let detail_type = change.kind.detail_type();
    let data = change.data.to_string();
    // `,"data":` and the data itself.
    let with_data = EVENT_SOURCE.len() + detail_type.len() + head.len() + 8 + data.len();
    let data_omitted = with_data > MAX_REQUEST_BYTES;
    if data_omitted {
        fields.push(("dataOmitted".to_owned(), Json::Bool(true)));
    } else {
        fields.push(("data".to_owned(), change.data.clone()));
    }
    Entry { detail_type, detail: Json::Object(fields).to_string(), record_key: change.record_key.clone(), data_omitted }
}

/// Splits entries, in order, into PutEvents calls: consecutive runs of at most
/// [`MAX_BATCH_ENTRIES`] entries and [`MAX_REQUEST_BYTES`] in all, each holding at most one
/// change of any record (EventBridge does not order the entries of one call).
pub fn batches(entries: &[&Entry]) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, entry) in entries.iter().enumerate() {
        let full = i - start == MAX_BATCH_ENTRIES
            || bytes + entry.size() > MAX_REQUEST_BYTES
            || entries[start..i].iter().any(|e| e.record_key == entry.record_key);
        if full && i > start {
            batches.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += entry.size();
    }
    if start < entries.len() {
        batches.push(start..entries.len());
    }
    batches
}

/// Why a PutEvents call failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the event bus is unavailable: {0}")]
pub struct BusError(pub String);

/// Where events go: one PutEvents call. Answers, per entry in order, whether it failed.
pub trait EventBus: Send + Sync {
    fn put(&self, entries: &[&Entry]) -> impl Future<Output = Result<Vec<bool>, BusError>> + Send;
}

/// How failed entries are retried before the stream is asked to resume from them.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Calls per batch, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 4, base_delay: Duration::from_millis(100) }
    }
}

impl Retry {
    /// The wait before call `attempt` (0 is the first call: none), doubling from `base_delay`.
    fn delay(self, attempt: u32) -> Duration {
        match attempt {
            0 => Duration::ZERO,
            n => self.base_delay * 2u32.saturating_pow(n - 1),
        }
    }
}

/// Whether a call that must first wait `delay` can still start before `deadline`.
fn starts_in_time(deadline: Option<Instant>, delay: Duration) -> bool {
    deadline.is_none_or(|deadline| Instant::now() + delay < deadline)
}

/// One PutEvents call, cut off at `deadline`: a call cut off fails all its entries (some may
/// have been put: the stream resumes before them, so they may come twice, never not at all).
async fn put_before<B: EventBus>(
    bus: &B,
    entries: &[&Entry],
    deadline: Option<Instant>,
) -> Result<Vec<bool>, BusError> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, bus.put(entries))
            .await
            .unwrap_or_else(|_| Err(BusError("out of time before the invocation's deadline".into()))),
        None => bus.put(entries).await,
    }
}

/// What publishing a stream batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Entries EventBridge accepted (a change accepted twice, after a retry of its batch's
    /// others, counts once).
    pub published: u64,
    /// PutEvents entries that failed, over every attempt.
    pub failures: u64,
    /// Entries published without `data` (over 256 KB).
    pub data_omitted: u64,
    /// The first change (by its index in `changes`) not published after the retries, or when
    /// time ran out: the stream resumes from its record; nothing after it was given up on.
    pub first_unpublished: Option<usize>,
    /// Whether publishing stopped because the deadline left no time for another call.
    pub out_of_time: bool,
}

/// Publishes `changes` (stream order; `None` for a stream record that is no change) batch by
/// batch. A batch's failed entries are retried alone, up to `retry.attempts` calls; if some
/// still fail, publishing stops there and [`Published::first_unpublished`] names the earliest.
/// No call starts (and no retry waits) past `deadline`, and a call still running then is cut
/// off: publishing stops at the first change not yet published, so the invocation can answer
/// before Lambda ends it.
pub async fn publish<B: EventBus>(
    bus: &B,
    changes: &[Option<Entry>],
    retry: Retry,
    deadline: Option<Instant>,
) -> Published {
    let indexed: Vec<(usize, &Entry)> =
        changes.iter().enumerate().filter_map(|(i, e)| Some((i, e.as_ref()?))).collect();
    let entries: Vec<&Entry> = indexed.iter().map(|(_, e)| *e).collect();
    let mut report = Published::default();
    for batch in batches(&entries) {
        let mut pending: Vec<usize> = batch.collect();
        for attempt in 0..retry.attempts.max(1) {
            if !starts_in_time(deadline, retry.delay(attempt)) {
                report.out_of_time = true;
                break;
            }
            tokio::time::sleep(retry.delay(attempt)).await;
            let sent: Vec<&Entry> = pending.iter().map(|&i| entries[i]).collect();
            let failed = put_before(bus, &sent, deadline).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, entries = sent.len(), "PutEvents failed");
                vec![true; sent.len()]
            });
            let mut still = Vec::new();
            for (&i, failed) in pending.iter().zip(failed.iter().copied().chain(std::iter::repeat(true))) {
                if failed {
                    report.failures += 1;
                    still.push(i);
                } else {
                    report.published += 1;
                    report.data_omitted += u64::from(entries[i].data_omitted);
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
        }
        if let Some(&first) = pending.first() {
            report.first_unpublished = Some(indexed[first].0);
            return report;
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publisher::change::{Change, ChangeKind};
    use crate::Collection;
    use std::sync::Mutex;

    fn change(id: u32, version: u32, data: Json) -> Change {
        Change {
            kind: ChangeKind::Changed,
            collection: Collection::Clockings,
            record_key: format!("clockings#{id}"),
            id: Json::Number(id.to_string()),
            change_version: format!("{version:020}"),
            previous_change_version: None,
            source: Some("webhook".into()),
            received_at: Some("2026-12-01T09:00:00.000Z".into()),
            sequence: format!("{version:064}.{:020}", 1_796_115_600_000_000u64),
            data,
        }
    }

    fn small(id: u32, version: u32) -> Entry {
        entry(&change(id, version, Json::Object(vec![("id".into(), Json::Number(id.to_string()))])))
    }

    #[test]
    fn the_detail_is_plain_json_with_exact_numbers_and_an_oversized_record_omits_its_data() {
        let data = Json::Object(vec![
            ("id".into(), Json::Number("7".into())),
            ("hours".into(), Json::Number("7.50000000000000000001".into())),
            ("person".into(), Json::Object(vec![("id".into(), Json::Number("3".into()))])),
        ]);
        let e = entry(&change(7, 1, data));
        assert_eq!(e.detail_type, "Protime Record Changed");
        assert_eq!(
            e.detail,
            r#"{"collection":"clockings","id":7,"changeVersion":"00000000000000000001","previousChangeVersion":null,"source":"webhook","receivedAt":"2026-12-01T09:00:00.000Z","sequence":"0000000000000000000000000000000000000000000000000000000000000001.00001796115600000000","data":{"id":7,"hours":7.50000000000000000001,"person":{"id":3}}}"#
        );
        assert!(!e.data_omitted);
        let big = Json::Object(vec![("text".into(), Json::String("x".repeat(MAX_REQUEST_BYTES)))]);
        let e = entry(&change(8, 1, big));
        assert!(e.data_omitted && e.detail.ends_with(r#""dataOmitted":true}"#), "{}", &e.detail[..200]);
        assert!(e.size() <= MAX_REQUEST_BYTES);
        // Exactly at the limit the data stays; one byte over, it goes.
        let head = entry(&change(9, 1, Json::String(String::new()))).size();
        let fits = Json::String("y".repeat(MAX_REQUEST_BYTES - head));
        assert!(!entry(&change(9, 1, fits)).data_omitted);
        let over = Json::String("y".repeat(MAX_REQUEST_BYTES - head + 1));
        assert!(entry(&change(9, 1, over)).data_omitted);
    }

    #[test]
    fn batches_hold_at_most_ten_entries_256_kb_and_one_change_per_record() {
        let entries: Vec<Entry> = (0..23).map(|i| small(i, 1)).collect();
        let refs: Vec<&Entry> = entries.iter().collect();
        assert_eq!(batches(&refs), vec![0..10, 10..20, 20..23]);
        // The same record twice: its second change waits for the next call.
        let entries = [small(1, 1), small(2, 1), small(1, 2), small(3, 1)];
        let refs: Vec<&Entry> = entries.iter().collect();
        assert_eq!(batches(&refs), vec![0..2, 2..4]);
        // By size: two entries of 150 KB never share a call.
        let wide = |id| entry(&change(id, 1, Json::String("z".repeat(150 * 1024))));
        let entries = [wide(1), wide(2), small(3, 1)];
        let refs: Vec<&Entry> = entries.iter().collect();
        assert_eq!(batches(&refs), vec![0..1, 1..3]);
        assert_eq!(batches(&[]), Vec::<Range<usize>>::new());
    }

    /// A bus that fails the entries its script names, call by call, and records what it got.
    #[derive(Default)]
    struct ScriptedBus {
        /// Per call: the detail texts' record keys that fail.
        fail: Mutex<Vec<Vec<String>>>,
        calls: Mutex<Vec<Vec<String>>>,
    }

    impl EventBus for ScriptedBus {
        async fn put(&self, entries: &[&Entry]) -> Result<Vec<bool>, BusError> {
            let keys: Vec<String> = entries.iter().map(|e| format!("{}@{}", e.record_key, &e.detail[60..80])).collect();
            self.calls.lock().unwrap().push(keys.clone());
            let failing = {
                let mut fail = self.fail.lock().unwrap();
                if fail.is_empty() {
                    Vec::new()
                } else {
                    fail.remove(0)
                }
            };
            Ok(entries.iter().map(|e| failing.contains(&e.record_key)).collect())
        }
    }

    fn quick() -> Retry {
        Retry { attempts: 3, base_delay: Duration::from_millis(1) }
    }

    #[tokio::test]
    async fn failed_entries_are_retried_alone_and_everything_is_published_once_they_succeed() {
        let bus = ScriptedBus::default();
        *bus.fail.lock().unwrap() = vec![vec!["clockings#2".into()], vec![]];
        let changes = vec![Some(small(1, 1)), None, Some(small(2, 1)), Some(small(3, 1))];
        let report = publish(&bus, &changes, quick(), None).await;
        assert_eq!((report.published, report.failures, report.first_unpublished), (3, 1, None));
        let calls = bus.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].len(), 1, "only the failed entry again: {calls:?}");
        assert!(calls[1][0].starts_with("clockings#2@"));
    }

    #[tokio::test]
    async fn an_entry_still_failing_after_the_retries_stops_publishing_and_names_its_stream_record() {
        let bus = ScriptedBus::default();
        let keep_failing = vec!["clockings#2".to_owned()];
        *bus.fail.lock().unwrap() = vec![keep_failing.clone(), keep_failing.clone(), keep_failing];
        // Record 2's second change is in the next batch: it must not be published before its first.
        let changes = vec![Some(small(1, 1)), None, Some(small(2, 1)), Some(small(2, 2)), Some(small(4, 1))];
        let report = publish(&bus, &changes, quick(), None).await;
        assert_eq!(report.first_unpublished, Some(2), "the stream resumes from record 2's first change");
        assert_eq!((report.published, report.failures), (1, 3));
        let calls = bus.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 3, "one call and two retries, no later batch: {calls:?}");
        assert!(calls.iter().flatten().all(|k| !k.contains("clockings#4")));
    }

    #[tokio::test]
    async fn a_bus_down_fails_the_whole_batch_and_nothing_is_published() {
        struct Down;
        impl EventBus for Down {
            async fn put(&self, _: &[&Entry]) -> Result<Vec<bool>, BusError> {
                Err(BusError("connection refused".into()))
            }
        }
        let changes = vec![None, Some(small(1, 1)), Some(small(2, 1))];
        let report = publish(&Down, &changes, quick(), None).await;
        assert_eq!((report.published, report.failures, report.first_unpublished), (0, 6, Some(1)));
        assert_eq!(publish(&Down, &[None, None], quick(), None).await, Published::default(), "nothing to publish");
    }

    /// A bus that takes `call` to answer each call, accepts everything, and counts its calls.
    struct Slow {
        call: Duration,
        fail: bool,
        calls: Mutex<u32>,
    }

    impl EventBus for Slow {
        async fn put(&self, entries: &[&Entry]) -> Result<Vec<bool>, BusError> {
            *self.calls.lock().unwrap() += 1;
            tokio::time::sleep(self.call).await;
            Ok(vec![self.fail; entries.len()])
        }
    }

    #[tokio::test]
    async fn a_deadline_stops_publishing_at_the_first_change_not_yet_published() {
        // Five changes of one record: five calls, one after the other, 200 ms each.
        let bus = Slow { call: Duration::from_millis(200), fail: false, calls: Mutex::new(0) };
        let changes: Vec<Option<Entry>> = (1..=5).map(|version| Some(small(1, version))).collect();
        let deadline = Instant::now() + Duration::from_millis(500);
        let report = publish(&bus, &changes, quick(), Some(deadline)).await;
        assert!(Instant::now() < deadline + Duration::from_millis(100), "the third call was cut off");
        assert_eq!((report.published, report.first_unpublished, report.out_of_time), (2, Some(2), true));
        assert_eq!(*bus.calls.lock().unwrap(), 3, "no call started past the deadline");
    }

    #[tokio::test]
    async fn a_retry_whose_wait_would_pass_the_deadline_is_not_made() {
        let bus = Slow { call: Duration::ZERO, fail: true, calls: Mutex::new(0) };
        let retry = Retry { attempts: 4, base_delay: Duration::from_secs(10) };
        let started = Instant::now();
        let report = publish(&bus, &[None, Some(small(1, 1))], retry, Some(started + Duration::from_millis(300))).await;
        assert!(started.elapsed() < Duration::from_secs(1), "it did not wait for the retry");
        assert_eq!((report.published, report.failures, report.first_unpublished), (0, 1, Some(1)));
        assert!(report.out_of_time);
        assert_eq!(*bus.calls.lock().unwrap(), 1);
    }
}
