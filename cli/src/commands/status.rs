//! `status`: is every subscription alive, is the copy complete and current, and has anything
//! been quarantined?

use crate::context::{aws_error, quarantined_under, CliError, Context};
use crate::output;
use crate::Health;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use protime_webhooks::protime::WebhookStatus;
use protime_webhooks::records::item::attr;
use protime_webhooks::renewer::plan::SubscriptionState;
use protime_webhooks::renewer::state::{DynamoSubscriptionStore, SubscriptionStore};
use protime_webhooks::sync::plan::lag_seconds;
use protime_webhooks::sync::state::{state_from_item, sync_key, Phase, SyncMode, SyncState};
use protime_webhooks::Collection;
use serde_json::json;
use std::collections::HashMap;

#[derive(clap::Args)]
pub struct Args {
    /// Collections to report (default: every collection with a subscription or a sync item).
    #[arg(long, value_delimiter = ',')]
    collections: Vec<Collection>,
    /// A subscription expiring within this many hours is unhealthy (the renewer's window).
    #[arg(long, default_value_t = 48)]
    renew_before_hours: i64,
    /// A copy not complete for longer than this is unhealthy (the stack's SyncLagAlarmSeconds).
    #[arg(long, default_value_t = 2700)]
    max_lag_seconds: i64,
    /// How often each collection is reconciled (the syncer's RECONCILE_INTERVAL_HOURS): a
    /// collection not verified by a full pass within twice this is unhealthy (0: not checked).
    #[arg(long, default_value_t = 168)]
    reconcile_interval_hours: i64,
}

/// A collection's sync item as read.
enum SyncItem {
    Read(Box<SyncState>),
    Unreadable(String),
}

/// One row of the report.
struct Row {
    collection: Collection,
    state: Option<SubscriptionState>,
    sync: Option<SyncItem>,
    quarantined: Option<usize>,
    problems: Vec<&'static str>,
}

pub async fn run(context: &Context, args: Args) -> Result<Health, CliError> {
    let now = Utc::now();
    let store = DynamoSubscriptionStore::new(context.dynamodb(), context.table()?);
    let asked = if args.collections.is_empty() { Collection::ALL.to_vec() } else { args.collections.clone() };
    let states = store.load(&asked).await.map_err(|e| CliError::Aws(e.to_string()))?;
    let mut syncs = load_sync_items(context, &asked).await?;
    let shown: Vec<Collection> = asked
        .into_iter()
        .filter(|c| !args.collections.is_empty() || states.contains_key(c) || syncs.contains_key(c))
        .collect();
    let bar = output::progress(context.global.json, Some(shown.len() as u64), "reading the quarantine");
    let mut rows = Vec::new();
    for collection in shown {
        let state = states.get(&collection).cloned();
        let sync = syncs.remove(&collection);
        let quarantined = match &context.global.bucket {
            Some(_) => Some(quarantined_since(context, collection, now - Duration::hours(24)).await?),
            None => None,
        };
        bar.inc(1);
        let mut problems = problems(state.as_ref(), now, Duration::hours(args.renew_before_hours));
        problems.extend(sync_problems(sync.as_ref(), &args, now));
        rows.push(Row { collection, state, sync, quarantined, problems });
    }
    bar.finish_and_clear();
    let healthy = !rows.is_empty() && rows.iter().all(|r| r.problems.is_empty());
    if context.global.json {
        let collections: Vec<_> = rows.iter().map(|r| row_json(r, now)).collect();
        output::json(&json!({ "healthy": healthy, "collections": collections }));
    } else if rows.is_empty() {
        println!("{}", output::alarm("no subscriptions and no sync state yet: have the renewer and the syncer run?"));
    } else {
        print_table(&rows, now);
    }
    Ok(if healthy { Health::Healthy } else { Health::Unhealthy })
}

/// The `sync#<collection>` items of `collections` (one BatchGetItem; unprocessed keys again).
async fn load_sync_items(
    context: &Context,
    collections: &[Collection],
) -> Result<HashMap<Collection, SyncItem>, CliError> {
    let table = context.table()?;
    let by_key: HashMap<String, Collection> = collections.iter().map(|&c| (sync_key(c), c)).collect();
    let mut found = HashMap::new();
    let keys: Vec<_> =
        by_key.keys().map(|k| HashMap::from([(attr::PK.to_owned(), AttributeValue::S(k.clone()))])).collect();
    if keys.is_empty() {
        return Ok(found);
    }
    let mut request = KeysAndAttributes::builder()
        .set_keys(Some(keys))
        .consistent_read(true)
        .build()
        .map_err(|e| CliError::Aws(e.to_string()))?;
    let client = context.dynamodb();
    for round in 0..5u32 {
        if round > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
        }
        let answer = client
            .batch_get_item()
            .request_items(table, request.clone())
            .send()
            .await
            .map_err(|e| aws_error("reading the sync state", e))?;
        for item in answer.responses.unwrap_or_default().remove(table).unwrap_or_default() {
            let Some(&collection) = item.get(attr::PK).and_then(|v| v.as_s().ok()).and_then(|pk| by_key.get(pk)) else {
                continue;
            };
            let read = match state_from_item(item) {
                Ok(state) => SyncItem::Read(Box::new(state)),
                Err(e) => SyncItem::Unreadable(e.to_string()),
            };
            found.insert(collection, read);
        }
        match answer.unprocessed_keys.and_then(|mut u| u.remove(table)) {
            Some(rest) if !rest.keys().is_empty() => request = rest,
            _ => return Ok(found),
        }
    }
    Err(CliError::Aws("reading the sync state: the table kept some keys unprocessed".into()))
}

/// What makes a row's subscription unhealthy.
fn problems(state: Option<&SubscriptionState>, now: DateTime<Utc>, window: Duration) -> Vec<&'static str> {
    let Some(state) = state else { return vec!["no subscription"] };
    let mut problems = Vec::new();
    match &state.status {
        Some(WebhookStatus::Enabled) => {}
        Some(WebhookStatus::Disabled) => problems.push("disabled"),
        _ => problems.push("not enabled"),
    }
    if state.valid_until.is_none_or(|t| t - now <= window) {
        problems.push("expiring");
    }
    if state.last_error.is_some() {
        problems.push("last run failed");
    }
    if state.renewing_since.is_some() {
        problems.push("renewal interrupted");
    }
    problems
}

/// What makes a row's sync unhealthy: an error recorded by the last run(s), or a copy not
/// complete for longer than the alarm's threshold. An initial load still running is not.
fn sync_problems(sync: Option<&SyncItem>, args: &Args, now: DateTime<Utc>) -> Vec<&'static str> {
    match sync {
        None => Vec::new(),
        Some(SyncItem::Unreadable(_)) => vec!["sync state unreadable"],
        Some(SyncItem::Read(state)) => {
            let mut problems = Vec::new();
            if state.error_runs >= 1 && state.last_error.is_some() {
                problems.push("sync error");
            }
            if lag_seconds(state, now).is_some_and(|lag| lag > args.max_lag_seconds) {
                problems.push("lagging");
            }
            if unverified(state, args, now) {
                problems.push("not verified");
            }
            if state.sweep_held.is_some() {
                problems.push("sweep held");
            }
            let history = state.history.as_ref().and_then(|h| h.failing.as_ref());
            if history.or(state.reconcile.as_ref().and_then(|r| r.failing.as_ref())).is_some() {
                problems.push("pages set aside");
            }
            problems
        }
    }
}

/// No full pass has verified the copy within twice the reconciliation interval (counted from
/// the last verification, or the start of the sync when there was none). A first load still
/// running is not counted: it is itself the first full pass.
fn unverified(state: &SyncState, args: &Args, now: DateTime<Utc>) -> bool {
    if args.reconcile_interval_hours <= 0 || (state.verified_at.is_none() && state.phase == Some(Phase::Initial)) {
        return false;
    }
    let since = state.verified_at.or(state.initial_completed_at).or(state.started_at);
    since.is_some_and(|at| now - at > Duration::hours(2 * args.reconcile_interval_hours))
}

/// `missing/behind/swept` of the last full pass.
fn drift_cell(state: &SyncState) -> String {
    match &state.drift {
        Some(d) => format!("{}/{}/{}", d.missing, d.behind, d.swept),
        None => "-".to_owned(),
    }
}

/// Another invocation holds the collection's lease right now.
fn running(state: &SyncState, now: DateTime<Utc>) -> bool {
    state.lease_until.is_some_and(|until| until >= now.timestamp_millis())
}

fn initial_complete(state: &SyncState) -> bool {
    state.phase != Some(Phase::Initial) && state.initial_completed_at.is_some()
}

fn mode_name(mode: SyncMode) -> &'static str {
    match mode {
        SyncMode::Delta => "delta",
        SyncMode::List => "list",
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Initial => "initial",
        Phase::Incremental => "incremental",
    }
}

fn time(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn hours_left(state: &SubscriptionState, now: DateTime<Utc>) -> Option<f64> {
    state.valid_until.map(|t| ((t - now).num_minutes() as f64 / 60.0 * 10.0).round() / 10.0)
}

/// The `sync` object of a row: `null` without a sync item. Never the cursor (it holds a delta
/// token) nor the lease owner.
fn sync_json(sync: Option<&SyncItem>, now: DateTime<Utc>) -> serde_json::Value {
    let Some(SyncItem::Read(state)) = sync else { return serde_json::Value::Null };
    let complete = initial_complete(state);
    json!({
        "mode": state.mode.map(mode_name),
        "phase": state.phase.map(phase_name),
        "filter": state.filter,
        "from": state.from.map(|d| d.format("%Y-%m-%d").to_string()),
        "to": state.to.map(|d| d.format("%Y-%m-%d").to_string()),
        "history": state.history.as_ref().map(|h| json!({
            "from": h.from.format("%Y-%m-%d").to_string(),
            "until": h.until.format("%Y-%m-%d").to_string(),
            "listing": h.range_to.is_some(),
            "pages": h.pages,
        })),
        "initialLoad": {
            "complete": complete,
            "startedAt": time(state.started_at),
            "completedAt": time(state.initial_completed_at),
            "pages": (!complete).then_some(state.pages),
            "stored": (!complete).then_some(state.records.stored),
        },
        "lastSyncedAt": time(state.last_synced_at),
        "lagSeconds": lag_seconds(state, now),
        "cursorAt": time(state.cursor_at),
        "running": running(state, now),
        "lastError": state.last_error.as_deref().map(output::redact),
        "lastErrorAt": time(state.last_error_at),
        "errorRuns": state.error_runs,
        "deltaExpiredAt": time(state.delta_expired_at),
        "verifiedAt": time(state.verified_at),
        "drift": state.drift.as_ref().map(|d| json!({"missing": d.missing, "behind": d.behind, "swept": d.swept})),
        "reconciling": state.reconcile.is_some(),
        "sweepHeld": state.sweep_held,
        "historyFailing": state.history.as_ref().and_then(|h| h.failing.as_ref()).map(failing_json),
        "reconcileFailing": state.reconcile.as_ref().and_then(|r| r.failing.as_ref()).map(failing_json),
    })
}

fn failing_json(failing: &protime_webhooks::sync::state::Failing) -> serde_json::Value {
    json!({
        "since": time(Some(failing.since)),
        "attempts": failing.attempts,
        "retryAt": time(Some(failing.retry_at)),
        "error": output::redact(&failing.error),
    })
}

fn row_json(row: &Row, now: DateTime<Utc>) -> serde_json::Value {
    let state = row.state.clone().unwrap_or_default();
    json!({
        "collection": row.collection.as_str(),
        "healthy": row.problems.is_empty(),
        "problems": row.problems,
        "status": state.status.as_ref().map(WebhookStatus::as_str),
        "webhookId": state.webhook_id,
        "validUntil": time(state.valid_until),
        "hoursLeft": hours_left(&state, now),
        "lastRenewedAt": time(state.last_renewed_at),
        "lastSeenEnabledAt": time(state.last_seen_enabled_at),
        "lastError": state.last_error,
        "lastEventAt": time(state.last_event_at),
        "quarantinedLast24h": row.quarantined,
        "sync": sync_json(row.sync.as_ref(), now),
    })
}

/// The text cells of a row's sync: mode/phase, initial load, lag, last verified, drift.
fn sync_cells(sync: Option<&SyncItem>, now: DateTime<Utc>) -> [String; 5] {
    let dash = || "-".to_owned();
    let state = match sync {
        None => return [dash(), dash(), dash(), dash(), dash()],
        Some(SyncItem::Unreadable(_)) => return ["unreadable".into(), dash(), dash(), dash(), dash()],
        Some(SyncItem::Read(state)) => state,
    };
    let mode = match (state.mode, state.phase) {
        (Some(mode), Some(phase)) => format!("{}/{}", mode_name(mode), phase_name(phase)),
        (Some(mode), None) => format!("{}/pending", mode_name(mode)),
        (None, _) => "pending".to_owned(),
    };
    let initial = if initial_complete(state) {
        "complete".to_owned()
    } else if state.phase == Some(Phase::Initial) {
        let running = if running(state, now) { " (running)" } else { "" };
        format!("{} pages, {} stored{running}", state.pages, state.records.stored)
    } else {
        "not started".to_owned()
    };
    let lag = lag_seconds(state, now).map(output::duration).unwrap_or_else(dash);
    let verified = match (time(state.verified_at), state.reconcile.is_some()) {
        (Some(at), true) => format!("{at} (reconciling)"),
        (Some(at), false) => at,
        (None, true) => "reconciling".to_owned(),
        (None, false) => dash(),
    };
    [mode, initial, lag, verified, drift_cell(state)]
}

/// The columns of the text table.
const HEADER: [&str; 14] = [
    "COLLECTION",
    "STATUS",
    "WEBHOOK",
    "VALID UNTIL",
    "HOURS LEFT",
    "LAST RENEWAL",
    "LAST EVENT",
    "QUARANTINED 24H",
    "SYNC",
    "INITIAL LOAD",
    "LAG",
    "VERIFIED",
    "DRIFT M/B/S",
    "PROBLEMS",
];

/// The rows as a table, then each row's notes.
fn print_table(rows: &[Row], now: DateTime<Utc>) {
    let cells: Vec<Vec<String>> = rows.iter().map(|row| row_cells(row, now)).collect();
    let unhealthy: Vec<bool> = rows.iter().map(|r| !r.problems.is_empty()).collect();
    output::table(&HEADER, &cells, &unhealthy);
    for row in rows {
        print_notes(row);
    }
}

/// The text cells of a row: its subscription, quarantine, sync and problems.
fn row_cells(row: &Row, now: DateTime<Utc>) -> Vec<String> {
    let state = row.state.clone().unwrap_or_default();
    let dash = || "-".to_owned();
    let mut cells = vec![
        row.collection.as_str().to_owned(),
        state.status.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_else(dash),
        state.webhook_id.clone().unwrap_or_else(dash),
        time(state.valid_until).unwrap_or_else(dash),
        hours_left(&state, now).map(|h| format!("{h:.1}")).unwrap_or_else(dash),
        time(state.last_renewed_at).unwrap_or_else(dash),
        time(state.last_event_at).unwrap_or_else(dash),
        row.quarantined.map(|n| n.to_string()).unwrap_or_else(dash),
    ];
    cells.extend(sync_cells(row.sync.as_ref(), now));
    cells.push(if row.problems.is_empty() { "ok".to_owned() } else { row.problems.join(", ") });
    cells
}

/// What the table cannot say of a row: the subscription's last error, then the sync's error
/// (runs in a row), a held sweep or an unreadable sync state.
fn print_notes(row: &Row) {
    if let Some(error) = row.state.as_ref().and_then(|s| s.last_error.as_deref()) {
        println!("{}: last error: {error}", row.collection);
    }
    match &row.sync {
        Some(SyncItem::Read(state)) if state.error_runs >= 1 => {
            if let Some(error) = &state.last_error {
                let runs =
                    if state.error_runs == 1 { "1 run".to_owned() } else { format!("{} runs", state.error_runs) };
                println!("{}: sync error ({runs} in a row): {}", row.collection, output::redact(error));
            }
        }
        Some(SyncItem::Read(state)) if state.sweep_held.is_some() => {
            if let Some(held) = &state.sweep_held {
                println!(
                    "{}: sweep held: it would tombstone {} records (limit {}), e.g. {}; check them in Protime, \
                     then: protime-webhooks reconcile {} --max-sweep {}",
                    row.collection,
                    held.would_sweep,
                    held.limit,
                    held.sample_ids.join(", "),
                    row.collection,
                    held.would_sweep
                );
            }
        }
        Some(SyncItem::Unreadable(why)) => {
            println!("{}: sync state unreadable: {}", row.collection, output::redact(why))
        }
        _ => {}
    }
}

/// Objects quarantined for `collection` since `since` (the day folders of since and today).
async fn quarantined_since(context: &Context, collection: Collection, since: DateTime<Utc>) -> Result<usize, CliError> {
    let mut count = 0;
    let mut day = since.date_naive();
    while day <= Utc::now().date_naive() {
        let prefix = format!("{}/{}/", collection.as_str(), day.format("%Y/%m/%d"));
        let kept = quarantined_under(context, &prefix).await?;
        count += kept.iter().filter(|o| o.kept_at.is_some_and(|t| t >= since)).count();
        day = day.succ_opt().unwrap_or(day + Duration::days(1));
    }
    Ok(count)
}
