//! What an invocation of the syncer asks for ([`SyncRequest`]), and why a run could not start
//! ([`SyncRunError`], with the Lambda error it answers).

use crate::protime::ConnectError;
use chrono::NaiveDate;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// What an invocation asks for. A scheduled event (or `{}`) is a normal run of every
/// configured collection; `{"collections":["clockings"],"reinitialize":true,"from":"2024-01-01"}`
/// restarts those collections' initial load (a manual backfill);
/// `{"collections":["clockings"],"reconcile":true}` starts their reconciliation now (with
/// `"dryRun":true`, a comparison that writes no record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncRequest {
    pub collections: Option<Vec<String>>,
    pub reinitialize: bool,
    pub from: Option<NaiveDate>,
    /// Start a reconciliation (a full pass with sweep) of the named collections now.
    pub reconcile: bool,
    /// With `reconcile`: compare and report only; no record is written, the delta left alone.
    #[serde(rename = "dryRun")]
    pub dry_run: bool,
    /// With `reconcile`: the most its sweep may tombstone (an operator allowing a held sweep
    /// through); without it, `SWEEP_LIMIT`.
    #[serde(rename = "maxSweep")]
    pub max_sweep: Option<u64>,
}

/// A request as the CLI sends it: the collections, then what kind of run it asks for with that
/// kind's settings — `reinitialize` (and `from`) for a run or backfill, `reconcile`, `dryRun` (and
/// `maxSweep`) for a reconciliation — and a field of the other kind only when it is set. It reads
/// back as the same request.
impl Serialize for SyncRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(collections) = &self.collections {
            map.serialize_entry("collections", collections)?;
        }
        if self.reinitialize || !self.reconcile {
            map.serialize_entry("reinitialize", &self.reinitialize)?;
        }
        if let Some(from) = &self.from {
            map.serialize_entry("from", from)?;
        }
        if self.reconcile {
            map.serialize_entry("reconcile", &self.reconcile)?;
        }
        if self.dry_run || self.reconcile {
            map.serialize_entry("dryRun", &self.dry_run)?;
        }
        if let Some(max_sweep) = &self.max_sweep {
            map.serialize_entry("maxSweep", max_sweep)?;
        }
        map.end()
    }
}

impl SyncRequest {
    /// The invocation's payload as a request: an EventBridge event (it has a `detail-type`) is a
    /// scheduled run; anything else must be a request with no unknown field, so a misspelt
    /// `collection` never turns a backfill of one collection into a run of all.
    pub fn from_payload(payload: serde_json::Value) -> Result<SyncRequest, SyncRunError> {
        if payload.get("detail-type").is_some() {
            return Ok(SyncRequest::default());
        }
        serde_json::from_value(payload).map_err(|e| SyncRunError::InvalidRequest(e.to_string()))
    }
}

/// A run that could not start. (A run that ends answers its report, collections in error or
/// not: the handler never fails for them.)
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncRunError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("the request names collections that are not configured: {}", .0.join(", "))]
    UnknownCollections(Vec<String>),
    #[error("the request is invalid: {0}")]
    InvalidRequest(String),
}

impl SyncRunError {
    /// A stable name for the Lambda error type.
    pub fn error_type(&self) -> &'static str {
        match self {
            SyncRunError::Connect(_) => "ProtimeCredentialsUnavailable",
            SyncRunError::UnknownCollections(_) | SyncRunError::InvalidRequest(_) => "InvalidRequest",
        }
    }
}

impl From<SyncRunError> for lambda_http::lambda_runtime::Diagnostic {
    fn from(error: SyncRunError) -> Self {
        lambda_http::lambda_runtime::Diagnostic {
            error_type: error.error_type().into(),
            error_message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_is_sent_with_the_fields_of_its_kind_and_reads_back_as_itself() {
        let collections = Some(vec!["clockings".to_owned()]);
        let backfill = SyncRequest {
            collections: collections.clone(),
            reinitialize: true,
            from: NaiveDate::from_ymd_opt(2024, 1, 1),
            ..SyncRequest::default()
        };
        let run = SyncRequest { collections: collections.clone(), ..SyncRequest::default() };
        let reconcile = SyncRequest { collections: collections.clone(), reconcile: true, ..SyncRequest::default() };
        let allowed = SyncRequest { max_sweep: Some(2), ..reconcile.clone() };
        let both = SyncRequest { reinitialize: true, dry_run: true, ..SyncRequest::default() };
        let sent = |request: &SyncRequest| serde_json::to_string(request).unwrap();
        assert_eq!(sent(&backfill), r#"{"collections":["clockings"],"reinitialize":true,"from":"2024-01-01"}"#);
        assert_eq!(sent(&run), r#"{"collections":["clockings"],"reinitialize":false}"#);
        assert_eq!(sent(&reconcile), r#"{"collections":["clockings"],"reconcile":true,"dryRun":false}"#);
        assert_eq!(sent(&allowed), r#"{"collections":["clockings"],"reconcile":true,"dryRun":false,"maxSweep":2}"#);
        assert_eq!(sent(&both), r#"{"reinitialize":true,"dryRun":true}"#);
        for request in [backfill, run, reconcile, allowed, both, SyncRequest::default()] {
            let read = SyncRequest::from_payload(json!(request)).unwrap();
            assert_eq!(read, request);
        }
    }
}
