//! Kept pages: a page fetched from Protime is kept durably before any of its records is
//! written, and the run that finds a kept page applies it before it fetches anything.
//!
//! Following a deltaLink spends it: the same link again answers 410, and a load after a 410
//! returns live records only. A delta page whose writes failed (the table past the SDK's
//! retries, the quarantine down, the function out of time or memory) would lose its Deletes for
//! good. So the page loop keeps each page first, points the collection's sync item at it, and only
//! then writes its records; the checkpoint that moves the cursor past the page clears the
//! pointer, and the page is discarded.
//!
//! Where a page is kept: in the sync item itself when it is small (at most
//! [`INLINE_PAGE_BYTES`]: the common delta round, one write and no object), else as an object
//! under `pages/` in the quarantine bucket (expired by the bucket's lifecycle rule if it is
//! never discarded). Without a bucket, pages up to [`MAX_INLINE_PAGE_BYTES`] still go in the
//! item. See `docs/decisions/0004-a-page-is-kept-before-it-is-applied.md`.

use crate::collection::Collection;
use crate::protime::Page;
use crate::records::quarantine::{unique_suffix, S3Quarantine};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::future::Future;

/// The key prefix of kept pages in the quarantine bucket (not a collection name, so quarantine
/// listings and replays never see them).
pub const KEPT_PAGES_PREFIX: &str = "pages/";
/// A page up to this size is kept in the sync item (one write of at most 64 KB).
pub const INLINE_PAGE_BYTES: usize = 64 * 1024;
/// Without a bucket, a page up to this size is still kept in the item (DynamoDB's 400 KB item
/// limit, with room for the rest of the state).
pub const MAX_INLINE_PAGE_BYTES: usize = 300 * 1024;

/// Where a fetched page is kept until it is applied.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptPage {
    /// The object holding the page's body (a large page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The page's body itself (a small page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub bytes: u64,
    pub kept_at: DateTime<Utc>,
}

/// Where and how large, never the body (records, and in a delta the next token).
impl std::fmt::Debug for KeptPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptPage")
            .field("object", &self.object)
            .field("inline", &self.body.is_some())
            .field("bytes", &self.bytes)
            .field("kept_at", &self.kept_at)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeepError {
    #[error("no bucket is configured for kept pages")]
    NotConfigured,
    #[error("the bucket of kept pages is unavailable: {0}")]
    Unavailable(String),
    #[error("the kept page {0} is gone")]
    Missing(String),
}

/// Where large pages are kept: objects by key.
pub trait PageKeep: Send + Sync {
    /// Stores `body` as a new object; returns its key.
    fn put_page(
        &self,
        collection: Collection,
        body: bytes::Bytes,
    ) -> impl Future<Output = Result<String, KeepError>> + Send;
    fn get_page(&self, key: &str) -> impl Future<Output = Result<bytes::Bytes, KeepError>> + Send;
    fn discard_page(&self, key: &str) -> impl Future<Output = Result<(), KeepError>> + Send;
}

/// The key of a page kept at `at`.
pub fn page_key(collection: Collection, at: DateTime<Utc>, unique: &str) -> String {
    format!("{KEPT_PAGES_PREFIX}{}/{}-{unique}.json", collection.as_str(), at.format("%Y/%m/%d/%H%M%S%.3fZ"))
}

/// Keeps `page`: in the item when it is small (or there is no bucket and it fits), else as an
/// object (in the item as well when the bucket fails and it fits); never in the item without
/// `inline` (the field policy names the collection: the table keeps no raw page). `Err` when it
/// can be kept nowhere; the caller applies it anyway (better than dropping a spent page) and
/// says so.
pub async fn keep<K: PageKeep>(
    store: Option<&K>,
    collection: Collection,
    page: &Page,
    now: DateTime<Utc>,
    inline: bool,
) -> Result<KeptPage, KeepError> {
    let bytes = page.body.len();
    let in_item = || {
        std::str::from_utf8(&page.body).ok().filter(|_| inline).map(|text| KeptPage {
            object: None,
            body: Some(text.to_owned()),
            bytes: bytes as u64,
            kept_at: now,
        })
    };
    if bytes <= INLINE_PAGE_BYTES {
        if let Some(kept) = in_item() {
            return Ok(kept);
        }
    }
    let stored = match store {
        Some(store) => store.put_page(collection, page.body.clone()).await,
        None => Err(KeepError::NotConfigured),
    };
    match stored {
        Ok(key) => Ok(KeptPage { object: Some(key), body: None, bytes: bytes as u64, kept_at: now }),
        // No bucket, or the bucket down: a page that fits still goes in the item.
        Err(e) if bytes <= MAX_INLINE_PAGE_BYTES => in_item().ok_or(e),
        Err(e) => Err(e),
    }
}

/// The page a [`KeptPage`] points at.
pub async fn load<K: PageKeep>(store: Option<&K>, kept: &KeptPage) -> Result<Page, KeepError> {
    match (&kept.body, &kept.object, store) {
        (Some(body), _, _) => Ok(Page::new(body.clone().into_bytes())),
        (None, Some(key), Some(store)) => Ok(Page::new(store.get_page(key).await?)),
        (None, Some(_), None) => Err(KeepError::NotConfigured),
        (None, None, _) => Err(KeepError::Missing("(no location)".into())),
    }
}

impl PageKeep for S3Quarantine {
    async fn put_page(&self, collection: Collection, body: bytes::Bytes) -> Result<String, KeepError> {
        let key = page_key(collection, Utc::now(), &unique_suffix());
        self.s3()
            .put_object()
            .bucket(self.bucket_name())
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .metadata("collection", collection.as_str())
            .send()
            .await
            .map_err(|e| KeepError::Unavailable(DisplayErrorContext(e).to_string()))?;
        Ok(key)
    }

    async fn get_page(&self, key: &str) -> Result<bytes::Bytes, KeepError> {
        let got = self.s3().get_object().bucket(self.bucket_name()).key(key).send().await.map_err(|e| {
            // Without s3:ListBucket, S3 answers a missing key with 403: gone either way.
            let status = e.raw_response().map(|r| r.status().as_u16());
            if e.as_service_error().is_some_and(|e| e.is_no_such_key()) || matches!(status, Some(403 | 404)) {
                KeepError::Missing(key.to_owned())
            } else {
                KeepError::Unavailable(DisplayErrorContext(e).to_string())
            }
        })?;
        // Into one buffer of the announced length: the page is in memory once.
        let mut body = Vec::with_capacity(got.content_length().unwrap_or(0).clamp(0, 256 << 20) as usize);
        let mut stream = got.body;
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk.map_err(|e| KeepError::Unavailable(e.to_string()))?);
        }
        Ok(bytes::Bytes::from(body))
    }

    async fn discard_page(&self, key: &str) -> Result<(), KeepError> {
        self.s3()
            .delete_object()
            .bucket(self.bucket_name())
            .key(key)
            .send()
            .await
            .map_err(|e| KeepError::Unavailable(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryQuarantine;
    use chrono::TimeZone;

    #[test]
    fn keys_are_under_pages_per_collection_and_day() {
        let at = Utc.with_ymd_and_hms(2026, 12, 2, 9, 5, 7).unwrap();
        assert_eq!(page_key(Collection::Clockings, at, "ab"), "pages/clockings/2026/12/02/090507.000Z-ab.json");
    }

    #[tokio::test]
    async fn small_pages_go_in_the_item_large_ones_in_the_bucket_and_without_one_what_fits() {
        let store = MemoryQuarantine::default();
        let now = Utc::now();
        let small = Page::new(r#"{"value":[]}"#);
        let kept = keep(Some(&store), Collection::Clockings, &small, now, true).await.unwrap();
        assert_eq!((kept.body.as_deref(), kept.object.as_deref()), (Some(r#"{"value":[]}"#), None));
        assert_eq!(load(Some(&store), &kept).await.unwrap(), small);

        let large = Page::new(format!(r#"{{"value":["{}"]}}"#, "x".repeat(INLINE_PAGE_BYTES)));
        let kept = keep(Some(&store), Collection::Clockings, &large, now, true).await.unwrap();
        let key = kept.object.clone().expect("kept as an object");
        assert!(key.starts_with("pages/clockings/") && kept.body.is_none(), "{kept:?}");
        assert_eq!(load(Some(&store), &kept).await.unwrap(), large);
        store.discard_page(&key).await.unwrap();
        assert_eq!(load(Some(&store), &kept).await, Err(KeepError::Missing(key)));

        let kept = keep(None::<&MemoryQuarantine>, Collection::Clockings, &large, now, true).await.unwrap();
        assert!(kept.body.is_some(), "no bucket: a page that fits goes in the item");
        let huge = Page::new(format!(r#"{{"value":["{}"]}}"#, "x".repeat(MAX_INLINE_PAGE_BYTES)));
        assert_eq!(
            keep(None::<&MemoryQuarantine>, Collection::Clockings, &huge, now, true).await,
            Err(KeepError::NotConfigured)
        );
        assert!(!format!("{kept:?}").contains("xxx"), "Debug never shows the body");
    }

    /// A page of a collection the field policy names is as Protime sent it: never in the item.
    #[tokio::test]
    async fn without_inline_a_small_page_goes_to_the_bucket_or_nowhere() {
        let store = MemoryQuarantine::default();
        let now = Utc::now();
        let small = Page::new(r#"{"value":[{"id":1,"pinCode":"1234"}]}"#);
        let kept = keep(Some(&store), Collection::People, &small, now, false).await.unwrap();
        assert!(kept.body.is_none() && kept.object.as_deref().is_some_and(|k| k.starts_with("pages/people/")));
        let nowhere = keep(None::<&MemoryQuarantine>, Collection::People, &small, now, false).await;
        assert_eq!(nowhere, Err(KeepError::NotConfigured), "applied unkept rather than kept in the table");
    }
}
