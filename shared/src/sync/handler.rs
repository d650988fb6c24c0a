//! One invocation of the syncer, as the Lambda runtime hands it over: the payload read as a
//! request, the run within the invocation's deadline, its metrics and log line, and the answer
//! (the report; a failed invocation, whose message is the report, when a collection is in error).

use super::report::{sync_metrics, SyncReport};
use super::request::{SyncRequest, SyncRunError};
use super::run::Syncer;
use super::state::SyncStateStore;
use super::sweep::LiveRecords;
use crate::invocation::{time_left, Budget};
use crate::protime::Connect;
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
        let report = self.run(&request, budget).await?;
        for doc in sync_metrics(&self.config.metrics, &report) {
            doc.emit();
        }
        tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), healthy = report.healthy, "run finished");
        if !report.healthy {
            // A failed invocation is what the alarms and the schedule's retry policy watch; its
            // errorMessage is the report.
            return Err(SyncRunError::Failing(Box::new(report)));
        }
        Ok(report)
    }
}
