//! The one-off migration that gives items stored before the read indexes their index keys.
//!
//! A parallel Scan of the table ([`Parallelism`]: segments, updates in flight); each record item whose index keys are
//! missing or not those its fields give gets them by one `UpdateItem` that sets the keys only
//! (never data, `changeVersion` or `receivedAt`), on condition that the item is still the one
//! read (`changeOrder`, `deleted` and `receivedAt` as read): any later write, a tombstone at the
//! same version included, brings its own keys. Resumable: each
//! segment's position is kept in the table (`migration#index-keys#<segment>`) after every page, and
//! a run that was cut off goes on from there (with the segment count it was cut off with); when
//! every segment is through, the positions are removed. Idempotent: a second run reads everything and writes nothing.

use super::event::RecordId;
use super::index::{attr as index_attr, index_keys, IndexKeys};
use super::item::{attr, json_value, record_key};
use super::json::Json;
use crate::collection::Collection;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::stream::{self, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Scan segments read in parallel by default.
pub const SEGMENTS: i32 = 4;
/// The most segments a run takes (DynamoDB allows up to 1,000,000; a one-off pass needs few).
pub const MAX_SEGMENTS: i32 = 64;
/// Items per Scan page: each request stays short (a page of 1 MB can outlast the SDK's
/// operation timeout on a busy table, or on the local emulator, which filters a segment per
/// request), and a position is kept at least this often.
const SCAN_PAGE_ITEMS: i32 = 1_000;
/// Updates in flight per segment by default.
pub const UPDATES_IN_FLIGHT: usize = 16;

/// How hard a run works the table: Scan segments read at once, and updates in flight in each.
/// The defaults suit an on-demand table; a table with little provisioned capacity (or the local
/// emulator, which answers one request at a time and would starve a segment's Scan behind the
/// others' updates) wants fewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parallelism {
    pub segments: i32,
    pub updates_in_flight: usize,
}

impl Default for Parallelism {
    fn default() -> Self {
        Parallelism { segments: SEGMENTS, updates_in_flight: UPDATES_IN_FLIGHT }
    }
}
/// The partition key prefix of a segment's position.
pub const POSITION_PREFIX: &str = "migration#index-keys#";

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationReport {
    /// Items read (state items included).
    pub scanned: u64,
    /// Record items among them.
    pub records: u64,
    /// Records given their index keys.
    pub updated: u64,
    /// Records rewritten by another writer between the read and the update (they have theirs).
    pub changed_meanwhile: u64,
    /// Whether the run went on from the positions of one cut off.
    pub resumed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrationError {
    #[error("the record table is unavailable ({action}): {message}")]
    Unavailable { action: &'static str, message: String },
    #[error("a run with {cut_off} segments was cut off: run again with {cut_off} segments to go on from it")]
    SegmentsDiffer { cut_off: i32 },
    #[error("segments must be 1 to {MAX_SEGMENTS} and updates in flight at least 1")]
    Parallelism,
}

pub(crate) fn unavailable<E: std::error::Error + 'static>(action: &'static str) -> impl FnOnce(E) -> MigrationError {
    move |e| MigrationError::Unavailable { action, message: DisplayErrorContext(&e).to_string() }
}

#[derive(Default)]
struct Counts {
    scanned: AtomicU64,
    records: AtomicU64,
    updated: AtomicU64,
    changed_meanwhile: AtomicU64,
}

impl Counts {
    fn add(&self, outcome: ItemOutcome) {
        let counters: &[&AtomicU64] = match outcome {
            ItemOutcome::NotARecord => &[],
            ItemOutcome::Current => &[&self.records],
            ItemOutcome::Updated => &[&self.records, &self.updated],
            ItemOutcome::ChangedMeanwhile => &[&self.records, &self.changed_meanwhile],
        };
        for counter in counters {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn report(&self, resumed: bool) -> MigrationReport {
        MigrationReport {
            scanned: self.scanned.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            updated: self.updated.load(Ordering::Relaxed),
            changed_meanwhile: self.changed_meanwhile.load(Ordering::Relaxed),
            resumed,
        }
    }
}

/// What a pass does with each item it reads, and where it keeps its positions.
pub trait ItemMigration: Sync {
    /// The partition key prefix of its positions (`<prefix><segment>`).
    fn positions(&self) -> &'static str;

    /// What the pass does, kept with its positions: a run cut off under another (a field policy
    /// changed since) is not resumed, the pass starts over.
    fn fingerprint(&self) -> String {
        String::new()
    }

    /// Migrates one item as the Scan read it.
    fn migrate(
        &self,
        client: &aws_sdk_dynamodb::Client,
        table: &str,
        item: &HashMap<String, AttributeValue>,
    ) -> impl std::future::Future<Output = Result<ItemOutcome, MigrationError>> + Send;
}

/// The index keys migration ([`add_index_keys`]).
pub struct AddIndexKeys;

impl ItemMigration for AddIndexKeys {
    fn positions(&self) -> &'static str {
        POSITION_PREFIX
    }

    async fn migrate(
        &self,
        client: &aws_sdk_dynamodb::Client,
        table: &str,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<ItemOutcome, MigrationError> {
        migrate_item(client, table, item).await
    }
}

/// Gives every record item of `table` the index keys its fields give; `progress` is called
/// with the counts so far after every page.
pub async fn add_index_keys(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    parallelism: Parallelism,
    progress: impl Fn(MigrationReport) + Sync,
) -> Result<MigrationReport, MigrationError> {
    run(client, table, &AddIndexKeys, parallelism, progress).await
}

/// One resumable pass of `migration` over every item of `table`.
pub async fn run<M: ItemMigration>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    migration: &M,
    parallelism: Parallelism,
    progress: impl Fn(MigrationReport) + Sync,
) -> Result<MigrationReport, MigrationError> {
    parallelism.check()?;
    let positions = load_positions(client, table, migration, parallelism.segments).await?;
    let resumed = positions.iter().any(|p| p.is_some());
    let run = Migration { client, table, migration, parallelism, resumed, counts: Counts::default(), progress };
    let segments = positions.into_iter().enumerate().map(|(segment, position)| run.segment(segment as i32, position));
    for result in futures_util::future::join_all(segments).await {
        result?;
    }
    remove_positions(client, table, migration.positions(), parallelism.segments).await?;
    Ok(run.counts.report(resumed))
}

impl Parallelism {
    /// Refuses segments outside 1 to [`MAX_SEGMENTS`] and no updates in flight.
    fn check(self) -> Result<(), MigrationError> {
        if !(1..=MAX_SEGMENTS).contains(&self.segments) || self.updates_in_flight == 0 {
            return Err(MigrationError::Parallelism);
        }
        Ok(())
    }
}

/// Each segment's position, if a run cut off left one; refused if that run had another
/// segment count than `total`.
async fn load_positions<M: ItemMigration>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    migration: &M,
    total: i32,
) -> Result<Vec<Option<Position>>, MigrationError> {
    let (prefix, fingerprint) = (migration.positions(), migration.fingerprint());
    let mut positions = Vec::new();
    for segment in 0..total {
        let position = load_position(client, table, &format!("{prefix}{segment}")).await?;
        if position.as_ref().is_some_and(|saved| saved.of != fingerprint) {
            // Cut off while doing something else: start over.
            return Ok(vec![None; total as usize]);
        }
        if let Some(saved) = position.as_ref().filter(|saved| saved.segments != total) {
            return Err(MigrationError::SegmentsDiffer { cut_off: saved.segments });
        }
        positions.push(position.map(|saved| saved.position));
    }
    Ok(positions)
}

/// A segment's saved position, with the segment count and fingerprint of the run that saved it.
struct Saved {
    position: Position,
    segments: i32,
    of: String,
}

/// Removes every segment's position once all of them are through.
async fn remove_positions(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    prefix: &str,
    total: i32,
) -> Result<(), MigrationError> {
    for segment in 0..total {
        client
            .delete_item()
            .table_name(table)
            .key(attr::PK, AttributeValue::S(format!("{prefix}{segment}")))
            .send()
            .await
            .map_err(unavailable("removing the positions"))?;
    }
    Ok(())
}

/// One run over the table: what every segment shares.
struct Migration<'a, M, P> {
    client: &'a aws_sdk_dynamodb::Client,
    table: &'a str,
    migration: &'a M,
    parallelism: Parallelism,
    /// Whether the run went on from the positions of one cut off.
    resumed: bool,
    counts: Counts,
    /// Called with the counts so far after every page.
    progress: P,
}

impl<M: ItemMigration, P: Fn(MigrationReport) + Sync> Migration<'_, M, P> {
    /// Reads one segment page by page from `position`, migrating each page's items and keeping
    /// the segment's position after it.
    async fn segment(&self, segment: i32, position: Option<Position>) -> Result<(), MigrationError> {
        let mut after = match position {
            Some(Position::Done) => return Ok(()),
            Some(Position::After(pk)) => Some(pk),
            None => None,
        };
        loop {
            let page = self.scan_page(segment, after).await?;
            self.migrate_page(&page.items.unwrap_or_default()).await?;
            after = page.last_evaluated_key.and_then(|key| key.get(attr::PK)?.as_s().ok().cloned());
            let position = after.clone().map_or(Position::Done, Position::After);
            self.save_position(segment, &position).await?;
            (self.progress)(self.counts.report(self.resumed));
            if after.is_none() {
                return Ok(());
            }
        }
    }

    /// The page of `segment` after partition key `after` (from its start without one).
    async fn scan_page(&self, segment: i32, after: Option<String>) -> Result<ScanOutput, MigrationError> {
        self.client
            .scan()
            .table_name(self.table)
            .segment(segment)
            .total_segments(self.parallelism.segments)
            .limit(SCAN_PAGE_ITEMS)
            .set_exclusive_start_key(after.map(|pk| HashMap::from([(attr::PK.to_owned(), AttributeValue::S(pk))])))
            .send()
            .await
            .map_err(unavailable("scanning"))
    }

    /// Migrates a page's items, [`Parallelism::updates_in_flight`] at a time, and counts them;
    /// every update ends before an error is returned.
    async fn migrate_page(&self, items: &[HashMap<String, AttributeValue>]) -> Result<(), MigrationError> {
        self.counts.scanned.fetch_add(items.len() as u64, Ordering::Relaxed);
        let results: Vec<Result<ItemOutcome, MigrationError>> = stream::iter(items)
            .map(|item| self.migration.migrate(self.client, self.table, item))
            .buffer_unordered(self.parallelism.updates_in_flight)
            .collect()
            .await;
        for result in results {
            self.counts.add(result?);
        }
        Ok(())
    }
}

/// A segment's position: through, or after this partition key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    After(String),
    Done,
}

/// A segment's position and the segment count of the run that saved it.
async fn load_position(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
) -> Result<Option<Saved>, MigrationError> {
    let answer = client
        .get_item()
        .table_name(table)
        .key(attr::PK, AttributeValue::S(key.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(unavailable("reading the positions"))?;
    Ok(answer.item.map(|item| {
        let position = match item.get("after").and_then(|v| v.as_s().ok()) {
            Some(pk) => Position::After(pk.clone()),
            None => Position::Done,
        };
        let segments = item.get("segments").and_then(|v| v.as_n().ok()?.parse().ok()).unwrap_or(SEGMENTS);
        let of = item.get("of").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        Saved { position, segments, of }
    }))
}

impl<M: ItemMigration, P> Migration<'_, M, P> {
    async fn save_position(&self, segment: i32, position: &Position) -> Result<(), MigrationError> {
        let key = format!("{}{segment}", self.migration.positions());
        let mut item = HashMap::from([
            (attr::PK.to_owned(), AttributeValue::S(key)),
            ("segments".to_owned(), AttributeValue::N(self.parallelism.segments.to_string())),
        ]);
        if let Position::After(pk) = position {
            item.insert("after".into(), AttributeValue::S(pk.clone()));
        }
        let of = self.migration.fingerprint();
        if !of.is_empty() {
            item.insert("of".into(), AttributeValue::S(of));
        }
        let put = self.client.put_item().table_name(self.table).set_item(Some(item)).send().await;
        put.map_err(unavailable("saving a position"))?;
        Ok(())
    }
}

/// The index keys a record item should have, or nothing for an item that is not a record.
fn wanted_keys(item: &HashMap<String, AttributeValue>) -> Option<IndexKeys> {
    let (collection, id) = record_of(item)?;
    // The fields the keys come from, under their own names (a shadowed field is not one).
    let fields: Vec<(String, Json)> = ["date", "person"]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), json_value(item.get(name)?))))
        .collect();
    let keys = index_keys(collection, &id, &fields);
    Some(if item.get(attr::DELETED) == Some(&AttributeValue::Bool(true)) { keys.into_tombstone() } else { keys })
}

/// A record item's id, as stored (`N` or `S`).
pub(crate) fn item_id(item: &HashMap<String, AttributeValue>) -> Option<RecordId> {
    match item.get(attr::ID)? {
        AttributeValue::N(n) => Some(RecordId::Number(n.clone())),
        AttributeValue::S(s) => Some(RecordId::String(s.clone())),
        _ => None,
    }
}

/// The collection and id of a record item: its key is `<collection>#<id>` and it has a
/// `changeOrder`; `None` for state items (subscription, sync, leases, positions).
pub(crate) fn record_of(item: &HashMap<String, AttributeValue>) -> Option<(Collection, RecordId)> {
    let collection: Collection = item.get(attr::COLLECTION)?.as_s().ok()?.parse().ok()?;
    let id = item_id(item)?;
    let is_record = *item.get(attr::PK)?.as_s().ok()? == record_key(collection, &id);
    (is_record && item.contains_key(attr::CHANGE_ORDER)).then_some((collection, id))
}

fn has_keys(item: &HashMap<String, AttributeValue>, keys: &IndexKeys) -> bool {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str);
    text(index_attr::DATE_PARTITION) == Some(keys.date_partition.as_str())
        && text(index_attr::DATE_SORT) == Some(keys.date_sort.as_str())
        && text(index_attr::PERSON_PARTITION) == keys.person_partition.as_deref()
}

/// What the migration did with one scanned item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOutcome {
    /// A state item (subscription, sync, a position): it has no index keys.
    NotARecord,
    /// A record that already has the keys its fields give.
    Current,
    /// A record given its keys.
    Updated,
    /// A record written by another writer since it was read: that write brought its own keys.
    ChangedMeanwhile,
}

/// Gives one item, as the Scan read it, the index keys its fields give, if it is a record
/// without them and still the item read.
pub async fn migrate_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<ItemOutcome, MigrationError> {
    let Some(wanted) = wanted_keys(item) else { return Ok(ItemOutcome::NotARecord) };
    if has_keys(item, &wanted) {
        return Ok(ItemOutcome::Current);
    }
    let updated = set_keys(client, table, item, wanted).await?;
    Ok(if updated { ItemOutcome::Updated } else { ItemOutcome::ChangedMeanwhile })
}

/// What tells one write of a record from the next, with its placeholder: a newer version
/// changes `changeOrder`, and every write sets `receivedAt` anew (a tombstone at the same
/// version, a Delete at the stored version or the sweep's, also sets `deleted`).
const AS_READ: &[(&str, &str)] =
    &[(attr::CHANGE_ORDER, "order"), (attr::DELETED, "deleted"), (attr::RECEIVED_AT, "received")];

/// The condition that the item is still the one read: each of [`AS_READ`] equal to the value
/// read, or still absent, with its names and values. A condition, not a consistent Scan: a
/// consistent read is still a read, and a tombstone written between it and the update would
/// be given the live record's keys (and listed among the live records).
pub(crate) type Expression = (String, HashMap<String, String>, HashMap<String, AttributeValue>);
pub(crate) fn unchanged_since_read(item: &HashMap<String, AttributeValue>) -> Expression {
    let (mut names, mut values) = (HashMap::new(), HashMap::new());
    let clauses: Vec<String> = AS_READ
        .iter()
        .map(|(name, alias)| {
            names.insert(format!("#{alias}"), (*name).to_owned());
            match item.get(*name) {
                Some(value) => {
                    values.insert(format!(":{alias}"), value.clone());
                    format!("#{alias} = :{alias}")
                }
                None => format!("attribute_not_exists(#{alias})"),
            }
        })
        .collect();
    (clauses.join(" AND "), names, values)
}

/// Sets the keys on condition that the item is as read; `false` if it changed meanwhile.
async fn set_keys(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    item: &HashMap<String, AttributeValue>,
    keys: IndexKeys,
) -> Result<bool, MigrationError> {
    let (condition, names, values) = unchanged_since_read(item);
    let mut update = "SET #dp = :dp, #ds = :ds".to_owned();
    let mut request = client
        .update_item()
        .table_name(table)
        .key(attr::PK, item[attr::PK].clone())
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .expression_attribute_names("#dp", index_attr::DATE_PARTITION)
        .expression_attribute_names("#ds", index_attr::DATE_SORT)
        .expression_attribute_names("#pp", index_attr::PERSON_PARTITION)
        .expression_attribute_values(":dp", AttributeValue::S(keys.date_partition))
        .expression_attribute_values(":ds", AttributeValue::S(keys.date_sort));
    match keys.person_partition {
        Some(person) => {
            update.push_str(", #pp = :pp");
            request = request.expression_attribute_values(":pp", AttributeValue::S(person));
        }
        None => update.push_str(" REMOVE #pp"),
    }
    match request.update_expression(update).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(unavailable("adding index keys")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::event::parse_body;
    use crate::records::item::record_item;
    use crate::records::Source;

    fn item(body: &str) -> HashMap<String, AttributeValue> {
        record_item(Collection::Clockings, &parse_body(body.as_bytes()).unwrap()[0], Source::Webhook, "t")
    }

    #[test]
    fn the_keys_a_stored_item_should_have_are_those_the_store_writes() {
        for body in [
            r#"{"id":7,"changeVersion":"1","date":"2026-11-03","person":{"id":9}}"#,
            r#"{"id":"x","changeVersion":"1"}"#,
            r#"{"id":8,"changeVersion":"2","date":"2026-11-03","status":"Deleted"}"#,
            r#"{"changeType":"Delete","data":{"id":9,"changeVersion":"3"}}"#,
        ] {
            let written = item(body);
            let wanted = wanted_keys(&written).expect("a record");
            assert!(has_keys(&written, &wanted), "{body}");
            let mut old = written.clone();
            for name in index_attr::ALL {
                old.remove(*name);
            }
            assert!(!has_keys(&old, &wanted), "{body}");
        }
        let state = HashMap::from([(attr::PK.to_owned(), AttributeValue::S("sync#clockings".into()))]);
        assert_eq!(wanted_keys(&state), None);
    }

    #[test]
    fn the_update_is_conditional_on_the_item_as_read_absent_attributes_included() {
        let mut read = item(r#"{"id":7,"changeVersion":"1","date":"2026-11-03"}"#);
        read.remove(attr::DELETED);
        let (condition, names, values) = unchanged_since_read(&read);
        assert_eq!(condition, "#order = :order AND attribute_not_exists(#deleted) AND #received = :received");
        assert_eq!(names["#deleted"], attr::DELETED);
        assert_eq!(values[":received"], read[attr::RECEIVED_AT]);
        assert!(!values.contains_key(":deleted"));
    }
}
