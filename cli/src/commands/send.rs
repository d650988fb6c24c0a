//! `send COLLECTION --body FILE --url URL`: sign with the stored key, POST, print the answer.

use crate::context::{CliError, Context};
use crate::output;
use crate::Health;
use protime_webhooks::signing::keys::read_collection_keys;
use protime_webhooks::signing::signature::authorization_header;
use protime_webhooks::Collection;
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    collection: Collection,
    /// The body to send, byte for byte (`-`: standard input).
    #[arg(long)]
    body: PathBuf,
    /// The receiver's URL for this collection, e.g. <ApiUrl>/webhooks/clockings.
    #[arg(long)]
    url: String,
}

pub async fn run(context: &Context, args: Args) -> Result<Health, CliError> {
    let body = crate::read_body(&args.body)?;
    let key = read_collection_keys(&context.keys(), args.collection)
        .await
        .map_err(|e| CliError::Aws(e.to_string()))?
        .current
        .ok_or_else(|| CliError::Input(format!("no key is stored for {}: has the renewer run?", args.collection)))?;
    let answer = reqwest::Client::new()
        .post(&args.url)
        .header("Authorization", authorization_header(&key.key, &body))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| CliError::Input(format!("posting to {}: {e}", args.url)))?;
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    if context.global.json {
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or(json!(text));
        output::json(&json!({ "status": status.as_u16(), "body": body }));
    } else {
        let line = format!("HTTP {}", status.as_u16());
        println!("{}", if status.is_success() { line } else { output::alarm(&line) });
        println!("{text}");
    }
    Ok(if status.is_success() { Health::Healthy } else { Health::Unhealthy })
}
