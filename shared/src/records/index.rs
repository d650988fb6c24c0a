//! The keys of the table's two read indexes, derived from a record's own fields (pure).
//!
//! - `byDate` (partition [`attr::DATE_PARTITION`], sort [`attr::DATE_SORT`]): one collection's
//!   records by `date`. A dated record's partition is `<collection>#<YYYY-MM>#<shard>`, its sort
//!   key `<YYYY-MM-DD>#<id>`; a record of a reference collection (no `date`) is under
//!   `<collection>#<shard>`, sorted by id; a dated collection's record without a usable `date`
//!   under `<collection>#undated#<shard>`.
//! - `byPerson` (partition [`attr::PERSON_PARTITION`], sort [`attr::DATE_SORT`]): one
//!   collection's records of one `person.id`, `<collection>#<person id>`, by date.
//!
//! A tombstone leaves the live partitions: its keys are those of its own fields behind
//! [`TOMBSTONE_PREFIX`] (`deleted#clockings#2026-11#3`), so a reader of a live partition sees
//! live records only, and a reader that asks for tombstones finds them by Query too. A Delete
//! carries only `id` and `changeVersion`, so its tombstone is under `deleted#<collection>#undated`
//! (a soft delete keeps its fields, its date and its person). Every write replaces the whole
//! item, so a record whose date or person changed moves in the indexes with the write that
//! changed it.
//!
//! The [`DATE_SHARDS`] shards spread one month of one collection over that many partition key
//! values: an initial load writes thousands of records of one month per second, and one
//! partition key value of an index takes at most 1,000 writes per second. The shard is the id
//! modulo [`DATE_SHARDS`] (integers, Protime's ids) or a stable hash of the id's text, so a record
//! stays in its shard whatever else changes. See `docs/decisions/0010-read-indexes.md`.

use super::event::RecordId;
use super::json::Json;
use crate::collection::Collection;

/// The index of one collection's records by date.
pub const DATE_INDEX: &str = "byDate";
/// The index of one collection's records of one person, by date.
pub const PERSON_INDEX: &str = "byPerson";
/// Partition key values per month (dated) or per collection (reference) in `byDate`.
pub const DATE_SHARDS: u32 = 8;

/// What a tombstone's partition keys start with; no collection is named `deleted`, so no live
/// partition does.
pub const TOMBSTONE_PREFIX: &str = "deleted#";

/// Attribute names of the index keys, set on every record item (see [`TOMBSTONE_PREFIX`]).
pub mod attr {
    /// `byDate`'s partition key: `<collection>#<YYYY-MM>#<shard>` or `<collection>#<shard>`.
    pub const DATE_PARTITION: &str = "byDatePartition";
    /// The sort key of both indexes: `<YYYY-MM-DD>#<id>`, or `<id>` for reference records.
    pub const DATE_SORT: &str = "byDateSort";
    /// `byPerson`'s partition key: `<collection>#<person id>`.
    pub const PERSON_PARTITION: &str = "byPersonPartition";

    pub const ALL: &[&str] = &[DATE_PARTITION, DATE_SORT, PERSON_PARTITION];
}

/// Which read indexes the table has: `READ_INDEXES`, as the template's `ReadIndexes` parameter
/// spells it (`byDate,byPerson`, `byDate`, `byPerson` or `none`). Every record item carries the
/// keys of both either way, so an index added later is filled by DynamoDB from the items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadIndexes {
    pub by_date: bool,
    pub by_person: bool,
}

impl ReadIndexes {
    /// Both indexes: the template's default.
    pub const ALL: ReadIndexes = ReadIndexes { by_date: true, by_person: true };

    /// Whether the table has the index named `index`.
    pub fn has(self, index: &str) -> bool {
        match index {
            DATE_INDEX => self.by_date,
            PERSON_INDEX => self.by_person,
            _ => false,
        }
    }
}

impl std::str::FromStr for ReadIndexes {
    type Err = String;

    /// `none`, or index names joined by commas; the error names what is not an index.
    fn from_str(text: &str) -> Result<ReadIndexes, String> {
        let mut indexes = ReadIndexes { by_date: false, by_person: false };
        if text.trim() == "none" {
            return Ok(indexes);
        }
        for name in text.split(',').map(str::trim) {
            match name {
                DATE_INDEX => indexes.by_date = true,
                PERSON_INDEX => indexes.by_person = true,
                other => return Err(other.to_owned()),
            }
        }
        Ok(indexes)
    }
}

/// The index keys of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKeys {
    pub date_partition: String,
    pub date_sort: String,
    /// Absent when the record has no `person.id`.
    pub person_partition: Option<String>,
}

/// The index keys of a live record of `collection` with this id and these fields.
pub fn index_keys(collection: Collection, id: &RecordId, data: &[(String, Json)]) -> IndexKeys {
    let name = collection.as_str();
    let shard = shard(id);
    let id = sort_id(id);
    let (date_partition, date_sort) = if collection.is_dated() {
        match data.iter().find(|(k, _)| k == "date").and_then(|(_, v)| calendar_date(v)) {
            Some(date) => (format!("{name}#{}#{shard}", &date[..7]), format!("{date}#{id}")),
            None => (format!("{name}#undated#{shard}"), id),
        }
    } else {
        (format!("{name}#{shard}"), id)
    };
    let person_partition = data.iter().find(|(k, _)| k == "person").and_then(|(_, person)| match person.get("id")? {
        Json::Number(n) | Json::String(n) if !n.is_empty() => Some(person_partition(collection, n)),
        _ => None,
    });
    IndexKeys { date_partition, date_sort, person_partition }
}

impl IndexKeys {
    /// The same keys in the tombstone partitions.
    pub fn into_tombstone(self) -> IndexKeys {
        IndexKeys {
            date_partition: tombstone_partition(&self.date_partition),
            date_sort: self.date_sort,
            person_partition: self.person_partition.as_deref().map(tombstone_partition),
        }
    }
}

/// The tombstone partition beside a live partition.
pub fn tombstone_partition(live: &str) -> String {
    format!("{TOMBSTONE_PREFIX}{live}")
}

/// The `byDate` partitions of a dated collection's records without a usable `date`.
pub fn undated_partitions(collection: Collection) -> impl Iterator<Item = String> {
    let name = collection.as_str();
    (0..DATE_SHARDS).map(move |shard| format!("{name}#undated#{shard}"))
}

/// The `byPerson` partition of one person's records of one collection.
pub fn person_partition(collection: Collection, person: &str) -> String {
    format!("{collection}#{person}")
}

/// The `byDate` partitions of one month of a dated collection, one per shard.
pub fn month_partitions(collection: Collection, year: i32, month: u32) -> impl Iterator<Item = String> {
    let name = collection.as_str();
    (0..DATE_SHARDS).map(move |shard| format!("{name}#{year:04}-{month:02}#{shard}"))
}

/// The `byDate` partitions of a reference collection, one per shard.
pub fn reference_partitions(collection: Collection) -> impl Iterator<Item = String> {
    let name = collection.as_str();
    (0..DATE_SHARDS).map(move |shard| format!("{name}#{shard}"))
}

/// `YYYY-MM-DD` (a date-time's first ten characters count), or nothing.
fn calendar_date(value: &Json) -> Option<&str> {
    let Json::String(text) = value else { return None };
    let date = text.get(..10)?;
    let b = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let shape = digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10);
    (shape && chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok()).then_some(date)
}

/// The id as it sorts: integers zero-padded to 20 digits (`u64::MAX` has 20), so they sort as
/// numbers; anything else as its text.
fn sort_id(id: &RecordId) -> String {
    match id {
        RecordId::Number(n) if n.parse::<u64>().is_ok() => format!("{n:0>20}"),
        other => other.as_str().to_owned(),
    }
}

/// The record's shard: an integer id modulo [`DATE_SHARDS`], else FNV-1a of the id's text.
fn shard(id: &RecordId) -> u32 {
    if let RecordId::Number(n) = id {
        if let Ok(n) = n.parse::<u64>() {
            return (n % u64::from(DATE_SHARDS)) as u32;
        }
    }
    let hash =
        id.as_str().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % u64::from(DATE_SHARDS)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields(pairs: &[(&str, Json)]) -> Vec<(String, Json)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    fn person(id: &str) -> Json {
        Json::Object(vec![("id".into(), Json::Number(id.into()))])
    }

    #[test]
    fn read_indexes_are_named_as_the_template_names_them() {
        let parse = |text: &str| text.parse::<ReadIndexes>();
        assert_eq!(parse("byDate,byPerson"), Ok(ReadIndexes::ALL));
        assert_eq!(parse(" byPerson , byDate "), Ok(ReadIndexes::ALL));
        assert_eq!(parse("byDate"), Ok(ReadIndexes { by_date: true, by_person: false }));
        assert_eq!(parse("byPerson"), Ok(ReadIndexes { by_date: false, by_person: true }));
        assert_eq!(parse("none"), Ok(ReadIndexes { by_date: false, by_person: false }));
        assert_eq!(parse("byDate,bydate"), Err("bydate".to_owned()));
        assert_eq!(parse(""), Err(String::new()));
        assert!(parse("byDate").unwrap().has(DATE_INDEX) && !parse("byDate").unwrap().has(PERSON_INDEX));
    }

    #[test]
    fn a_dated_record_is_under_its_month_and_shard_sorted_by_date_then_id() {
        let keys = index_keys(
            Collection::Clockings,
            &RecordId::Number("42".into()),
            &fields(&[("date", Json::String("2026-11-03".into())), ("person", person("7"))]),
        );
        assert_eq!(keys.date_partition, "clockings#2026-11#2");
        assert_eq!(keys.date_sort, "2026-11-03#00000000000000000042");
        assert_eq!(keys.person_partition.as_deref(), Some("clockings#7"));
    }

    #[test]
    fn reference_records_are_by_shard_and_id_and_records_without_a_person_have_no_person_key() {
        let keys = index_keys(Collection::People, &RecordId::Number("9".into()), &fields(&[]));
        assert_eq!(keys.date_partition, "people#1");
        assert_eq!(keys.date_sort, "00000000000000000009");
        assert_eq!(keys.person_partition, None);
    }

    #[test]
    fn a_dated_collections_record_without_a_usable_date_is_undated() {
        for date in
            [Json::Null, Json::String("3 Nov".into()), Json::String("2026-13-01".into()), Json::Number("1".into())]
        {
            let keys = index_keys(Collection::Absences, &RecordId::Number("8".into()), &fields(&[("date", date)]));
            assert_eq!(keys.date_partition, "absences#undated#0");
        }
        let keys = index_keys(
            Collection::Absences,
            &RecordId::Number("8".into()),
            &fields(&[("date", Json::String("2026-02-28T00:00:00".into()))]),
        );
        assert_eq!(keys.date_partition, "absences#2026-02#0");
    }

    #[test]
    fn the_month_partitions_are_those_records_of_that_month_use() {
        let months: Vec<String> = month_partitions(Collection::Clockings, 2026, 11).collect();
        assert_eq!(months.len(), DATE_SHARDS as usize);
        for id in 0..100u64 {
            let keys = index_keys(
                Collection::Clockings,
                &RecordId::Number(id.to_string()),
                &fields(&[("date", Json::String("2026-11-30".into()))]),
            );
            assert!(months.contains(&keys.date_partition));
        }
        let refs: Vec<String> = reference_partitions(Collection::People).collect();
        assert!(refs.contains(&index_keys(Collection::People, &RecordId::String("a-b".into()), &[]).date_partition));
    }

    #[test]
    fn a_tombstone_is_under_the_same_keys_behind_the_prefix_and_no_live_partition_looks_like_one() {
        let data = fields(&[("date", Json::String("2026-11-03".into())), ("person", person("7"))]);
        let keys = index_keys(Collection::Clockings, &RecordId::Number("42".into()), &data).into_tombstone();
        assert_eq!(keys.date_partition, "deleted#clockings#2026-11#2");
        assert_eq!(keys.date_sort, "2026-11-03#00000000000000000042");
        assert_eq!(keys.person_partition.as_deref(), Some("deleted#clockings#7"));
        for collection in Collection::ALL {
            assert_ne!(collection.as_str(), "deleted");
        }
        let undated: Vec<String> = undated_partitions(Collection::Clockings).collect();
        assert!(undated.contains(&index_keys(Collection::Clockings, &RecordId::Number("1".into()), &[]).date_partition));
    }

    proptest! {
        #[test]
        fn integer_ids_sort_as_numbers_and_dates_as_dates(a in 0u64.., b in 0u64.., d1 in 0u32..3000, d2 in 0u32..3000) {
            let date = |d: u32| (chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(d.into())).to_string();
            let key = |id: u64, d: u32| index_keys(
                Collection::Clockings,
                &RecordId::Number(id.to_string()),
                &fields(&[("date", Json::String(date(d)))]),
            ).date_sort;
            prop_assert_eq!(key(a, d1).cmp(&key(b, d2)), (d1, a).cmp(&(d2, b)));
        }

        #[test]
        fn the_keys_depend_on_the_id_date_and_person_only(id in "[a-z0-9-]{1,12}", other in "[a-z]{1,8}", p in 1u32..99999) {
            let id = RecordId::String(id);
            let base = fields(&[("date", Json::String("2025-06-01".into())), ("person", person(&p.to_string()))]);
            let mut more = base.clone();
            more.push((other, Json::Bool(true)));
            prop_assert_eq!(index_keys(Collection::Breaks, &id, &base), index_keys(Collection::Breaks, &id, &more));
            prop_assert!(shard(&id) < DATE_SHARDS);
        }
    }
}
