//! One page of records into the table: parse, skip what is already stored (list and
//! initial-load pages), write the rest through the conditional store, and set aside what
//! DynamoDB can never hold. Shared by the re-sync and the sync engine.

use crate::collection::Collection;
use crate::records::item::is_deletion;
use crate::records::json::Json;
use crate::records::quarantine::Quarantine;
use crate::records::{event, order_key, put_all, ChangeType, PutOutcome, RecordStore, Source, StoreError};
use serde::{Deserialize, Serialize};

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

/// Writes one page's records. `skip_unchanged`: read the stored heads first and write only
/// records that are new or newer (list and initial-load pages; a delta's changes are written
/// directly). Returns an error only when the table is unavailable: the caller must not advance
/// its cursor past this page.
pub async fn apply_page<R: RecordStore, Q: Quarantine>(
    store: &R,
    quarantine: Option<&Q>,
    collection: Collection,
    records: Vec<Json>,
    source: Source,
    skip_unchanged: bool,
) -> Result<RecordCounts, StoreError> {
    let mut counts = RecordCounts { fetched: records.len() as u64, ..Default::default() };
    let mut events = Vec::with_capacity(records.len());
    for record in records {
        // The record's JSON as listed, for the quarantine, if it cannot be read as an event.
        let text = quarantine.map(|_| record.to_string());
        match event::parse_event(record) {
            Ok(e) => events.push(e),
            Err(e) => set_aside(quarantine, collection, text, None, e.reason(), &mut counts).await?,
        }
    }
    if skip_unchanged && !events.is_empty() {
        let ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
        let heads = store.heads(collection, &ids).await?;
        events.retain(|e| {
            let Some(head) = heads.get(e.id.as_str()) else { return true };
            let order = order_key(&e.change_version);
            if head.yields_to(&order, e.change_type == ChangeType::Delete) {
                return true;
            }
            if head.order == order.as_ref() {
                counts.duplicate += 1;
            } else {
                counts.stale += 1;
            }
            false
        });
    }
    for (event, outcome) in events.iter().zip(put_all(store, collection, &events, source, WRITE_CONCURRENCY).await) {
        match outcome {
            Ok(PutOutcome::Stored) => {
                counts.stored += 1;
                counts.deleted += u64::from(is_deletion(event));
            }
            Ok(PutOutcome::Duplicate) => counts.duplicate += 1,
            Ok(PutOutcome::Stale) => counts.stale += 1,
            // One record DynamoDB can never store does not stop the others: it is quarantined
            // (as listed) and counted.
            Err(StoreError::Rejected { reason, .. }) => {
                let text = quarantine.map(|_| Json::Object(event.data.clone()).to_string());
                set_aside(quarantine, collection, text, Some(event.id.as_str()), reason, &mut counts).await?
            }
            Err(unavailable) => return Err(unavailable),
        }
    }
    Ok(counts)
}

/// Keeps a synced record that can never be stored in the quarantine (its JSON as listed), or,
/// without a quarantine, counts it as invalid; the record stays in Protime either way. A
/// quarantine that cannot be written fails the page (like an unavailable table), so the cursor
/// does not move past a record kept nowhere.
async fn set_aside<Q: Quarantine>(
    quarantine: Option<&Q>,
    collection: Collection,
    text: Option<String>,
    id: Option<&str>,
    reason: &'static str,
    counts: &mut RecordCounts,
) -> Result<(), StoreError> {
    match (quarantine, text) {
        (Some(q), Some(text)) => {
            let key = q
                .keep(collection, text.as_bytes(), reason, id)
                .await
                .map_err(|e| StoreError::Unavailable(format!("the quarantine: {e}")))?;
            counts.quarantined += 1;
            tracing::warn!(collection = %collection, id, reason, key, "synced record quarantined");
        }
        _ => {
            counts.invalid += 1;
            tracing::error!(collection = %collection, id, reason, "synced record cannot be stored (no quarantine)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::quarantine::NoQuarantine;
    use crate::testing::MemoryRecordStore;

    fn records(text: &str) -> Vec<Json> {
        match crate::records::json::parse(text.as_bytes()).unwrap() {
            Json::Array(items) => items,
            _ => unreachable!(),
        }
    }

    #[tokio::test]
    async fn an_unchanged_page_makes_no_writes_and_a_changed_record_is_written() {
        let store = MemoryRecordStore::default();
        let page =
            r#"[{"id":1,"changeVersion":"0000090200004BD0000A"},{"id":2,"changeVersion":"0000090200004BD0000B"}]"#;
        let apply = |text: &'static str| {
            apply_page(&store, None::<&NoQuarantine>, Collection::People, records(text), Source::Resync, true)
        };
        let first = apply(page).await.unwrap();
        assert_eq!((first.fetched, first.stored), (2, 2));
        let writes = store.journal.lines().len();
        let again = apply(page).await.unwrap();
        assert_eq!((again.stored, again.duplicate), (0, 2));
        assert_eq!(store.journal.lines().len(), writes, "no write for unchanged records");
        let changed = apply(
            r#"[{"id":1,"changeVersion":"0000090200004BD0000C","status":"Deleted"},{"id":2,"changeVersion":"0000090200004BD0000A"}]"#,
        )
        .await
        .unwrap();
        assert_eq!((changed.stored, changed.deleted, changed.stale), (1, 1, 1));
        assert_eq!(store.journal.lines().len(), writes + 1);
    }

    #[tokio::test]
    async fn records_that_can_never_be_stored_are_quarantined_and_a_failed_quarantine_fails_the_page() {
        use crate::testing::MemoryQuarantine;
        let store = MemoryRecordStore::default();
        let quarantine = MemoryQuarantine::default();
        let page = r#"[{"id":1,"changeVersion":"1","":"no name"},{"changeVersion":"1"},{"id":2,"changeVersion":"1"}]"#;
        let counts = apply_page(&store, Some(&quarantine), Collection::People, records(page), Source::Resync, false)
            .await
            .unwrap();
        assert_eq!((counts.stored, counts.quarantined, counts.invalid), (1, 2, 0));
        let reasons: Vec<String> = quarantine.bodies().into_iter().map(|(reason, _)| reason).collect();
        assert_eq!(reasons, ["missing_id", "empty_attribute_name"]);
        quarantine.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let failed =
            apply_page(&store, Some(&quarantine), Collection::People, records(page), Source::Resync, false).await;
        assert!(matches!(failed, Err(StoreError::Unavailable(_))), "{failed:?}");
        let without =
            apply_page(&store, None::<&NoQuarantine>, Collection::People, records(page), Source::Resync, false);
        assert_eq!(without.await.unwrap().invalid, 2);
    }

    #[tokio::test]
    async fn an_unavailable_table_fails_the_page() {
        let store = MemoryRecordStore::default();
        store.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let result = apply_page(
            &store,
            None::<&NoQuarantine>,
            Collection::People,
            records(r#"[{"id":1,"changeVersion":"1"}]"#),
            Source::Resync,
            false,
        )
        .await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))));
    }
}
