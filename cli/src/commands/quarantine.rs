//! `quarantine list|show`: the signed bodies the receiver set aside, and why.

use crate::context::{aws_error, quarantined_under, CliError, Context};
use crate::output;
use crate::Health;
use aws_sdk_s3::types::{Tag, Tagging};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use protime_webhooks::records::quarantine::{self as quarantined, Replayed};
use protime_webhooks::records::DynamoRecordStore;
use protime_webhooks::Collection;
use serde::Serialize;
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
    Replay(ReplayArgs),
}

#[derive(clap::Args)]
pub struct ReplayArgs {
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
    /// Also replay bodies kept longer ago than TOMBSTONE_RETENTION_DAYS (by default refused:
    /// the record's tombstone may have expired, and an erased record would come back).
    #[arg(long)]
    force: bool,
}

pub async fn run(context: &Context, command: Command) -> Result<Health, CliError> {
    match command {
        Command::List { collection, since } => {
            list(context, collection, since.as_deref().map(parse_since).transpose()?).await
        }
        Command::Show { key } => show(context, &key).await,
        Command::Replay(args) => replay(context, args).await,
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

/// What replaying one object did, as `replay --json` prints it.
#[derive(Debug, Serialize)]
struct ReplayReport {
    key: String,
    #[serde(flatten)]
    result: ReplayResult,
}

/// How a replay of an object ended (its `outcome`, with what goes with it).
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
enum ReplayResult {
    /// Tagged as replayed already: not replayed twice.
    AlreadyReplayed {
        #[serde(rename = "replayedAt")]
        replayed_at: String,
    },
    /// Not kept by the functions, or not the change its metadata names: nothing written.
    Refused {
        reason: &'static str,
        detail: String,
    },
    /// Still refused by the receiver's parse or store: nothing written.
    StillUnstorable {
        reason: &'static str,
    },
    /// A dry run: what the store would have decided.
    WouldReplay {
        events: Vec<ReplayedEvent>,
    },
    Replayed {
        events: Vec<ReplayedEvent>,
    },
}

/// One event of a replayed body: its record and what the conditional write decided.
#[derive(Debug, Serialize)]
struct ReplayedEvent {
    id: String,
    outcome: &'static str,
}

impl ReplayResult {
    /// The body still cannot be stored, or is refused (exit 2).
    fn failed(&self) -> bool {
        matches!(self, ReplayResult::StillUnstorable { .. } | ReplayResult::Refused { .. })
    }

    /// The text after the key: `replayed: 77 stored`, `still unstorable (reason)`.
    fn describe(&self) -> String {
        let events = |events: &[ReplayedEvent]| {
            let events: Vec<String> = events.iter().map(|e| format!("{} {}", e.id, e.outcome)).collect();
            events.join(", ")
        };
        match self {
            ReplayResult::StillUnstorable { reason } => format!("still unstorable ({reason})"),
            ReplayResult::Refused { detail, .. } => format!("refused: {detail}"),
            ReplayResult::AlreadyReplayed { replayed_at } => format!("already replayed at {replayed_at}"),
            ReplayResult::WouldReplay { events: e } => format!("would-replay: {}", events(e)),
            ReplayResult::Replayed { events: e } => format!("replayed: {}", events(e)),
        }
    }
}

/// `replay`: each object named (with `--all`, every one under the collection's prefix), replayed
/// in turn, then what each did; unhealthy when any still cannot be stored or is refused.
async fn replay(context: &Context, args: ReplayArgs) -> Result<Health, CliError> {
    let ReplayArgs { keys, all, collection, dry_run, force } = args;
    let keys = if all {
        quarantined_under(context, &prefix_of(collection)).await?.into_iter().map(|o| o.key).collect()
    } else {
        keys
    };
    if keys.is_empty() {
        return Err(CliError::Input("name the objects to replay, or pass --all".into()));
    }
    let (s3, bucket) = (context.s3(), context.bucket()?);
    // A replay keeps what the functions would keep: the stack's field policy applies.
    let (policy, _) = context.data_policy().await?;
    let too_old = policy.tombstone_retention().filter(|_| !force);
    let store = DynamoRecordStore::new(context.dynamodb(), context.table()?).with_policy(std::sync::Arc::new(policy));
    let replayer = Replayer { s3: &s3, bucket, store: &store, dry_run, too_old };
    let bar =
        output::progress(context.global.json, Some(keys.len() as u64), if dry_run { "checking" } else { "replaying" });
    let mut reports = Vec::new();
    for key in keys {
        bar.inc(1);
        let result = replayer.replay(&key).await?;
        reports.push(ReplayReport { key, result });
    }
    bar.finish_and_clear();
    print_replays(context.global.json, dry_run, &reports);
    let healthy = !reports.iter().any(|r| r.result.failed());
    Ok(if healthy { Health::Healthy } else { Health::Unhealthy })
}

/// What replays the objects: the bucket they are in, the table they go to, and whether it is
/// a dry run.
struct Replayer<'a> {
    s3: &'a aws_sdk_s3::Client,
    bucket: &'a str,
    store: &'a DynamoRecordStore,
    dry_run: bool,
    /// A body kept longer ago than this is refused (the tombstones' retention; none with `--force`).
    too_old: Option<chrono::Duration>,
}

impl Replayer<'_> {
    /// Replays one object, unless it was replayed already or the functions did not keep it.
    async fn replay(&self, key: &str) -> Result<ReplayResult, CliError> {
        if let Some(replayed_at) = self.replayed_at(key).await? {
            return Ok(ReplayResult::AlreadyReplayed { replayed_at });
        }
        let got = self
            .s3
            .get_object()
            .bucket(self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| aws_error("reading a body", e))?;
        if let Some(refused) = self.refused_for_age(got.last_modified()) {
            return Ok(refused);
        }
        let metadata = got.metadata().cloned().unwrap_or_default();
        let named = metadata.get("collection").cloned();
        // Only what the functions kept, replayed as written by whoever kept it.
        let kept_as = match quarantined::provenance(&metadata) {
            Ok(kept_as) => kept_as,
            Err(refused) => return Ok(ReplayResult::Refused { reason: refused.reason(), detail: refused.to_string() }),
        };
        let bytes = got.body.collect().await.map_err(|e| CliError::Aws(format!("reading {key}: {e}")))?.into_bytes();
        let collection: Collection = named
            .or_else(|| key.split('/').next().map(str::to_owned))
            .and_then(|name| name.parse().ok())
            .ok_or_else(|| CliError::Input(format!("{key}: no collection in its metadata or key")))?;
        let outcome = quarantined::replay(self.store, collection, &bytes, kept_as, self.dry_run)
            .await
            .map_err(|e| CliError::Aws(format!("{key}: {e}")))?;
        self.result_of(key, outcome).await
    }

    /// A body kept before the tombstones' retention: the record it writes may have been
    /// deleted in Protime and its tombstone expired since, so the copy would hold it again.
    fn refused_for_age(&self, kept: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<ReplayResult> {
        let kept = DateTime::<Utc>::from_timestamp(kept?.secs(), 0)?;
        too_old(kept, Utc::now(), self.too_old?)
    }

    /// When the object was replayed, from its tag.
    async fn replayed_at(&self, key: &str) -> Result<Option<String>, CliError> {
        let tags = self
            .s3
            .get_object_tagging()
            .bucket(self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| aws_error("reading tags", e))?;
        Ok(tags.tag_set().iter().find(|t| t.key() == REPLAYED_TAG).map(|t| t.value().to_owned()))
    }

    /// What the store decided; a body written is tagged as replayed (not in a dry run).
    async fn result_of(&self, key: &str, outcome: Replayed) -> Result<ReplayResult, CliError> {
        match outcome {
            Replayed::StillUnstorable(reason) => Ok(ReplayResult::StillUnstorable { reason }),
            Replayed::Refused(reason) => {
                let detail = "the body is not the one change its change-type metadata names".to_owned();
                Ok(ReplayResult::Refused { reason, detail })
            }
            Replayed::Written(events) => {
                let events =
                    events.iter().map(|(id, o)| ReplayedEvent { id: id.clone(), outcome: o.as_str() }).collect();
                if self.dry_run {
                    return Ok(ReplayResult::WouldReplay { events });
                }
                self.tag_replayed(key).await?;
                Ok(ReplayResult::Replayed { events })
            }
        }
    }

    /// Tags the object with the time it was replayed, so it is never replayed twice.
    async fn tag_replayed(&self, key: &str) -> Result<(), CliError> {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let tag = Tag::builder().key(REPLAYED_TAG).value(now).build().map_err(|e| CliError::Aws(e.to_string()))?;
        let tagging = Tagging::builder().tag_set(tag).build().map_err(|e| CliError::Aws(e.to_string()))?;
        self.s3
            .put_object_tagging()
            .bucket(self.bucket)
            .key(key)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| aws_error("tagging a replayed body", e))?;
        Ok(())
    }
}

/// Each object's outcome: as JSON, or a line each (in red when it failed).
fn print_replays(json_out: bool, dry_run: bool, reports: &[ReplayReport]) {
    if json_out {
        output::json(&json!({ "dryRun": dry_run, "objects": reports }));
        return;
    }
    for report in reports {
        let line = format!("{}  {}", report.key, report.result.describe());
        println!("{}", if report.result.failed() { output::alarm(&line) } else { line });
    }
}

/// Refused when kept longer than `limit` before `now` (see [`Replayer::refused_for_age`]).
fn too_old(kept: DateTime<Utc>, now: DateTime<Utc>, limit: chrono::Duration) -> Option<ReplayResult> {
    let age = now - kept;
    (age > limit).then(|| ReplayResult::Refused {
        reason: "older_than_tombstones",
        detail: format!(
            "kept {} days ago, longer than TOMBSTONE_RETENTION_DAYS ({}): its record may have been erased in \
         Protime and its tombstone expired since; --force replays it anyway",
            age.num_days(),
            limit.num_days()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_kept_longer_ago_than_the_tombstones_retention_is_refused() {
        let now = Utc::now();
        let limit = chrono::Duration::days(35);
        assert!(too_old(now - chrono::Duration::days(34), now, limit).is_none());
        match too_old(now - chrono::Duration::days(36), now, limit) {
            Some(ReplayResult::Refused { reason, detail }) => {
                assert_eq!(reason, "older_than_tombstones");
                assert!(detail.contains("36 days ago") && detail.contains("--force"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }
}
