//! `apply-field-policy`: brings what is already stored under the stack's field policy
//! (`records::rewrite`): a resumable pass, the same `changeVersion` kept, a second run changing
//! nothing.

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
    /// Writes in flight in each segment: fewer for a table with little provisioned capacity.
    #[arg(long, default_value_t = migrate::UPDATES_IN_FLIGHT as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
    in_flight: u16,
}

pub async fn run(context: &Context, args: Args) -> Result<Health, CliError> {
    let table = context.table()?;
    let json = context.global.json;
    let (policy, from) = context.data_policy().await?;
    if !json {
        eprintln!(
            "field policy {} ({from}); tombstones kept {} days",
            policy.fields.to_setting(),
            policy.tombstone_days
        );
    }
    let parallelism = Parallelism { segments: args.segments, updates_in_flight: usize::from(args.in_flight) };
    let spinner = output::progress(json, None, "applying the field policy");
    let client = context.dynamodb();
    let report =
        protime_webhooks::records::rewrite::apply_field_policy(&client, table, &policy, parallelism, |so_far| {
            spinner.set_message(format!("{} items read, {} records rewritten", so_far.scanned, so_far.updated))
        })
        .await;
    spinner.finish_and_clear();
    let report = report.map_err(|e| match e {
        MigrationError::Unavailable { .. } => CliError::Aws(e.to_string()),
        MigrationError::SegmentsDiffer { .. } | MigrationError::Parallelism => CliError::Input(e.to_string()),
    })?;
    if json {
        let mut value = serde_json::to_value(report).unwrap_or_default();
        value["policy"] = serde_json::Value::String(policy.fields.to_setting());
        output::json(&value);
    } else {
        println!("policy              {}", policy.fields.to_setting());
        println!("items read          {}", report.scanned);
        println!("records             {}", report.records);
        println!("rewritten           {}", report.updated);
        println!("changed meanwhile   {} (written by another writer, under the policy)", report.changed_meanwhile);
        if report.resumed {
            println!("resumed             yes (went on from a run that was cut off)");
        }
    }
    Ok(Health::Healthy)
}
