//! Which table writes are changes a consumer wants to hear of (pure: an old image and a new
//! image in, an event or nothing out).
//!
//! The table's stream carries every write: records, but also the subscription, sync and lease
//! items, the receiver's `lastEventAt` notes, and a migration's index keys. Only a record whose
//! version moved is a change; of those, one whose data equals the previous image's apart from
//! `changeVersion` and the bookkeeping attributes (Protime re-saves groups of records "even if
//! there are no changes") is suppressed unless asked for.

use crate::collection::Collection;
use crate::records::item::{attr, record_json, Source};
use crate::records::json::Json;
use crate::records::order::order_key;
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
    /// The change's place among the record's changes (see [`sequence`]).
    pub sequence: String,
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
            Some(old) if !is_tombstone(old) => {
                let mut removal = change(ChangeKind::Deleted, collection, old, None);
                // The old image's sequence is the last change's: the removal comes after it.
                removal.sequence.push_str(REMOVED_SUFFIX);
                Verdict::Publish(Box::new(removal))
            }
            _ => Verdict::NotAChange,
        };
    };
    let Some(version) = string(new, attr::CHANGE_VERSION) else { return Verdict::NotAChange };
    let previous = old.and_then(|o| string(o, attr::CHANGE_VERSION));
    if previous.as_deref() == Some(version.as_str()) {
        return match old {
            // The sweep: a live record Protime no longer has becomes a tombstone at its version.
            Some(o) if !is_tombstone(o) && is_tombstone(new) => publish(ChangeKind::Deleted, collection, new, previous),
            // A sweep's tombstone healed: Protime still has the record, written live again at
            // the version the sweep deleted (a consumer applied that deletion).
            Some(o) if is_sweep_tombstone(o) && !is_tombstone(new) => {
                publish(ChangeKind::Changed, collection, new, previous)
            }
            // A new field policy applied to what is stored (`apply-field-policy`): consumers
            // drop or hash what they kept of the field too.
            Some(o) if is_policy_rewrite(o, new) && !same_data(o, new) => {
                let kind = if is_tombstone(new) { ChangeKind::Deleted } else { ChangeKind::Changed };
                let mut rewrite = change(kind, collection, new, previous);
                rewrite.source = Some(Source::Policy.as_str().to_owned());
                Verdict::Publish(Box::new(rewrite))
            }
            // The same version written again: index keys, a migration, a replay's rewrite.
            _ => Verdict::NotAChange,
        };
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

/// The change a stored record item stands for, as its last event published it (a republish
/// from the table): `Deleted` for a tombstone, else `Changed`, with the same [`sequence`]. The
/// table keeps no earlier version, so `previous_change_version` is `None`. `None` for an item
/// that is no record (state, leases, migration positions).
pub fn stored_change(item: &Image) -> Option<Change> {
    let collection = record_collection(item)?;
    let kind = if is_tombstone(item) { ChangeKind::Deleted } else { ChangeKind::Changed };
    Some(change(kind, collection, item, None))
}

/// Appended to the last change's sequence for a live record removed from the table (no new
/// image, so no newer `receivedAt`): text that extends a sequence compares greater than it, and
/// below any later write's, whose order key or time is greater.
const REMOVED_SUFFIX: &str = ".removed";

/// Width of a sequence's time part: epoch microseconds, zero-padded (a u64 has 20 digits).
const MICROS_WIDTH: usize = 20;

/// The change's place among one record's changes, comparable as text: `<order key>.<micros>`,
/// the changeVersion's 64-character order key (what the store writes as `changeOrder`,
/// recomputed so keys of earlier releases give the same) and `receivedAt` as zero-padded epoch
/// microseconds (RFC 3339 text varies in its fractional digits, so it does not compare as text).
/// Every write of a record stamps a new `receivedAt`, so changes at one version (a sweep's
/// tombstone, its repair) still order; an image read twice gives the same text. A `receivedAt`
/// that does not parse counts as zero. See `docs/decisions/0014-the-feed-sequence.md`.
pub fn sequence(image: &Image) -> String {
    let version = string(image, attr::CHANGE_VERSION).unwrap_or_default();
    let micros = string(image, attr::RECEIVED_AT)
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
        .and_then(|at| u64::try_from(at.timestamp_micros()).ok())
        .unwrap_or(0);
    format!("{}.{micros:0MICROS_WIDTH$}", order_key(&version))
}

fn publish(kind: ChangeKind, collection: Collection, image: &Image, previous: Option<String>) -> Verdict {
    Verdict::Publish(Box::new(change(kind, collection, image, previous)))
}

fn change(kind: ChangeKind, collection: Collection, image: &Image, previous: Option<String>) -> Change {
    let data = data_of(image);
    Change {
        kind,
        collection,
        record_key: string(image, attr::PK).unwrap_or_default(),
        id: data.get(attr::ID).cloned().unwrap_or(Json::Null),
        change_version: string(image, attr::CHANGE_VERSION).unwrap_or_default(),
        previous_change_version: previous,
        source: string(image, attr::SOURCE),
        received_at: string(image, attr::RECEIVED_AT),
        sequence: sequence(image),
        data,
    }
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

/// A rewrite by `apply-field-policy`: a new `policyAppliedAt`.
fn is_policy_rewrite(old: &Image, new: &Image) -> bool {
    let at = string(new, attr::POLICY_APPLIED_AT);
    at.is_some() && at != string(old, attr::POLICY_APPLIED_AT)
}

fn is_sweep_tombstone(image: &Image) -> bool {
    is_tombstone(image) && string(image, attr::SOURCE).as_deref() == Some(Source::Sweep.as_str())
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

    /// `image` written again at `at`, as the store stamps every write.
    fn at(mut image: Image, received_at: &str) -> Image {
        image.insert(attr::RECEIVED_AT.into(), AttributeValue::S(received_at.into()));
        image
    }

    #[test]
    fn the_repair_of_a_sweep_tombstone_is_a_change_and_other_same_version_rewrites_are_not() {
        let live = clocking(1, 8);
        let swept = crate::records::item::sweep_tombstone(&live, "2026-12-02T00:00:00Z");
        // Protime still has the record: a delta page writes it live again at the same version.
        let mut repaired = at(clocking(1, 8), "2026-12-02T00:05:00.5Z");
        repaired.insert(attr::SOURCE.into(), AttributeValue::S("delta".into()));
        let change = published(classify(Some(&swept), Some(&repaired), false));
        assert_eq!((change.kind, change.source.as_deref()), (ChangeKind::Changed, Some("delta")));
        assert_eq!((change.change_version, change.previous_change_version), (v(1), Some(v(1))));
        assert_eq!(change.data.get("hours"), Some(&Json::Number("8".into())));
        // Not for a tombstone some other path wrote (a Delete, a soft delete) at that version.
        let soft = item(
            &format!(r#"{{"id":7,"changeVersion":"{}","date":"2026-12-01","status":"Deleted"}}"#, v(1)),
            Source::Webhook,
        );
        assert_eq!(classify(Some(&soft), Some(&repaired), false), Verdict::NotAChange);
        // Nor for a sweep's tombstone rewritten as a tombstone (index keys), nor live over live.
        let mut migrated = swept.clone();
        migrated.insert("byDatePartition".into(), AttributeValue::S("deleted#clockings#2026-12#7".into()));
        assert_eq!(classify(Some(&swept), Some(&migrated), true), Verdict::NotAChange);
        assert_eq!(
            classify(Some(&repaired), Some(&at(repaired.clone(), "2026-12-03T00:00:00Z")), true),
            Verdict::NotAChange
        );
    }

    #[test]
    fn sequences_grow_through_a_change_its_sweep_its_repair_and_a_newer_version() {
        let changed = published(classify(None, Some(&clocking(1, 8)), false));
        let live = clocking(1, 8);
        // Fewer fractional digits than the first write: text order would put it first.
        let swept = crate::records::item::sweep_tombstone(&live, "2026-12-01T09:00:00.5Z");
        let deleted = published(classify(Some(&live), Some(&swept), false));
        let repaired = at(clocking(1, 8), "2026-12-01T09:00:01Z");
        let repair = published(classify(Some(&swept), Some(&repaired), false));
        let newer = published(classify(Some(&repaired), Some(&at(clocking(2, 9), "2026-12-01T08:00:00Z")), false));
        let removed = published(classify(Some(&clocking(3, 1)), None, false));
        let sequences = [&changed, &deleted, &repair, &newer].map(|c| c.sequence.clone());
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:#?}");
        assert_eq!(changed.sequence, format!("{}.{:020}", order_key(&v(1)), 1_796_115_600_000_000u64));
        assert!(removed.sequence > sequence(&clocking(3, 1)), "a removal follows the last change");
        assert!(removed.sequence < sequence(&at(clocking(4, 1), "2020-01-01T00:00:00Z")));
        // The same image twice (a redelivery, a republish from the table): the same sequence.
        assert_eq!(published(classify(None, Some(&clocking(1, 8)), false)).sequence, changed.sequence);
        assert_eq!(stored_change(&swept).map(|c| (c.kind, c.sequence)), Some((ChangeKind::Deleted, deleted.sequence)));
        // No readable receivedAt: zeros, never a panic.
        let unstamped = at(clocking(1, 8), "yesterday");
        assert_eq!(sequence(&unstamped), format!("{}.{}", order_key(&v(1)), "0".repeat(20)));
    }

    #[test]
    fn a_stored_item_republishes_as_its_kind_and_state_items_not_at_all() {
        let live = stored_change(&clocking(2, 8)).expect("a record");
        assert_eq!((live.kind, live.previous_change_version), (ChangeKind::Changed, None));
        let state = HashMap::from([(attr::PK.to_owned(), AttributeValue::S("sync#clockings".into()))]);
        assert_eq!(stored_change(&state), None);
    }
}
