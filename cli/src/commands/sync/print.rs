//! The report as text: a table of the collections, then a line for each thing the table cannot
//! say (drift, a held sweep, pages set aside, what the next run does), and with `--wait` the
//! totals of every run.

use super::report::{name_of, CollectionRun, Report, Total};
use crate::output;
use protime_webhooks::sync::state::{Failing, HeldSweep};
use protime_webhooks::sync::sweep::Drift;
use protime_webhooks::sync::Outcome;

/// The last report: its table, then each collection's notes.
pub(super) fn print_report(report: &Report, waited: bool) {
    print_runs(report);
    for run in &report.collections {
        print_notes(run, report.throttled, waited);
    }
}

/// A row per collection: outcome, phase, pages, records, lag and error.
fn print_runs(report: &Report) {
    let dash = || "-".to_owned();
    let header = ["COLLECTION", "OUTCOME", "PHASE", "PAGES", "STORED", "DUPLICATE", "DELETED", "LAG", "ERROR"];
    let rows: Vec<Vec<String>> = report
        .collections
        .iter()
        .map(|c| {
            vec![
                c.collection.clone(),
                c.outcome.name(),
                c.phase.as_ref().map(name_of).unwrap_or_else(dash),
                c.pages.to_string(),
                c.records.stored.to_string(),
                c.records.duplicate.to_string(),
                c.records.deleted.to_string(),
                c.lag_seconds.map(output::duration).unwrap_or_else(dash),
                c.error.as_deref().map(output::redact).unwrap_or_else(dash),
            ]
        })
        .collect();
    let unhealthy: Vec<bool> = report
        .collections
        .iter()
        .map(|c| matches!(c.outcome.known(), Some(Outcome::Error | Outcome::Conflict)))
        .collect();
    output::table(&header, &rows, &unhealthy);
}

/// What the table cannot say of a collection's run, a line each: what a full pass found (or
/// that a reconciliation goes on, and nothing more), Protime asking to wait, a held sweep, pages
/// set aside, an expired deltaLink, and what the next run does.
fn print_notes(c: &CollectionRun, throttled: bool, waited: bool) {
    if let Some(drift) = &c.drift {
        print_drift(&c.collection, drift);
    } else if c.reconciling && c.outcome.known() == Some(Outcome::Partial) && !waited {
        println!("{}: reconciliation under way: the next run goes on with it (--wait keeps invoking)", c.collection);
        return;
    }
    if let Some(waiting) = &c.waiting {
        println!("{}: {}", c.collection, output::redact(waiting));
    }
    if let Some(held) = &c.held {
        print_held(&c.collection, held);
    }
    for (what, failing) in [("reconciliation", &c.reconcile_failing), ("history", &c.history_failing)] {
        if let Some(failing) = failing {
            print_set_aside(&c.collection, what, failing);
        }
    }
    if c.delta_expired {
        println!("{}: the deltaLink had expired (410 Gone): its initial load started again", c.collection);
    }
    if !waited {
        print_next_run(c, throttled);
    }
}

/// What a full pass that completed found (a dry run's with sample ids).
fn print_drift(collection: &str, d: &Drift) {
    let kind = if d.samples.is_some() { "dry run" } else { "full pass complete" };
    println!(
        "{}: {kind}: drift missing {} behind {} swept {}{}",
        collection,
        d.missing,
        d.behind,
        d.swept,
        if d.baseline { " (the first load)" } else { "" }
    );
    if let Some(samples) = &d.samples {
        for (name, ids) in [("missing", &samples.missing), ("behind", &samples.behind), ("swept", &samples.swept)] {
            if !ids.is_empty() {
                println!("  {name}: {}", ids.join(", "));
            }
        }
    }
}

/// A sweep held over its limit, and the command that lets it through.
fn print_held(collection: &str, held: &HeldSweep) {
    println!(
        "{}: sweep held: it would tombstone {} records (limit {}){}; nothing was tombstoned. Check them in \
         Protime, then: protime-webhooks reconcile {} --max-sweep {}",
        collection,
        held.would_sweep,
        held.limit,
        if held.unreadable_ids > 0 {
            format!(", and {} returned records had no readable id", held.unreadable_ids)
        } else {
            String::new()
        },
        collection,
        held.would_sweep
    );
    if !held.sample_ids.is_empty() {
        println!("  for example: {}", held.sample_ids.join(", "));
    }
}

/// A page of the reconciliation or the history set aside, and when it is tried again.
fn print_set_aside(collection: &str, what: &str, f: &Failing) {
    println!(
        "{}: {what}: a page set aside ({} attempts since {}), tried again at {}: {}",
        collection,
        f.attempts,
        f.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        f.retry_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        output::redact(&f.error)
    );
}

/// Without `--wait`: what the next run does with a collection that is partial or busy.
fn print_next_run(c: &CollectionRun, throttled: bool) {
    match c.outcome.known() {
        Some(Outcome::Partial) => {
            println!("{}: partial: the next run resumes from its checkpoint (--wait keeps invoking)", c.collection)
        }
        Some(Outcome::Busy) if throttled => println!(
            "{}: busy: Lambda refused the invoke (TooManyRequestsException): the function is at its \
             reserved concurrency, another invocation is running (--wait waits for it)",
            c.collection
        ),
        Some(Outcome::Busy) => println!("{}: busy: another invocation holds its lease", c.collection),
        _ => {}
    }
}

/// With `--wait`: the pages and records of every run, by collection.
pub(super) fn print_totals(totals: &[Total], runs: u32) {
    println!();
    println!("{runs} {} in all:", if runs == 1 { "run" } else { "runs" });
    let header =
        ["COLLECTION", "PAGES", "FETCHED", "STORED", "DUPLICATE", "STALE", "DELETED", "QUARANTINED", "INVALID"];
    let rows: Vec<Vec<String>> = totals
        .iter()
        .map(|t| {
            let r = t.records;
            [t.collection.clone(), t.pages.to_string()]
                .into_iter()
                .chain(
                    [r.fetched, r.stored, r.duplicate, r.stale, r.deleted, r.quarantined, r.invalid]
                        .map(|n| n.to_string()),
                )
                .collect()
        })
        .collect();
    output::table(&header, &rows, &vec![false; rows.len()]);
}
