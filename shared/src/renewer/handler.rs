//! One invocation of the renewer, as the Lambda runtime hands it over: the run within the
//! invocation's deadline, its metrics and log line, and the answer.
//!
//! A run that carried out its plan answers its report, healthy or not: a subscription left
//! failing is in the report, the metrics (`SubscriptionsUnhealthy`, its alarm) and `status`, and
//! is retried by the next scheduled run, so the invocation does not fail (EventBridge's retries
//! and dead-letter queue are for crashes). So is a stack whose credentials secret is not filled
//! in yet: one `CredentialsNotConfigured` metric, no error. Only a run that cannot plan fails.

use super::run::{run_metrics, RunError, RunReport};
use super::state::SubscriptionStore;
use super::Renewer;
use crate::invocation::{time_left, Budget};
use crate::protime::{Connect, ConnectError};
use crate::records::quarantine::Quarantine;
use crate::records::set_aside::SetAsideMarks;
use crate::records::{RecordStore, StoredHeads};
use crate::signing::writer::KeyWriter;
use crate::sync::kept::PageKeep;
use crate::sync::state::SyncStateStore;
use std::time::Duration;

/// Time kept free after a delta round for the rest of the run (the renewal's POST, the key, the
/// state, the strays), each call bounded by its client's timeouts.
pub const DELTA_ROUND_MARGIN: Duration = Duration::from_secs(120);

impl<
        P: Connect,
        K: KeyWriter,
        S: SubscriptionStore,
        R: RecordStore + StoredHeads + SetAsideMarks,
        Q: Quarantine + PageKeep,
        T: SyncStateStore,
    > Renewer<P, K, S, R, Q, T>
{
    /// Handles one scheduled invocation with its `deadline`: a recovery's delta round never
    /// starts a page it could not finish before it.
    pub async fn handle(&self, deadline: std::time::SystemTime) -> Result<RunReport, RunError> {
        let left = time_left(deadline);
        let result = match self.run_within(Budget::new(chrono::Utc::now(), left, DELTA_ROUND_MARGIN)).await {
            Err(RunError::Connect(why @ ConnectError::NotConfigured { .. })) => {
                tracing::warn!(error = %why, "not configured yet: no subscription made");
                Ok(RunReport::not_configured(why.to_string()))
            }
            other => other,
        };
        for doc in run_metrics(&self.config.metrics, result.as_ref().ok()) {
            doc.emit();
        }
        let report = result?;
        tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), healthy = report.healthy, "run finished");
        Ok(report)
    }
}
