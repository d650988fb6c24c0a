//! The renewer's run: load state, ask Protime, plan, and carry out each subscription's action.
//!
//! A renewal is ordered so that a crash anywhere is repaired by the next run: the intent is
//! recorded first (`renewingSince`), then the POST, then the new key is stored at once (the old
//! key stops matching the moment Protime issues the new one), then the state. A run that finds
//! the intent still recorded renews again. One subscription's failure does not stop the others.

use crate::collection::Collection;
use crate::config::RenewerConfig;
use crate::protime::client::{scopes_for, ClientOptions};
use crate::protime::{ProtimeClient, ProtimeCredentials, ProtimeError, WebhookStatus};
use crate::renewal::{self, Action, Decision, Desired, PlanInput, SubscriptionState};
use crate::resync::{self, ResyncCounts};
use crate::signing_keys::{KeyWriter, SecretsManagerKeySource};
use crate::store::{DynamoRecordStore, RecordStore};
use crate::subscriptions::{DynamoSubscriptionStore, SubscriptionStore};
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// The outcome of one subscription in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionReport {
    pub collection: String,
    pub action: &'static str,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hours_until_expiry: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resynced: Option<ResyncCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A webhook at our destination base that no wanted subscription uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StrayReport {
    pub webhook_id: String,
    pub collection: String,
    pub destination_url: String,
    pub deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a run did; `healthy` is false if any subscription was left failing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub healthy: bool,
    pub subscriptions: Vec<SubscriptionReport>,
    pub strays: Vec<StrayReport>,
}

/// A run that could not even start planning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("Protime credentials: {0}")]
    Credentials(String),
    #[error(transparent)]
    Protime(#[from] ProtimeError),
    #[error(transparent)]
    State(#[from] crate::subscriptions::StateError),
}

pub struct Renewer<K = SecretsManagerKeySource, S = DynamoSubscriptionStore, R = DynamoRecordStore> {
    pub config: RenewerConfig,
    /// Client settings; the credentials are read from Secrets Manager at the start of each run,
    /// so rotated client credentials are picked up without a redeploy.
    pub client_options: ClientOptions,
    secrets: aws_sdk_secretsmanager::Client,
    keys: K,
    subscriptions: S,
    records: R,
}

impl Renewer {
    /// The renewer as deployed, on the AWS clients of `sdk`.
    pub fn from_config(config: RenewerConfig, sdk: &aws_config::SdkConfig) -> Self {
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let keys = SecretsManagerKeySource::new(secrets.clone(), &config.signing_key_secret_prefix);
        let subscriptions = DynamoSubscriptionStore::new(dynamodb.clone(), &config.table_name);
        let records = DynamoRecordStore::new(dynamodb, &config.table_name);
        Renewer::new(config, secrets, keys, subscriptions, records)
    }
}

impl<K: KeyWriter, S: SubscriptionStore, R: RecordStore> Renewer<K, S, R> {
    pub fn new(
        config: RenewerConfig,
        secrets: aws_sdk_secretsmanager::Client,
        keys: K,
        subscriptions: S,
        records: R,
    ) -> Self {
        let mut client_options =
            ClientOptions::new(scopes_for(config.collections.iter().map(|c| c.as_str())), &config.user_agent_company);
        client_options.api_base_url = config.protime_api_base_url.clone();
        client_options.token_url = config.protime_token_url.clone();
        Renewer { config, client_options, secrets, keys, subscriptions, records }
    }

    /// One scheduled run at `now`.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<RunReport, RunError> {
        let credentials = self.credentials().await?;
        let protime = ProtimeClient::new(credentials, self.client_options.clone())?;
        let stored = self.subscriptions.load(&self.config.collections).await?;
        let reported = protime.list_webhooks(None).await?;
        let desired =
            Desired::all(&self.config.destination_base_url, &self.config.collections, &self.config.external_references);
        let plan = renewal::plan(PlanInput {
            now,
            desired: &desired,
            reported: &reported,
            stored: &stored,
            renew_before: self.config.renew_before,
            destination_base: &self.config.destination_base_url,
            default_gap: self.config.default_gap,
        });

        let mut subscriptions = Vec::with_capacity(plan.decisions.len());
        for decision in &plan.decisions {
            let collection = decision.desired.collection;
            let mut state = stored.get(&collection).cloned().unwrap_or_default();
            let report = self.execute(&protime, decision, &mut state, now).await;
            log_report(&report);
            subscriptions.push(report);
        }
        let mut strays = Vec::with_capacity(plan.strays.len());
        for webhook in &plan.strays {
            let mut report = StrayReport {
                webhook_id: webhook.id.clone(),
                collection: webhook.collection_name.clone(),
                destination_url: webhook.destination_url.clone(),
                deleted: false,
                error: None,
            };
            if self.config.delete_stray_webhooks {
                match protime.delete_webhook(&webhook.id).await {
                    Ok(()) => report.deleted = true,
                    Err(e) => report.error = Some(e.to_string()),
                }
            }
            tracing::warn!(webhook_id = %report.webhook_id, collection = %report.collection, deleted = report.deleted, "stray webhook at our destination");
            strays.push(report);
        }
        let healthy = subscriptions.iter().all(|s| s.ok) && strays.iter().all(|s| s.error.is_none());
        Ok(RunReport { healthy, subscriptions, strays })
    }

    async fn credentials(&self) -> Result<ProtimeCredentials, RunError> {
        let id = &self.config.protime_credentials_secret;
        let answer = self
            .secrets
            .get_secret_value()
            .secret_id(id)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .map_err(|e| RunError::Credentials(format!("reading {id}: {}", DisplayErrorContext(e))))?;
        let json =
            answer.secret_string().ok_or_else(|| RunError::Credentials(format!("{id} holds no SecretString")))?;
        ProtimeCredentials::from_json(json).map_err(|e| RunError::Credentials(format!("{id}: {e}")))
    }

    async fn execute(
        &self,
        protime: &ProtimeClient,
        decision: &Decision,
        state: &mut SubscriptionState,
        now: DateTime<Utc>,
    ) -> SubscriptionReport {
        let collection = decision.desired.collection;
        let mut resynced = None;
        let result = match &decision.action {
            Action::Keep { .. } => {
                let webhook = decision.webhook.as_ref().expect("keep is only planned for a reported webhook");
                state.status = Some(webhook.status.as_str().to_owned());
                state.valid_until = Some(webhook.valid_until);
                state.webhook_id = Some(webhook.id.clone());
                state.last_seen_enabled_at = Some(now);
                state.last_error = None;
                self.subscriptions.save(collection, state).await.map_err(|e| e.to_string())
            }
            Action::Create | Action::Renew { .. } => self.renew(protime, decision, state, now).await,
            Action::Recover { gap_start, .. } => {
                self.recover(protime, decision, state, *gap_start, now, &mut resynced).await
            }
            Action::Recreate { webhook_id, gap_start } => {
                async {
                    if let Some(gap_start) = gap_start {
                        let counts = self.resync(protime, collection, *gap_start, now).await?;
                        *resynced.get_or_insert_with(ResyncCounts::default) += counts;
                        state.last_resync_at = Some(now);
                    }
                    protime.delete_webhook(webhook_id).await.map_err(|e| e.to_string())?;
                    self.renew(protime, decision, state, now).await
                }
                .await
            }
        };
        if let Err(error) = &result {
            state.last_error = Some(error.clone());
            if let Err(e) = self.subscriptions.save(collection, state).await {
                tracing::error!(collection = %collection, error = %e, "could not record the failure");
            }
        }
        SubscriptionReport {
            collection: collection.as_str().to_owned(),
            action: decision.action.name(),
            ok: result.is_ok(),
            webhook_id: state.webhook_id.clone(),
            valid_until: state.valid_until.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            hours_until_expiry: state
                .valid_until
                .map(|t| ((t - now).num_seconds() as f64 / 3600.0 * 10.0).round() / 10.0),
            resynced,
            error: result.err(),
        }
    }

    /// Re-sync the gap, renew, then re-sync once more: changes made while the first pass ran
    /// were neither delivered (the webhook was Disabled) nor necessarily fetched; after the
    /// renewal every change is delivered, so the second pass closes the window.
    async fn recover(
        &self,
        protime: &ProtimeClient,
        decision: &Decision,
        state: &mut SubscriptionState,
        gap_start: DateTime<Utc>,
        now: DateTime<Utc>,
        resynced: &mut Option<ResyncCounts>,
    ) -> Result<(), String> {
        let collection = decision.desired.collection;
        let counts = self.resync(protime, collection, gap_start, now).await?;
        *resynced.get_or_insert_with(ResyncCounts::default) += counts;
        state.last_resync_at = Some(now);
        self.renew(protime, decision, state, now).await?;
        let counts = self.resync(protime, collection, gap_start, now).await?;
        *resynced.get_or_insert_with(ResyncCounts::default) += counts;
        self.subscriptions.save(collection, state).await.map_err(|e| e.to_string())
    }

    async fn resync(
        &self,
        protime: &ProtimeClient,
        collection: Collection,
        gap_start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ResyncCounts, String> {
        let filters = self.config.resync.filters(collection, gap_start, now);
        tracing::info!(collection = %collection, gap_start = %gap_start, windows = filters.len(), "re-syncing");
        resync::resync(protime, &self.records, collection, &filters).await.map_err(|e| e.to_string())
    }

    /// Intent, POST, key, state: in this order (see the module docs).
    async fn renew(
        &self,
        protime: &ProtimeClient,
        decision: &Decision,
        state: &mut SubscriptionState,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let collection = decision.desired.collection;
        state.renewing_since = Some(now);
        self.subscriptions.save(collection, state).await.map_err(|e| format!("recording the renewal intent: {e}"))?;
        let created = protime
            .create_webhook(
                &decision.desired.destination_url,
                collection.as_str(),
                &decision.desired.external_references,
            )
            .await
            .map_err(|e| e.to_string())?;
        self.keys.store(collection, &created.key).await.map_err(|e| e.to_string())?;
        *state = SubscriptionState {
            webhook_id: Some(created.id),
            status: Some(created.status.as_str().to_owned()),
            valid_until: Some(created.valid_until),
            destination_url: Some(decision.desired.destination_url.clone()),
            external_references: Some(decision.desired.external_references.clone()),
            renewing_since: None,
            last_renewed_at: Some(now),
            last_resync_at: state.last_resync_at,
            last_seen_enabled_at: Some(now),
            last_error: None,
        };
        self.subscriptions.save(collection, state).await.map_err(|e| format!("recording the renewal: {e}"))?;
        if created.status != WebhookStatus::Enabled {
            return Err(format!("Protime answered the renewal with status {}", created.status.as_str()));
        }
        Ok(())
    }
}

/// The metrics of a run: one document per subscription (dimension `Collection`) and one summary.
/// `run` is `None` when the run failed before planning.
pub fn run_metrics(namespace: &str, run: Option<&RunReport>) -> Vec<crate::metrics::MetricDoc> {
    use crate::metrics::{MetricDoc, Unit};
    let Some(report) = run else {
        return vec![MetricDoc::new(namespace, "renewer").count("RunFailed", 1)];
    };
    let renewed = |s: &SubscriptionReport| s.ok && matches!(s.action, "create" | "renew" | "recreate");
    let was_disabled = |s: &SubscriptionReport| s.action == "recover";
    let mut docs: Vec<MetricDoc> = report
        .subscriptions
        .iter()
        .map(|s| {
            MetricDoc::new(namespace, "renewer")
                .dimension("Collection", &s.collection)
                .metric("HoursUntilExpiry", Unit::None, s.hours_until_expiry.unwrap_or(f64::NAN))
                .count("Renewals", u64::from(renewed(s)))
                .count("Recoveries", u64::from(s.ok && was_disabled(s)))
                .count("Disabled", u64::from(was_disabled(s)))
                .count("ResyncedRecords", s.resynced.map_or(0, |r| r.stored))
                .count("Failures", u64::from(!s.ok))
        })
        .collect();
    let min_hours = report.subscriptions.iter().filter_map(|s| s.hours_until_expiry).fold(f64::INFINITY, f64::min);
    docs.push(
        MetricDoc::new(namespace, "renewer")
            .count("RunFailed", 0)
            .count("Subscriptions", report.subscriptions.len() as u64)
            .count("SubscriptionsUnhealthy", report.subscriptions.iter().filter(|s| !s.ok).count() as u64)
            .count("SubscriptionsDisabled", report.subscriptions.iter().filter(|s| was_disabled(s)).count() as u64)
            .count("Renewals", report.subscriptions.iter().filter(|s| renewed(s)).count() as u64)
            .count("Recoveries", report.subscriptions.iter().filter(|s| s.ok && was_disabled(s)).count() as u64)
            .count("ResyncedRecords", report.subscriptions.iter().filter_map(|s| s.resynced).map(|r| r.stored).sum())
            .count("StrayWebhooks", report.strays.len() as u64)
            .metric("MinHoursUntilExpiry", Unit::None, min_hours),
    );
    docs
}

fn log_report(report: &SubscriptionReport) {
    if report.ok {
        tracing::info!(
            collection = %report.collection,
            action = report.action,
            webhook_id = report.webhook_id.as_deref().unwrap_or(""),
            valid_until = report.valid_until.as_deref().unwrap_or(""),
            hours_until_expiry = report.hours_until_expiry.unwrap_or(f64::NAN),
            "subscription"
        );
    } else {
        tracing::error!(
            collection = %report.collection,
            action = report.action,
            error = report.error.as_deref().unwrap_or(""),
            "subscription left unhealthy"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(collection: &str, action: &'static str, ok: bool, hours: Option<f64>) -> SubscriptionReport {
        SubscriptionReport {
            collection: collection.into(),
            action,
            ok,
            webhook_id: None,
            valid_until: None,
            hours_until_expiry: hours,
            resynced: (action == "recover").then_some(ResyncCounts { stored: 7, ..Default::default() }),
            error: None,
        }
    }

    #[test]
    fn run_metrics_have_one_document_per_subscription_and_a_summary() {
        let report = RunReport {
            healthy: false,
            subscriptions: vec![
                sub("clockings", "keep", true, Some(400.0)),
                sub("breaks", "recover", true, Some(720.0)),
                sub("people", "create", false, None),
            ],
            strays: vec![],
        };
        let docs: Vec<_> = run_metrics("Ns", Some(&report)).iter().map(|d| d.to_json(0)).collect();
        assert_eq!(docs.len(), 4);
        assert_eq!(
            (docs[0]["Collection"].as_str(), docs[0]["HoursUntilExpiry"].as_f64()),
            (Some("clockings"), Some(400.0))
        );
        assert_eq!(
            (docs[1]["Recoveries"].as_f64(), docs[1]["Disabled"].as_f64(), docs[1]["ResyncedRecords"].as_f64()),
            (Some(1.0), Some(1.0), Some(7.0))
        );
        assert_eq!(docs[2]["Failures"], 1.0);
        assert!(docs[2].get("HoursUntilExpiry").is_none());
        let summary = &docs[3];
        assert!(summary.get("Collection").is_none());
        assert_eq!(summary["MinHoursUntilExpiry"], 400.0);
        assert_eq!(
            (summary["SubscriptionsUnhealthy"].as_f64(), summary["SubscriptionsDisabled"].as_f64()),
            (Some(1.0), Some(1.0))
        );
        assert_eq!(summary["RunFailed"], 0.0);
        let failed = run_metrics("Ns", None);
        assert_eq!(failed[0].to_json(0)["RunFailed"], 1.0);
    }
}
