//! The time of the last acknowledged event, noted on the collection's subscription item (at most
//! once a minute per instance, see `store`), so operators see it in `protime-webhooks status`.

use crate::collection::Collection;
use crate::records::item::{attr, subscription_key};
use crate::records::{DynamoRecordStore, StoreError};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::AttributeValue;
use std::future::Future;

/// Noting when a collection's last event was acknowledged (the receiver's capability).
pub trait EventNotes: Send + Sync {
    /// Notes on the collection's subscription item (if there is one) when an event was last
    /// acknowledged, for operators (`protime-webhooks status`). The default notes nothing.
    fn note_event(&self, collection: Collection, at: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (collection, at);
        async { Ok(()) }
    }
}

impl<T: EventNotes> EventNotes for std::sync::Arc<T> {
    fn note_event(&self, collection: Collection, at: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).note_event(collection, at)
    }
}

impl EventNotes for DynamoRecordStore {
    /// `SET lastEventAt = at` on an existing subscription item; none is created.
    async fn note_event(&self, collection: Collection, at: &str) -> Result<(), StoreError> {
        note(self.client(), self.table(), collection, at).await
    }
}

async fn note(
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
