//! One invocation of the publisher: a batch of the table's stream records in, one event per
//! effective record change out, and the batch item failure to resume from.

use super::bus::EventBridgeBus;
use super::change::{classify, Image, Verdict};
use super::feed::{entry, publish, Entry, EventBus, Published, Retry};
use crate::config::PublisherConfig;
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::Serialize;

/// What one invocation did, for its log line and its metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishReport {
    pub records: u64,
    pub published: u64,
    /// New versions whose data equals the previous one's (`PUBLISH_UNCHANGED` publishes them).
    pub suppressed: u64,
    /// Writes that are no record change (state items, notes, index keys).
    pub ignored: u64,
    pub failures: u64,
    pub data_omitted: u64,
    /// Whether the invocation's deadline stopped publishing (the stream resumes from there).
    pub out_of_time: bool,
    /// The sequence number the stream resumes from, when a change could not be published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_from: Option<String>,
}

/// The publisher over any [`EventBus`]; [`AwsPublisher`] is EventBridge's.
pub struct Publisher<B: EventBus> {
    pub config: PublisherConfig,
    pub bus: B,
    pub retry: Retry,
}

pub type AwsPublisher = Publisher<EventBridgeBus>;

impl AwsPublisher {
    pub fn from_config(config: PublisherConfig, sdk: &aws_config::SdkConfig) -> Self {
        let bus = EventBridgeBus::from_sdk(sdk, &config.event_bus_name);
        Publisher { config, bus, retry: Retry::default() }
    }
}

/// Time kept back from the invocation's deadline to answer with the batch item failure before
/// Lambda ends the function (a timed-out invocation retries its whole batch instead).
pub const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(3);

/// When publishing must stop: the invocation's deadline less [`DEADLINE_MARGIN`]; `None` when
/// the deadline is not ahead (an emulator's placeholder, e.g. `cargo lambda watch`'s).
pub fn publish_until(deadline: std::time::SystemTime) -> Option<tokio::time::Instant> {
    let left = crate::invocation::time_left(deadline)?;
    Some(tokio::time::Instant::now() + left.saturating_sub(DEADLINE_MARGIN))
}

/// A stream image, or `None` when the record has none (an INSERT's old image, a REMOVE's new one).
fn image(item: &serde_dynamo::Item) -> Option<Image> {
    (!item.is_empty()).then(|| Image::from(item.clone()))
}

/// Whether the table's TTL removed the item (a tombstone past its `expiresAt`): DynamoDB itself
/// is the stream record's user. Its deletion was published when it happened; the expiry is none.
fn expired(record: &aws_lambda_events::dynamodb::EventRecord) -> bool {
    record.event_name == "REMOVE"
        && record.user_identity.as_ref().is_some_and(|user| user.principal_id == "dynamodb.amazonaws.com")
}

impl<B: EventBus> Publisher<B> {
    /// Classifies every record, publishes the changes in stream order until `deadline`, and
    /// answers the batch item failure from the first change not published (Lambda then retries
    /// from that record, so one record's changes are never reordered; what was published after
    /// it is published again: at least once).
    pub async fn handle(
        &self,
        event: &Event,
        deadline: Option<tokio::time::Instant>,
    ) -> (DynamoDbEventResponse, PublishReport) {
        let mut report = PublishReport { records: event.records.len() as u64, ..Default::default() };
        let entries: Vec<Option<Entry>> = event
            .records
            .iter()
            .map(|record| {
                let (old, new) = (image(&record.change.old_image), image(&record.change.new_image));
                let new = if record.event_name == "REMOVE" { None } else { new };
                let verdict = if expired(record) {
                    Verdict::NotAChange
                } else {
                    classify(old.as_ref(), new.as_ref(), self.config.publish_unchanged)
                };
                match verdict {
                    Verdict::Publish(change) => Some(entry(&change)),
                    Verdict::Unchanged => {
                        report.suppressed += 1;
                        None
                    }
                    Verdict::NotAChange => {
                        report.ignored += 1;
                        None
                    }
                }
            })
            .collect();
        let Published { published, failures, data_omitted, first_unpublished, out_of_time } =
            publish(&self.bus, &entries, self.retry, deadline).await;
        (report.published, report.failures, report.data_omitted) = (published, failures, data_omitted);
        report.out_of_time = out_of_time;
        let mut response = DynamoDbEventResponse::default();
        if let Some(first) = first_unpublished {
            let resume_from = sequence_number(&event.records[first]);
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = resume_from.clone();
            response.batch_item_failures.push(failure);
            report.resume_from = resume_from;
        }
        (response, report)
    }
}

fn sequence_number(record: &EventRecord) -> Option<String> {
    record.change.sequence_number.clone()
}

/// The metric document of one invocation.
pub fn publish_metrics(
    metrics: &crate::observability::metrics::Metrics,
    report: &PublishReport,
) -> crate::observability::metrics::MetricDoc {
    metrics
        .doc("publisher")
        .count("ChangesPublished", report.published)
        .count("ChangesSuppressed", report.suppressed)
        .count("PublishFailures", report.failures)
        .count("ChangesDataOmitted", report.data_omitted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publisher::feed::BusError;
    use std::sync::Mutex;

    /// A bus that keeps what it was given and fails every entry while `down`.
    #[derive(Default)]
    struct Recording {
        put: Mutex<Vec<(String, String)>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl EventBus for Recording {
        async fn put(&self, entries: &[&Entry]) -> Result<Vec<bool>, BusError> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(BusError("down".into()));
            }
            self.put.lock().unwrap().extend(entries.iter().map(|e| (e.detail_type.to_owned(), e.detail.clone())));
            Ok(vec![false; entries.len()])
        }
    }

    fn publisher(unchanged: bool) -> Publisher<Recording> {
        let config = PublisherConfig {
            event_bus_name: "changes".into(),
            publish_unchanged: unchanged,
            metrics: crate::observability::metrics::Metrics::new("Ns"),
        };
        Publisher {
            config,
            bus: Recording::default(),
            retry: Retry { attempts: 2, base_delay: std::time::Duration::ZERO },
        }
    }

    /// A stream record as Lambda delivers it (DynamoDB JSON images).
    fn record(
        name: &str,
        sequence: &str,
        old: Option<serde_json::Value>,
        new: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut dynamodb =
            serde_json::json!({ "SequenceNumber": sequence, "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES" });
        if let Some(old) = old {
            dynamodb["OldImage"] = old;
        }
        if let Some(new) = new {
            dynamodb["NewImage"] = new;
        }
        serde_json::json!({ "eventID": sequence, "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1", "dynamodb": dynamodb })
    }

    fn clocking(version: &str, hours: &str) -> serde_json::Value {
        serde_json::json!({
            "pk": {"S": "clockings#7"}, "collection": {"S": "clockings"}, "id": {"N": "7"},
            "changeVersion": {"S": version}, "changeOrder": {"S": version}, "source": {"S": "webhook"},
            "receivedAt": {"S": "2026-12-01T09:00:00.000Z"}, "date": {"S": "2026-12-01"}, "hours": {"N": hours}
        })
    }

    fn event(records: Vec<serde_json::Value>) -> Event {
        serde_json::from_value(serde_json::json!({ "Records": records })).expect("a DynamoDB stream event")
    }

    #[tokio::test]
    async fn a_stream_batch_publishes_each_real_change_once_and_nothing_else() {
        let note = serde_json::json!({"pk": {"S": "subscription#clockings"}, "collection": {"S": "clockings"}, "lastEventAt": {"S": "x"}});
        let batch = event(vec![
            record("INSERT", "100", None, Some(clocking("0000090200004BD00001", "8"))),
            record("MODIFY", "101", Some(note.clone()), Some(note)),
            record(
                "MODIFY",
                "102",
                Some(clocking("0000090200004BD00001", "8")),
                Some(clocking("0000090200004BD00002", "8")),
            ),
            record(
                "MODIFY",
                "103",
                Some(clocking("0000090200004BD00002", "8")),
                Some(clocking("0000090200004BD00003", "7.25")),
            ),
            record("REMOVE", "104", Some(clocking("0000090200004BD00003", "7.25")), None),
        ]);
        let p = publisher(false);
        let (response, report) = p.handle(&batch, None).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!((report.records, report.published, report.suppressed, report.ignored), (5, 3, 1, 1));
        let put = p.bus.put.lock().unwrap().clone();
        let types: Vec<&str> = put.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(types, ["Protime Record Changed", "Protime Record Changed", "Protime Record Deleted"]);
        assert!(put[1].1.contains(r#""previousChangeVersion":"0000090200004BD00002""#), "{}", put[1].1);
        assert!(put[1].1.contains(r#""hours":7.25"#), "the number as Protime sent it: {}", put[1].1);
        let doc = publish_metrics(&crate::observability::metrics::Metrics::new("Ns"), &report).to_json(0);
        assert_eq!((doc["ChangesPublished"].as_f64(), doc["ChangesSuppressed"].as_f64()), (Some(3.0), Some(1.0)));
    }

    /// The table's TTL removing an expired tombstone (or anything else) publishes nothing; an
    /// operator's removal of a live record is still a deletion.
    #[tokio::test]
    async fn a_removal_by_the_tables_ttl_is_not_announced() {
        let mut tombstone = clocking("0000090200004BD00003", "7.25");
        tombstone["deleted"] = serde_json::json!({"BOOL": true});
        tombstone["expiresAt"] = serde_json::json!({"N": "1796652463"});
        let by_ttl = |mut r: serde_json::Value| {
            r["userIdentity"] = serde_json::json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
            r
        };
        let batch = event(vec![
            by_ttl(record("REMOVE", "300", Some(tombstone), None)),
            by_ttl(record("REMOVE", "301", Some(clocking("0000090200004BD00001", "8")), None)),
            record("REMOVE", "302", Some(clocking("0000090200004BD00002", "8")), None),
        ]);
        let p = publisher(false);
        let (_, report) = p.handle(&batch, None).await;
        assert_eq!((report.published, report.ignored), (1, 2), "{report:?}");
        let put = p.bus.put.lock().unwrap().clone();
        assert!(put[0].1.contains(r#""changeVersion":"0000090200004BD00002""#), "{}", put[0].1);
    }

    #[tokio::test]
    async fn a_bus_that_stays_down_resumes_the_stream_from_the_first_change() {
        let batch = event(vec![
            record(
                "MODIFY",
                "200",
                None,
                Some(serde_json::json!({"pk": {"S": "sync#clockings"}, "collection": {"S": "clockings"}})),
            ),
            record("INSERT", "201", None, Some(clocking("0000090200004BD00001", "8"))),
            record(
                "MODIFY",
                "202",
                Some(clocking("0000090200004BD00001", "8")),
                Some(clocking("0000090200004BD00002", "9")),
            ),
        ]);
        let p = publisher(false);
        p.bus.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let (response, report) = p.handle(&batch, None).await;
        let failures: Vec<Option<String>> =
            response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(failures, [Some("201".to_owned())], "from the first change, not the state item before it");
        assert_eq!((report.published, report.resume_from.as_deref()), (0, Some("201")));
        let answer = serde_json::to_value(&response).unwrap();
        assert_eq!(answer, serde_json::json!({"batchItemFailures": [{"itemIdentifier": "201"}]}));
    }

    #[tokio::test]
    async fn unchanged_versions_are_published_when_asked() {
        let batch = event(vec![record(
            "MODIFY",
            "300",
            Some(clocking("0000090200004BD00001", "8")),
            Some(clocking("0000090200004BD00002", "8")),
        )]);
        let p = publisher(true);
        let (_, report) = p.handle(&batch, None).await;
        assert_eq!((report.published, report.suppressed), (1, 0));
    }

    #[tokio::test]
    async fn a_deadline_already_reached_publishes_nothing_and_resumes_from_the_first_change() {
        let batch = event(vec![
            record(
                "MODIFY",
                "400",
                None,
                Some(serde_json::json!({"pk": {"S": "sync#clockings"}, "collection": {"S": "clockings"}})),
            ),
            record("INSERT", "401", None, Some(clocking("0000090200004BD00001", "8"))),
        ]);
        let p = publisher(false);
        let (response, report) = p.handle(&batch, Some(tokio::time::Instant::now())).await;
        assert!(p.bus.put.lock().unwrap().is_empty(), "no call started past the deadline");
        assert_eq!((report.published, report.out_of_time, report.resume_from.as_deref()), (0, true, Some("401")));
        assert_eq!(response.batch_item_failures.len(), 1);
    }

    #[test]
    fn publishing_stops_the_margin_before_the_deadline_and_a_past_deadline_is_none() {
        let now = std::time::SystemTime::now();
        let until = publish_until(now + std::time::Duration::from_secs(60)).expect("a deadline ahead");
        let left = until - tokio::time::Instant::now();
        assert!(left <= std::time::Duration::from_secs(57) && left > std::time::Duration::from_secs(55), "{left:?}");
        assert_eq!(publish_until(now - std::time::Duration::from_secs(1)), None);
    }
}
