//! `get COLLECTION ID`: the stored record as the table holds it.

use crate::context::{aws_error, CliError, Context};
use crate::output;
use crate::Health;
use aws_sdk_dynamodb::types::AttributeValue;
use protime_webhooks::records::item::attr;
use protime_webhooks::Collection;

#[derive(clap::Args)]
pub struct Args {
    collection: Collection,
    id: String,
}

pub async fn run(context: &Context, args: Args) -> Result<Health, CliError> {
    let pk = format!("{}#{}", args.collection.as_str(), args.id);
    let answer = context
        .dynamodb()
        .get_item()
        .table_name(context.table()?)
        .key(attr::PK, AttributeValue::S(pk.clone()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| aws_error("reading the record", e))?;
    let Some(item) = answer.item else {
        if context.global.json {
            output::json(&serde_json::json!({ "pk": pk, "found": false }));
        } else {
            println!("{}", output::alarm(&format!("no record {pk}")));
        }
        return Ok(Health::Unhealthy);
    };
    let record: serde_json::Value =
        serde_dynamo::from_item(item).map_err(|e| CliError::Aws(format!("reading the record: {e}")))?;
    if context.global.json {
        output::json(&serde_json::json!({ "pk": pk, "found": true, "record": record }));
        return Ok(Health::Healthy);
    }
    let field = |name: &str| record.get(name).map(|v| v.to_string().trim_matches('"').to_owned()).unwrap_or_default();
    println!("record          {pk}");
    println!("changeVersion   {}", field(attr::CHANGE_VERSION));
    println!("source          {}", field(attr::SOURCE));
    println!("receivedAt      {}", field(attr::RECEIVED_AT));
    let deleted = record.get(attr::DELETED).and_then(|v| v.as_bool()).unwrap_or(false);
    println!("deleted         {}", if deleted { output::alarm("yes (tombstone)") } else { "no".to_owned() });
    if let Some(at) = record.get(attr::EXPIRES_AT).and_then(serde_json::Value::as_i64) {
        let when = chrono::DateTime::from_timestamp(at, 0).map(|t| t.to_rfc3339()).unwrap_or_else(|| at.to_string());
        println!("expiresAt       {when} (the table's TTL removes the tombstone then)");
    }
    let mut fields = record.as_object().cloned().unwrap_or_default();
    for name in attr::RESERVED.iter().chain([&attr::ID, &attr::CHANGE_VERSION]) {
        if *name != attr::SHADOWED_FIELDS {
            fields.remove(*name);
        }
    }
    println!("fields          {}", serde_json::Value::Object(fields));
    Ok(Health::Healthy)
}
