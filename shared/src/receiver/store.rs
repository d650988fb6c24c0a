//! Storing a verified request's events: the conditional writes, the quarantine for what can
//! never be stored, and the last event's time noted on the subscription item.

use crate::collection::Collection;
use crate::receiver::deadline::before;
use crate::receiver::error::ReceiveError;
use crate::receiver::handler::Receiver;
use crate::receiver::last_event::EventNotes;
use crate::receiver::outcome::{EventOutcome, ItemOutcome, Received};
use crate::records::event::{Event, EventError};
use crate::records::quarantine::{Note, Quarantine};
use crate::records::{put_all, RecordStore, Source, StoreError};
use crate::signing::keys::{AcceptedKey, KeySource};
use std::time::Instant;

/// Writes of one batch in flight at once.
const WRITE_CONCURRENCY: usize = 8;

/// How often an instance notes the last event's time on a collection's subscription item.
const NOTE_EVENT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// The longest the note may add to an answer (a DynamoDB UpdateItem takes milliseconds; the
/// SDK's operation timeout is 8 s, far past what an acknowledged event should wait for).
const NOTE_EVENT_BUDGET: std::time::Duration = std::time::Duration::from_millis(500);

/// An event to set aside: its own bytes, why, and its record id if it could be read.
struct Unstorable<'a> {
    index: usize,
    bytes: &'a [u8],
    reason: &'static str,
    event: Option<Event>,
}

impl<K: KeySource, S: RecordStore + EventNotes, Q: Quarantine> Receiver<K, S, Q> {
    /// A signed body over the limit: Protime would send it again until the webhook is disabled,
    /// so it is kept whole for replay (413 only without a quarantine).
    pub(super) async fn keep_oversized(
        &self,
        collection: Collection,
        accepted: AcceptedKey,
        body: &[u8],
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Received, ReceiveError> {
        if self.quarantine.is_none() {
            return Err(ReceiveError::SignedBodyTooLarge(self.max_body_bytes));
        }
        let outcome = self.keep(collection, body, "body_too_large", None, deadline).await?;
        let outcomes = vec![ItemOutcome::unread(outcome)];
        Ok(Received { collection, accepted, outcomes, whole_body_quarantined: true, store_ms: 0.0 })
    }

    /// Notes the time on the collection's subscription item, at most once a minute per instance:
    /// a cheap write for `protime-webhooks status`, never one per event. The events are stored
    /// by now, so the note never delays the answer by more than [`NOTE_EVENT_BUDGET`] nor past
    /// the writes' deadline; a failure or a note cut short only logs.
    pub(super) async fn note_event(&self, collection: Collection, deadline: Option<tokio::time::Instant>) {
        let budget = tokio::time::Instant::now() + NOTE_EVENT_BUDGET;
        let until = deadline.map_or(budget, |deadline| deadline.min(budget));
        if until <= tokio::time::Instant::now() {
            tracing::warn!(collection = %collection, "no time left to note the last event's time");
            return;
        }
        {
            let mut noted = self.noted.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if noted.get(&collection).is_some_and(|at| at.elapsed() < NOTE_EVENT_EVERY) {
                return;
            }
            noted.insert(collection, Instant::now());
        }
        let at = crate::records::store::received_now();
        match tokio::time::timeout_at(until, self.store.note_event(collection, &at)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(collection = %collection, error = %e, "could not note the last event's time"),
            Err(_) => {
                tracing::warn!(collection = %collection, "noting the last event's time took too long; left for later")
            }
        }
    }

    /// A signed body that is not an event at all (or is one event that can never be stored):
    /// quarantined whole and answered 202, or refused with 400 without a quarantine.
    pub(super) async fn set_aside_body(
        &self,
        collection: Collection,
        accepted: AcceptedKey,
        body: &[u8],
        error: EventError,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Received, ReceiveError> {
        if self.quarantine.is_none() {
            return Err(ReceiveError::InvalidEvent(error));
        }
        let outcome = self.keep(collection, body, error.reason(), None, deadline).await?;
        let outcomes = vec![ItemOutcome::unread(outcome)];
        Ok(Received { collection, accepted, outcomes, whole_body_quarantined: true, store_ms: 0.0 })
    }

    /// Keeps `bytes` in the quarantine before `deadline`; without one, the event is unstorable.
    async fn keep(
        &self,
        collection: Collection,
        bytes: &[u8],
        reason: &'static str,
        record_id: Option<&str>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<EventOutcome, ReceiveError> {
        let Some(quarantine) = &self.quarantine else {
            return Err(ReceiveError::Unstorable(reason));
        };
        let key = before(deadline, quarantine.keep(collection, bytes, Note::webhook(reason, record_id)))
            .await?
            .map_err(ReceiveError::QuarantineUnavailable)?;
        Ok(EventOutcome::Quarantined { key, reason })
    }

    /// Writes every readable event and quarantines the others; the request is acknowledged only
    /// if every event was decided before `deadline` (what was written by then is safe to retry:
    /// the retry is a duplicate). The outcomes are in the body's order.
    pub(super) async fn store_all(
        &self,
        collection: Collection,
        items: Vec<(&[u8], Result<Event, EventError>)>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Vec<ItemOutcome>, ReceiveError> {
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        // The readable events, and where each stands in the body.
        let (mut events, mut places) = (Vec::with_capacity(items.len()), Vec::with_capacity(items.len()));
        let mut unstorable = Vec::new();
        for (index, (bytes, event)) in items.into_iter().enumerate() {
            match event {
                Ok(event) => {
                    events.push(event);
                    places.push((index, bytes));
                }
                Err(e) => unstorable.push(Unstorable { index, bytes, reason: e.reason(), event: None }),
            }
        }
        let results =
            before(deadline, put_all(&self.store, collection, &events, Source::Webhook, WRITE_CONCURRENCY)).await?;
        for (((index, bytes), event), result) in places.into_iter().zip(events).zip(results) {
            match result {
                Ok(put) => outcomes[index] = Some(ItemOutcome::of(&event, EventOutcome::Written(put))),
                Err(StoreError::Rejected { reason, .. }) => {
                    unstorable.push(Unstorable { index, bytes, reason, event: Some(event) })
                }
                Err(e @ StoreError::Unavailable(_)) => return Err(ReceiveError::StoreUnavailable(e)),
            }
        }
        for item in unstorable {
            let id = item.event.as_ref().map(|e| e.id.as_str());
            let outcome = self.keep(collection, item.bytes, item.reason, id, deadline).await?;
            outcomes[item.index] = Some(match &item.event {
                Some(event) => ItemOutcome::of(event, outcome),
                None => ItemOutcome::unread(outcome),
            });
        }
        Ok(outcomes.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::fixtures::*;
    use crate::signing::keys::{KeyCacheConfig, SigningKeys};
    use crate::signing::signature::{authorization_header, SigningKey};
    use crate::testing::{MemoryKeySource, MemoryQuarantine};
    use lambda_http::RequestExt;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, SystemTime};

    #[tokio::test]
    async fn a_signed_body_that_is_no_event_is_quarantined_whole_and_answered_202() {
        let r = quarantining();
        for (body, reason) in [
            ("not json", "not_json"),
            ("[]", "empty_batch"),
            (r#"{"id":1}"#, "missing_change_version"),
            (r#"{"id":1,"changeVersion":"1","n":1e400}"#, "number_out_of_range"),
        ] {
            let (status, answer_body) = answer(&r, signed("/webhooks/clockings", body)).await;
            assert_eq!((status, answer_body["quarantined"]["reason"].as_str()), (202, Some(reason)), "{body}");
            let key = answer_body["quarantined"]["key"].as_str().unwrap();
            assert!(key.starts_with("clockings/") && key.ends_with(".json"), "{key}");
            assert_eq!(kept(&r).last().unwrap(), &(reason.to_owned(), body.to_owned()), "kept byte for byte");
        }
        assert_eq!(stored(&r), 0);
    }
    #[tokio::test]
    async fn a_version_longer_than_64_characters_is_quarantined_not_stored() {
        let r = quarantining();
        let body = format!(r#"{{"id":1,"changeVersion":"{}"}}"#, "A".repeat(65));
        let (status, answer_body) = answer(&r, signed("/webhooks/clockings", &body)).await;
        assert_eq!((status, answer_body["quarantined"]["reason"].as_str()), (202, Some("change_version_too_long")));
        assert_eq!(stored(&r), 0);
    }
    #[tokio::test]
    async fn one_unstorable_event_of_a_batch_is_quarantined_by_its_own_text_and_the_rest_stored() {
        let r = quarantining();
        let body = r#"[{"id":1,"changeVersion":"1"}, {"id":2, "data":true} ,{"id":3,"changeVersion":"1","a":{"":1}},{"id":4,"changeVersion":"1"}]"#;
        let (status, answer_body) = answer(&r, signed("/webhooks/clockings", body)).await;
        assert_eq!(status, 200, "{answer_body}");
        let outcomes: Vec<&str> =
            answer_body["results"].as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["stored", "quarantined", "quarantined", "stored"]);
        assert_eq!(answer_body["results"][1]["reason"], "missing_change_version");
        assert_eq!(answer_body["results"][2]["reason"], "empty_attribute_name");
        assert_eq!(answer_body["results"][2]["id"], "3");
        assert_eq!(
            kept(&r),
            [
                ("missing_change_version".to_owned(), r#"{"id":2, "data":true}"#.to_owned()),
                ("empty_attribute_name".to_owned(), r#"{"id":3,"changeVersion":"1","a":{"":1}}"#.to_owned()),
            ]
        );
        assert_eq!(stored(&r), 2);
    }
    #[tokio::test]
    async fn a_single_record_dynamodb_would_refuse_is_quarantined_whole() {
        let r = quarantining();
        let body = r#"{"id":3,"changeVersion":"1","":"empty name"}"#;
        let (status, answer_body) = answer(&r, signed("/webhooks/clockings", body)).await;
        assert_eq!((status, answer_body["quarantined"]["reason"].as_str()), (202, Some("empty_attribute_name")));
        assert_eq!(r.quarantine.as_ref().unwrap().kept.lock().unwrap()[0].record_id.as_deref(), Some("3"));
        assert_eq!(stored(&r), 0);
    }
    #[tokio::test]
    async fn a_record_dynamodb_refuses_with_a_validation_exception_is_quarantined_and_acknowledged() {
        // moto never raises ValidationException for what the checks before the write pass;
        // DynamoDB can. The SDK's mocks answer the PutItem as DynamoDB would.
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        use aws_smithy_mocks::{mock, MockResponseInterceptor};
        use aws_smithy_types::error::ErrorMetadata;
        let refused = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
            PutItemError::generic(
                ErrorMetadata::builder().code("ValidationException").message("Item size has exceeded").build(),
            )
        });
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("id", "secret", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(MockResponseInterceptor::new().with_rule(&refused))
            .build();
        let store =
            crate::records::store::DynamoRecordStore::new(aws_sdk_dynamodb::Client::from_conf(config), "records");
        let source = MemoryKeySource::default();
        source.rotate(Collection::Clockings, KEY, SystemTime::now() - Duration::from_secs(3600));
        let r = Receiver::new(
            SigningKeys::new(source, KeyCacheConfig::default()),
            store,
            Some(MemoryQuarantine::default()),
            4096,
        );
        let body = r#"{"id":3,"changeVersion":"0000090200004BD0000A","date":"2026-01-02"}"#;
        let response = r.handle(signed("/webhooks/clockings", body)).await;
        let answer_body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(
            (response.status().as_u16(), answer_body["quarantined"]["reason"].as_str()),
            (202, Some("dynamodb_validation")),
            "{answer_body}"
        );
        let quarantine = r.quarantine.as_ref().unwrap();
        let bodies = quarantine.bodies();
        assert_eq!(bodies.len(), 1);
        assert_eq!((bodies[0].0.as_str(), bodies[0].1.as_slice()), ("dynamodb_validation", body.as_bytes()));
        assert_eq!(quarantine.kept.lock().unwrap()[0].record_id.as_deref(), Some("3"));
        assert_eq!(refused.num_calls(), 1);
    }
    #[tokio::test]
    async fn without_a_quarantine_an_unstorable_record_is_400_not_503() {
        let r = receiver();
        let (status, answer_body) =
            answer(&r, signed("/webhooks/clockings", r#"{"id":3,"changeVersion":"1","":1}"#)).await;
        assert_eq!((status, answer_body["error"]["code"].as_str()), (400, Some("unstorable_event")));
        let (status, _) = answer(&r, signed("/webhooks/clockings", "not json")).await;
        assert_eq!(status, 400);
    }
    #[tokio::test]
    async fn a_failed_quarantine_write_acknowledges_nothing() {
        let r = quarantining();
        r.quarantine.as_ref().unwrap().fail.store(true, Ordering::SeqCst);
        let (status, answer_body) = answer(&r, signed("/webhooks/clockings", "not json")).await;
        assert_eq!((status, answer_body["error"]["code"].as_str()), (503, Some("quarantine_unavailable")));
        let batch = r#"[{"id":1,"changeVersion":"1"},{"id":2}]"#;
        let (status, _) = answer(&r, signed("/webhooks/clockings", batch)).await;
        assert_eq!(status, 503, "the stored event's retry will be a duplicate");
    }
    #[tokio::test]
    async fn nothing_unsigned_or_wrongly_signed_is_ever_quarantined() {
        let r = quarantining();
        let wrong = authorization_header(&SigningKey::new("another-key"), b"not json");
        for req in [
            request("/webhooks/clockings", b"not json", None),
            request("/webhooks/clockings", b"not json", Some(wrong)),
            request("/webhooks/clockings", b"not json", Some("HMAC-SHA256 AAAA".into())),
        ] {
            assert_eq!(answer(&r, req).await.0, 401);
        }
        assert!(kept(&r).is_empty());
    }
    #[tokio::test]
    async fn replays_and_older_versions_are_acknowledged_as_duplicate_and_stale() {
        let r = receiver();
        let body = r#"[{"id":1,"changeVersion":"10"},{"id":1,"changeVersion":"10"},{"id":1,"changeVersion":"9"}]"#;
        let (status, answer_body) = answer(&r, signed("/webhooks/clockings", body)).await;
        assert_eq!(status, 200);
        let outcomes: Vec<&str> =
            answer_body["results"].as_array().unwrap().iter().map(|o| o["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["stored", "duplicate", "stale"]);
    }
    #[tokio::test]
    async fn the_last_events_time_is_noted_at_most_once_a_minute_per_collection() {
        let r = receiver();
        for version in ["1", "2", "3"] {
            let body = format!(r#"{{"id":1,"changeVersion":"{version}"}}"#);
            assert_eq!(answer(&r, signed("/webhooks/clockings", &body)).await.0, 200);
        }
        assert_eq!(answer(&r, signed("/webhooks/clockings", "not json")).await.0, 400);
        let notes: Vec<String> = r.store.journal.lines().into_iter().filter(|l| l.starts_with("store note")).collect();
        assert_eq!(notes, ["store note clockings"]);
    }
    #[tokio::test(start_paused = true)]
    async fn a_slow_note_never_delays_the_answer_past_its_budget_or_the_deadline() {
        let r = receiver();
        r.store.note_delay_ms.store(8_000, Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        let (status, body) = answer(&r, signed("/webhooks/clockings", r#"{"id":1,"changeVersion":"1"}"#)).await;
        assert_eq!((status, body["results"][0]["outcome"].as_str()), (200, Some("stored")));
        assert!(started.elapsed() <= NOTE_EVENT_BUDGET, "answered after {:?}", started.elapsed());
        assert!(!r.store.journal.lines().iter().any(|l| l.starts_with("store note")), "the note was cut short");
        // With the writes' deadline closer than the budget, the note stops at the deadline.
        let r = receiver();
        r.store.note_delay_ms.store(8_000, Ordering::SeqCst);
        let mut context = lambda_http::Context::default();
        let now_ms = SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        context.deadline = now_ms + 1_700; // 200 ms left once the margin is kept back
        let started = tokio::time::Instant::now();
        let req = signed("/webhooks/clockings", r#"{"id":2,"changeVersion":"1"}"#).with_lambda_context(context);
        assert_eq!(answer(&r, req).await.0, 200);
        assert!(started.elapsed() <= Duration::from_millis(200), "answered after {:?}", started.elapsed());
    }
    #[tokio::test]
    async fn a_store_failure_is_503_and_not_acknowledged() {
        let r = receiver();
        r.store.fail.store(true, Ordering::SeqCst);
        let (status, body) = answer(&r, signed("/webhooks/clockings", r#"{"id":1,"changeVersion":"5"}"#)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("store_unavailable")));
    }
}
