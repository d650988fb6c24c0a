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
//!
//! A replay writes into the table, so it takes only objects the functions wrote: the bucket
//! policy denies `s3:PutObject` to every principal but the three function roles, and
//! [`provenance`] refuses an object whose metadata does not say who kept it (a webhook body
//! whose signature was verified, or a record the sync fetched). A single change is replayed as
//! the change type its metadata names, or not at all.

use super::event::{delete_of, split_body, ChangeType, Event, Split};
use super::store::{put_all, PutOutcome, RecordStore, StoreError};
use crate::collection::Collection;
use crate::records::item::Source;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use rand::Rng;
use std::collections::HashMap;
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

/// The key of an object kept at `at`; `unique` keeps two bodies of the same millisecond apart.
pub fn object_key(collection: Collection, at: DateTime<Utc>, unique: &str) -> String {
    format!("{}/{}-{unique}.json", collection.as_str(), at.format("%Y/%m/%d/%H%M%S%.3fZ"))
}

/// 16 random hex digits.
pub fn unique_suffix() -> String {
    format!("{:016x}", rand::rng().random::<u64>())
}

/// Who kept a quarantined object and what it holds, from its metadata: what a replay writes it as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provenance {
    /// Written as `source` (a webhook body, or a record the sync fetched from a delta or a list).
    pub source: Source,
    /// The change type of a single change, when it was read before it was kept.
    pub change_type: Option<ChangeType>,
}

impl Provenance {
    /// A webhook body whose signature was verified.
    pub fn webhook() -> Self {
        Provenance { source: Source::Webhook, change_type: None }
    }
}

/// Why an object is not replayed: it does not say that the functions kept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotReplayable {
    /// No `source` a function writes (`webhook`, `delta`, `resync`).
    #[error(
        "its metadata names no source the functions write (webhook, delta or resync): not kept by protime-webhooks"
    )]
    UnknownSource,
    /// A webhook body without `signature: verified`.
    #[error("a webhook body without signature=verified in its metadata: not kept by protime-webhooks")]
    Unverified,
    /// A `change-type` that is not Protime's.
    #[error("its change-type metadata is not InsertOrUpdate or Delete")]
    UnknownChangeType,
}

impl NotReplayable {
    /// A stable name for reports.
    pub fn reason(self) -> &'static str {
        match self {
            NotReplayable::UnknownSource => "unknown_source",
            NotReplayable::Unverified => "unverified",
            NotReplayable::UnknownChangeType => "unknown_change_type",
        }
    }
}

/// Reads who kept an object from its metadata (S3 user metadata, names in lower case). A
/// webhook body must say `signature: verified`; one kept before `source` was written (release
/// 0.1.0) has only that and is a webhook body.
pub fn provenance(metadata: &HashMap<String, String>) -> Result<Provenance, NotReplayable> {
    let verified = metadata.get("signature").map(String::as_str) == Some("verified");
    let source = match metadata.get("source").map(String::as_str) {
        Some("webhook") | None if verified => Source::Webhook,
        Some("webhook") => return Err(NotReplayable::Unverified),
        Some("delta") => Source::Delta,
        Some("resync") => Source::Resync,
        _ => return Err(NotReplayable::UnknownSource),
    };
    let change_type = match metadata.get("change-type").map(String::as_str) {
        None => None,
        Some("InsertOrUpdate") => Some(ChangeType::InsertOrUpdate),
        Some("Delete") => Some(ChangeType::Delete),
        Some(_) => return Err(NotReplayable::UnknownChangeType),
    };
    Ok(Provenance { source, change_type })
}

/// What replaying one quarantined body did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Every event was decided by the conditional write, as a delivery's would have been:
    /// (record id, outcome) in the body's order.
    Written(Vec<(String, PutOutcome)>),
    /// The body still cannot be stored, for this reason; nothing was written.
    StillUnstorable(&'static str),
    /// The body is not the single change of the type its metadata names
    /// (`change_type_mismatch`); nothing was written.
    Refused(&'static str),
}

/// Runs a quarantined body through the receiver's own parse and conditional store (a webhook's
/// signature was verified when it arrived; a synced record was fetched from Protime's API), as
/// written by its [`Provenance`]'s source. All or nothing: if any event still cannot be stored,
/// nothing is written. A Delete whose fields cannot be stored replays as the deletion of its
/// `id` at its `changeVersion` (a tombstone needs nothing else). A body kept with a change type
/// must be that one change. With `dry_run`, only parses and reports the events that would be
/// written.
pub async fn replay<S: RecordStore>(
    store: &S,
    collection: Collection,
    body: &[u8],
    provenance: Provenance,
    dry_run: bool,
) -> Result<Replayed, StoreError> {
    let source = provenance.source;
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
    if let Some(kept_as) = provenance.change_type {
        if events.len() != 1 || events[0].change_type != kept_as {
            return Ok(Replayed::Refused("change_type_mismatch"));
        }
    }
    let mut events = events;
    for event in &mut events {
        // As the store would keep it: a field the policy drops may be what made it unstorable.
        let item = super::item::record_item(collection, &store.kept(collection, event), source, "");
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
        let dry = replay(&store, Collection::Clockings, body, Provenance::webhook(), true).await.unwrap();
        assert_eq!(dry, Replayed::Written(vec![("1".into(), PutOutcome::Stored), ("2".into(), PutOutcome::Stored)]));
        assert!(store.items.lock().unwrap().is_empty(), "a dry run writes nothing");
        assert_eq!(replay(&store, Collection::Clockings, body, Provenance::webhook(), false).await.unwrap(), dry);
        let again = replay(&store, Collection::Clockings, body, Provenance::webhook(), false).await.unwrap();
        assert_eq!(
            again,
            Replayed::Written(vec![("1".into(), PutOutcome::Duplicate), ("2".into(), PutOutcome::Duplicate)])
        );
        let unstorable = br#"[{"id":3,"changeVersion":"1"},{"id":4,"changeVersion":"1","":"x"}]"#;
        let outcome = replay(&store, Collection::Clockings, unstorable, Provenance::webhook(), false).await.unwrap();
        assert_eq!(outcome, Replayed::StillUnstorable("empty_attribute_name"));
        assert_eq!(store.change_version(Collection::Clockings, "3"), None, "all or nothing");
        let outcome = replay(&store, Collection::Clockings, b"not json", Provenance::webhook(), false).await.unwrap();
        assert_eq!(outcome, Replayed::StillUnstorable("not_json"));
    }

    fn metadata(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn only_objects_whose_metadata_says_a_function_kept_them_are_replayable() {
        let webhook = Provenance::webhook();
        assert_eq!(provenance(&metadata(&[("source", "webhook"), ("signature", "verified")])), Ok(webhook));
        assert_eq!(provenance(&metadata(&[("signature", "verified"), ("reason", "not_json")])), Ok(webhook), "0.1.0");
        assert_eq!(
            provenance(&metadata(&[("source", "delta"), ("change-type", "Delete")])),
            Ok(Provenance { source: Source::Delta, change_type: Some(ChangeType::Delete) })
        );
        assert_eq!(
            provenance(&metadata(&[("source", "resync")])),
            Ok(Provenance { source: Source::Resync, change_type: None })
        );
        assert_eq!(provenance(&metadata(&[("reason", "not_json")])), Err(NotReplayable::UnknownSource));
        assert_eq!(provenance(&metadata(&[])), Err(NotReplayable::UnknownSource));
        assert_eq!(provenance(&metadata(&[("source", "webhook")])), Err(NotReplayable::Unverified));
        assert_eq!(
            provenance(&metadata(&[("source", "admin"), ("signature", "verified")])),
            Err(NotReplayable::UnknownSource)
        );
        assert_eq!(
            provenance(&metadata(&[("source", "delta"), ("change-type", "Upsert")])),
            Err(NotReplayable::UnknownChangeType)
        );
    }

    #[tokio::test]
    async fn a_change_is_replayed_only_as_the_change_type_it_was_kept_as() {
        let store = crate::testing::MemoryRecordStore::default();
        let delete = Provenance { source: Source::Delta, change_type: Some(ChangeType::Delete) };
        // Kept as a Delete, but the body is the record's data: it would replay as a live record.
        let data = br#"{"id":5,"changeVersion":"0000090200004BD0000A","hours":8}"#;
        assert_eq!(
            replay(&store, Collection::Clockings, data, delete, false).await.unwrap(),
            Replayed::Refused("change_type_mismatch")
        );
        let batch = br#"[{"changeType":"Delete","data":{"id":5,"changeVersion":"0000090200004BD0000A"}},{"id":6,"changeVersion":"1"}]"#;
        assert_eq!(
            replay(&store, Collection::Clockings, batch, delete, false).await.unwrap(),
            Replayed::Refused("change_type_mismatch")
        );
        assert!(store.items.lock().unwrap().is_empty(), "nothing written");
        let envelope = br#"{"changeType":"Delete","data":{"id":5,"changeVersion":"0000090200004BD0000A"}}"#;
        assert_eq!(
            replay(&store, Collection::Clockings, envelope, delete, false).await.unwrap(),
            Replayed::Written(vec![("5".into(), PutOutcome::Stored)])
        );
        let deleted = store.attribute(Collection::Clockings, "5", crate::records::item::attr::DELETED);
        assert_eq!(deleted, Some(aws_sdk_dynamodb::types::AttributeValue::Bool(true)), "replayed as a Delete");
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
