//! `republish COLLECTION [--id ID] [--since RFC3339]`: records' current versions put on the
//! change bus again, for consumers that missed them. The events are the publisher's own
//! (`publisher::change::stored_change`, `publisher::feed::entry` and `publish`): the same
//! detail-type rules and the same `sequence`, so a consumer that had the change drops it.

use crate::context::{aws_error, CliError, Context};
use crate::output;
use crate::Health;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, FixedOffset, Utc};
use protime_webhooks::publisher::bus::EventBridgeBus;
use protime_webhooks::publisher::change::{stored_change, Image};
use protime_webhooks::publisher::feed::{entry, publish, Entry, Retry};
use protime_webhooks::records::item::attr;
use protime_webhooks::Collection;

#[derive(clap::Args)]
pub struct Args {
    collection: Collection,
    /// Only this record: one consistent GetItem.
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// Only the records whose receivedAt is at or after this time (RFC 3339, e.g.
    /// 2026-12-01T00:00:00Z). Without --id the table is read with a Scan filtered to the
    /// collection: receivedAt is in no index key, and a Scan also sees tombstones and records
    /// stored before the indexes.
    #[arg(long, value_name = "RFC3339")]
    since: Option<DateTime<FixedOffset>>,
}

/// What a republish did.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Tally {
    /// Records that matched (one event each).
    records: u64,
    published: u64,
    /// Whether every matching record was published (else: run it again).
    complete: bool,
}

pub async fn run(context: &Context, args: Args) -> Result<Health, CliError> {
    let table = context.table()?.to_owned();
    let bus = EventBridgeBus::from_sdk(&context.sdk_for("EVENTBRIDGE"), context.event_bus()?);
    let json = context.global.json;
    let since = args.since.map(|t| t.with_timezone(&Utc));
    let spinner = output::progress(json, None, &format!("republishing {}", args.collection));
    let mut tally = Tally { complete: true, ..Default::default() };
    let mut pages = read(context, &table, &args, since);
    while tally.complete {
        let Some(items) = pages.next().await.transpose()? else { break };
        if items.is_empty() && args.id.is_some() {
            return Err(CliError::Input(format!("no record {}#{}", args.collection, args.id.unwrap_or_default())));
        }
        let entries: Vec<Option<Entry>> = items
            .iter()
            .filter(|item| since.is_none_or(|since| received_at(item).is_some_and(|at| at >= since)))
            .filter_map(|item| stored_change(item).filter(|c| c.collection == args.collection))
            .map(|change| Some(entry(&change)))
            .collect();
        let published = publish(&bus, &entries, Retry::default(), None).await;
        tally.records += entries.len() as u64;
        tally.published += published.published;
        tally.complete = published.first_unpublished.is_none();
        spinner.set_message(format!("{} of {} records republished", tally.published, tally.records));
    }
    spinner.finish_and_clear();
    report(context, &args, &tally)
}

fn report(context: &Context, args: &Args, tally: &Tally) -> Result<Health, CliError> {
    if context.global.json {
        let mut value = serde_json::to_value(tally).unwrap_or_default();
        value["collection"] = serde_json::json!(args.collection.as_str());
        output::json(&value);
    } else {
        println!("{} of {} {} records republished", tally.published, tally.records, args.collection);
        if !tally.complete {
            println!("{}", output::alarm("some events could not be put: run it again (consumers drop what they had)"));
        }
    }
    Ok(if tally.complete { Health::Healthy } else { Health::Unhealthy })
}

/// The record item's `receivedAt`, if it is a time.
fn received_at(item: &Image) -> Option<DateTime<Utc>> {
    let text = item.get(attr::RECEIVED_AT)?.as_s().ok()?;
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// The items to consider, a page at a time: the one record of `--id` (a consistent GetItem), or
/// a Scan of the collection's records (`pk` begins with `<collection>#`, and with `--since` a
/// `receivedAt` no earlier than its second: the exact time is checked on each item, as RFC 3339
/// texts of one second with different fractional digits do not compare as text).
struct Reader<'a> {
    client: aws_sdk_dynamodb::Client,
    table: &'a str,
    args: &'a Args,
    since: Option<DateTime<Utc>>,
    /// Where the Scan goes on; `None` once read to its end (or the record read).
    next: Option<Option<std::collections::HashMap<String, AttributeValue>>>,
}

fn read<'a>(context: &Context, table: &'a str, args: &'a Args, since: Option<DateTime<Utc>>) -> Reader<'a> {
    Reader { client: context.dynamodb(), table, args, since, next: Some(None) }
}

impl Reader<'_> {
    async fn next(&mut self) -> Option<Result<Vec<Image>, CliError>> {
        let start = self.next.take()?;
        Some(match &self.args.id {
            Some(id) => self.get(id).await,
            None => self.scan(start).await,
        })
    }

    async fn get(&self, id: &str) -> Result<Vec<Image>, CliError> {
        let pk = format!("{}#{id}", self.args.collection.as_str());
        let answer = self
            .client
            .get_item()
            .table_name(self.table)
            .key(attr::PK, AttributeValue::S(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("reading the record", e))?;
        Ok(answer.item.into_iter().collect())
    }

    async fn scan(&mut self, start: Option<Image>) -> Result<Vec<Image>, CliError> {
        let mut filter = "begins_with(#pk, :prefix)".to_owned();
        let mut request = self
            .client
            .scan()
            .table_name(self.table)
            .set_exclusive_start_key(start)
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_values(":prefix", AttributeValue::S(format!("{}#", self.args.collection.as_str())));
        if let Some(since) = self.since {
            filter.push_str(" AND #at >= :since");
            request = request.expression_attribute_names("#at", attr::RECEIVED_AT).expression_attribute_values(
                ":since",
                AttributeValue::S(since.format("%Y-%m-%dT%H:%M:%S").to_string()),
            );
        }
        let answer = request.filter_expression(filter).send().await.map_err(|e| aws_error("scanning the table", e))?;
        self.next = answer.last_evaluated_key.map(Some);
        Ok(answer.items.unwrap_or_default())
    }
}
