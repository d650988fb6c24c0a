//! `migrate-indexes`: the one-off migration that gives items stored before the read indexes
//! their index keys (`records::migrate`).

use crate::context::{CliError, Context};
use crate::output;
use crate::Health;
use protime_webhooks::records::migrate;

pub async fn run(context: &Context) -> Result<Health, CliError> {
    let table = context.table()?;
    let json = context.global.json;
    let spinner = output::progress(json, None, "adding index keys");
    let report = migrate::add_index_keys(&context.dynamodb(), table, |so_far| {
        spinner.set_message(format!("{} items read, {} records updated", so_far.scanned, so_far.updated))
    })
    .await;
    spinner.finish_and_clear();
    let report = report.map_err(|e| CliError::Aws(e.to_string()))?;
    if json {
        output::json(&serde_json::to_value(report).unwrap_or_default());
    } else {
        println!("items read          {}", report.scanned);
        println!("records             {}", report.records);
        println!("given index keys    {}", report.updated);
        println!("changed meanwhile   {} (rewritten with their keys by another writer)", report.changed_meanwhile);
        if report.resumed {
            println!("resumed             yes (went on from a run that was cut off)");
        }
    }
    Ok(Health::Healthy)
}
