//! `query COLLECTION [--person ID] [--date D | --from D --to D] [--limit N] [--include-deleted]`:
//! records of one collection through the read indexes (Query only, never Scan).

use crate::context::{CliError, Context};
use crate::output;
use crate::Health;
use chrono::NaiveDate;
use protime_webhooks::records::json::Json;
use protime_webhooks::records::query::{self, QueryError, RecordQuery};
use protime_webhooks::Collection;

#[derive(clap::Args)]
pub struct Args {
    collection: Collection,
    /// Only this person's records (`person.id`).
    #[arg(long, value_name = "ID")]
    person: Option<String>,
    /// Only the records of this day (YYYY-MM-DD).
    #[arg(long, value_name = "D", conflicts_with_all = ["from", "to"])]
    date: Option<NaiveDate>,
    /// Only the records from this day on (YYYY-MM-DD), with --to.
    #[arg(long, value_name = "D", requires = "to")]
    from: Option<NaiveDate>,
    /// Only the records up to this day, inclusive (YYYY-MM-DD), with --from.
    #[arg(long, value_name = "D", requires = "from")]
    to: Option<NaiveDate>,
    /// At most this many records (the first in date, then id order).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Also the tombstones the filter matches (a Delete's tombstone has no date or person:
    /// only an unfiltered read of a reference collection, or of a person, lists it).
    #[arg(long)]
    include_deleted: bool,
}

pub async fn run(context: &Context, args: Args) -> Result<Health, CliError> {
    let dates = match (args.date, args.from, args.to) {
        (Some(day), _, _) => Some((day, day)),
        (None, Some(from), Some(to)) => Some((from, to)),
        _ => None,
    };
    let request = RecordQuery {
        collection: args.collection,
        person: args.person,
        dates,
        include_deleted: args.include_deleted,
        limit: args.limit,
    };
    // Refuse a filter that cannot apply before anything is resolved or read.
    query::plan(&request).map_err(|e| CliError::Input(e.to_string()))?;
    let table = context.table()?;
    let json = context.global.json;
    let spinner = output::progress(json, None, &format!("querying {}", request.collection));
    let records =
        query::run(&context.dynamodb(), table, &request, |n| spinner.set_message(format!("{n} records read")))
            .await
            .map_err(|e| match e {
                QueryError::Unavailable { .. } | QueryError::NotARecord { .. } => CliError::Aws(e.to_string()),
                other => CliError::Input(other.to_string()),
            });
    spinner.finish_and_clear();
    let records = records?;
    if json {
        // Built as text: the records' numbers are printed exactly as Protime sent them.
        let list: Vec<String> = records.iter().map(|r| r.record.to_string()).collect();
        println!("{{\"records\":[{}],\"count\":{}}}", list.join(","), records.len());
        return Ok(Health::Healthy);
    }
    let rows: Vec<Vec<String>> = records.iter().map(|r| row(&r.record)).collect();
    let deleted: Vec<bool> = records.iter().map(|r| r.deleted).collect();
    output::table(&["date", "id", "person", "changeVersion", "deleted", "fields"], &rows, &deleted);
    println!("{} record{}", records.len(), if records.len() == 1 { "" } else { "s" });
    Ok(Health::Healthy)
}

/// One line of the table: the keys a reader scans for, then the other fields as JSON.
fn row(record: &Json) -> Vec<String> {
    let plain = |value: Option<&Json>| match value {
        Some(Json::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let person = record.get("person").and_then(|p| p.get("id"));
    let Json::Object(fields) = record else { return vec![String::new(); 6] };
    let rest: Vec<(String, Json)> = fields
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "id" | "changeVersion" | "date" | "deleted"))
        .cloned()
        .collect();
    let deleted = if record.get("deleted") == Some(&Json::Bool(true)) { "yes" } else { "" };
    vec![
        plain(record.get("date")),
        plain(record.get("id")),
        plain(person),
        plain(record.get("changeVersion")),
        deleted.to_owned(),
        Json::Object(rest).to_string(),
    ]
}
