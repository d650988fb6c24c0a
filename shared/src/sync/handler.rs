//! One invocation of the syncer, as the Lambda runtime hands it over: the payload read as a
//! request, the run within the invocation's deadline, its metrics and log line, and the answer.
//!
//! A run that ends is answered with its report, healthy or not: a collection in error is in the
//! report, the metrics (`SyncErrorRuns`, `SyncLagSeconds`, …) and `status`, and is retried by the
//! next scheduled run, so the invocation does not fail (EventBridge's retries and dead-letter
//! queue are for crashes). So is a stack whose credentials secret is not filled in yet: one
//! `CredentialsNotConfigured` metric, no error. Only a run that cannot start fails.

use super::report::{sync_metrics, SyncReport};
use super::request::{SyncRequest, SyncRunError};
use super::run::Syncer;
use super::state::SyncStateStore;
use super::sweep::LiveRecords;
use crate::invocation::{time_left, Budget};
use crate::protime::{Connect, ConnectError};
use crate::records::quarantine::Quarantine;
use crate::records::set_aside::SetAsideMarks;
use crate::records::{RecordStore, StoredHeads};
use crate::sync::kept::PageKeep;

impl<
        P: Connect,
        R: RecordStore + StoredHeads + SetAsideMarks + LiveRecords,
        S: SyncStateStore,
        Q: Quarantine + PageKeep,
    > Syncer<P, R, S, Q>
{
    /// Handles one invocation: `payload` (a scheduled event is a normal run), the invocation's
    /// `deadline`. Errors are [`SyncRunError`], so Lambda reports their stable `errorType`
    /// (alarms and the CLI read it), never a Rust type name.
    pub async fn handle(
        &self,
        payload: serde_json::Value,
        deadline: std::time::SystemTime,
    ) -> Result<SyncReport, SyncRunError> {
        let request = SyncRequest::from_payload(payload)?;
        let left = time_left(deadline);
        let budget = Budget::new(chrono::Utc::now(), left, self.config.deadline_margin);
        tracing::info!(
            time_left_ms = left.map(|d| d.as_millis() as u64),
            collections = ?request.collections,
            reinitialize = request.reinitialize,
            from = ?request.from,
            "sync run"
        );
        let report = match self.run(&request, budget).await {
            Err(SyncRunError::Connect(why @ ConnectError::NotConfigured { .. })) => {
                tracing::warn!(error = %why, "not configured yet: nothing synced");
                SyncReport::not_configured(why.to_string())
            }
            other => other?,
        };
        for doc in sync_metrics(&self.config.metrics, &report) {
            doc.emit();
        }
        tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), healthy = report.healthy, "run finished");
        Ok(report)
    }
}
