//! `status`: is every subscription alive, and has anything been quarantined?

use crate::context::{quarantined_under, CliError, Context};
use crate::output;
use crate::Health;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use protime_webhooks::protime::WebhookStatus;
use protime_webhooks::renewer::plan::SubscriptionState;
use protime_webhooks::renewer::state::{DynamoSubscriptionStore, SubscriptionStore};
use protime_webhooks::Collection;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Collections to report (default: every collection with a subscription item).
    #[arg(long, value_delimiter = ',')]
    collections: Vec<Collection>,
    /// A subscription expiring within this many hours is unhealthy (the renewer's window).
    #[arg(long, default_value_t = 48)]
    renew_before_hours: i64,
}

/// One row of the report.
struct Row {
    collection: Collection,
    state: Option<SubscriptionState>,
    quarantined: Option<usize>,
    problems: Vec<&'static str>,
}

pub async fn run(context: &Context, args: Args) -> Result<Health, CliError> {
    let now = Utc::now();
    let store = DynamoSubscriptionStore::new(context.dynamodb(), context.table()?);
    let asked = if args.collections.is_empty() { Collection::ALL.to_vec() } else { args.collections.clone() };
    let states = store.load(&asked).await.map_err(|e| CliError::Aws(e.to_string()))?;
    let mut rows = Vec::new();
    for collection in asked {
        let state = states.get(&collection).cloned();
        if state.is_none() && args.collections.is_empty() {
            continue;
        }
        let quarantined = match &context.global.bucket {
            Some(_) => Some(quarantined_since(context, collection, now - Duration::hours(24)).await?),
            None => None,
        };
        let problems = problems(state.as_ref(), now, Duration::hours(args.renew_before_hours));
        rows.push(Row { collection, state, quarantined, problems });
    }
    let healthy = !rows.is_empty() && rows.iter().all(|r| r.problems.is_empty());
    if context.global.json {
        let collections: Vec<_> = rows.iter().map(|r| row_json(r, now)).collect();
        output::json(&json!({ "healthy": healthy, "collections": collections }));
    } else if rows.is_empty() {
        println!("{}", output::alarm("no subscriptions yet: has the renewer run?"));
    } else {
        print_table(&rows, now);
    }
    Ok(if healthy { Health::Healthy } else { Health::Unhealthy })
}

/// What makes a row unhealthy.
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

fn time(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn hours_left(state: &SubscriptionState, now: DateTime<Utc>) -> Option<f64> {
    state.valid_until.map(|t| ((t - now).num_minutes() as f64 / 60.0 * 10.0).round() / 10.0)
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
    })
}

fn print_table(rows: &[Row], now: DateTime<Utc>) {
    let header = [
        "COLLECTION",
        "STATUS",
        "WEBHOOK",
        "VALID UNTIL",
        "HOURS LEFT",
        "LAST RENEWAL",
        "LAST EVENT",
        "QUARANTINED 24H",
        "PROBLEMS",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let state = row.state.clone().unwrap_or_default();
            let dash = || "-".to_owned();
            vec![
                row.collection.as_str().to_owned(),
                state.status.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_else(dash),
                state.webhook_id.clone().unwrap_or_else(dash),
                time(state.valid_until).unwrap_or_else(dash),
                hours_left(&state, now).map(|h| format!("{h:.1}")).unwrap_or_else(dash),
                time(state.last_renewed_at).unwrap_or_else(dash),
                time(state.last_event_at).unwrap_or_else(dash),
                row.quarantined.map(|n| n.to_string()).unwrap_or_else(dash),
                if row.problems.is_empty() { "ok".to_owned() } else { row.problems.join(", ") },
            ]
        })
        .collect();
    let unhealthy: Vec<bool> = rows.iter().map(|r| !r.problems.is_empty()).collect();
    output::table(&header, &cells, &unhealthy);
    for row in rows {
        if let Some(error) = row.state.as_ref().and_then(|s| s.last_error.as_deref()) {
            println!("{}: last error: {error}", row.collection);
        }
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
