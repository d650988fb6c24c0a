//! Reading the copy through its read indexes: one collection by date, by person, or whole.
//!
//! [`plan`] turns a [`RecordQuery`] into the index partitions to read (pure: which index, which
//! partition key values, which sort-key range); [`run`] reads them with Query only, never Scan,
//! following every page, and returns the records in date order, then id. The indexes project
//! every attribute, so a query reads no base item (see `docs/decisions/0010-read-indexes.md`).
//! Index reads are eventually consistent: a record written a moment ago may not be listed yet.

use super::index::{self, attr as index_attr, DATE_INDEX, PERSON_INDEX};
use super::item::{attr, record_json};
use super::json::Json;
use crate::collection::Collection;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::query::QueryError as QueryOperationError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Datelike, Months, NaiveDate};
use std::collections::HashMap;

/// The widest date range one query reads: 20 years of months, 8 partitions each.
pub const MAX_RANGE_MONTHS: u32 = 240;

/// What to read: one collection, narrowed by person and dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordQuery {
    pub collection: Collection,
    /// A `person.id`, as Protime sends it (digits, for Protime's integer ids).
    pub person: Option<String>,
    /// An inclusive range of `date`s (a day is a range of one).
    pub dates: Option<(NaiveDate, NaiveDate)>,
    /// Also the tombstones the filter matches by their own fields (a Delete carries no date or
    /// person, so its tombstone matches only an unfiltered read of the collection).
    pub include_deleted: bool,
    /// At most this many records, the first in date then id order.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("{0} records carry no person.id: --person does not apply to them")]
    NoPerson(Collection),
    #[error("{0} is reference data without a date: a date filter does not apply to it")]
    NotDated(Collection),
    #[error("{0} is read by date or by person: give --date, --from and --to, or --person")]
    Unfiltered(Collection),
    #[error("the date range ends ({to}) before it starts ({from})")]
    EmptyRange { from: NaiveDate, to: NaiveDate },
    #[error("the date range spans more than {MAX_RANGE_MONTHS} months: read it in parts")]
    RangeTooWide,
    #[error("reading the {index} index: {message}")]
    Unavailable { index: &'static str, message: String },
    #[error("the table has no {0} index: the stack's ReadIndexes parameter leaves it out (add it to ReadIndexes to read this way)")]
    NoIndex(&'static str),
    #[error("an item of the {index} index is not a record ({pk})")]
    NotARecord { index: &'static str, pk: String },
}

/// One Query: every item of one index partition, or those whose sort key lies in a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRead {
    pub index: &'static str,
    pub partition_attribute: &'static str,
    pub partition: String,
    /// `BETWEEN` bounds of the sort key, both inclusive.
    pub sort_between: Option<(String, String)>,
}

impl IndexRead {
    /// The Query of this partition (and sort range) of `table`'s index: the one request every
    /// reader of the indexes makes (`query`, the sweep).
    pub(crate) fn query(
        &self,
        client: &aws_sdk_dynamodb::Client,
        table: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let request = client
            .query()
            .table_name(table)
            .index_name(self.index)
            .expression_attribute_names("#p", self.partition_attribute)
            .expression_attribute_values(":p", AttributeValue::S(self.partition.clone()));
        match &self.sort_between {
            Some((low, high)) => request
                .key_condition_expression("#p = :p AND #s BETWEEN :low AND :high")
                .expression_attribute_names("#s", index_attr::DATE_SORT)
                .expression_attribute_values(":low", AttributeValue::S(low.clone()))
                .expression_attribute_values(":high", AttributeValue::S(high.clone())),
            None => request.key_condition_expression("#p = :p"),
        }
    }
}

/// The partitions that hold exactly the records `query` asks for, in date order of their
/// months (the records of one month's partitions interleave and are merged by sort key).
/// Grouped: the reads of one group are made together, and a limited query stops after the
/// group that fills it.
pub fn plan(query: &RecordQuery) -> Result<Vec<Vec<IndexRead>>, QueryError> {
    let collection = query.collection;
    if query.person.is_some() && !collection.has_person() {
        return Err(QueryError::NoPerson(collection));
    }
    if query.dates.is_some() && !collection.is_dated() {
        return Err(QueryError::NotDated(collection));
    }
    let sort_between = match query.dates {
        Some((from, to)) if to < from => return Err(QueryError::EmptyRange { from, to }),
        // Every dated sort key is `<date>#<id>`: all of `to`'s are below the next day's bare
        // date, which no key equals.
        Some((from, to)) => Some((from.to_string(), to.succ_opt().ok_or(QueryError::RangeTooWide)?.to_string())),
        None => None,
    };
    let with_tombstones = |partitions: Vec<String>| -> Vec<String> {
        let tombstones: Vec<String> = if query.include_deleted {
            partitions.iter().map(|p| index::tombstone_partition(p)).collect()
        } else {
            Vec::new()
        };
        partitions.into_iter().chain(tombstones).collect()
    };
    let reads = |index: &'static str, partition_attribute: &'static str, partitions: Vec<String>| -> Vec<IndexRead> {
        with_tombstones(partitions)
            .into_iter()
            .map(|partition| IndexRead { index, partition_attribute, partition, sort_between: sort_between.clone() })
            .collect()
    };
    if let Some(person) = &query.person {
        let partition = index::person_partition(collection, person);
        return Ok(vec![reads(PERSON_INDEX, index_attr::PERSON_PARTITION, vec![partition])]);
    }
    let Some((from, to)) = query.dates else {
        if collection.is_dated() {
            return Err(QueryError::Unfiltered(collection));
        }
        let partitions = index::reference_partitions(collection).collect();
        return Ok(vec![reads(DATE_INDEX, index_attr::DATE_PARTITION, partitions)]);
    };
    let mut groups = Vec::new();
    let mut month = from.with_day(1).expect("day 1 exists");
    while month <= to {
        if groups.len() as u32 == MAX_RANGE_MONTHS {
            return Err(QueryError::RangeTooWide);
        }
        let partitions = index::month_partitions(collection, month.year(), month.month()).collect();
        groups.push(reads(DATE_INDEX, index_attr::DATE_PARTITION, partitions));
        month = month.checked_add_months(Months::new(1)).ok_or(QueryError::RangeTooWide)?;
    }
    Ok(groups)
}

/// A record read from an index: its sort key (date, then id) and the record as Protime sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueriedRecord {
    pub sort_key: String,
    pub pk: String,
    pub deleted: bool,
    /// `id`, `changeVersion` and every field, plus `"deleted": true` on a tombstone.
    pub record: Json,
}

/// Reads what `query` asks for, calling `progress` with the number of records read so far
/// after every page.
pub async fn run(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    query: &RecordQuery,
    mut progress: impl FnMut(usize),
) -> Result<Vec<QueriedRecord>, QueryError> {
    let limit = query.limit.unwrap_or(usize::MAX);
    let reader = Reader { client, table, limit };
    let mut records = Vec::new();
    for group in plan(query)? {
        let mut month = Vec::new();
        for read in &group {
            let seen = records.len() + month.len();
            reader.read_partition(read, &mut month, |n| progress(seen + n)).await?;
        }
        month.sort_by(|a: &QueriedRecord, b| a.sort_key.cmp(&b.sort_key).then_with(|| a.pk.cmp(&b.pk)));
        records.extend(month);
        if records.len() >= limit {
            records.truncate(limit);
            break;
        }
    }
    Ok(records)
}

/// What every partition read of one query shares: the table, and the most records the query
/// returns (`usize::MAX` for all).
struct Reader<'a> {
    client: &'a aws_sdk_dynamodb::Client,
    table: &'a str,
    limit: usize,
}

impl Reader<'_> {
    /// Every item of one partition (at most `limit`: a partition's first items by sort key are
    /// the only ones of it a limited query can need), appended to `out`.
    async fn read_partition(
        &self,
        read: &IndexRead,
        out: &mut Vec<QueriedRecord>,
        mut progress: impl FnMut(usize),
    ) -> Result<(), QueryError> {
        let Reader { client, table, limit } = *self;
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let mut taken = 0usize;
        loop {
            let mut request = read.query(client, table).set_exclusive_start_key(start.take());
            if limit != usize::MAX {
                request = request.limit(i32::try_from(limit - taken).unwrap_or(i32::MAX).max(1));
            }
            let page = request.send().await.map_err(|e| query_error(read.index, e))?;
            for item in page.items.unwrap_or_default() {
                out.push(queried(read.index, item)?);
                taken += 1;
            }
            progress(taken);
            start = page.last_evaluated_key;
            if start.is_none() || taken >= limit {
                return Ok(());
            }
        }
    }
}

/// A missing index told as such (DynamoDB answers a ValidationException "The table does not
/// have the specified index: …"; the emulator a ResourceNotFoundException "Invalid index: …");
/// anything else as unavailable.
fn query_error(index: &'static str, error: SdkError<QueryOperationError>) -> QueryError {
    let missing = error.as_service_error().is_some_and(|e| {
        let message = e.meta().message().unwrap_or_default();
        matches!(e.meta().code(), Some("ValidationException" | "ResourceNotFoundException"))
            && message.contains(index)
            && (message.contains("specified index") || message.contains("Invalid index"))
    });
    if missing {
        return QueryError::NoIndex(index);
    }
    QueryError::Unavailable { index, message: DisplayErrorContext(&error).to_string() }
}

fn queried(index: &'static str, item: HashMap<String, AttributeValue>) -> Result<QueriedRecord, QueryError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let pk = text(attr::PK).unwrap_or_default();
    let (Some(sort_key), true) = (text(index_attr::DATE_SORT), item.contains_key(attr::CHANGE_VERSION)) else {
        return Err(QueryError::NotARecord { index, pk });
    };
    let deleted = item.get(attr::DELETED) == Some(&AttributeValue::Bool(true));
    Ok(QueriedRecord { sort_key, pk, deleted, record: record_json(&item) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(collection: Collection) -> RecordQuery {
        RecordQuery { collection, person: None, dates: None, include_deleted: false, limit: None }
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn a_range_reads_each_month_it_touches_in_every_shard_between_its_days() {
        let q = RecordQuery { dates: Some((day("2026-10-30"), day("2026-12-02"))), ..query(Collection::Clockings) };
        let groups = plan(&q).unwrap();
        assert_eq!(groups.len(), 3);
        assert!(groups.iter().all(|g| g.len() == index::DATE_SHARDS as usize));
        assert_eq!(groups[0][0].partition, "clockings#2026-10#0");
        assert_eq!(groups[2][7].partition, "clockings#2026-12#7");
        assert_eq!(groups[1][3].sort_between, Some(("2026-10-30".into(), "2026-12-03".into())));
        assert!(groups.iter().flatten().all(|r| r.index == DATE_INDEX));
    }

    #[test]
    fn a_person_is_one_partition_and_tombstones_are_their_own() {
        let q = RecordQuery { person: Some("7".into()), include_deleted: true, ..query(Collection::Absences) };
        let groups = plan(&q).unwrap();
        let partitions: Vec<&str> = groups[0].iter().map(|r| r.partition.as_str()).collect();
        assert_eq!(partitions, ["absences#7", "deleted#absences#7"]);
        assert_eq!(groups[0][0].index, PERSON_INDEX);
        assert_eq!(groups[0][0].sort_between, None);
    }

    #[test]
    fn a_reference_collection_is_read_whole() {
        let groups = plan(&query(Collection::ShiftDefinitions)).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].len(), index::DATE_SHARDS as usize);
        assert_eq!(groups[0][0].partition, "shift-definitions#0");
    }

    #[test]
    fn filters_that_cannot_apply_are_refused_with_the_reason() {
        let person = RecordQuery { person: Some("1".into()), ..query(Collection::People) };
        assert_eq!(plan(&person), Err(QueryError::NoPerson(Collection::People)));
        let dated = RecordQuery { dates: Some((day("2026-01-01"), day("2026-01-01"))), ..query(Collection::Contracts) };
        assert_eq!(plan(&dated), Err(QueryError::NotDated(Collection::Contracts)));
        assert_eq!(plan(&query(Collection::Clockings)), Err(QueryError::Unfiltered(Collection::Clockings)));
        let backwards =
            RecordQuery { dates: Some((day("2026-02-01"), day("2026-01-01"))), ..query(Collection::Breaks) };
        assert!(matches!(plan(&backwards), Err(QueryError::EmptyRange { .. })));
        let wide = RecordQuery { dates: Some((day("2000-01-01"), day("2030-01-01"))), ..query(Collection::Breaks) };
        assert_eq!(plan(&wide), Err(QueryError::RangeTooWide));
        let last = RecordQuery { dates: Some((NaiveDate::MAX, NaiveDate::MAX)), ..query(Collection::Breaks) };
        assert_eq!(plan(&last), Err(QueryError::RangeTooWide));
        let person_on_contracts = RecordQuery { person: Some("1".into()), ..query(Collection::Contracts) };
        assert!(plan(&person_on_contracts).is_ok());
    }
}
