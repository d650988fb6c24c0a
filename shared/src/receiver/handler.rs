//! The receiver's HTTP handler, `POST /webhooks/{collection}`, top to bottom, and the
//! [`Receiver`] that keeps its clients and caches across invocations.
//!
//! A request goes: route → size → signature → parse → conditional writes → answer. Nothing is
//! parsed before its signature is verified, and nothing is acknowledged before it is stored,
//! deliberately skipped as older, or — signed but never storable — kept in the quarantine.
//! Why verify comes first: `docs/decisions/0009-verify-before-parse.md`.

use crate::collection::Collection;
use crate::receiver::deadline::invocation_deadline;
use crate::receiver::error::ReceiveError;
use crate::receiver::last_event::EventNotes;
use crate::receiver::metrics::{log_request, request_metrics};
use crate::receiver::outcome::{EventOutcome, Received};
use crate::receiver::route::route_collection;
use crate::records::event::{self, EventError, Split};
use crate::records::quarantine::Quarantine;
use crate::records::RecordStore;
use crate::signing::keys::{KeySource, SigningKeys, VerifyError};
use crate::signing::signature;
use lambda_http::http::{header, Method};
use lambda_http::{Body, Request, Response};
use std::time::Instant;

/// The handler with the clients and caches it keeps across invocations.
pub struct Receiver<K, S, Q> {
    pub(super) keys: SigningKeys<K>,
    pub(super) store: S,
    pub(super) quarantine: Option<Q>,
    pub(super) max_body_bytes: usize,
    metrics: crate::observability::metrics::Metrics,
    /// When this instance last noted an event per collection.
    pub(super) noted: std::sync::Mutex<std::collections::HashMap<Collection, Instant>>,
}

impl<K: KeySource, S: RecordStore + EventNotes, Q: Quarantine> Receiver<K, S, Q> {
    /// `quarantine`: where signed but unstorable bodies are kept (and acknowledged); `None`
    /// answers them 400.
    pub fn new(keys: SigningKeys<K>, store: S, quarantine: Option<Q>, max_body_bytes: usize) -> Self {
        Receiver {
            keys,
            store,
            quarantine,
            max_body_bytes,
            metrics: crate::observability::metrics::Metrics::default(),
            noted: Default::default(),
        }
    }

    /// Publishes metrics as `metrics` says instead of the default.
    pub fn with_metrics(mut self, metrics: crate::observability::metrics::Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Answers one request; never fails and never panics on any input.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let route = route_collection(&request);
        let routed = route.as_ref().ok().copied();
        let result = self.receive(&request, route).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        for doc in request_metrics(&self.metrics, routed, &result) {
            doc.emit();
        }
        log_request(&result, latency_ms);
        match result {
            Ok(received) => received.into_response(),
            Err(error) => error.into_response(),
        }
    }

    /// `route` is [`route_collection`] of the request, taken once by the caller for metrics too.
    async fn receive(
        &self,
        request: &Request,
        route: Result<Collection, ReceiveError>,
    ) -> Result<Received, ReceiveError> {
        if request.method() != Method::POST {
            return Err(ReceiveError::MethodNotAllowed);
        }
        let collection = route?;
        let body: &[u8] = request.body().as_ref();
        let too_large = body.len() > self.max_body_bytes;
        let header = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
        // An oversized body without a well-formed signature is refused before any key is read.
        let sig = signature::parse_authorization(header).map_err(|e| {
            if too_large {
                ReceiveError::BodyTooLarge(self.max_body_bytes)
            } else {
                e.into()
            }
        })?;
        let accepted = self.keys.verify(collection, body, &sig).await.map_err(|e| match e {
            VerifyError::Unavailable(_) => ReceiveError::KeysUnavailable(e),
            _ if too_large => ReceiveError::BodyTooLarge(self.max_body_bytes),
            _ => ReceiveError::Unauthorized(e),
        })?;
        let deadline = invocation_deadline(request);
        if too_large {
            return self.keep_oversized(collection, accepted, body, deadline).await;
        }
        let (items, single) = match event::split_body(body) {
            Ok(Split::One(Ok(event))) => (vec![(body, Ok(event))], true),
            Ok(Split::One(Err(e))) | Err(e) => {
                return self.set_aside_body(collection, accepted, body, e, deadline).await
            }
            Ok(Split::Batch(items)) => {
                if self.quarantine.is_none() {
                    // Without a quarantine a batch is all or nothing, as it always was.
                    if let Some((index, (_, Err(e)))) = items.iter().enumerate().find(|(_, (_, r))| r.is_err()) {
                        let source = Box::new(e.clone());
                        return Err(ReceiveError::InvalidEvent(EventError::InBatch { index, source }));
                    }
                }
                (items.into_iter().map(|(raw, event)| (raw.as_bytes(), event)).collect(), false)
            }
        };
        let store_started = Instant::now();
        let mut outcomes = self.store_all(collection, items, deadline).await?;
        let store_ms = store_started.elapsed().as_secs_f64() * 1000.0;
        if outcomes.iter().any(|o| matches!(o.outcome, EventOutcome::Written(_))) {
            self.note_event(collection, deadline).await;
        }
        let whole_body_quarantined = single && matches!(outcomes[0].outcome, EventOutcome::Quarantined { .. });
        if whole_body_quarantined {
            // The body was one event: what was kept is the whole body, under its record id.
            outcomes.truncate(1);
        }
        Ok(Received { collection, accepted, outcomes, whole_body_quarantined, store_ms })
    }
}

/// The receiver as deployed: keys from Secrets Manager, records in DynamoDB, the quarantine in
/// S3 (if `QUARANTINE_BUCKET` is set).
pub type AwsReceiver = Receiver<
    crate::signing::keys::SecretsManagerKeySource,
    crate::records::store::DynamoRecordStore,
    crate::records::quarantine::S3Quarantine,
>;

impl AwsReceiver {
    /// Builds the clients once; call at cold start, outside the handler.
    pub fn from_config(config: &crate::config::ReceiverConfig, sdk: &aws_config::SdkConfig) -> Self {
        let keys = config.signing_keys.source(aws_sdk_secretsmanager::Client::new(sdk));
        let store =
            crate::records::store::DynamoRecordStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.table_name)
                .with_policy(std::sync::Arc::new(config.data.clone()));
        let quarantine = config.quarantine_bucket.as_ref().map(|bucket| {
            crate::records::quarantine::S3Quarantine::new(crate::records::quarantine::S3Quarantine::client(sdk), bucket)
        });
        Receiver::new(SigningKeys::new(keys, config.key_cache), store, quarantine, config.max_body_bytes)
            .with_metrics(config.metrics.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::fixtures::*;
    use crate::receiver::route::collection_from_path;
    use crate::signing::signature::{authorization_header, SigningKey};
    use lambda_http::http::StatusCode;
    use serde_json::json;
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn a_signed_event_is_stored_and_its_outcome_answered() {
        let r = receiver();
        let (status, body) = answer(&r, signed("/webhooks/clockings", r#"{"id":1,"changeVersion":"5"}"#)).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"results":[{"id":"1","changeVersion":"5","changeType":"InsertOrUpdate","outcome":"stored"}]})
        );
        assert_eq!(stored(&r), 1);
    }
    #[tokio::test]
    async fn unsigned_or_wrongly_signed_requests_are_401_and_store_nothing() {
        let r = receiver();
        let body = br#"{"id":1,"changeVersion":"5"}"#;
        for auth in [
            None,
            Some("Bearer x".to_string()),
            Some("HMAC-SHA256 !!".to_string()),
            Some(authorization_header(&SigningKey::new("wrong"), body)),
        ] {
            let (status, answer_body) = answer(&r, request("/webhooks/clockings", body, auth)).await;
            assert_eq!(status, 401);
            assert_eq!(answer_body["error"]["code"], "invalid_signature");
        }
        assert_eq!(stored(&r), 0);
    }
    #[tokio::test]
    async fn the_signature_is_checked_before_the_body_is_parsed() {
        let r = receiver();
        // A well-formed signature made with another key, over a body that is not an event:
        // were the body parsed first, the answer would be 400.
        let wrong = authorization_header(&SigningKey::new("another-key"), b"not json");
        let (status, body) = answer(&r, request("/webhooks/clockings", b"not json", Some(wrong))).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("invalid_signature")));
        assert!(r.keys_fetches() > 0, "the key was looked up to verify the signature");
        // The same body correctly signed is parsed, and refused as an invalid event.
        let (status, _) = answer(&r, signed("/webhooks/clockings", "not json")).await;
        assert_eq!(status, 400);
    }
    #[tokio::test]
    async fn signed_bodies_that_are_not_valid_events_are_400_and_store_nothing() {
        let r = receiver();
        for body in ["not json", "{}", r#"[{"id":1,"changeVersion":"1"},{"id":2}]"#, "[]"] {
            let (status, answer_body) = answer(&r, signed("/webhooks/clockings", body)).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(answer_body["error"]["code"], "invalid_event");
        }
        assert_eq!(stored(&r), 0);
    }
    #[tokio::test]
    async fn oversized_bodies_are_413_unless_signed_and_a_signed_one_is_quarantined_whole() {
        let body = format!(r#"{{"id":1,"changeVersion":"5","x":"{}"}}"#, "a".repeat(5000));
        // Without a well-formed signature: 413 before any key is read.
        let r = receiver();
        for header in [None, Some("HMAC-SHA256 !!".to_owned())] {
            let (status, answer_body) = answer(&r, request("/webhooks/clockings", body.as_bytes(), header)).await;
            assert_eq!((status, answer_body["error"]["code"].as_str()), (413, Some("body_too_large")));
        }
        assert_eq!(r.keys_fetches(), 0);
        // Wrongly signed: 413 (it is noise), nothing kept.
        let q = quarantining();
        let wrong = authorization_header(&SigningKey::new("another-key"), body.as_bytes());
        let (status, _) = answer(&q, request("/webhooks/clockings", body.as_bytes(), Some(wrong))).await;
        assert_eq!(status, 413);
        assert!(kept(&q).is_empty());
        // Correctly signed: kept whole for replay and acknowledged, so Protime stops resending.
        let (status, answer_body) = answer(&q, signed("/webhooks/clockings", &body)).await;
        assert_eq!(status, 202, "{answer_body}");
        assert_eq!(kept(&q), [("body_too_large".to_owned(), body.clone())]);
        assert_eq!(stored(&q), 0);
        // Without a quarantine, a signed oversized body is 413 still.
        let (status, _) = answer(&r, signed("/webhooks/clockings", &body)).await;
        assert_eq!(status, 413);
    }
    #[tokio::test]
    async fn keys_unavailable_at_cold_start_is_503() {
        let r = receiver();
        r.keys_source().fail.store(true, Ordering::SeqCst);
        let (status, body) = answer(&r, signed("/webhooks/clockings", r#"{"id":1,"changeVersion":"5"}"#)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("keys_unavailable")));
    }
    #[tokio::test]
    async fn a_collection_without_a_key_is_401() {
        let r = receiver();
        let (status, _) = answer(&r, signed("/webhooks/breaks", r#"{"id":1,"changeVersion":"5"}"#)).await;
        assert_eq!(status, 401);
    }
    #[tokio::test]
    async fn only_post_is_accepted() {
        let r = receiver();
        let req =
            lambda_http::http::Request::builder().method("GET").uri("/webhooks/clockings").body(Body::Empty).unwrap();
        let response = r.handle(req).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST");
    }
    #[tokio::test]
    async fn text_and_binary_bodies_verify_alike() {
        let r = receiver();
        let body = r#"{"id":2,"changeVersion":"5"}"#;
        let auth = authorization_header(&SigningKey::new(KEY), body.as_bytes());
        let req = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/webhooks/clockings")
            .header("authorization", auth)
            .body(Body::Text(body.to_string()))
            .unwrap();
        assert_eq!(answer(&r, req).await.0, 200);
    }

    mod properties {
        use super::*;
        use proptest::collection::{btree_map, vec};
        use proptest::prelude::*;
        use proptest::strategy::ValueTree;
        use serde_json::Value;

        fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
            tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(future)
        }

        fn arb_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
                ".{0,8}".prop_map(Value::String),
            ];
            leaf.prop_recursive(6, 64, 6, |inner| {
                prop_oneof![
                    vec(inner.clone(), 0..6).prop_map(Value::Array),
                    btree_map("[a-zA-Z]{1,6}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// An id or changeVersion: usually well-formed, sometimes any JSON at all.
        fn arb_id() -> impl Strategy<Value = Value> {
            prop_oneof![
                3 => any::<u32>().prop_map(|n| json!(n)),
                2 => "[A-Za-z0-9-]{1,12}".prop_map(Value::String),
                1 => arb_json(),
            ]
        }

        fn arb_version() -> impl Strategy<Value = Value> {
            prop_oneof![5 => "[0-9A-F]{1,20}".prop_map(Value::String), 1 => arb_json()]
        }

        /// Objects that look like events, with each required field sometimes missing or mistyped.
        fn arb_event() -> impl Strategy<Value = Value> {
            let id = proptest::option::weighted(0.9, arb_id());
            let version = proptest::option::weighted(0.9, arb_version());
            (id, version, arb_json(), any::<bool>()).prop_map(|(id, version, extra, delta)| {
                let mut data = serde_json::Map::new();
                if let Some(id) = id {
                    data.insert("id".into(), id);
                }
                if let Some(v) = version {
                    data.insert("changeVersion".into(), v);
                }
                data.insert("extra".into(), extra);
                if delta {
                    json!({"changeType": "InsertOrUpdate", "data": data})
                } else {
                    Value::Object(data)
                }
            })
        }

        fn arb_body() -> impl Strategy<Value = Value> {
            prop_oneof![3 => arb_event(), 2 => vec(arb_event(), 0..5).prop_map(Value::Array), 1 => arb_json()]
        }

        /// Sends a correctly signed body; checks the status is documented and that something
        /// was stored exactly when the body is a valid event or array of events.
        fn check_signed(body: &[u8]) -> Result<(), TestCaseError> {
            block_on(async {
                let r = receiver();
                let auth = authorization_header(&SigningKey::new(KEY), body);
                let response = r.handle(request("/webhooks/clockings", body, Some(auth))).await;
                let status = response.status().as_u16();
                prop_assert!(matches!(status, 200 | 400 | 413), "status {}", status);
                let valid = crate::records::event::parse_body(body).is_ok();
                prop_assert_eq!(status == 200, valid && body.len() <= 4096);
                prop_assert_eq!(stored(&r) > 0, status == 200);
                Ok(())
            })
        }

        /// The share of `strategy`'s values for which `valid` holds, over 400 samples.
        fn share<T: std::fmt::Debug>(strategy: impl Strategy<Value = T>, valid: impl Fn(&T) -> bool) -> f64 {
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let hits = (0..400).filter(|_| valid(&strategy.new_tree(&mut runner).unwrap().current())).count();
            hits as f64 / 400.0
        }

        #[test]
        fn the_generated_bodies_exercise_both_the_stored_and_the_refused_branch() {
            let valid = share(arb_body(), |b| crate::records::event::parse_body(b.to_string().as_bytes()).is_ok());
            // Random floats are mostly beyond DynamoDB's number range, so many generated events are
            // refused; still, some 30 or more of the 200 cases of each property reach the store.
            assert!((0.15..=0.9).contains(&valid), "share of valid events: {valid}");
        }

        #[test]
        fn the_generated_paths_exercise_every_routing_branch() {
            let route = |p: &String| match collection_from_path(p) {
                Some("clockings") => 0,
                Some(name) if name.parse::<Collection>().is_ok() => 1,
                _ => 2,
            };
            for branch in 0..3 {
                let hit = share(arb_path(), |p| route(p) == branch);
                assert!(hit >= 0.1, "branch {branch}: {hit}");
            }
        }

        fn arb_path() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("/webhooks/clockings".to_owned()),
                proptest::sample::select(Collection::ALL).prop_map(|c| format!("/webhooks/{c}")),
                "/(stage/)?webhooks/[a-z-]{1,20}/?",
                "/[a-z/{}.%-]{0,40}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            #[test]
            fn arbitrary_signed_bytes_get_a_documented_status(body in vec(any::<u8>(), 0..600)) {
                check_signed(&body)?;
            }

            #[test]
            fn arbitrary_signed_json_gets_a_documented_status(body in arb_body()) {
                check_signed(body.to_string().as_bytes())?;
            }

            #[test]
            fn arbitrary_authorization_headers_store_nothing(header in vec(any::<u8>(), 0..120)) {
                block_on(async {
                    let r = receiver();
                    let mut req = request("/webhooks/clockings", br#"{"id":1,"changeVersion":"1"}"#, None);
                    if let Ok(value) = header::HeaderValue::from_bytes(&header) {
                        req.headers_mut().insert(header::AUTHORIZATION, value);
                    }
                    let status = r.handle(req).await.status().as_u16();
                    prop_assert_eq!(status, 401);
                    prop_assert_eq!(stored(&r), 0);
                    Ok(())
                })?;
            }

            #[test]
            fn arbitrary_paths_are_routed_or_refused(path in arb_path()) {
                block_on(async {
                    let r = receiver();
                    let body = r#"{"id":1,"changeVersion":"1"}"#;
                    let Ok(req) = lambda_http::http::Request::builder()
                        .method("POST")
                        .uri(path.as_str())
                        .header("authorization", authorization_header(&SigningKey::new(KEY), body.as_bytes()))
                        .body(Body::Text(body.into()))
                    else {
                        return Ok(());
                    };
                    let status = r.handle(req).await.status().as_u16();
                    let expected = match collection_from_path(&path) {
                        Some("clockings") => 200,
                        Some(name) if name.parse::<Collection>().is_ok() => 401, // no key stored for it
                        _ => 404,
                    };
                    prop_assert_eq!(status, expected, "{}", path);
                    Ok(())
                })?;
            }
        }
    }
}
