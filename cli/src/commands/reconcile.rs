//! `reconcile COLLECTION… [--dry-run] [--max-sweep N] [--wait] [--json]`: asks the deployed syncer for a
//! reconciliation now — a full pass of each collection's window beside its delta, repairing what
//! is missing or behind and sweeping what Protime no longer has — and prints each collection's
//! drift. `--dry-run` compares and reports (with sample ids) but writes no record. A sweep that
//! would tombstone more than `SWEEP_LIMIT` records is held; `--max-sweep N` repeats the pass
//! allowing up to N.
//!
//! The payload is `{"collections":[…],"reconcile":true,"dryRun":bool[,"maxSweep":N]}`; with `--wait` the same
//! request is sent again while a collection's pass is partial (it goes on where it stopped).

use super::sync::{run_invocation, Invocation};
use crate::context::{CliError, Context};
use crate::Health;
use protime_webhooks::sync::SyncRequest;
use protime_webhooks::Collection;

#[derive(clap::Args)]
pub struct Args {
    /// The collections to reconcile (configured in the syncer's COLLECTIONS); commas or spaces.
    #[arg(required = true, num_args = 1.., value_delimiter = ',')]
    collections: Vec<Collection>,
    /// Compare and report only: no record is written and the delta is left alone.
    #[arg(long)]
    dry_run: bool,
    /// Let this pass's sweep tombstone up to N records (a sweep held over SWEEP_LIMIT, checked
    /// in Protime first).
    #[arg(long, value_name = "N", conflicts_with = "dry_run")]
    max_sweep: Option<u64>,
    /// Invoke again while any collection's pass is partial (or busy), then print the last report.
    #[arg(long)]
    wait: bool,
    /// Seconds between invocations with --wait.
    #[arg(long, default_value_t = 2, value_name = "SECONDS")]
    pause_seconds: u64,
    /// With --wait: give up after this many invocations.
    #[arg(long, value_name = "N", requires = "wait")]
    max_runs: Option<u32>,
}

/// The syncer's reconcile request (`maxSweep` only when given).
fn request(collections: &[String], dry_run: bool, max_sweep: Option<u64>) -> SyncRequest {
    SyncRequest {
        collections: Some(collections.to_vec()),
        reconcile: true,
        dry_run,
        max_sweep,
        ..SyncRequest::default()
    }
}

/// The reconcile request as the syncer receives it.
#[cfg(test)]
fn payload(collections: &[&str], dry_run: bool, max_sweep: Option<u64>) -> serde_json::Value {
    let names: Vec<String> = collections.iter().map(|&c| c.to_owned()).collect();
    serde_json::to_value(request(&names, dry_run, max_sweep)).expect("a sync request serializes")
}

pub async fn run(context: &Context, args: Args) -> Result<Health, CliError> {
    let names: Vec<String> = args.collections.iter().map(|c| c.as_str().to_owned()).collect();
    let request = request(&names, args.dry_run, args.max_sweep);
    run_invocation(
        context,
        Invocation {
            collections: names,
            first: request.clone(),
            // The same request continues the pass under way (a dry run stays a dry run).
            again: request,
            wait: args.wait,
            pause_seconds: args.pause_seconds,
            max_runs: args.max_runs,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_payload_is_the_syncers_reconcile_request() {
        let request = super::payload(&["clockings", "people"], true, None);
        let parsed = protime_webhooks::sync::SyncRequest::from_payload(request).unwrap();
        assert!(parsed.reconcile && parsed.dry_run && parsed.max_sweep.is_none());
        let allowed = super::payload(&["clockings"], false, Some(250));
        assert_eq!(protime_webhooks::sync::SyncRequest::from_payload(allowed).unwrap().max_sweep, Some(250));
        assert_eq!(parsed.collections, Some(vec!["clockings".to_owned(), "people".to_owned()]));
    }
}
