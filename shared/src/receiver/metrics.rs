//! What a request leaves behind for operators: its metrics (EMF documents, per function, per
//! collection and per quarantine reason) and its log lines (one per event, one per request).

use crate::collection::Collection;
use crate::receiver::error::ReceiveError;
use crate::receiver::outcome::{EventOutcome, ItemOutcome, Received};
use crate::records::event::ChangeType;
use crate::records::PutOutcome;
use lambda_http::http::StatusCode;

/// The metrics of one request: counts by outcome, signature rejections by reason and store
/// latency (the collection a property, a dimension when detailed); and one document per
/// quarantine reason (`Quarantined`, `Reason` likewise). Each is read by an alarm or the
/// dashboard; the rest of a request is in its log lines.
pub fn request_metrics(
    metrics: &crate::observability::metrics::Metrics,
    collection: Option<Collection>,
    result: &Result<Received, ReceiveError>,
) -> Vec<crate::observability::metrics::MetricDoc> {
    use crate::observability::metrics::Unit;
    let mut doc = metrics.doc("receiver");
    if let Some(c) = collection {
        doc = doc.dimension("Collection", c.as_str());
    }
    match result {
        Ok(r) => {
            let count = |f: &dyn Fn(&ItemOutcome) -> bool| r.outcomes.iter().filter(|o| f(o)).count() as u64;
            let main = doc
                .count("EventsStored", count(&|o| o.is(PutOutcome::Stored)))
                .count("EventsDuplicate", count(&|o| o.is(PutOutcome::Duplicate)))
                .count("EventsStale", count(&|o| o.is(PutOutcome::Stale)))
                .count(
                    "EventsDeleted",
                    count(&|o| o.is(PutOutcome::Stored) && o.change_type == Some(ChangeType::Delete)),
                )
                .metric("StoreLatency", Unit::Milliseconds, r.store_ms);
            let mut by_reason = std::collections::BTreeMap::<&str, u64>::new();
            for o in &r.outcomes {
                if let EventOutcome::Quarantined { reason, .. } = o.outcome {
                    *by_reason.entry(reason).or_default() += 1;
                }
            }
            let per_reason = by_reason
                .into_iter()
                .map(|(reason, n)| metrics.doc("receiver").dimension("Reason", reason).count("Quarantined", n));
            std::iter::once(main).chain(per_reason).collect()
        }
        Err(ReceiveError::Unauthorized(reason)) => {
            vec![doc.dimension("Reason", reason.reason()).count("SignatureRejected", 1)]
        }
        Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => vec![doc.count("Unavailable", 1)],
        Err(e) if e.is_unverified() => vec![doc.dimension("Reason", e.code()).count("UnverifiedRequests", 1)],
        Err(_) => vec![doc.count("InvalidRequests", 1)],
    }
}

/// One log line per event, carrying its request's status, key stage, size and latency (the
/// bytes CloudWatch Logs bills are per line); a request that stored no event has one `request`
/// line instead. A rejection says why without any secret.
pub(super) fn log_request(result: &Result<Received, ReceiveError>, latency_ms: f64) {
    match result {
        Ok(received @ Received { collection, accepted, outcomes, .. }) => {
            let status = received.status().as_u16();
            let (key_stage, events) = (accepted.as_str(), outcomes.len());
            for o in outcomes {
                let id = o.id.as_deref().unwrap_or("");
                let change_version = o.change_version.as_deref().unwrap_or("");
                let change_type = o.change_type.map(ChangeType::as_str).unwrap_or("");
                let outcome = o.outcome.as_str();
                match &o.outcome {
                    EventOutcome::Written(_) => {
                        tracing::info!(collection = %collection, id, change_version, change_type, outcome, status, key_stage, events, latency_ms, "event")
                    }
                    EventOutcome::Quarantined { key, reason } => {
                        tracing::warn!(collection = %collection, id, change_version, change_type, outcome, reason, key = key.as_str(), status, key_stage, events, latency_ms, "event quarantined")
                    }
                }
            }
            if outcomes.is_empty() {
                tracing::info!(collection = %collection, status, events, key_stage, latency_ms, "request");
            }
        }
        Err(error) => {
            let (status, code) = (error.status().as_u16(), error.code());
            match error {
                ReceiveError::Unauthorized(reason) => {
                    tracing::warn!(status, code, reason = reason.reason(), latency_ms, "request rejected")
                }
                ReceiveError::KeysUnavailable(e) => {
                    tracing::error!(status, code, error = %e, latency_ms, "request not acknowledged")
                }
                ReceiveError::StoreUnavailable(e) => {
                    tracing::error!(status, code, error = %e, latency_ms, "request not acknowledged")
                }
                ReceiveError::QuarantineUnavailable(e) => {
                    tracing::error!(status, code, error = %e, latency_ms, "request not acknowledged")
                }
                _ => tracing::warn!(status, code, error = %error, latency_ms, "request rejected"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observability::metrics::Metrics;
    use crate::records::event::EventError;
    use crate::records::StoreError;
    use crate::signing::keys::AcceptedKey;
    use crate::signing::signature::SignatureError;
    use serde_json::json;

    #[test]
    fn metrics_count_outcomes_and_rejection_reasons() {
        let outcome = |outcome, change_type| ItemOutcome {
            id: Some("1".into()),
            change_version: Some("1".into()),
            change_type: Some(change_type),
            outcome: EventOutcome::Written(outcome),
        };
        let quarantined = |reason| ItemOutcome::unread(EventOutcome::Quarantined { key: "k".into(), reason });
        let received = Received {
            collection: Collection::Clockings,
            accepted: AcceptedKey::Current,
            outcomes: vec![
                outcome(PutOutcome::Stored, ChangeType::InsertOrUpdate),
                outcome(PutOutcome::Stored, ChangeType::Delete),
                outcome(PutOutcome::Duplicate, ChangeType::InsertOrUpdate),
                outcome(PutOutcome::Stale, ChangeType::Delete),
                quarantined("not_json"),
                quarantined("missing_id"),
                quarantined("not_json"),
            ],
            whole_body_quarantined: false,
            store_ms: 3.5,
        };
        let detailed = Metrics::detailed("Ns");
        let docs = request_metrics(&detailed, Some(Collection::Clockings), &Ok(received));
        let by_reason: Vec<serde_json::Value> =
            docs[1..].iter().map(|d| d.to_json(0)).map(|v| json!([v["Reason"], v["Quarantined"]])).collect();
        assert_eq!(by_reason, [json!(["missing_id", 1.0]), json!(["not_json", 2.0])]);
        let v = docs[0].to_json(0);
        assert!(v.get("Quarantined").is_none(), "counted once, per reason");
        assert_eq!(
            (
                v["EventsStored"].as_f64(),
                v["EventsDuplicate"].as_f64(),
                v["EventsStale"].as_f64(),
                v["EventsDeleted"].as_f64()
            ),
            (Some(2.0), Some(1.0), Some(1.0), Some(1.0))
        );
        assert!(v.get("BatchSize").is_none() && v.get("Requests").is_none(), "no alarm or dashboard reads them");
        assert_eq!(v["StoreLatency"], 3.5);
        assert_eq!(v["Collection"], "clockings");

        let rejected = Err(ReceiveError::Unauthorized(SignatureError::Mismatch.into()));
        let v = request_metrics(&detailed, Some(Collection::Clockings), &rejected)[0].to_json(0);
        assert_eq!((v["SignatureRejected"].as_f64(), v["Reason"].as_str()), (Some(1.0), Some("mismatch")));
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"], ["Function", "Collection"], ["Function", "Reason"]])
        );

        let unavailable = Err(ReceiveError::StoreUnavailable(StoreError::Unavailable("down".into())));
        assert_eq!(request_metrics(&detailed, None, &unavailable)[0].to_json(0)["Unavailable"], 1.0);
        // Noise anyone can send is counted apart from what a signed request meets.
        for noise in [
            ReceiveError::NoRoute,
            ReceiveError::MethodNotAllowed,
            ReceiveError::UnknownCollection("x".into()),
            ReceiveError::BodyTooLarge(9),
        ] {
            let v = request_metrics(&detailed, None, &Err(noise))[0].to_json(0);
            assert_eq!(v["UnverifiedRequests"], 1.0);
            assert!(v.get("InvalidRequests").is_none() && v.get("Collection").is_none());
        }
        assert_eq!(request_metrics(&detailed, None, &Err(ReceiveError::NoRoute))[0].to_json(0)["Reason"], "no_route");
        for signed in [ReceiveError::SignedBodyTooLarge(9), ReceiveError::InvalidEvent(EventError::MissingId)] {
            let v = request_metrics(&detailed, Some(Collection::Clockings), &Err(signed))[0].to_json(0);
            assert_eq!(v["InvalidRequests"], 1.0);
            assert!(v.get("UnverifiedRequests").is_none());
        }
    }

    #[test]
    fn by_default_a_request_publishes_function_level_metrics_only() {
        let rejected = Err(ReceiveError::Unauthorized(SignatureError::Mismatch.into()));
        let docs = request_metrics(&Metrics::new("Ns"), Some(Collection::Clockings), &rejected);
        let v = docs[0].to_json(0);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function"]]));
        assert_eq!((v["Collection"].as_str(), v["Reason"].as_str()), (Some("clockings"), Some("mismatch")));
    }

    /// The JSON log lines `log_request` writes for `result`, as deployed (INFO, JSON).
    fn log_lines(result: &Result<Received, ReceiveError>) -> Vec<serde_json::Value> {
        use std::sync::{Arc, Mutex};
        let captured = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_target(false)
            .without_time()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Capture(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || log_request(result, 1.5));
        let text = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn received(events: usize) -> Received {
        let written = |i: usize| ItemOutcome {
            id: Some(i.to_string()),
            change_version: Some("1".into()),
            change_type: Some(ChangeType::InsertOrUpdate),
            outcome: EventOutcome::Written(PutOutcome::Stored),
        };
        Received {
            collection: Collection::Clockings,
            accepted: AcceptedKey::Current,
            outcomes: (0..events).map(written).collect(),
            whole_body_quarantined: false,
            store_ms: 1.0,
        }
    }

    #[test]
    fn one_log_line_per_event_carrying_its_requests_status_and_latency() {
        let lines = log_lines(&Ok(received(1)));
        assert_eq!(lines.len(), 1, "{lines:?}");
        let fields = &lines[0]["fields"];
        assert_eq!((fields["message"].as_str(), fields["id"].as_str()), (Some("event"), Some("0")));
        assert_eq!((fields["status"].as_u64(), fields["key_stage"].as_str()), (Some(200), Some("current")));
        assert_eq!((fields["events"].as_u64(), fields["latency_ms"].as_f64()), (Some(1), Some(1.5)));
        assert_eq!(log_lines(&Ok(received(3))).len(), 3);
        let empty = log_lines(&Ok(received(0)));
        assert_eq!((empty.len(), empty[0]["fields"]["message"].as_str()), (1, Some("request")));
    }
}
