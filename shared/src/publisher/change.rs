//! Which table writes are changes a consumer wants to hear of (pure: an old image and a new
//! image in, an event or nothing out).
//!
//! The table's stream carries every write: records, but also the subscription, sync and lease
//! items, the receiver's `lastEventAt` notes, and a migration's index keys. Only a record whose
//! version moved is a change; of those, one whose data equals the previous image's apart from
//! `changeVersion` and the bookkeeping attributes (Protime re-saves groups of records "even if
//! there are no changes") is suppressed unless asked for.

use crate::collection::Collection;
use crate::records::item::{attr, record_json};
use crate::records::json::Json;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// A stream image: an item's attributes.
pub type Image = HashMap<String, AttributeValue>;

/// The two kinds of change event (`detail-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// An insert, an update, or a record deleted before and written live again.
    Changed,
    /// A Delete, a soft delete or a sweep: the item became a tombstone (or was removed).
    Deleted,
}

impl ChangeKind {
    /// The event's `detail-type`.
    pub fn detail_type(self) -> &'static str {
        match self {
            ChangeKind::Changed => "Protime Record Changed",
            ChangeKind::Deleted => "Protime Record Deleted",
        }
    }
}

/// One effective change of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: ChangeKind,
    pub collection: Collection,
    /// The record's partition key (`<collection>#<id>`): changes of one record share it.
    pub record_key: String,
    pub id: Json,
    pub change_version: String,
    pub previous_change_version: Option<String>,
    /// `webhook`, `delta`, `resync` (or `sweep`), as the item says.
    pub source: Option<String>,
    pub received_at: Option<String>,
    /// The record as Protime sent it (`id`, `changeVersion`, its fields), without `deleted`.
    pub data: Json,
}

/// What one stream record is to the feed.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Publish(Box<Change>),
    /// A new version whose data equals the previous one's (counted in `ChangesSuppressed`).
    Unchanged,
    /// Not a record change at all: state items, notes, index keys, a rewrite of one version.
    NotAChange,
}

/// Classifies one stream record from its images (`None`: the item did not exist before, or was
/// removed). With `publish_unchanged`, a new version with unchanged data is published too.
pub fn classify(old: Option<&Image>, new: Option<&Image>, publish_unchanged: bool) -> Verdict {
    let Some(current) = new.or(old) else { return Verdict::NotAChange };
    let Some(collection) = record_collection(current) else { return Verdict::NotAChange };
    let (old, new) = (old.filter(|i| is_record(i)), new.filter(|i| is_record(i)));
    let Some(new) = new else {
        // The item was removed (the store never does; an operator might): a deletion of a
        // record that was live.
        return match old {
            Some(old) if !is_tombstone(old) => publish(ChangeKind::Deleted, collection, old, None),
            _ => Verdict::NotAChange,
        };
    };
    let Some(version) = string(new, attr::CHANGE_VERSION) else { return Verdict::NotAChange };
    let previous = old.and_then(|o| string(o, attr::CHANGE_VERSION));
    if previous.as_deref() == Some(version.as_str()) {
        // The sweep: a live record Protime no longer has becomes a tombstone at its version.
        if old.is_some_and(|o| !is_tombstone(o)) && is_tombstone(new) {
            return publish(ChangeKind::Deleted, collection, new, previous);
        }
        // The same version written again: index keys, a migration, a replay's rewrite.
        return Verdict::NotAChange;
    }
    let kind = if is_tombstone(new) { ChangeKind::Deleted } else { ChangeKind::Changed };
    match old {
        Some(old) if is_tombstone(old) && kind == ChangeKind::Deleted => {
            // Deleted again at a newer version: nothing a consumer did not know.
            if publish_unchanged {
                publish(kind, collection, new, previous)
            } else {
                Verdict::Unchanged
            }
        }
        Some(old) if !is_tombstone(old) && kind == ChangeKind::Changed && same_data(old, new) && !publish_unchanged => {
            Verdict::Unchanged
        }
        _ => publish(kind, collection, new, previous),
    }
}

fn publish(kind: ChangeKind, collection: Collection, image: &Image, previous: Option<String>) -> Verdict {
    let data = data_of(image);
    Verdict::Publish(Box::new(Change {
        kind,
        collection,
        record_key: string(image, attr::PK).unwrap_or_default(),
        id: data.get(attr::ID).cloned().unwrap_or(Json::Null),
        change_version: string(image, attr::CHANGE_VERSION).unwrap_or_default(),
        previous_change_version: previous,
        source: string(image, attr::SOURCE),
        received_at: string(image, attr::RECEIVED_AT),
        data,
    }))
}

/// The record as Protime sent it, without the tombstone mark (the detail-type says it).
fn data_of(image: &Image) -> Json {
    match record_json(image) {
        Json::Object(fields) => Json::Object(fields.into_iter().filter(|(k, _)| k != attr::DELETED).collect()),
        other => other,
    }
}

/// Whether two images hold the same record data apart from `changeVersion`.
fn same_data(old: &Image, new: &Image) -> bool {
    let without_version = |image: &Image| match data_of(image) {
        Json::Object(fields) => fields.into_iter().filter(|(k, _)| k != attr::CHANGE_VERSION).collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    without_version(old) == without_version(new)
}

/// The collection of a record item: `pk` is `<collection>#<id>` for one of the 18 collections.
/// Subscription, sync, lease and migration items (`subscription#…`, `sync#…`, `renewer#…`,
/// `migration#…`) are not records.
fn record_collection(image: &Image) -> Option<Collection> {
    let pk = string(image, attr::PK)?;
    let (prefix, id) = pk.split_once('#')?;
    let collection: Collection = prefix.parse().ok()?;
    let named = string(image, attr::COLLECTION);
    (!id.is_empty() && named.as_deref() == Some(prefix) && image.contains_key(attr::CHANGE_VERSION))
        .then_some(collection)
}

fn is_record(image: &Image) -> bool {
    record_collection(image).is_some()
}

fn is_tombstone(image: &Image) -> bool {
    image.get(attr::DELETED) == Some(&AttributeValue::Bool(true))
}

fn string(image: &Image, name: &str) -> Option<String> {
    image.get(name).and_then(|v| v.as_s().ok()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::event::parse_body;
    use crate::records::item::{record_item, Source};

    fn item(body: &str, source: Source) -> Image {
        let event = parse_body(body.as_bytes()).unwrap().remove(0);
        record_item(Collection::Clockings, &event, source, "2026-12-01T09:00:00.000Z")
    }

    fn v(n: u32) -> String {
        format!("0000090200004BD{n:05X}")
    }

    fn clocking(version: u32, hours: u32) -> Image {
        item(
            &format!(r#"{{"id":7,"changeVersion":"{}","date":"2026-12-01","hours":{hours}}}"#, v(version)),
            Source::Webhook,
        )
    }

    fn published(verdict: Verdict) -> Change {
        match verdict {
            Verdict::Publish(change) => *change,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn an_insert_is_a_change_with_the_record_as_protime_sent_it() {
        let change = published(classify(None, Some(&clocking(1, 8)), false));
        assert_eq!(change.kind, ChangeKind::Changed);
        assert_eq!((change.collection, change.record_key.as_str()), (Collection::Clockings, "clockings#7"));
        assert_eq!(change.id, Json::Number("7".into()));
        assert_eq!((change.change_version, change.previous_change_version), (v(1), None));
        assert_eq!(change.source.as_deref(), Some("webhook"));
        assert_eq!(change.received_at.as_deref(), Some("2026-12-01T09:00:00.000Z"));
        assert_eq!(
            change.data.to_string(),
            format!(r#"{{"id":7,"changeVersion":"{}","date":"2026-12-01","hours":8}}"#, v(1))
        );
    }

    #[test]
    fn an_update_names_the_previous_version_and_unchanged_data_is_suppressed_unless_asked() {
        let change = published(classify(Some(&clocking(1, 8)), Some(&clocking(2, 9)), false));
        assert_eq!((change.kind, change.previous_change_version), (ChangeKind::Changed, Some(v(1))));
        // Protime re-saved the record: a new version, the same data.
        assert_eq!(classify(Some(&clocking(1, 8)), Some(&clocking(2, 8)), false), Verdict::Unchanged);
        let forced = published(classify(Some(&clocking(1, 8)), Some(&clocking(2, 8)), true));
        assert_eq!(forced.change_version, v(2));
        // The bookkeeping attributes are not data: another source, another time.
        let mut resynced =
            item(&format!(r#"{{"id":7,"changeVersion":"{}","date":"2026-12-01","hours":8}}"#, v(2)), Source::Resync);
        resynced.insert(attr::RECEIVED_AT.into(), AttributeValue::S("2026-12-02T00:00:00.000Z".into()));
        assert_eq!(classify(Some(&clocking(1, 8)), Some(&resynced), false), Verdict::Unchanged);
    }

    #[test]
    fn deletes_soft_deletes_and_removals_are_deletions() {
        let delete =
            item(&format!(r#"{{"changeType":"Delete","data":{{"id":7,"changeVersion":"{}"}}}}"#, v(2)), Source::Delta);
        let change = published(classify(Some(&clocking(1, 8)), Some(&delete), false));
        assert_eq!((change.kind, change.previous_change_version.clone()), (ChangeKind::Deleted, Some(v(1))));
        assert_eq!(change.data.to_string(), format!(r#"{{"id":7,"changeVersion":"{}"}}"#, v(2)), "no deleted mark");
        let soft = item(
            &format!(r#"{{"id":7,"changeVersion":"{}","date":"2026-12-01","status":"Deleted"}}"#, v(2)),
            Source::Webhook,
        );
        let change = published(classify(Some(&clocking(1, 8)), Some(&soft), false));
        assert_eq!(change.kind, ChangeKind::Deleted);
        assert_eq!(change.data.get("status"), Some(&Json::String("Deleted".into())), "its fields kept");
        // The sweep's tombstone: the same version, its fields kept, source sweep.
        let live = clocking(1, 8);
        let swept = crate::records::item::sweep_tombstone(&live, "2026-12-02T00:00:00.000Z");
        let change = published(classify(Some(&live), Some(&swept), false));
        assert_eq!((change.kind, change.source.as_deref()), (ChangeKind::Deleted, Some("sweep")));
        assert_eq!(change.data.get("hours"), Some(&Json::Number("8".into())));
        // A delete of a record never stored is still news to a consumer that reads the feed.
        assert_eq!(published(classify(None, Some(&delete), false)).kind, ChangeKind::Deleted);
        // Deleted again at a newer version: nothing new.
        let again =
            item(&format!(r#"{{"changeType":"Delete","data":{{"id":7,"changeVersion":"{}"}}}}"#, v(3)), Source::Delta);
        assert_eq!(classify(Some(&delete), Some(&again), false), Verdict::Unchanged);
        // A live record removed from the table.
        assert_eq!(published(classify(Some(&clocking(1, 8)), None, false)).kind, ChangeKind::Deleted);
        assert_eq!(classify(Some(&delete), None, false), Verdict::NotAChange);
        // Written live after a tombstone: a change.
        assert_eq!(published(classify(Some(&delete), Some(&clocking(4, 8)), false)).kind, ChangeKind::Changed);
    }

    #[test]
    fn state_items_notes_index_keys_and_rewrites_of_one_version_are_not_changes() {
        let state = |pk: &str| {
            HashMap::from([
                (attr::PK.to_owned(), AttributeValue::S(pk.into())),
                (attr::COLLECTION.to_owned(), AttributeValue::S("clockings".into())),
                ("lastEventAt".to_owned(), AttributeValue::S("2026-12-01T09:00:00Z".into())),
            ])
        };
        for pk in ["subscription#clockings", "sync#clockings", "renewer#lease", "migration#indexes"] {
            assert_eq!(classify(None, Some(&state(pk)), false), Verdict::NotAChange, "{pk}");
            assert_eq!(classify(Some(&state(pk)), Some(&state(pk)), true), Verdict::NotAChange, "{pk}");
        }
        // A migration adds index keys to a stored version: the same changeVersion.
        let mut migrated = clocking(1, 8);
        migrated.insert("byDatePartition".into(), AttributeValue::S("clockings#2026-12#3".into()));
        assert_eq!(classify(Some(&clocking(1, 8)), Some(&migrated), true), Verdict::NotAChange);
        // A record-looking key of an unknown collection, or with no version, is no record.
        let mut odd = clocking(1, 8);
        odd.insert(attr::PK.into(), AttributeValue::S("breakfast#7".into()));
        assert_eq!(classify(None, Some(&odd), false), Verdict::NotAChange);
        let mut unversioned = clocking(1, 8);
        unversioned.remove(attr::CHANGE_VERSION);
        assert_eq!(classify(None, Some(&unversioned), false), Verdict::NotAChange);
        assert_eq!(classify(None, None, false), Verdict::NotAChange);
    }
}
