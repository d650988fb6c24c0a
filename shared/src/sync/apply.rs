//! One page of records into the table, record by record: parse each from its own text, skip
//! what is already stored (list and initial-load pages), write the rest through the
//! conditional store, and set aside what can never be stored. Used by the page loop (`pages`)
//! for every list it reads, in the syncer's runs and the renewer's delta round alike.

use super::sweep::{DriftKind, PassTally};
use crate::collection::Collection;
use crate::records::item::is_deletion;
use crate::records::quarantine::{Note, Quarantine};
use crate::records::set_aside::SetAsideMarks;
use crate::records::Event;
use crate::records::{event, order_key, put_all, ChangeType, PutOutcome, RecordStore, Source, StoreError, StoredHeads};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Writes in flight at once for one page.
pub const WRITE_CONCURRENCY: usize = 16;

/// What happened to the records of one or more pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordCounts {
    pub fetched: u64,
    /// Written: new, or newer than the stored version (deletions included).
    pub stored: u64,
    /// Already stored at this version (skipped after reading the stored heads, or refused by
    /// the conditional write).
    pub duplicate: u64,
    /// The stored version is newer.
    pub stale: u64,
    /// Of `stored`: Deletes and soft deletes, kept as tombstones.
    pub deleted: u64,
    /// Records that can never be stored (not an event, or refused by DynamoDB), kept in the
    /// quarantine.
    pub quarantined: u64,
    /// Records without a usable `id`/`changeVersion`, or DynamoDB can never store, where no
    /// quarantine is configured: logged and counted, not stored.
    pub invalid: u64,
    /// What was quarantined, by reason, for the `Quarantined` metric: the records counted in
    /// `quarantined`, and whole pages that could not be read (`unreadable_page`). This run's,
    /// never kept in the sync state.
    #[serde(skip)]
    pub quarantined_by: ReasonCounts,
}

/// Distinct reasons a [`ReasonCounts`] tells apart; more in one run are counted as `other`.
pub const REASON_SLOTS: usize = 8;

/// Counts by reason (the stable names of [`crate::records::event::EventError::reason`] and of
/// the store's refusals), in a fixed space so that [`RecordCounts`] stays `Copy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReasonCounts {
    slots: [(&'static str, u64); REASON_SLOTS],
}

impl ReasonCounts {
    pub fn add(&mut self, reason: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        let last = REASON_SLOTS - 1;
        let slot = self.slots[..last].iter().position(|(name, count)| *name == reason || *count == 0).unwrap_or(last);
        let (name, count) = &mut self.slots[slot];
        if *count == 0 || *name == reason {
            *name = reason;
        } else {
            *name = "other";
        }
        *count += n;
    }

    /// The reasons counted, in the order first seen.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.slots.iter().copied().filter(|(_, count)| *count > 0)
    }
}

impl std::ops::AddAssign for RecordCounts {
    fn add_assign(&mut self, o: Self) {
        self.fetched += o.fetched;
        self.stored += o.stored;
        self.duplicate += o.duplicate;
        self.stale += o.stale;
        self.deleted += o.deleted;
        self.quarantined += o.quarantined;
        self.invalid += o.invalid;
        for (reason, n) in o.quarantined_by.iter() {
            self.quarantined_by.add(reason, n);
        }
    }
}

impl RecordCounts {
    /// The outcomes by name, for metrics: `stored`, `duplicate`, `stale`, `deleted`,
    /// `quarantined`, `invalid`.
    pub fn by_outcome(&self) -> [(&'static str, u64); 6] {
        [
            ("stored", self.stored),
            ("duplicate", self.duplicate),
            ("stale", self.stale),
            ("deleted", self.deleted),
            ("quarantined", self.quarantined),
            ("invalid", self.invalid),
        ]
    }
}

/// Where a page's records go: the table (through `store`), and the quarantine for those it can
/// never store; `source` (`delta` or `resync`) is written on the items and the quarantine's
/// metadata.
pub struct Destination<'a, R, Q> {
    pub store: &'a R,
    pub quarantine: Option<&'a Q>,
    pub collection: Collection,
    pub source: Source,
}

impl<R, Q> Clone for Destination<'_, R, Q> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R, Q> Copy for Destination<'_, R, Q> {}

/// Records read, checked against the stored heads and written at a time: a page's records are
/// parsed into trees one chunk at a time, so memory holds the page's text once and one chunk of
/// trees, whatever the page's size.
pub const APPLY_CHUNK: usize = 500;

/// Writes one page's records (each its own JSON text, as the page holds it), each to its own
/// verdict: stored, skipped, or quarantined (its text as received) when it can never be stored.
/// `skip_unchanged`: read the stored heads first and write only records that are new or newer
/// (list and initial-load pages; a delta's changes are written directly). Returns an error only when the table
/// (or the quarantine) is unavailable: the caller must not advance its cursor past this page.
pub async fn apply_records<R: RecordStore + StoredHeads + SetAsideMarks, Q: Quarantine>(
    to: Destination<'_, R, Q>,
    records: &[&RawValue],
    skip_unchanged: bool,
) -> Result<RecordCounts, StoreError> {
    apply(to, records, skip_unchanged, None).await
}

/// [`apply_records`] for a page of a full pass: unchanged records skipped, and `tally` told
/// every id the page holds (quarantined ones too: Protime has them) and which records the copy
/// lacked (`missing`) or held at an older version (`behind`). A dry run (`tally.dry_run`)
/// reads the stored heads and counts, and writes nothing.
pub async fn apply_pass_records<R: RecordStore + StoredHeads + SetAsideMarks, Q: Quarantine>(
    to: Destination<'_, R, Q>,
    records: &[&RawValue],
    tally: &mut PassTally,
) -> Result<RecordCounts, StoreError> {
    apply(to, records, true, Some(tally)).await
}

async fn apply<R: RecordStore + StoredHeads + SetAsideMarks, Q: Quarantine>(
    to: Destination<'_, R, Q>,
    records: &[&RawValue],
    skip_unchanged: bool,
    tally: Option<&mut PassTally>,
) -> Result<RecordCounts, StoreError> {
    let counts = RecordCounts { fetched: records.len() as u64, ..Default::default() };
    let mut applying = Applying { to, counts, tally };
    for chunk in records.chunks(APPLY_CHUNK) {
        applying.chunk(chunk, skip_unchanged).await?;
    }
    Ok(applying.counts)
}

/// What the copy held of a record a pass is about to write: nothing (or a tombstone), or an
/// older live version.
#[derive(Clone, Copy)]
enum Held {
    Nothing,
    Older,
}

/// A page's records on their way to their verdicts: where they go, the counts so far and, for
/// a page of a full pass, what the pass saw (`tally`).
struct Applying<'a, 't, R, Q> {
    to: Destination<'a, R, Q>,
    counts: RecordCounts,
    tally: Option<&'t mut PassTally>,
}

/// The records of a chunk that parsed, side by side: each event, its text as received (what is
/// quarantined if the table refuses it) and what the copy held of it.
struct Parsed<'r> {
    events: Vec<Event>,
    texts: Vec<&'r RawValue>,
    held: Vec<Held>,
}

impl Parsed<'_> {
    /// Keeps the records `wanted` says (one flag per record, in order).
    fn retain(&mut self, wanted: &[bool]) {
        let mut keep = wanted.iter();
        self.events.retain(|_| *keep.next().unwrap_or(&true));
        let mut keep = wanted.iter();
        self.texts.retain(|_| *keep.next().unwrap_or(&true));
        let mut keep = wanted.iter();
        self.held.retain(|_| *keep.next().unwrap_or(&true));
    }
}

impl<R: RecordStore + StoredHeads + SetAsideMarks, Q: Quarantine> Applying<'_, '_, R, Q> {
    /// Compare only (a dry run's pass): nothing is written.
    fn dry_run(&self) -> bool {
        self.tally.as_deref().is_some_and(|t| t.dry_run)
    }

    /// One chunk of the page: its records parsed, the unchanged ones skipped (`skip_unchanged`),
    /// the rest written (a dry run counts them as drift instead).
    async fn chunk(&mut self, chunk: &[&RawValue], skip_unchanged: bool) -> Result<(), StoreError> {
        let mut parsed = self.parse(chunk).await?;
        if skip_unchanged && !parsed.events.is_empty() {
            self.skip_unchanged(&mut parsed).await?;
        }
        if self.dry_run() {
            // Compare only: what would be written is counted as drift, nothing is written.
            for (event, held) in parsed.events.iter().zip(parsed.held) {
                self.drift(event, held);
            }
            return Ok(());
        }
        self.write(parsed).await
    }

    /// Parses each record from its own text; one that is no usable event is set aside.
    async fn parse<'r>(&mut self, chunk: &[&'r RawValue]) -> Result<Parsed<'r>, StoreError> {
        let mut parsed = Parsed {
            events: Vec::with_capacity(chunk.len()),
            texts: Vec::with_capacity(chunk.len()),
            held: Vec::with_capacity(chunk.len()),
        };
        for raw in chunk {
            match event::parse_record(raw) {
                Ok(e) => {
                    if let Some(tally) = self.tally.as_deref_mut() {
                        tally.seen.insert_id(&e.id);
                    }
                    parsed.events.push(e);
                    parsed.texts.push(*raw);
                    parsed.held.push(Held::Nothing);
                }
                Err(e) => self.unusable(raw, e.reason()).await?,
            }
        }
        Ok(parsed)
    }

    /// A record that is no usable event: set aside (counted only, in a dry run).
    async fn unusable(&mut self, raw: &RawValue, reason: &'static str) -> Result<(), StoreError> {
        // What can still be read of it: its id (Protime still has the record, whatever
        // else is wrong with it, so a pass saw it) and its version, for the metadata.
        let loose = event::loose_of(raw.get().as_bytes());
        let id = loose.as_ref().and_then(|l| l.id.as_ref());
        if let Some(tally) = self.tally.as_deref_mut() {
            match id {
                Some(id) => tally.seen.insert_id(id),
                None => tally.unreadable_ids += 1,
            }
        }
        let note = Note {
            reason,
            source: self.to.source,
            record_id: id.map(|id| id.as_str()),
            change_type: loose.as_ref().map(|l| l.change_type),
            change_version: loose.as_ref().and_then(|l| l.change_version.as_deref()),
        };
        if self.dry_run() {
            self.counts.quarantined += 1;
            Ok(())
        } else {
            self.set_aside(raw.get(), reason, note).await
        }
    }

    /// Reads the stored heads of the chunk's records and keeps only those that are new or newer,
    /// counting the others as duplicate or stale, and noting which kept ones the copy held at an
    /// older version.
    async fn skip_unchanged(&mut self, parsed: &mut Parsed<'_>) -> Result<(), StoreError> {
        let ids: Vec<_> = parsed.events.iter().map(|e| e.id.clone()).collect();
        let heads = self.to.store.heads(self.to.collection, &ids).await?;
        let mut keep = Vec::with_capacity(parsed.events.len());
        let full_pass = self.tally.is_some();
        for (n, e) in parsed.events.iter().enumerate() {
            let wanted = match heads.get(e.id.as_str()) {
                // A full pass meeting a record Protime holds as deleted that the copy lacks
                // (its tombstone expired, or it was deleted before the copy saw it): the copy
                // already agrees; writing a tombstone again would only expire again.
                None if full_pass && is_deletion(e) => {
                    self.counts.duplicate += 1;
                    false
                }
                None => true,
                Some(head) => {
                    let order = order_key(&e.change_version);
                    if head.yields_to(&order, e.change_type == ChangeType::Delete) {
                        if !head.deleted {
                            parsed.held[n] = Held::Older;
                        }
                        true
                    } else {
                        if head.order == order.as_ref() {
                            self.counts.duplicate += 1;
                        } else {
                            self.counts.stale += 1;
                        }
                        false
                    }
                }
            };
            keep.push(wanted);
        }
        parsed.retain(&keep);
        Ok(())
    }

    /// A pass's drift for a record the copy lacked or held at an older version, now written (or,
    /// in a dry run, that would be). A deleted record the copy lacked is none: the copy never
    /// showed it live (its tombstone expired, or it was deleted before the copy saw it).
    fn drift(&mut self, event: &Event, held: Held) {
        if let Some(tally) = self.tally.as_deref_mut() {
            let kind = match held {
                _ if event.change_type == ChangeType::Delete => return,
                Held::Nothing if is_deletion(event) => return,
                Held::Nothing => DriftKind::Missing,
                Held::Older => DriftKind::Behind,
            };
            tally.drift.add(kind, event.id.as_str());
        }
    }

    /// Writes the records through the conditional store, each to its verdict.
    async fn write(&mut self, parsed: Parsed<'_>) -> Result<(), StoreError> {
        let Destination { store, collection, source, .. } = self.to;
        let written = put_all(store, collection, &parsed.events, source, WRITE_CONCURRENCY).await;
        let records = parsed.events.iter().zip(parsed.texts).zip(written).zip(parsed.held);
        for (((event, text), outcome), held) in records {
            match outcome {
                Ok(PutOutcome::Stored) => {
                    self.counts.stored += 1;
                    self.counts.deleted += u64::from(is_deletion(event));
                    self.drift(event, held);
                }
                Ok(PutOutcome::Duplicate) => self.counts.duplicate += 1,
                Ok(PutOutcome::Stale) => self.counts.stale += 1,
                // One record DynamoDB can never store does not stop the others: it is quarantined
                // (its text as received, so a Delete replays as a Delete) and counted.
                Err(StoreError::Rejected { reason, .. }) => {
                    let note = Note {
                        reason,
                        source,
                        record_id: Some(event.id.as_str()),
                        change_type: Some(event.change_type),
                        change_version: Some(event.change_version.as_str()),
                    };
                    self.set_aside(text.get(), reason, note).await?
                }
                Err(unavailable) => return Err(unavailable),
            }
        }
        Ok(())
    }

    /// Keeps a synced record that can never be stored in the quarantine (its JSON as received),
    /// or, without a quarantine, counts it as invalid; the record stays in Protime either way. A
    /// version already set aside (a later pass or round returning it again) is counted as a
    /// duplicate and not kept again. A quarantine that cannot be written fails the page (like an
    /// unavailable table), so the cursor does not move past a record kept nowhere.
    async fn set_aside(&mut self, text: &str, reason: &'static str, note: Note<'_>) -> Result<(), StoreError> {
        let Destination { store, quarantine, collection, .. } = self.to;
        let counts = &mut self.counts;
        let id = note.record_id;
        let Some(q) = quarantine else {
            counts.invalid += 1;
            tracing::error!(collection = %collection, id, reason, "synced record cannot be stored (no quarantine)");
            return Ok(());
        };
        let mark = id.zip(note.change_version).map(|(id, version)| (id, order_key(version).into_owned()));
        if let Some((id, order)) = &mark {
            if let Some(key) = store.set_aside_as(collection, id, order).await? {
                counts.duplicate += 1;
                tracing::info!(collection = %collection, id, key, "synced record already set aside at this version");
                return Ok(());
            }
        }
        let key = q
            .keep(collection, text.as_bytes(), note)
            .await
            .map_err(|e| StoreError::Unavailable(format!("the quarantine: {e}")))?;
        counts.quarantined += 1;
        counts.quarantined_by.add(reason, 1);
        tracing::warn!(collection = %collection, id, reason, key, "synced record quarantined");
        if let Some((id, order)) = &mark {
            if let Err(e) = store.mark_set_aside(collection, id, order, &key).await {
                // Best effort: without the mark, the next pass keeps it once more.
                tracing::warn!(collection = %collection, id, error = %e, "cannot remember a record set aside");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::sweep::PassTally;
    use crate::testing::{MemoryQuarantine, MemoryRecordStore};

    fn records(text: &str) -> Vec<&RawValue> {
        serde_json::from_str(text).unwrap()
    }

    #[tokio::test]
    async fn an_unchanged_page_makes_no_writes_and_a_changed_record_is_written() {
        let store = MemoryRecordStore::default();
        let page =
            r#"[{"id":1,"changeVersion":"0000090200004BD0000A"},{"id":2,"changeVersion":"0000090200004BD0000B"}]"#;
        let apply = |text: &'static str| {
            let store = &store;
            async move {
                let records = records(text);
                apply_records(
                    Destination {
                        store,
                        quarantine: None::<&MemoryQuarantine>,
                        collection: Collection::People,
                        source: Source::Resync,
                    },
                    &records,
                    true,
                )
                .await
            }
        };
        let first = apply(page).await.unwrap();
        assert_eq!((first.fetched, first.stored), (2, 2));
        let writes = store.journal.lines().len();
        let again = apply(page).await.unwrap();
        assert_eq!((again.stored, again.duplicate), (0, 2));
        assert_eq!(store.journal.lines().len(), writes, "no write for unchanged records");
        let changed = apply(r#"[{"id":1,"changeVersion":"0000090200004BD0000C","status":"Deleted"},{"id":2,"changeVersion":"0000090200004BD0000A"}]"#)
        .await
        .unwrap();
        assert_eq!((changed.stored, changed.deleted, changed.stale), (1, 1, 1));
        assert_eq!(store.journal.lines().len(), writes + 1);
    }

    #[tokio::test]
    async fn records_that_can_never_be_stored_are_quarantined_and_a_failed_quarantine_fails_the_page() {
        let store = MemoryRecordStore::default();
        let quarantine = MemoryQuarantine::default();
        let page = r#"[{"id":1,"changeVersion":"1","":"no name"},{"changeVersion":"1"},{"id":2,"changeVersion":"1"}]"#;
        let counts = apply_records(
            Destination {
                store: &store,
                quarantine: Some(&quarantine),
                collection: Collection::People,
                source: Source::Resync,
            },
            &records(page),
            false,
        )
        .await
        .unwrap();
        assert_eq!((counts.stored, counts.quarantined, counts.invalid), (1, 2, 0));
        assert_eq!(counts.quarantined_by.iter().map(|(_, n)| n).sum::<u64>(), 2, "{counts:?}");
        let reasons: Vec<String> = quarantine.bodies().into_iter().map(|(reason, _)| reason).collect();
        assert_eq!(reasons, ["missing_id", "empty_attribute_name"]);
        quarantine.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let failed = apply_records(
            Destination {
                store: &store,
                quarantine: Some(&quarantine),
                collection: Collection::People,
                source: Source::Resync,
            },
            &records(page),
            false,
        )
        .await;
        assert!(matches!(failed, Err(StoreError::Unavailable(_))), "{failed:?}");
        let page = records(page);
        let without = apply_records(
            Destination {
                store: &store,
                quarantine: None::<&MemoryQuarantine>,
                collection: Collection::People,
                source: Source::Resync,
            },
            &page,
            false,
        );
        assert_eq!(without.await.unwrap().invalid, 2);
    }

    #[tokio::test]
    async fn an_unavailable_table_fails_the_page() {
        let store = MemoryRecordStore::default();
        store.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let result = apply_records(
            Destination {
                store: &store,
                quarantine: None::<&MemoryQuarantine>,
                collection: Collection::People,
                source: Source::Resync,
            },
            &records(r#"[{"id":1,"changeVersion":"1"}]"#),
            false,
        )
        .await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))));
    }

    #[tokio::test]
    async fn a_version_already_set_aside_is_not_kept_again_and_a_newer_one_is() {
        let store = MemoryRecordStore::default();
        let quarantine = MemoryQuarantine::default();
        let apply = |text: &'static str| {
            let (store, quarantine) = (&store, &quarantine);
            async move {
                let mut tally = PassTally::new(false);
                let page = records(text);
                let counts = apply_pass_records(
                    Destination {
                        store,
                        quarantine: Some(quarantine),
                        collection: Collection::People,
                        source: Source::Resync,
                    },
                    &page,
                    &mut tally,
                )
                .await
                .unwrap();
                (counts, tally.seen.contains("42"))
            }
        };
        let unstorable = r#"[{"id":42,"changeVersion":"0000000000000000000B","rate":1e200}]"#;
        let (first, seen) = apply(unstorable).await;
        assert_eq!((first.quarantined, first.duplicate), (1, 0));
        assert!(seen, "a record set aside was still returned: the pass saw it");
        let (again, seen) = apply(unstorable).await;
        assert_eq!((again.quarantined, again.duplicate), (0, 1), "the same version is not kept again");
        assert!(seen);
        assert_eq!(quarantine.kept.lock().unwrap().len(), 1);
        let (newer, _) = apply(r#"[{"id":42,"changeVersion":"0000000000000000000C","rate":1e200}]"#).await;
        assert_eq!(newer.quarantined, 1, "a newer version is set aside anew");
        assert_eq!(quarantine.kept.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_pass_counts_an_id_it_cannot_read_and_a_dry_run_keeps_nothing() {
        let store = MemoryRecordStore::default();
        let quarantine = MemoryQuarantine::default();
        let mut tally = PassTally::new(true);
        let page = records(
            r#"[{"id":{"no":"id"},"changeVersion":"1"},{"id":7,"changeVersion":"1","n":1e200},{"id":8,"changeVersion":"1"}]"#,
        );
        let counts = apply_pass_records(
            Destination {
                store: &store,
                quarantine: Some(&quarantine),
                collection: Collection::People,
                source: Source::Resync,
            },
            &page,
            &mut tally,
        )
        .await
        .unwrap();
        assert_eq!(tally.unreadable_ids, 1);
        assert!(tally.seen.contains("7") && tally.seen.contains("8"));
        assert_eq!((counts.quarantined, counts.stored), (2, 0));
        assert!(
            quarantine.kept.lock().unwrap().is_empty() && store.journal.lines().is_empty(),
            "a dry run writes nothing"
        );
    }

    #[tokio::test]
    async fn each_record_gets_its_own_verdict_and_a_quarantined_delete_replays_as_a_delete() {
        use crate::records::quarantine::replay;
        let store = MemoryRecordStore::default();
        let quarantine = MemoryQuarantine::default();
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let page = format!(
            r#"[{{"changeType":"InsertOrUpdate","data":{{"id":1,"changeVersion":"01","a":1,"a":2}}}},
               {{"changeType":"InsertOrUpdate","data":{{"id":2,"changeVersion":"01"}}}},
               {{"changeType":"Delete","data":{{"id":3,"changeVersion":"02","hours":1e400}}}},
               {{"changeType":"InsertOrUpdate","data":{{"id":4,"changeVersion":"01","deep":{deep}}}}},
               {{"changeType":"Delete","data":{{"id":5,"changeVersion":"02"}}}}]"#
        );
        let records: Vec<&RawValue> = serde_json::from_str(&page).unwrap();
        let counts = apply_records(
            Destination {
                store: &store,
                quarantine: Some(&quarantine),
                collection: Collection::Clockings,
                source: Source::Delta,
            },
            &records,
            false,
        )
        .await
        .unwrap();
        assert_eq!((counts.fetched, counts.stored, counts.deleted, counts.quarantined), (5, 2, 1, 3));
        assert!(store.change_version(Collection::Clockings, "2").is_some());
        let kept = quarantine.kept.lock().unwrap().clone();
        let verdicts: Vec<_> = kept.iter().map(|k| (k.reason.as_str(), k.record_id.as_deref())).collect();
        assert_eq!(
            verdicts,
            [("duplicate_key", Some("1")), ("number_out_of_range", Some("3")), ("too_deep", Some("4"))],
            "each record quarantined for its own reason, its id read leniently whatever its change type"
        );
        assert_eq!(kept[1].bytes, records[2].get().as_bytes(), "its text as received");
        assert_eq!((kept[1].source.as_deref(), kept[1].change_type.as_deref()), (Some("delta"), Some("Delete")));
        let kept_as = crate::records::quarantine::Provenance {
            source: Source::Delta,
            change_type: Some(crate::records::event::ChangeType::Delete),
        };
        let replayed = replay(&store, Collection::Clockings, &kept[1].bytes, kept_as, false).await.unwrap();
        assert_eq!(replayed, crate::records::quarantine::Replayed::Written(vec![("3".into(), PutOutcome::Stored)]));
        assert_eq!(
            store.attribute(Collection::Clockings, "3", "deleted"),
            Some(aws_sdk_dynamodb::types::AttributeValue::Bool(true))
        );
    }

    #[test]
    fn reasons_are_counted_apart_and_past_the_slots_as_other() {
        let mut counts = ReasonCounts::default();
        counts.add("not_json", 2);
        counts.add("missing_id", 1);
        counts.add("not_json", 1);
        counts.add("ignored", 0);
        assert_eq!(counts.iter().collect::<Vec<_>>(), [("not_json", 3), ("missing_id", 1)]);
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        let mut full = ReasonCounts::default();
        for name in names {
            full.add(name, 1);
        }
        let seen: Vec<_> = full.iter().collect();
        assert_eq!(seen.len(), REASON_SLOTS);
        assert_eq!(seen[REASON_SLOTS - 1], ("other", 2), "{seen:?}");
        assert_eq!(seen.iter().map(|(_, n)| n).sum::<u64>(), names.len() as u64);
        let mut sum = RecordCounts::default();
        sum += RecordCounts { quarantined: 3, quarantined_by: counts, ..Default::default() };
        sum += RecordCounts { quarantined: 3, quarantined_by: counts, ..Default::default() };
        assert_eq!(sum.quarantined_by.iter().collect::<Vec<_>>(), [("not_json", 6), ("missing_id", 2)]);
    }
}
