//! The quarantine: correctly signed bodies (or single events of a batch) that can never be
//! stored are kept byte for byte in an S3 bucket, with the reason in the object's metadata, so
//! they are acknowledged instead of retried forever, alarmed on, and replayable after a fix.
//!
//! Objects are named `<collection>/<yyyy>/<mm>/<dd>/<HHMMSS.mmm>Z-<unique>.json`; their metadata:
//! `reason`, `collection`, `received-at`, `signature` (`verified`: nothing unsigned is ever kept)
//! and, when the event had one, `record-id`.

use crate::collection::Collection;
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

/// Where unstorable bodies are kept.
pub trait Quarantine: Send + Sync {
    /// Keeps `bytes` exactly; returns the object's key.
    fn keep(
        &self,
        collection: Collection,
        bytes: &[u8],
        reason: &str,
        record_id: Option<&str>,
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

    /// The client for `sdk`: path-style addressing when an endpoint is configured (a local
    /// emulator has no per-bucket host names), virtual-hosted otherwise, as AWS prefers.
    pub fn client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some()).build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

impl Quarantine for S3Quarantine {
    async fn keep(
        &self,
        collection: Collection,
        bytes: &[u8],
        reason: &str,
        record_id: Option<&str>,
    ) -> Result<String, QuarantineError> {
        let now = Utc::now();
        let key = object_key(collection, now, &unique_suffix());
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(bytes.to_vec()))
            .metadata("reason", reason)
            .metadata("collection", collection.as_str())
            .metadata("received-at", now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .metadata("signature", "verified");
        if let Some(id) = record_id {
            request = request.metadata("record-id", metadata_id(id));
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

    #[test]
    fn ids_too_long_or_not_ascii_for_metadata_are_hashed() {
        assert_eq!(metadata_id("42"), "42");
        let long = metadata_id(&"x".repeat(2100));
        assert!(long.starts_with("sha256:") && long.len() == 7 + 64, "{long}");
        assert!(metadata_id("café").starts_with("sha256:"));
        assert!(metadata_id("a\nb").starts_with("sha256:"));
    }
}
