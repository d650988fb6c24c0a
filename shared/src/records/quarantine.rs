//! The quarantine: correctly signed bodies (or single events of a batch) that can never be
//! stored are kept byte for byte in an S3 bucket, with the reason in the object's metadata, so
//! they are acknowledged instead of retried forever, alarmed on, and replayable after a fix.
//!
//! Objects are named `<collection>/<yyyy>/<mm>/<dd>/<HHMMSS.mmm>Z-<unique>.json`; their metadata:
//! `reason`, `collection`, `received-at`, `source` (`webhook`, `delta` or `resync`: who fetched
//! it), `signature` (`verified`, on webhook bodies: nothing unsigned is ever kept) and, when they
//! could be read, `record-id`, `change-type` and `change-version`.
//!
//! The same bucket holds the sync's kept pages under `pages/` (see [`crate::sync::kept`]); they
//! are not quarantined bodies and are never listed or replayed as such.

use super::event::{delete_of, split_body, ChangeType, Event, Split};
use super::store::{put_all, PutOutcome, RecordStore, StoreError};
use crate::collection::Collection;
use crate::records::item::Source;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use rand::Rng;
use std::future::Future;

/// Why a quarantine write failed; the caller must not acknowledge the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuarantineError {
    #[error("the quarantine bucket is unavailable: {0}")]
    Unavailable(String),
}

/// What is known of a kept body, for its metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Note<'a> {
    /// A stable name of what is wrong (`duplicate_key`, `number_out_of_range`, …).
    pub reason: &'a str,
    /// Who received the body: a webhook (its signature verified) or the sync (`delta`, `resync`).
    pub source: Source,
    pub record_id: Option<&'a str>,
    pub change_type: Option<ChangeType>,
    pub change_version: Option<&'a str>,
}

impl<'a> Note<'a> {
    /// A webhook body (or one event of it) that was signed and cannot be stored.
    pub fn webhook(reason: &'a str, record_id: Option<&'a str>) -> Self {
        Note { reason, source: Source::Webhook, record_id, change_type: None, change_version: None }
    }
}

/// Where unstorable bodies are kept.
pub trait Quarantine: Send + Sync {
    /// Keeps `bytes` exactly; returns the object's key.
    fn keep(
        &self,
        collection: Collection,
        bytes: &[u8],
        note: Note<'_>,
    ) -> impl Future<Output = Result<String, QuarantineError>> + Send;
}

/// Where no quarantine is configured: every keep fails, so callers answer as they would without one.
pub struct NoQuarantine;

impl Quarantine for NoQuarantine {
    async fn keep(&self, _: Collection, _: &[u8], _: Note<'_>) -> Result<String, QuarantineError> {
        Err(QuarantineError::Unavailable("no quarantine bucket is configured".into()))
    }
}

/// The key of an object kept at `at`; `unique` keeps two bodies of the same millisecond apart.
pub fn object_key(collection: Collection, at: DateTime<Utc>, unique: &str) -> String {
    format!("{}/{}-{unique}.json", collection.as_str(), at.format("%Y/%m/%d/%H%M%S%.3fZ"))
}

/// 16 random hex digits.
pub fn unique_suffix() -> String {
    format!("{:016x}", rand::rng().random::<u64>())
}

/// What replaying one quarantined body did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Every event was decided by the conditional write, as a delivery's would have been:
    /// (record id, outcome) in the body's order.
    Written(Vec<(String, PutOutcome)>),
    /// The body still cannot be stored, for this reason; nothing was written.
    StillUnstorable(&'static str),
}

/// Runs a quarantined body through the receiver's own parse and conditional store (a webhook's
/// signature was verified when it arrived; a synced record was fetched from Protime's API), as
/// written by `source`. All or nothing: if any event still cannot be stored, nothing is written.
/// A Delete whose fields cannot be stored replays as the deletion of its `id` at its
/// `changeVersion` (a tombstone needs nothing else). With `dry_run`, only parses and reports the
/// events that would be written.
pub async fn replay<S: RecordStore>(
    store: &S,
    collection: Collection,
    body: &[u8],
    source: Source,
    dry_run: bool,
) -> Result<Replayed, StoreError> {
    let events: Vec<Event> = match split_body(body) {
        Err(e) | Ok(Split::One(Err(e))) => match delete_of(body) {
            Some(delete) => vec![delete],
            None => return Ok(Replayed::StillUnstorable(e.reason())),
        },
        Ok(Split::One(Ok(event))) => vec![event],
        Ok(Split::Batch(items)) => match items.into_iter().map(|(_, e)| e).collect::<Result<Vec<_>, _>>() {
            Ok(events) => events,
            Err(e) => return Ok(Replayed::StillUnstorable(e.reason())),
        },
    };
    let mut events = events;
    for event in &mut events {
        let item = super::item::record_item(collection, event, source, "");
        if let Some(reason) = super::item::unstorable(&item) {
            match (event.change_type, delete_of(body)) {
                (ChangeType::Delete, Some(delete)) if delete.id == event.id => *event = delete,
                _ => return Ok(Replayed::StillUnstorable(reason)),
            }
        }
    }
    if dry_run {
        return Ok(Replayed::Written(events.iter().map(|e| (e.id.as_str().to_owned(), PutOutcome::Stored)).collect()));
    }
    let mut written = Vec::with_capacity(events.len());
    for (event, result) in events.iter().zip(put_all(store, collection, &events, source, 8).await) {
        match result {
            Ok(outcome) => written.push((event.id.as_str().to_owned(), outcome)),
            Err(StoreError::Rejected { reason, .. }) => return Ok(Replayed::StillUnstorable(reason)),
            Err(e) => return Err(e),
        }
    }
    Ok(Replayed::Written(written))
}

/// A record id as object metadata: S3 allows 2 KB of printable ASCII in all, and the body that
/// is kept must never fail for its id (a key too long to store is one reason to quarantine). A
/// long or non-ASCII id becomes `sha256:<hex>` of its bytes; the body holds the id itself.
pub fn metadata_id(id: &str) -> String {
    const MAX: usize = 256;
    if id.len() <= MAX && id.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return id.to_owned();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The S3 adapter.
#[derive(Debug, Clone)]
pub struct S3Quarantine {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Quarantine {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Quarantine { client, bucket: bucket.into() }
    }

    pub(crate) fn s3(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    pub(crate) fn bucket_name(&self) -> &str {
        &self.bucket
    }

    /// The client for `sdk`: path-style addressing when an endpoint is configured (a local
    /// emulator has no per-bucket host names), virtual-hosted otherwise, as AWS prefers.
    pub fn client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some()).build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

impl Quarantine for S3Quarantine {
    async fn keep(&self, collection: Collection, bytes: &[u8], note: Note<'_>) -> Result<String, QuarantineError> {
        let now = Utc::now();
        let key = object_key(collection, now, &unique_suffix());
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(bytes.to_vec()))
            .metadata("reason", note.reason)
            .metadata("collection", collection.as_str())
            .metadata("received-at", now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .metadata("source", note.source.as_str());
        if note.source == Source::Webhook {
            request = request.metadata("signature", "verified");
        }
        if let Some(id) = note.record_id {
            request = request.metadata("record-id", metadata_id(id));
        }
        if let Some(change_type) = note.change_type {
            request = request.metadata("change-type", change_type.as_str());
        }
        if let Some(version) = note.change_version {
            request = request.metadata("change-version", metadata_id(version));
        }
        request.send().await.map_err(|e| QuarantineError::Unavailable(DisplayErrorContext(e).to_string()))?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keys_are_per_collection_and_day_and_sort_by_time() {
        let at = Utc.with_ymd_and_hms(2026, 11, 26, 9, 5, 7).unwrap() + chrono::Duration::milliseconds(42);
        assert_eq!(object_key(Collection::Clockings, at, "ab12"), "clockings/2026/11/26/090507.042Z-ab12.json");
        assert_eq!(unique_suffix().len(), 16);
        assert_ne!(unique_suffix(), unique_suffix());
    }

    #[tokio::test]
    async fn a_replayed_body_is_stored_as_a_delivery_would_be_and_an_unstorable_one_is_not() {
        let store = crate::testing::MemoryRecordStore::default();
        let body = br#"[{"id":1,"changeVersion":"2"},{"id":2,"changeVersion":"1"}]"#;
        let dry = replay(&store, Collection::Clockings, body, Source::Webhook, true).await.unwrap();
        assert_eq!(dry, Replayed::Written(vec![("1".into(), PutOutcome::Stored), ("2".into(), PutOutcome::Stored)]));
        assert!(store.items.lock().unwrap().is_empty(), "a dry run writes nothing");
        assert_eq!(replay(&store, Collection::Clockings, body, Source::Webhook, false).await.unwrap(), dry);
        let again = replay(&store, Collection::Clockings, body, Source::Webhook, false).await.unwrap();
        assert_eq!(
            again,
            Replayed::Written(vec![("1".into(), PutOutcome::Duplicate), ("2".into(), PutOutcome::Duplicate)])
        );
        let unstorable = br#"[{"id":3,"changeVersion":"1"},{"id":4,"changeVersion":"1","":"x"}]"#;
        let outcome = replay(&store, Collection::Clockings, unstorable, Source::Webhook, false).await.unwrap();
        assert_eq!(outcome, Replayed::StillUnstorable("empty_attribute_name"));
        assert_eq!(store.change_version(Collection::Clockings, "3"), None, "all or nothing");
        let outcome = replay(&store, Collection::Clockings, b"not json", Source::Webhook, false).await.unwrap();
        assert_eq!(outcome, Replayed::StillUnstorable("not_json"));
    }

    #[test]
    fn ids_too_long_or_not_ascii_for_metadata_are_hashed() {
        assert_eq!(metadata_id("42"), "42");
        let long = metadata_id(&"x".repeat(2100));
        assert!(long.starts_with("sha256:") && long.len() == 7 + 64, "{long}");
        assert!(metadata_id("café").starts_with("sha256:"));
        assert!(metadata_id("a\nb").starts_with("sha256:"));
    }
}
