//! The time of the last acknowledged event, noted on the collection's subscription item (at most
//! once a minute per instance, see `handler`), so operators see it in `protime-webhooks status`.

use crate::collection::Collection;
use crate::records::item::{attr, subscription_key};
use crate::records::StoreError;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::AttributeValue;

/// `SET lastEventAt = at` on an existing subscription item; none is created.
pub(crate) async fn note(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    collection: Collection,
    at: &str,
) -> Result<(), StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .key(attr::PK, AttributeValue::S(subscription_key(collection)))
        .update_expression("SET #at = :at")
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#at", "lastEventAt")
        .expression_attribute_names("#pk", attr::PK)
        .expression_attribute_values(":at", AttributeValue::S(at.to_owned()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // No subscription item (yet): nothing to note on.
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
        Err(e) => Err(StoreError::Unavailable(DisplayErrorContext(e).to_string())),
    }
}
