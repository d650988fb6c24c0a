//! Reading the stored order keys of many records at once (BatchGetItem, projection only), so a
//! list or initial-load page writes only the records that are new or newer: a sync of unchanged
//! data makes no writes.
//!
//! A head that cannot be read (unprocessed after a few rounds, or the read failed) is simply
//! missing from the answer: that record is written, and the conditional write decides as
//! always. Reading heads is an optimisation, never a correctness step.

use super::event::RecordId;
use super::item::{attr, record_key};
use super::store::{DynamoRecordStore, StoreError, StoredHead};
use crate::collection::Collection;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use std::collections::HashMap;
use std::time::Duration;

/// BatchGetItem takes at most 100 keys.
const KEYS_PER_BATCH: usize = 100;
/// Rounds for keys DynamoDB leaves unprocessed before they are left to the conditional write.
const UNPROCESSED_ROUNDS: u32 = 3;

impl DynamoRecordStore {
    /// The stored heads of `ids` (keyed by id text); ids without an item are absent.
    pub(crate) async fn read_heads(
        &self,
        collection: Collection,
        ids: &[RecordId],
    ) -> Result<HashMap<String, StoredHead>, StoreError> {
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
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .projection_expression("#pk, #order, #version, #deleted")
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#order", attr::CHANGE_ORDER)
                .expression_attribute_names("#version", attr::CHANGE_VERSION)
                .expression_attribute_names("#deleted", attr::DELETED)
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            for round in 0..UNPROCESSED_ROUNDS {
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << round)).await;
                }
                let answer = match self
                    .client()
                    .batch_get_item()
                    .request_items(self.table(), request.clone())
                    .send()
                    .await
                {
                    Ok(answer) => answer,
                    Err(e) => {
                        tracing::warn!(error = %DisplayErrorContext(e), "reading stored heads failed; writing the page");
                        break;
                    }
                };
                for item in answer.responses.unwrap_or_default().remove(self.table()).unwrap_or_default() {
                    let id = item.get(attr::PK).and_then(|pk| pk.as_s().ok()).and_then(|pk| by_key.get(pk));
                    if let (Some(id), Some(head)) = (id, StoredHead::of(&item)) {
                        heads.insert((*id).to_owned(), head);
                    }
                }
                match answer.unprocessed_keys.and_then(|mut u| u.remove(self.table())) {
                    Some(rest) if !rest.keys().is_empty() => request = rest,
                    _ => break,
                }
            }
        }
        Ok(heads)
    }
}
