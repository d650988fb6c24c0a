//! Reading the stored order keys of many records at once (BatchGetItem, projection only), so a
//! list or initial-load page writes only the records that are new or newer: a sync of unchanged
//! data makes no writes.
//!
//! A head that cannot be read (unprocessed after a few rounds, or the read failed) is simply
//! missing from the answer: that record is written, and the conditional write decides as
//! always. Reading heads is an optimisation, never a correctness step.
//!
//! `batch_get`, the BatchGetItem with rounds for unprocessed keys, also reads the renewer's
//! subscription state.

use super::event::RecordId;
use super::item::{attr, record_key};
use super::store::{DynamoRecordStore, StoreError, StoredHead};
use crate::collection::Collection;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// BatchGetItem takes at most 100 keys.
const KEYS_PER_BATCH: usize = 100;
/// Rounds for keys DynamoDB leaves unprocessed before they are left to the conditional write.
const UNPROCESSED_ROUNDS: u32 = 3;

/// Reading the stored heads of a page's records (the syncer, and the renewer's delta round).
pub trait StoredHeads: Send + Sync {
    /// The stored heads of these records (keyed by id text; absent: no item, or not read). Used
    /// to skip writes a page of unchanged records would make; the default reads nothing, so
    /// every record is written and the conditional write decides.
    fn heads(
        &self,
        collection: Collection,
        ids: &[RecordId],
    ) -> impl Future<Output = Result<HashMap<String, StoredHead>, StoreError>> + Send {
        let _ = (collection, ids);
        async { Ok(HashMap::new()) }
    }
}

impl<T: StoredHeads> StoredHeads for std::sync::Arc<T> {
    fn heads(
        &self,
        collection: Collection,
        ids: &[RecordId],
    ) -> impl Future<Output = Result<HashMap<String, StoredHead>, StoreError>> + Send {
        (**self).heads(collection, ids)
    }
}

impl StoredHeads for DynamoRecordStore {
    /// The stored heads of `ids` (keyed by id text); ids without an item are absent.
    async fn heads(&self, collection: Collection, ids: &[RecordId]) -> Result<HashMap<String, StoredHead>, StoreError> {
        let mut heads = HashMap::with_capacity(ids.len());
        // Answers are matched by their key (DynamoDB normalises numbers: an `id` attribute may
        // not read back as it was sent).
        let mut by_key: HashMap<String, &str> = HashMap::with_capacity(ids.len());
        for id in ids {
            by_key.entry(record_key(collection, id)).or_insert(id.as_str());
        }
        let keys: Vec<&String> = by_key.keys().collect();
        for chunk in keys.chunks(KEYS_PER_BATCH) {
            let keys: Vec<_> = chunk
                .iter()
                .map(|key| HashMap::from([(attr::PK.to_owned(), AttributeValue::S((*key).clone()))]))
                .collect();
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .projection_expression("#pk, #order, #version, #deleted, #source")
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#order", attr::CHANGE_ORDER)
                .expression_attribute_names("#version", attr::CHANGE_VERSION)
                .expression_attribute_names("#deleted", attr::DELETED)
                .expression_attribute_names("#source", attr::SOURCE)
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let items = match batch_get(self.client(), self.table(), request, UNPROCESSED_ROUNDS).await {
                Ok(items) => items,
                Err((read, e)) => {
                    tracing::warn!(error = %e, "reading stored heads incompletely; writing the records not read");
                    read
                }
            };
            for item in items {
                let id = item.get(attr::PK).and_then(|pk| pk.as_s().ok()).and_then(|pk| by_key.get(pk));
                if let (Some(id), Some(head)) = (id, StoredHead::of(&item)) {
                    heads.insert((*id).to_owned(), head);
                }
            }
        }
        Ok(heads)
    }
}

/// Why a [`batch_get`] read less than it asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BatchGetError {
    #[error("{0}")]
    Failed(String),
    #[error("DynamoDB left keys unprocessed after {0} rounds")]
    Unprocessed(u32),
}

/// One BatchGetItem of at most 100 keys of `table`, asking again for the keys DynamoDB leaves
/// unprocessed (it is throttling) after a growing pause, for at most `rounds` calls. On failure
/// the items read so far come with the error.
pub(crate) async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    mut request: KeysAndAttributes,
    rounds: u32,
) -> Result<Vec<HashMap<String, AttributeValue>>, (Vec<HashMap<String, AttributeValue>>, BatchGetError)> {
    let mut items = Vec::new();
    for round in 0..rounds {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(50 << round)).await;
        }
        let answer = match client.batch_get_item().request_items(table, request.clone()).send().await {
            Ok(answer) => answer,
            Err(e) => return Err((items, BatchGetError::Failed(DisplayErrorContext(e).to_string()))),
        };
        items.extend(answer.responses.unwrap_or_default().remove(table).unwrap_or_default());
        match answer.unprocessed_keys.and_then(|mut u| u.remove(table)) {
            Some(rest) if !rest.keys().is_empty() => request = rest,
            _ => return Ok(items),
        }
    }
    Err((items, BatchGetError::Unprocessed(rounds)))
}
