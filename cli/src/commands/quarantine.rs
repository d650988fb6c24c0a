//! `quarantine list|show`: the signed bodies the receiver set aside, and why.

use crate::context::{aws_error, quarantined_under, CliError, Context};
use crate::output;
use crate::Health;
use aws_sdk_s3::types::{Tag, Tagging};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use protime_webhooks::records::quarantine::{self as quarantined, Replayed};
use protime_webhooks::records::DynamoRecordStore;
use protime_webhooks::Collection;
use serde_json::json;

/// The tag a replayed object carries: when it was replayed.
const REPLAYED_TAG: &str = "replayed-at";

#[derive(clap::Subcommand)]
pub enum Command {
    /// Every quarantined body (oldest first) with its reason; `--collection`, `--since` narrow it.
    List {
        #[arg(long)]
        collection: Option<Collection>,
        /// Only bodies kept at or after this time: RFC 3339, or a date (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
    },
    /// One body, byte for byte, with its metadata.
    Show { key: String },
    /// Run quarantined bodies through the receiver's own parse and conditional store (after a
    /// fix), each reporting its outcome. Only objects whose metadata says a function kept them
    /// (a verified webhook body, or a record the sync fetched) are replayed, as what they were
    /// kept as. Replayed objects are tagged, not deleted, and never replayed twice. Exit 2 if
    /// any body still cannot be stored or is refused.
    Replay {
        /// The objects to replay (keys as `list` shows them).
        keys: Vec<String>,
        /// Every object not replayed yet (of `--collection`, if given).
        #[arg(long, conflicts_with = "keys")]
        all: bool,
        #[arg(long)]
        collection: Option<Collection>,
        /// Parse and report, write nothing, tag nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(context: &Context, command: Command) -> Result<Health, CliError> {
    match command {
        Command::List { collection, since } => {
            list(context, collection, since.as_deref().map(parse_since).transpose()?).await
        }
        Command::Show { key } => show(context, &key).await,
        Command::Replay { keys, all, collection, dry_run } => replay(context, keys, all, collection, dry_run).await,
    }
}

fn parse_since(text: &str) -> Result<DateTime<Utc>, CliError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| CliError::Input(format!("--since {text:?}: expected RFC 3339 or YYYY-MM-DD")))
}

async fn list(
    context: &Context,
    collection: Option<Collection>,
    since: Option<DateTime<Utc>>,
) -> Result<Health, CliError> {
    let (s3, bucket) = (context.s3(), context.bucket()?);
    let objects: Vec<_> = quarantined_under(context, &prefix_of(collection))
        .await?
        .into_iter()
        .filter(|object| since.is_none_or(|since| object.kept_at.is_some_and(|k| k >= since)))
        .collect();
    let bar = output::progress(context.global.json, Some(objects.len() as u64), "reading the metadata");
    let mut entries = Vec::new();
    for object in objects {
        bar.inc(1);
        let head = s3
            .head_object()
            .bucket(bucket)
            .key(&object.key)
            .send()
            .await
            .map_err(|e| aws_error("reading a quarantined body", e))?;
        let metadata = head.metadata().cloned().unwrap_or_default();
        entries.push(json!({
            "key": object.key,
            "size": object.size,
            "keptAt": object.kept_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            "reason": metadata.get("reason"),
            "collection": metadata.get("collection"),
            "recordId": metadata.get("record-id"),
            "source": metadata.get("source"),
            "changeType": metadata.get("change-type"),
        }));
    }
    bar.finish_and_clear();
    if context.global.json {
        output::json(&json!({ "bucket": bucket, "objects": entries }));
    } else if entries.is_empty() {
        println!("nothing quarantined");
    } else {
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                ["keptAt", "reason", "recordId", "size", "key"]
                    .iter()
                    .map(|f| text(&e[*f]).replace("null", "-"))
                    .collect()
            })
            .collect();
        output::table(&["KEPT AT", "REASON", "RECORD", "BYTES", "KEY"], &rows, &vec![false; rows.len()]);
    }
    Ok(Health::Healthy)
}

async fn show(context: &Context, key: &str) -> Result<Health, CliError> {
    let got = context
        .s3()
        .get_object()
        .bucket(context.bucket()?)
        .key(key)
        .send()
        .await
        .map_err(|e| aws_error("reading a quarantined body", e))?;
    let metadata = got.metadata().cloned().unwrap_or_default();
    let bytes = got.body.collect().await.map_err(|e| CliError::Aws(format!("reading {key}: {e}")))?.into_bytes();
    let body = String::from_utf8_lossy(&bytes);
    if context.global.json {
        output::json(&json!({ "key": key, "metadata": metadata, "body": body }));
    } else {
        let mut names: Vec<_> = metadata.keys().collect();
        names.sort();
        for name in names {
            println!("{name}: {}", metadata[name]);
        }
        println!();
        println!("{body}");
    }
    Ok(Health::Healthy)
}

/// The key prefix of a collection's objects (all of them: none).
fn prefix_of(collection: Option<Collection>) -> String {
    collection.map(|c| format!("{}/", c.as_str())).unwrap_or_default()
}

async fn replay(
    context: &Context,
    keys: Vec<String>,
    all: bool,
    collection: Option<Collection>,
    dry_run: bool,
) -> Result<Health, CliError> {
    let keys = if all {
        quarantined_under(context, &prefix_of(collection)).await?.into_iter().map(|o| o.key).collect()
    } else {
        keys
    };
    if keys.is_empty() {
        return Err(CliError::Input("name the objects to replay, or pass --all".into()));
    }
    let (s3, bucket) = (context.s3(), context.bucket()?);
    let store = DynamoRecordStore::new(context.dynamodb(), context.table()?);
    let mut reports = Vec::new();
    let mut healthy = true;
    let bar =
        output::progress(context.global.json, Some(keys.len() as u64), if dry_run { "checking" } else { "replaying" });
    for key in keys {
        bar.inc(1);
        let tags =
            s3.get_object_tagging().bucket(bucket).key(&key).send().await.map_err(|e| aws_error("reading tags", e))?;
        if let Some(at) = tags.tag_set().iter().find(|t| t.key() == REPLAYED_TAG) {
            reports.push(json!({"key": key, "outcome": "already-replayed", "replayedAt": at.value()}));
            continue;
        }
        let got = s3.get_object().bucket(bucket).key(&key).send().await.map_err(|e| aws_error("reading a body", e))?;
        let metadata = got.metadata().cloned().unwrap_or_default();
        let named = metadata.get("collection").cloned();
        // Only what the functions kept, replayed as written by whoever kept it.
        let kept_as = match quarantined::provenance(&metadata) {
            Ok(kept_as) => kept_as,
            Err(refused) => {
                healthy = false;
                reports.push(json!({"key": key, "outcome": "refused", "reason": refused.reason(), "detail": refused.to_string()}));
                continue;
            }
        };
        let bytes = got.body.collect().await.map_err(|e| CliError::Aws(format!("reading {key}: {e}")))?.into_bytes();
        let collection: Collection = named
            .or_else(|| key.split('/').next().map(str::to_owned))
            .and_then(|name| name.parse().ok())
            .ok_or_else(|| CliError::Input(format!("{key}: no collection in its metadata or key")))?;
        let outcome = quarantined::replay(&store, collection, &bytes, kept_as, dry_run)
            .await
            .map_err(|e| CliError::Aws(format!("{key}: {e}")))?;
        match outcome {
            Replayed::StillUnstorable(reason) => {
                healthy = false;
                reports.push(json!({"key": key, "outcome": "still-unstorable", "reason": reason}));
            }
            Replayed::Refused(reason) => {
                healthy = false;
                let detail = "the body is not the one change its change-type metadata names";
                reports.push(json!({"key": key, "outcome": "refused", "reason": reason, "detail": detail}));
            }
            Replayed::Written(events) => {
                let events: Vec<_> = events.iter().map(|(id, o)| json!({"id": id, "outcome": o.as_str()})).collect();
                if !dry_run {
                    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
                    let tag = Tag::builder()
                        .key(REPLAYED_TAG)
                        .value(now)
                        .build()
                        .map_err(|e| CliError::Aws(e.to_string()))?;
                    let tagging = Tagging::builder().tag_set(tag).build().map_err(|e| CliError::Aws(e.to_string()))?;
                    s3.put_object_tagging()
                        .bucket(bucket)
                        .key(&key)
                        .tagging(tagging)
                        .send()
                        .await
                        .map_err(|e| aws_error("tagging a replayed body", e))?;
                }
                let outcome = if dry_run { "would-replay" } else { "replayed" };
                reports.push(json!({"key": key, "outcome": outcome, "events": events}));
            }
        }
    }
    bar.finish_and_clear();
    if context.global.json {
        output::json(&json!({ "dryRun": dry_run, "objects": reports }));
    } else {
        for report in &reports {
            let detail = match report["outcome"].as_str() {
                Some("still-unstorable") => format!("still unstorable ({})", report["reason"].as_str().unwrap_or("")),
                Some("refused") => format!("refused: {}", report["detail"].as_str().unwrap_or("")),
                Some("already-replayed") => {
                    format!("already replayed at {}", report["replayedAt"].as_str().unwrap_or(""))
                }
                Some(outcome) => {
                    let events: Vec<String> = report["events"]
                        .as_array()
                        .map(|events| {
                            events
                                .iter()
                                .map(|e| {
                                    format!(
                                        "{} {}",
                                        e["id"].as_str().unwrap_or(""),
                                        e["outcome"].as_str().unwrap_or("")
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    format!("{outcome}: {}", events.join(", "))
                }
                None => String::new(),
            };
            let line = format!("{}  {detail}", report["key"].as_str().unwrap_or(""));
            let failed = matches!(report["outcome"].as_str(), Some("still-unstorable" | "refused"));
            println!("{}", if failed { output::alarm(&line) } else { line });
        }
    }
    Ok(if healthy { Health::Healthy } else { Health::Unhealthy })
}
