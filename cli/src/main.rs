//! `protime-webhooks`: the operator's command line for a deployment (or `make run`'s stack).
//!
//! Exit codes, so it can drive monitoring: 0 healthy, 1 an error (nothing could be checked),
//! 2 it ran fine but found something unhealthy (an expiring or Disabled subscription, a lagging
//! or failing sync, a signature that matches no key, a body the receiver did not accept).
//!
//! One command per file under `commands/`; `context` finds the AWS resources (flags, the
//! functions' variables, or a stack's outputs); `output` prints text (coloured only on a
//! terminal, never with `NO_COLOR`) or `--json`, and progress on standard error (a terminal only).

mod commands;
mod context;
mod output;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "protime-webhooks", version, about = "Operate a protime-webhooks deployment")]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Where the deployment is. The AWS settings follow the standard credential chain.
#[derive(clap::Args, Clone, Debug)]
pub struct Global {
    /// AWS region (default: the standard chain, e.g. AWS_REGION).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// AWS profile (default: the standard chain, e.g. AWS_PROFILE).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Endpoint for every AWS service, e.g. the local stack's moto: http://127.0.0.1:5050. A
    /// service's own variable wins for that service (AWS_ENDPOINT_URL_LAMBDA for the syncer).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// The deployed stack: its outputs give the table, bucket, syncer and renewer functions,
    /// change bus, key prefix, Protime credentials secret and destination base that no flag or
    /// variable names.
    #[arg(long, global = true, value_name = "NAME")]
    pub stack: Option<String>,
    /// The record table (the stack's TableName output).
    #[arg(long, global = true, env = "TABLE_NAME")]
    pub table: Option<String>,
    /// The quarantine bucket (the stack's QuarantineBucketName output).
    #[arg(long, global = true, env = "QUARANTINE_BUCKET")]
    pub bucket: Option<String>,
    /// The syncer function (the stack's SyncerFunctionName output).
    #[arg(long, global = true, env = "SYNCER_FUNCTION")]
    pub syncer_function: Option<String>,
    /// The change bus (the stack's ChangeBusName output), for republish.
    #[arg(long, global = true, env = "EVENT_BUS_NAME")]
    pub event_bus: Option<String>,
    /// The signing-keys secret, every collection's key in one [default:
    /// protime-webhooks/signing-keys, or the stack's SigningKeysSecretArn output].
    #[arg(long, global = true, env = "SIGNING_KEYS_SECRET", value_name = "SECRET_ID")]
    pub keys_secret: Option<String>,
    /// The Protime client credentials secret (the stack's ProtimeCredentialsSecretArn output),
    /// for doctor and webhooks.
    #[arg(long, global = true, env = "PROTIME_CREDENTIALS_SECRET", value_name = "SECRET_ID")]
    pub credentials_secret: Option<String>,
    /// The renewer's DESTINATION_BASE_URL (from the stack's DestinationUrlPattern output): a
    /// collection's webhook is ours when it points at <base>/webhooks/<collection>.
    #[arg(long, global = true, env = "DESTINATION_BASE_URL", value_name = "URL")]
    pub destination_base_url: Option<String>,
    /// The renewer function (the stack's RenewerFunctionName output): doctor and webhooks read
    /// its COLLECTIONS, EXTERNAL_REFERENCES, RENEW_BEFORE_HOURS and Protime URLs from its
    /// environment where no variable of this shell sets them.
    #[arg(long, global = true, env = "RENEWER_FUNCTION", value_name = "NAME")]
    pub renewer_function: Option<String>,
    /// Print JSON (a stable schema) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// One row per collection: subscription status, webhook, validUntil and hours left, last
    /// renewal and error, last event received, bodies quarantined in the last 24 h; sync mode
    /// and phase, initial-load progress, lag, sync errors. Exit 2 if any row is unhealthy.
    Status(commands::status::Args),
    /// Ask the deployed syncer for a run or a backfill of collections and print its report.
    /// Exit 2 if a collection ended in error or conflict.
    Sync(commands::sync::Args),
    /// Ask the deployed syncer to reconcile collections now (a full pass that repairs and sweeps
    /// the copy) and print each one's drift; --dry-run only compares. Exit 2 on an error.
    Reconcile(commands::reconcile::Args),
    /// The stored record: changeVersion, source, receivedAt, tombstone and fields.
    Get(commands::get::Args),
    /// Records of one collection by date (--date, --from/--to), by person (--person) or, for
    /// reference data, whole: through the table's read indexes, in date then id order.
    Query(commands::query::Args),
    /// Put records' current versions on the change bus again, as the publisher built their
    /// events (same detail-type, same sequence), for consumers that missed them: one record
    /// (--id, a GetItem) or those written since a time (--since, a Scan filtered to the
    /// collection). Idempotent: consumers deduplicate by sequence. Exit 2 if some could not be put.
    Republish(commands::republish::Args),
    /// Give the records stored before the read indexes their index keys (once, after the
    /// upgrade that added them): resumable, and a second run changes nothing.
    MigrateIndexes(commands::pass::PassArgs),
    /// Bring what is stored under the stack's field policy (FIELD_POLICY: this shell's, else the
    /// syncer function's with --stack): each record it changes is written again at the same
    /// changeVersion (source "policy"), and the change feed tells consumers. Resumable, and a
    /// second run changes nothing.
    ApplyFieldPolicy(commands::pass::PassArgs),
    /// Check a captured body and Authorization value against the stored keys (never printed).
    Verify(commands::verify::Args),
    /// Sign a body with the stored key and POST it: the quickest end-to-end check.
    Send(commands::send::Args),
    /// A read-only check of the tenant, one line per check with what to do when it fails: the
    /// credentials secret; a token and its scopes (webhooks read/write, each collection's read;
    /// refused as a set, each is asked for alone and the missing ones named); one list page per
    /// collection (the syncer's filter, today only; never a delta); our webhooks (missing,
    /// Disabled, expiring within RENEW_BEFORE_HOURS); each Enabled one's signing key (read,
    /// never printed); an HTTPS destination (plain HTTP on 127.0.0.1/localhost: a warning).
    /// Exit 0 all ok (warnings included), 2 something needs action, 1 a check could not be made.
    /// `--json`: `{"checks":[{"name","status","detail","remedy"?}],"healthy"}`, status one of
    /// ok, warn, action, error, skipped (needs a check that failed).
    Doctor(commands::doctor::Args),
    /// The tenant's webhooks (`list`), and deleting ours (`delete`) before a teardown.
    #[command(subcommand)]
    Webhooks(commands::webhooks::Command),
    /// What the receiver set aside: signed bodies that can never be stored.
    #[command(subcommand)]
    Quarantine(commands::quarantine::Command),
}

/// What a command found: all healthy, or something to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy,
}

fn main() -> ExitCode {
    // A usage error exits 1 like every other error (clap's own 2 means "unhealthy" here).
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("could not start: {e}")),
    };
    let result = runtime.block_on(async {
        let context = context::Context::new(&cli.global).await?;
        match cli.command {
            Command::Status(args) => commands::status::run(&context, args).await,
            Command::Sync(args) => commands::sync::run(&context, args).await,
            Command::Reconcile(args) => commands::reconcile::run(&context, args).await,
            Command::Get(args) => commands::get::run(&context, args).await,
            Command::Query(args) => commands::query::run(&context, args).await,
            Command::Republish(args) => commands::republish::run(&context, args).await,
            Command::MigrateIndexes(args) => commands::migrate::run(&context, args).await,
            Command::ApplyFieldPolicy(args) => commands::apply_policy::run(&context, args).await,
            Command::Verify(args) => commands::verify::run(&context, args).await,
            Command::Send(args) => commands::send::run(&context, args).await,
            Command::Quarantine(command) => commands::quarantine::run(&context, command).await,
            Command::Doctor(args) => commands::doctor::run(&context, args).await,
            Command::Webhooks(command) => commands::webhooks::run(&context, command).await,
        }
    });
    match result {
        Ok(Health::Healthy) => ExitCode::SUCCESS,
        Ok(Health::Unhealthy) => ExitCode::from(2),
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("protime-webhooks: {message}");
    ExitCode::FAILURE
}

/// Reads a body from a file, or from standard input for `-`.
pub fn read_body(path: &PathBuf) -> Result<Vec<u8>, context::CliError> {
    if path.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut body)
            .map_err(|e| context::CliError::Input(format!("standard input: {e}")))?;
        return Ok(body);
    }
    std::fs::read(path).map_err(|e| context::CliError::Input(format!("{}: {e}", path.display())))
}
