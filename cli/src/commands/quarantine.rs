//! `quarantine list|show`: the signed bodies the receiver set aside, and why.

use crate::context::{aws_error, CliError, Context};
use crate::output;
use crate::Health;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use protime_webhooks::Collection;
use serde_json::json;

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
}

pub async fn run(context: &Context, command: Command) -> Result<Health, CliError> {
    match command {
        Command::List { collection, since } => {
            list(context, collection, since.as_deref().map(parse_since).transpose()?).await
        }
        Command::Show { key } => show(context, &key).await,
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
    let prefix = collection.map(|c| format!("{}/", c.as_str())).unwrap_or_default();
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    let mut entries = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("listing the quarantine", e))?;
        for object in page.contents() {
            let kept = object.last_modified().and_then(|t| DateTime::from_timestamp(t.secs(), 0));
            if since.is_some_and(|since| kept.is_none_or(|k| k < since)) {
                continue;
            }
            let key = object.key().unwrap_or_default().to_owned();
            let head = s3
                .head_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| aws_error("reading a quarantined body", e))?;
            let metadata = head.metadata().cloned().unwrap_or_default();
            entries.push(json!({
                "key": key,
                "size": object.size(),
                "keptAt": kept.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
                "reason": metadata.get("reason"),
                "collection": metadata.get("collection"),
                "recordId": metadata.get("record-id"),
            }));
        }
    }
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
