//! `migrate-indexes`: the one-off migration that gives items stored before the read indexes
//! their index keys (`records::migrate`).

use crate::context::{CliError, Context};
use crate::output;
use crate::Health;
use protime_webhooks::records::migrate::{self, MigrationError, Parallelism};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scan segments read at once (1 to 64). A run that was cut off goes on only with the count
    /// it was cut off with.
    #[arg(long, default_value_t = migrate::SEGMENTS, value_parser = clap::value_parser!(i32).range(1..=migrate::MAX_SEGMENTS as i64))]
    segments: i32,
    /// Updates in flight in each segment: fewer for a table with little provisioned capacity.
    #[arg(long, default_value_t = migrate::UPDATES_IN_FLIGHT as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
    in_flight: u16,
}

pub async fn run(context: &Context, args: Args) -> Result<Health, CliError> {
    let table = context.table()?;
    let json = context.global.json;
    let parallelism = Parallelism { segments: args.segments, updates_in_flight: usize::from(args.in_flight) };
    let spinner = output::progress(json, None, "adding index keys");
    let report = migrate::add_index_keys(&context.dynamodb(), table, parallelism, |so_far| {
        spinner.set_message(format!("{} items read, {} records updated", so_far.scanned, so_far.updated))
    })
    .await;
    spinner.finish_and_clear();
    let report = report.map_err(|e| match e {
        MigrationError::Unavailable { .. } => CliError::Aws(e.to_string()),
        MigrationError::SegmentsDiffer { .. } | MigrationError::Parallelism => CliError::Input(e.to_string()),
    })?;
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
