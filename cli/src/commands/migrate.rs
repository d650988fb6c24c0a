//! `migrate-indexes`: the one-off migration that gives items stored before the read indexes
//! their index keys (`records::migrate`).

use super::pass::{self, PassArgs};
use crate::context::{CliError, Context};
use crate::output;
use crate::Health;
use protime_webhooks::records::migrate;

pub async fn run(context: &Context, args: PassArgs) -> Result<Health, CliError> {
    let table = context.table()?;
    let json = context.global.json;
    let spinner = output::progress(json, None, "adding index keys");
    let report = migrate::add_index_keys(&context.dynamodb(), table, args.parallelism(), |so_far| {
        spinner.set_message(format!("{} items read, {} records updated", so_far.scanned, so_far.updated))
    })
    .await;
    spinner.finish_and_clear();
    let report = report.map_err(pass::cli_error)?;
    let counts = [
        ("given index keys", report.updated, ""),
        ("changed meanwhile", report.changed_meanwhile, " (rewritten with their keys by another writer)"),
    ];
    pass::print(json, &report, &[], &counts);
    Ok(Health::Healthy)
}
