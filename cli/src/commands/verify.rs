//! `verify COLLECTION --body FILE --signature SIG`: why was this event answered 401?

use crate::context::{CliError, Context};
use crate::output;
use crate::Health;
use protime_webhooks::signing::keys::read_collection_keys;
use protime_webhooks::signing::signature::{self, SCHEME};
use protime_webhooks::Collection;
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    collection: Collection,
    /// The captured body, byte for byte (`-`: standard input).
    #[arg(long)]
    body: PathBuf,
    /// The captured Authorization value (`HMAC-SHA256 <base64>`), or the bare base64.
    #[arg(long)]
    signature: String,
}

pub async fn run(context: &Context, args: Args) -> Result<Health, CliError> {
    let body = crate::read_body(&args.body)?;
    let value = args.signature.trim();
    let header = if value.contains(char::is_whitespace) { value.to_owned() } else { format!("{SCHEME} {value}") };
    let sig = match signature::parse_authorization(Some(header.as_bytes())) {
        Ok(sig) => sig,
        Err(e) => {
            let reason = e.reason();
            report(context, args.collection, None, Some(reason), &format!("the signature itself is unusable: {e}"));
            return Ok(Health::Unhealthy);
        }
    };
    let keys =
        read_collection_keys(&context.keys(), args.collection).await.map_err(|e| CliError::Aws(e.to_string()))?;
    let matches = |key: Option<&protime_webhooks::signing::SigningKey>| {
        key.is_some_and(|key| signature::verify(key, &body, &sig).is_ok())
    };
    let (matched, reason, message) = if keys.current.is_none() {
        (None, Some("no_key"), format!("no key is stored for {}: has the renewer run?", args.collection))
    } else if matches(keys.current.as_ref().map(|v| &v.key)) {
        (Some("current"), None, "the signature matches the current key".to_owned())
    } else if matches(keys.previous.as_ref()) {
        let note = "the previous key (accepted for PREVIOUS_KEY_GRACE_SECONDS after a renewal)";
        (Some("previous"), None, format!("the signature matches {note}"))
    } else {
        let why = "the body is not the one that was signed (a byte changed on the way?), or it was \
                   signed with a key that is not stored (a renewal whose key was lost?)";
        (None, Some("mismatch"), format!("the signature matches neither the current nor the previous key: {why}"))
    };
    report(context, args.collection, matched, reason, &message);
    Ok(if matched.is_some() { Health::Healthy } else { Health::Unhealthy })
}

fn report(context: &Context, collection: Collection, matched: Option<&str>, reason: Option<&str>, message: &str) {
    if context.global.json {
        output::json(&json!({
            "collection": collection.as_str(),
            "matched": matched,
            "reason": reason,
            "message": message,
        }));
    } else if matched.is_some() {
        println!("{message}");
    } else {
        println!("{}", output::alarm(message));
    }
}
