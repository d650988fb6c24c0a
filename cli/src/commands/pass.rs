//! What the operator's passes over the table share (`migrate-indexes`, `apply-field-policy`):
//! how hard they work the table, their errors, and their report.

use crate::context::CliError;
use crate::output;
use protime_webhooks::records::migrate::{self, MigrationError, MigrationReport, Parallelism};

#[derive(clap::Args, Debug)]
pub struct PassArgs {
    /// Scan segments read at once (1 to 64). A run that was cut off goes on only with the count
    /// it was cut off with.
    #[arg(long, default_value_t = migrate::SEGMENTS, value_parser = clap::value_parser!(i32).range(1..=migrate::MAX_SEGMENTS as i64))]
    segments: i32,
    /// Writes in flight in each segment: fewer for a table with little provisioned capacity.
    #[arg(long, default_value_t = migrate::UPDATES_IN_FLIGHT as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
    in_flight: u16,
}

impl PassArgs {
    pub fn parallelism(&self) -> Parallelism {
        Parallelism { segments: self.segments, updates_in_flight: usize::from(self.in_flight) }
    }
}

/// A pass's error as the command line reports it: the table unavailable is AWS's, the rest the
/// operator's input.
pub fn cli_error(error: MigrationError) -> CliError {
    match error {
        MigrationError::Unavailable { .. } => CliError::Aws(error.to_string()),
        MigrationError::SegmentsDiffer { .. } | MigrationError::Parallelism => CliError::Input(error.to_string()),
    }
}

/// A pass's report: as JSON (the report's counts, and `named` beside them), or one line each:
/// `named` first, the items read and records, then `counts` (label, count, a note after it).
pub fn print(json: bool, report: &MigrationReport, named: &[(&str, String)], counts: &[(&str, u64, &str)]) {
    if json {
        let mut value = serde_json::to_value(report).unwrap_or_default();
        for (label, text) in named {
            value[*label] = serde_json::Value::String(text.clone());
        }
        output::json(&value);
        return;
    }
    for (label, text) in named {
        println!("{label:<20}{text}");
    }
    println!("{:<20}{}", "items read", report.scanned);
    println!("{:<20}{}", "records", report.records);
    for (label, count, note) in counts {
        println!("{label:<20}{count}{note}");
    }
    if report.resumed {
        println!("resumed             yes (went on from a run that was cut off)");
    }
}
