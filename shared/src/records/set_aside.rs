//! What the sync already set aside: one small item per record Protime returned at a version the
//! table can never store (`set-aside#<collection>#<id>`, the version's order key and the
//! quarantine object), so every later pass or delta round that returns the same version does
//! not keep another copy of it. A newer version of the record is set aside (or stored) anew.

use super::item::attr;
use super::store::{DynamoRecordStore, StoreError};
use crate::collection::Collection;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use std::future::Future;

/// The partition key of a record's set-aside mark.
pub fn set_aside_key(collection: Collection, id: &str) -> String {
    format!("set-aside#{}#{id}", collection.as_str())
}

/// The quarantine object a version was kept as.
const KEPT_AS: &str = "keptAs";

/// Remembering which version of a record was set aside. The defaults remember nothing, so a
/// store without marks sets a record aside every time it is returned.
pub trait SetAsideMarks: Send + Sync {
    /// The quarantine object `order` (the version's order key) of the record was kept as, if it was.
    fn set_aside_as(
        &self,
        collection: Collection,
        id: &str,
        order: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        let _ = (collection, id, order);
        async { Ok(None) }
    }

    /// Remembers that `order` of the record was kept as `key`.
    fn mark_set_aside(
        &self,
        collection: Collection,
        id: &str,
        order: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (collection, id, order, key);
        async { Ok(()) }
    }
}

impl<T: SetAsideMarks> SetAsideMarks for std::sync::Arc<T> {
    fn set_aside_as(
        &self,
        collection: Collection,
        id: &str,
        order: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        (**self).set_aside_as(collection, id, order)
    }

    fn mark_set_aside(
        &self,
        collection: Collection,
        id: &str,
        order: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).mark_set_aside(collection, id, order, key)
    }
}

impl SetAsideMarks for DynamoRecordStore {
    async fn set_aside_as(&self, collection: Collection, id: &str, order: &str) -> Result<Option<String>, StoreError> {
        let answer = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(attr::PK, AttributeValue::S(set_aside_key(collection, id)))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(e).to_string()))?;
        let item = answer.item.unwrap_or_default();
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        Ok(text(attr::CHANGE_ORDER).filter(|o| o == order).and_then(|_| text(KEPT_AS)))
    }

    async fn mark_set_aside(&self, collection: Collection, id: &str, order: &str, key: &str) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(self.table())
            .item(attr::PK, AttributeValue::S(set_aside_key(collection, id)))
            .item(attr::CHANGE_ORDER, AttributeValue::S(order.into()))
            .item(KEPT_AS, AttributeValue::S(key.into()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(e).to_string()))
    }
}
