//! `apply-field-policy`: brings what is already stored under the stack's field policy
//! (`records::rewrite`): a resumable pass, the same `changeVersion` kept, a second run changing
//! nothing.

use super::pass::{self, PassArgs};
use crate::context::{CliError, Context};
use crate::output;
use crate::Health;

pub async fn run(context: &Context, args: PassArgs) -> Result<Health, CliError> {
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
    let spinner = output::progress(json, None, "applying the field policy");
    let client = context.dynamodb();
    let parallelism = args.parallelism();
    let report =
        protime_webhooks::records::rewrite::apply_field_policy(&client, table, &policy, parallelism, |so_far| {
            spinner.set_message(format!("{} items read, {} records rewritten", so_far.scanned, so_far.updated))
        })
        .await;
    spinner.finish_and_clear();
    let report = report.map_err(pass::cli_error)?;
    let counts = [
        ("rewritten", report.updated, ""),
        ("changed meanwhile", report.changed_meanwhile, " (written by another writer, under the policy)"),
    ];
    pass::print(json, &report, &[("policy", policy.fields.to_setting())], &counts);
    Ok(Health::Healthy)
}
