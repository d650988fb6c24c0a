//! Unit tests of `sweep`.

use super::*;

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

#[test]
fn seen_ids_keep_integers_in_the_bitmap_and_other_ids_beside_it_and_round_trip() {
    let mut seen = SeenIds::default();
    for id in ["1", "42", "18446744073709551615", "007", "-3", "1.5", "abc", ""] {
        seen.insert(id);
    }
    assert!(seen.contains("42") && seen.contains("007") && seen.contains("abc") && seen.contains(""));
    assert!(!seen.contains("7") && !seen.contains("43"), "007 is not 7");
    assert_eq!(seen.len(), 8);
    let back = SeenIds::from_bytes(&seen.to_bytes()).unwrap();
    assert_eq!(back, seen);
    assert!(SeenIds::from_bytes(&[]).is_err() && SeenIds::from_bytes(&[9]).is_err());
    assert!(SeenIds::from_bytes(&[1, 200, 0, 0, 0, 0, 0, 0, 0]).is_err(), "truncated");
    let mut more = SeenIds::default();
    more.insert("43");
    seen.union_with(more);
    assert!(seen.contains("43"));
}

/// One index read's live records, all gone; the tombstone of `fail` fails.
struct Gone {
    records: Vec<LiveRecord>,
    fail: Option<String>,
    written: std::sync::Mutex<Vec<String>>,
}

impl Gone {
    fn new(n: usize, fail: Option<&str>) -> Gone {
        let at = DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z").unwrap().to_utc();
        let records = (0..n)
            .map(|i| LiveRecord { id: i.to_string(), date: None, written_at: Some(at), item: HashMap::new() })
            .collect();
        Gone { records, fail: fail.map(Into::into), written: Default::default() }
    }
}

impl LiveRecords for Gone {
    async fn live_page(
        &self,
        _: &LiveRead,
        _: Option<HashMap<String, AttributeValue>>,
    ) -> Result<LivePage, StoreError> {
        Ok((self.records.clone(), None))
    }

    async fn tombstone(&self, _: Collection, record: &LiveRecord) -> Result<bool, StoreError> {
        if self.fail.as_deref() == Some(record.id.as_str()) {
            return Err(StoreError::Unavailable("throttled".into()));
        }
        self.written.lock().unwrap().push(record.id.clone());
        Ok(true)
    }
}

async fn tombstone(store: &Gone, at_most: u64) -> (Result<Swept, StoreError>, Vec<String>) {
    let read = LiveRead::Index(IndexRead {
        index: "byDate",
        partition_attribute: "p",
        partition: "people#ref#0".into(),
        sort_between: None,
    });
    let (reads, seen, window) = (vec![read], SeenIds::default(), Window::default());
    let started = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().to_utc();
    let scope = SweepScope { collection: Collection::People, reads: &reads, seen: &seen, window: &window, started };
    let mut told = Vec::new();
    let swept =
        scope.sweep(store, 0, SweepStep::Tombstone { at_most }, |_, ids| told.extend_from_slice(ids), || true).await;
    (swept, told)
}

#[tokio::test]
async fn tombstones_written_before_a_failed_write_are_told_and_none_start_after_its_batch() {
    let store = Gone::new(40, Some("20"));
    let (swept, told) = tombstone(&store, 100).await;
    assert!(swept.is_err());
    let written = store.written.lock().unwrap().clone();
    assert_eq!(told, written, "every tombstone written is counted");
    assert_eq!(written.len(), 31, "the first two batches of 16, less the failed one; no third batch");
}

#[tokio::test]
async fn tombstones_stop_at_their_limit_when_more_is_gone_than_was_counted() {
    let store = Gone::new(40, None);
    let (swept, told) = tombstone(&store, 25).await;
    assert_eq!(swept.unwrap(), Swept::OverLimit);
    assert_eq!(told.len(), 25);
    assert_eq!(store.written.lock().unwrap().len(), 25);
    let (swept, told) = tombstone(&Gone::new(10, None), 25).await;
    assert_eq!((swept.unwrap(), told.len()), (Swept::Done, 10));
}

#[test]
fn a_page_of_long_ids_splits_into_parts_under_the_item_limit_that_hold_every_id() {
    let mut seen = SeenIds::default();
    for n in 0..20_000u64 {
        seen.insert(&format!("{n:08}-0000-4000-8000-{:012}", n * 7919));
        seen.insert(&(n * 1_000_003).to_string());
    }
    let whole = seen.clone();
    assert!(whole.to_bytes().len() > 400_000, "the page's ids alone exceed DynamoDB's item limit");
    let parts = seen.split(SEEN_CHUNK_BYTES);
    assert!(parts.len() > 1);
    assert!(parts.iter().all(|p| p.to_bytes().len() <= SEEN_CHUNK_BYTES));
    let mut again = SeenIds::default();
    parts.into_iter().for_each(|p| again.union_with(p));
    assert_eq!(again, whole);
    let mut one = SeenIds::default();
    one.insert("1");
    assert_eq!(one.clone().split(1), vec![one], "a single id is a part of its own");
}

#[test]
fn a_million_dense_ids_save_in_well_under_a_megabyte() {
    let mut seen = SeenIds::default();
    for id in 1_000_000u64..2_000_000 {
        seen.insert(&id.to_string());
    }
    assert_eq!(seen.len(), 1_000_000);
    assert!(seen.saved_bytes() < 300_000, "{} bytes", seen.saved_bytes());
}

#[test]
fn only_date_ranges_give_a_window() {
    assert_eq!(Window::of_filter(None), Some(Window::default()));
    assert_eq!(
        Window::of_filter(Some("date ge '2025-01-01'")),
        Some(Window { from: Some(day("2025-01-01")), to: None })
    );
    assert_eq!(
        Window::of_filter(Some("date ge '2025-01-01' and date le '2025-12-31T23:59:59'")),
        Some(Window { from: Some(day("2025-01-01")), to: Some(day("2025-12-31")) })
    );
    assert_eq!(Window::of_filter(Some("person/id eq 5")), None);
    assert_eq!(Window::of_filter(Some("date ge '2025-01-01' and person/id eq 5")), None);
    assert_eq!(Window::of_filter(Some("date ge 'soon'")), None);
    assert_eq!(Window::of_filter(Some("date ge '2025-01-01' and date ge '2025-02-01'")), None);
}

#[test]
fn a_window_holds_the_days_between_its_bounds() {
    let w = Window { from: Some(day("2025-01-01")), to: Some(day("2025-12-31")) };
    assert!(w.contains(Some("2025-01-01")) && w.contains(Some("2025-12-31T10:00:00")));
    assert!(!w.contains(Some("2024-12-31")) && !w.contains(Some("2026-01-01")) && !w.contains(None));
    assert!(Window::default().contains(None), "the whole collection");
}

#[test]
fn a_window_reads_its_months_or_the_reference_shards() {
    let today = day("2026-12-04");
    let w = Window { from: Some(day("2026-11-15")), to: Some(day("2026-12-31")) };
    let reads = w.reads(Collection::Clockings, today).unwrap();
    assert_eq!(reads.len(), 16, "two months, eight shards each");
    assert!(reads.iter().all(|r| r.partition.starts_with("clockings#2026-1")));
    assert_eq!(Window::default().reads(Collection::People, today).unwrap().len(), 8);
    assert_eq!(Window::default().reads(Collection::Clockings, today), None, "no lower bound");
    let open = Window { from: Some(day("2026-12-01")), to: None };
    // 2026-12 to 2028-01 (400 days past today): 14 months.
    assert_eq!(open.reads(Collection::Clockings, today).unwrap().len(), 8 * 14);
}

#[test]
fn without_the_date_index_a_sweep_reads_the_scan_segments_instead() {
    let today = day("2026-12-04");
    let w = Window { from: Some(day("2026-11-15")), to: Some(day("2026-12-31")) };
    let through_index = w.live_reads(Collection::Clockings, today, ReadIndexes::ALL).unwrap();
    let index_reads: Vec<LiveRead> =
        w.reads(Collection::Clockings, today).unwrap().into_iter().map(LiveRead::Index).collect();
    assert_eq!(through_index, index_reads);
    let by_person_only = ReadIndexes { by_date: false, by_person: true };
    let scanned = w.live_reads(Collection::Clockings, today, by_person_only).unwrap();
    let segments: Vec<LiveRead> =
        (0..SCAN_SEGMENTS).map(|segment| LiveRead::Scan { collection: Collection::Clockings, segment }).collect();
    assert_eq!(scanned, segments);
}

#[tokio::test]
async fn the_scan_segments_together_hold_exactly_the_collections_live_records() {
    use crate::records::{event, json, RecordStore, Source};
    let store = crate::testing::MemoryRecordStore::default();
    for (collection, id, change) in [
        (Collection::Breaks, 1, "InsertOrUpdate"),
        (Collection::Breaks, 2, "InsertOrUpdate"),
        (Collection::Breaks, 3, "Delete"),
        (Collection::BreakDefinitions, 4, "InsertOrUpdate"),
    ] {
        let data = format!(r#"{{"id":{id},"changeVersion":"0000090200004BD0000A"}}"#);
        let body = format!(r#"{{"changeType":"{change}","data":{data}}}"#);
        let event = event::parse_event(json::parse(body.as_bytes()).unwrap()).unwrap();
        store.put(collection, &event, Source::Delta).await.unwrap();
    }
    let mut ids = Vec::new();
    for segment in 0..SCAN_SEGMENTS {
        let read = LiveRead::Scan { collection: Collection::Breaks, segment };
        ids.extend(store.live_page(&read, None).await.unwrap().0.into_iter().map(|r| r.id));
    }
    ids.sort();
    assert_eq!(ids, ["1", "2"], "not the tombstone, not break-definitions");
}

#[test]
fn drift_keeps_samples_only_when_asked_and_absorbs_counts() {
    let mut plain = Drift::default();
    plain.add(DriftKind::Missing, "1");
    assert_eq!((plain.missing, plain.samples.clone()), (1, None));
    let mut sampled = PassTally::new(true).drift;
    for id in 0..30 {
        sampled.add(DriftKind::Behind, &id.to_string());
    }
    assert_eq!(sampled.samples.as_ref().unwrap().behind.len(), SAMPLES);
    let mut total = PassTally::new(true).drift;
    total.absorb(&sampled);
    total.absorb(&plain);
    assert_eq!((total.missing, total.behind, total.swept), (1, 30, 0));
    assert_eq!(total.samples.as_ref().unwrap().behind.len(), SAMPLES);
    assert_eq!(total.total(), 31);
}

#[test]
fn a_record_is_gone_only_if_unseen_inside_the_window_and_older_than_the_pass() {
    let started = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z").unwrap().to_utc();
    let mut seen = SeenIds::default();
    seen.insert("1");
    let window = Window { from: Some(day("2026-01-01")), to: None };
    let record = |id: &str, date: Option<&str>, at: Option<&str>| LiveRecord {
        id: id.into(),
        date: date.map(Into::into),
        written_at: at.map(|t| DateTime::parse_from_rfc3339(t).unwrap().to_utc()),
        item: HashMap::new(),
    };
    assert!(is_gone(&record("2", Some("2026-05-01"), Some("2026-12-04T09:00:00Z")), &seen, &window, started));
    assert!(!is_gone(&record("1", Some("2026-05-01"), Some("2026-12-04T09:00:00Z")), &seen, &window, started));
    assert!(!is_gone(&record("2", Some("2025-05-01"), Some("2026-12-04T09:00:00Z")), &seen, &window, started));
    assert!(!is_gone(&record("2", Some("2026-05-01"), Some("2026-12-04T10:00:01Z")), &seen, &window, started));
    assert!(!is_gone(&record("2", Some("2026-05-01"), None), &seen, &window, started));
}
