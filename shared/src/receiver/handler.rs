//! The receiver's HTTP handler: `POST /webhooks/{collection}`.
//!
//! A request goes: route → size → signature → parse → conditional writes → answer. Nothing is
//! parsed before its signature is verified, and nothing is acknowledged before it is stored,
//! deliberately skipped as older, or — signed but never storable — kept in the quarantine.
//! Why verify comes first: `docs/decisions/0009-verify-before-parse.md`.

use crate::collection::Collection;
use crate::receiver::last_event::EventNotes;
use crate::records::event::{self, ChangeType, Event, EventError, Split};
use crate::records::quarantine::{NoQuarantine, Note, Quarantine, QuarantineError};
use crate::records::{put_all, PutOutcome, RecordStore, Source, StoreError};
use crate::signing::keys::{AcceptedKey, KeySource, SigningKeys, VerifyError};
use crate::signing::signature::{self, SignatureError};
use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use std::time::Instant;

/// Writes of one batch in flight at once.
const WRITE_CONCURRENCY: usize = 8;

/// Why a request was not acknowledged. Each variant maps to exactly one status, here only.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("only POST is accepted")]
    MethodNotAllowed,
    #[error("no such route; events are posted to /webhooks/{{collection}}")]
    NoRoute,
    #[error("unknown collection {0:?}")]
    UnknownCollection(String),
    /// Over the limit, and not (correctly) signed.
    #[error("the body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// Over the limit and correctly signed, with no quarantine to keep it in.
    #[error("the body is larger than {0} bytes")]
    SignedBodyTooLarge(usize),
    #[error("the signature is missing, malformed or wrong")]
    Unauthorized(VerifyError),
    #[error("{0}")]
    InvalidEvent(EventError),
    /// DynamoDB can never store this record, and no quarantine is configured.
    #[error("the event can never be stored ({0})")]
    Unstorable(&'static str),
    #[error("the quarantine is unavailable; retry later")]
    QuarantineUnavailable(QuarantineError),
    #[error("storage is unavailable; retry later")]
    KeysUnavailable(VerifyError),
    #[error("storage is unavailable; retry later")]
    StoreUnavailable(StoreError),
    #[error("the invocation ran out of time before every event was stored; retry later")]
    OutOfTime,
}

impl ReceiveError {
    /// Refused before a signature was verified: anyone on the internet can cause these, so
    /// they are counted apart (`UnverifiedRequests`) from what Protime's signed requests meet.
    pub fn is_unverified(&self) -> bool {
        matches!(
            self,
            ReceiveError::MethodNotAllowed
                | ReceiveError::NoRoute
                | ReceiveError::UnknownCollection(_)
                | ReceiveError::BodyTooLarge(_)
        )
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ReceiveError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ReceiveError::NoRoute | ReceiveError::UnknownCollection(_) => StatusCode::NOT_FOUND,
            ReceiveError::BodyTooLarge(_) | ReceiveError::SignedBodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ReceiveError::InvalidEvent(e) if e.is_too_large() => StatusCode::PAYLOAD_TOO_LARGE,
            ReceiveError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ReceiveError::InvalidEvent(_) | ReceiveError::Unstorable(_) => StatusCode::BAD_REQUEST,
            ReceiveError::KeysUnavailable(_)
            | ReceiveError::StoreUnavailable(_)
            | ReceiveError::QuarantineUnavailable(_)
            | ReceiveError::OutOfTime => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable code for the answer body, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ReceiveError::MethodNotAllowed => "method_not_allowed",
            ReceiveError::NoRoute => "no_route",
            ReceiveError::UnknownCollection(_) => "unknown_collection",
            ReceiveError::BodyTooLarge(_) | ReceiveError::SignedBodyTooLarge(_) => "body_too_large",
            ReceiveError::InvalidEvent(e) if e.is_too_large() => "event_too_large",
            ReceiveError::Unauthorized(_) => "invalid_signature",
            ReceiveError::InvalidEvent(_) => "invalid_event",
            ReceiveError::Unstorable(_) => "unstorable_event",
            ReceiveError::QuarantineUnavailable(_) => "quarantine_unavailable",
            ReceiveError::KeysUnavailable(_) => "keys_unavailable",
            ReceiveError::StoreUnavailable(_) => "store_unavailable",
            ReceiveError::OutOfTime => "out_of_time",
        }
    }

    fn into_response(self) -> Response<Body> {
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        let mut response = json_response(self.status(), &body);
        if matches!(self, ReceiveError::MethodNotAllowed) {
            response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        }
        response
    }
}

/// What became of one event of an acknowledged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Decided by the conditional write: stored, duplicate or stale.
    Written(PutOutcome),
    /// It can never be stored as it is: kept byte for byte in the quarantine under `key`.
    Quarantined { key: String, reason: &'static str },
}

impl EventOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventOutcome::Written(put) => put.as_str(),
            EventOutcome::Quarantined { .. } => "quarantined",
        }
    }
}

/// The outcome of one event, as answered and logged. An event that could not be read has no
/// id, version or type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemOutcome {
    pub id: Option<String>,
    pub change_version: Option<String>,
    pub change_type: Option<ChangeType>,
    pub outcome: EventOutcome,
}

impl ItemOutcome {
    fn of(event: &Event, outcome: EventOutcome) -> Self {
        ItemOutcome {
            id: Some(event.id.as_str().to_owned()),
            change_version: Some(event.change_version.clone()),
            change_type: Some(event.change_type),
            outcome,
        }
    }

    fn unread(outcome: EventOutcome) -> Self {
        ItemOutcome { id: None, change_version: None, change_type: None, outcome }
    }

    fn is(&self, put: PutOutcome) -> bool {
        self.outcome == EventOutcome::Written(put)
    }
}

/// What an acknowledged request did.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub collection: Collection,
    pub accepted: AcceptedKey,
    pub outcomes: Vec<ItemOutcome>,
    /// The whole body was one unstorable event or unusable, and was quarantined (answered 202).
    pub whole_body_quarantined: bool,
    /// Time spent in the conditional writes.
    pub store_ms: f64,
}

/// An event to set aside: its own bytes, why, and its record id if it could be read.
struct Unstorable<'a> {
    index: usize,
    bytes: &'a [u8],
    reason: &'static str,
    event: Option<Event>,
}

/// How often an instance notes the last event's time on a collection's subscription item.
const NOTE_EVENT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// The longest the note may add to an answer (a DynamoDB UpdateItem takes milliseconds; the
/// SDK's operation timeout is 8 s, far past what an acknowledged event should wait for).
const NOTE_EVENT_BUDGET: std::time::Duration = std::time::Duration::from_millis(500);

/// The handler with the clients and caches it keeps across invocations.
pub struct Receiver<K, S, Q = NoQuarantine> {
    keys: SigningKeys<K>,
    store: S,
    quarantine: Option<Q>,
    max_body_bytes: usize,
    metrics_namespace: String,
    /// When this instance last noted an event per collection.
    noted: std::sync::Mutex<std::collections::HashMap<Collection, Instant>>,
}

impl<K: KeySource, S: RecordStore + EventNotes> Receiver<K, S> {
    pub fn new(keys: SigningKeys<K>, store: S, max_body_bytes: usize) -> Self {
        Receiver {
            keys,
            store,
            quarantine: None,
            max_body_bytes,
            metrics_namespace: crate::observability::metrics::DEFAULT_NAMESPACE.into(),
            noted: Default::default(),
        }
    }
}

impl<K: KeySource, S: RecordStore + EventNotes, Q: Quarantine> Receiver<K, S, Q> {
    /// Keeps signed but unstorable bodies in `quarantine` (acknowledged) instead of answering 400.
    pub fn with_quarantine<Q2: Quarantine>(self, quarantine: Option<Q2>) -> Receiver<K, S, Q2> {
        let Receiver { keys, store, max_body_bytes, metrics_namespace, noted, .. } = self;
        Receiver { keys, store, quarantine, max_body_bytes, metrics_namespace, noted }
    }

    /// Publishes metrics under `namespace` instead of the default.
    pub fn with_metrics_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.metrics_namespace = namespace.into();
        self
    }

    /// Answers one request; never fails and never panics on any input.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let route = route_collection(&request);
        let routed = route.as_ref().ok().copied();
        let result = self.receive(&request, route).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        for doc in request_metrics(&self.metrics_namespace, routed, &result) {
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
            // Signed and over the limit: Protime would send it again until the webhook is
            // disabled, so it is kept whole for replay (413 only without a quarantine).
            if self.quarantine.is_none() {
                return Err(ReceiveError::SignedBodyTooLarge(self.max_body_bytes));
            }
            let outcome = self.keep(collection, body, "body_too_large", None, deadline).await?;
            let outcomes = vec![ItemOutcome::unread(outcome)];
            return Ok(Received { collection, accepted, outcomes, whole_body_quarantined: true, store_ms: 0.0 });
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

    /// Notes the time on the collection's subscription item, at most once a minute per instance:
    /// a cheap write for `protime-webhooks status`, never one per event. The events are stored
    /// by now, so the note never delays the answer by more than [`NOTE_EVENT_BUDGET`] nor past
    /// the writes' deadline; a failure or a note cut short only logs.
    async fn note_event(&self, collection: Collection, deadline: Option<tokio::time::Instant>) {
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
    async fn set_aside_body(
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
    async fn store_all(
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

/// The metrics of one request: counts by outcome, signature rejections by reason, batch size
/// and store latency, published per function and per collection; and one document per
/// quarantine reason (`Quarantined`, dimension `Reason`).
pub fn request_metrics(
    namespace: &str,
    collection: Option<Collection>,
    result: &Result<Received, ReceiveError>,
) -> Vec<crate::observability::metrics::MetricDoc> {
    use crate::observability::metrics::{MetricDoc, Unit};
    let mut doc = MetricDoc::new(namespace, "receiver");
    if let Some(c) = collection {
        doc = doc.dimension("Collection", c.as_str());
    }
    doc = doc.count("Requests", 1);
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
                .count("BatchSize", r.outcomes.len() as u64)
                .count("PreviousKeyAccepted", u64::from(r.accepted == AcceptedKey::Previous))
                .metric("StoreLatency", Unit::Milliseconds, r.store_ms);
            let mut by_reason = std::collections::BTreeMap::<&str, u64>::new();
            for o in &r.outcomes {
                if let EventOutcome::Quarantined { reason, .. } = o.outcome {
                    *by_reason.entry(reason).or_default() += 1;
                }
            }
            let per_reason = by_reason.into_iter().map(|(reason, n)| {
                MetricDoc::new(namespace, "receiver").dimension("Reason", reason).count("Quarantined", n)
            });
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

/// One log line per event and one per request; a rejection says why without any secret.
fn log_request(result: &Result<Received, ReceiveError>, latency_ms: f64) {
    match result {
        Ok(received @ Received { collection, accepted, outcomes, .. }) => {
            for o in outcomes {
                let (key, reason) = match &o.outcome {
                    EventOutcome::Quarantined { key, reason } => (key.as_str(), *reason),
                    EventOutcome::Written(_) => ("", ""),
                };
                let id = o.id.as_deref().unwrap_or("");
                let change_version = o.change_version.as_deref().unwrap_or("");
                let change_type = o.change_type.map(ChangeType::as_str).unwrap_or("");
                let outcome = o.outcome.as_str();
                if key.is_empty() {
                    tracing::info!(collection = %collection, id, change_version, change_type, outcome, "event");
                } else {
                    tracing::warn!(collection = %collection, id, change_version, change_type, outcome, reason, key, "event quarantined");
                }
            }
            tracing::info!(
                collection = %collection,
                status = received.status().as_u16(),
                events = outcomes.len(),
                key_stage = accepted.as_str(),
                latency_ms,
                "request"
            );
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

impl Received {
    /// 202 when the whole body was quarantined, else 200.
    pub fn status(&self) -> StatusCode {
        if self.whole_body_quarantined {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        }
    }

    /// `{"quarantined":{"key","reason"}}` for a whole body, else one result per event in the
    /// body's order.
    fn into_response(self) -> Response<Body> {
        if let (true, Some(EventOutcome::Quarantined { key, reason })) =
            (self.whole_body_quarantined, self.outcomes.first().map(|o| &o.outcome))
        {
            return json_response(StatusCode::ACCEPTED, &json!({"quarantined": {"key": key, "reason": reason}}));
        }
        let results: Vec<_> = self
            .outcomes
            .iter()
            .map(|o| {
                let mut result = json!({
                    "id": o.id,
                    "changeVersion": o.change_version,
                    "changeType": o.change_type.map(ChangeType::as_str),
                    "outcome": o.outcome.as_str(),
                });
                if let EventOutcome::Quarantined { key, reason } = &o.outcome {
                    result["reason"] = json!(reason);
                    result["key"] = json!(key);
                }
                result
            })
            .collect();
        json_response(StatusCode::OK, &json!({ "results": results }))
    }
}

/// `work`, unless `deadline` passes first (then 503 `out_of_time`: nothing is acknowledged, and
/// whatever was written is safe to retry).
async fn before<T>(
    deadline: Option<tokio::time::Instant>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, ReceiveError> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, work).await.map_err(|_| ReceiveError::OutOfTime),
        None => Ok(work.await),
    }
}

/// Time kept back from the invocation's deadline to answer 503 before Lambda ends the function.
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_millis(1500);

/// When the writes must be done by: the invocation's deadline less [`DEADLINE_MARGIN`]. None
/// outside Lambda (no context), or when the deadline is not a time still ahead: Lambda ends an
/// invocation at its deadline, so a past one is an emulator's placeholder (`cargo lambda watch`
/// sends the timeout's length, 600000), not a deadline.
fn invocation_deadline(request: &Request) -> Option<tokio::time::Instant> {
    let deadline_ms = request.lambda_context_ref()?.deadline;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64;
    let left = std::time::Duration::from_millis(deadline_ms.checked_sub(now_ms).filter(|ms| *ms > 0)?);
    Some(tokio::time::Instant::now() + left.saturating_sub(DEADLINE_MARGIN))
}

/// The collection named by the route: API Gateway's path parameter where it gives one, else
/// the path itself (`cargo lambda watch` sets no path parameters).
pub fn route_collection(request: &Request) -> Result<Collection, ReceiveError> {
    let from_parameters = request.path_parameters_ref().and_then(|p| p.first("collection").map(str::to_owned));
    let name = match from_parameters {
        Some(name) => name,
        None => collection_from_path(request.uri().path()).ok_or(ReceiveError::NoRoute)?.to_owned(),
    };
    name.parse().map_err(|e: crate::collection::UnknownCollection| ReceiveError::UnknownCollection(e.0))
}

/// `…/webhooks/<name>` (with an optional trailing slash and any stage prefix) → `<name>`.
fn collection_from_path(path: &str) -> Option<&str> {
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let name = segments.next().filter(|s| !s.is_empty())?;
    (segments.next()? == "webhooks").then_some(name)
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

impl From<SignatureError> for ReceiveError {
    fn from(e: SignatureError) -> Self {
        ReceiveError::Unauthorized(e.into())
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
        let keys = crate::signing::keys::SecretsManagerKeySource::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            &config.signing_key_secret_prefix,
        );
        let store =
            crate::records::store::DynamoRecordStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.table_name);
        let quarantine = config.quarantine_bucket.as_ref().map(|bucket| {
            crate::records::quarantine::S3Quarantine::new(crate::records::quarantine::S3Quarantine::client(sdk), bucket)
        });
        Receiver::new(SigningKeys::new(keys, config.key_cache), store, config.max_body_bytes)
            .with_metrics_namespace(config.metrics_namespace.clone())
            .with_quarantine(quarantine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::keys::KeyCacheConfig;
    use crate::signing::signature::{authorization_header, SigningKey};
    use crate::testing::{MemoryKeySource, MemoryQuarantine, MemoryRecordStore};
    use lambda_http::aws_lambda_events::query_map::QueryMap;
    use std::collections::HashMap;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, SystemTime};

    const KEY: &str = "test-key";

    fn receiver() -> Receiver<MemoryKeySource, MemoryRecordStore> {
        let source = MemoryKeySource::default();
        source.rotate(Collection::Clockings, KEY, SystemTime::now() - Duration::from_secs(3600));
        Receiver::new(SigningKeys::new(source, KeyCacheConfig::default()), MemoryRecordStore::default(), 4096)
    }

    fn request(path: &str, body: &[u8], authorization: Option<String>) -> Request {
        let mut builder = lambda_http::http::Request::builder().method("POST").uri(path);
        if let Some(a) = authorization {
            builder = builder.header("Authorization", a);
        }
        builder.body(Body::Binary(body.to_vec())).unwrap()
    }

    fn signed(path: &str, body: &str) -> Request {
        request(path, body.as_bytes(), Some(authorization_header(&SigningKey::new(KEY), body.as_bytes())))
    }

    async fn answer<Q: Quarantine>(
        r: &Receiver<MemoryKeySource, MemoryRecordStore, Q>,
        req: Request,
    ) -> (u16, serde_json::Value) {
        let response = r.handle(req).await;
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        (response.status().as_u16(), body)
    }

    fn stored<Q>(r: &Receiver<MemoryKeySource, MemoryRecordStore, Q>) -> usize {
        r.store.items.lock().unwrap().len()
    }

    fn quarantining() -> Receiver<MemoryKeySource, MemoryRecordStore, MemoryQuarantine> {
        receiver().with_quarantine(Some(MemoryQuarantine::default()))
    }

    fn kept(r: &Receiver<MemoryKeySource, MemoryRecordStore, MemoryQuarantine>) -> Vec<(String, String)> {
        let q = r.quarantine.as_ref().unwrap();
        q.bodies().into_iter().map(|(reason, bytes)| (reason, String::from_utf8(bytes).unwrap())).collect()
    }

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
        let r = Receiver::new(SigningKeys::new(source, KeyCacheConfig::default()), store, 4096)
            .with_quarantine(Some(MemoryQuarantine::default()));
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
    async fn a_batch_that_cannot_finish_before_the_invocation_deadline_is_503() {
        let r = receiver();
        r.store.delays.lock().unwrap().insert("2".into(), 200);
        let body = r#"[{"id":1,"changeVersion":"1"},{"id":2,"changeVersion":"1"}]"#;
        let mut context = lambda_http::Context::default();
        let now_ms = SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        context.deadline = now_ms + 1600; // 100 ms left once the margin is kept back
        let (status, answer_body) = answer(&r, signed("/webhooks/clockings", body).with_lambda_context(context)).await;
        assert_eq!((status, answer_body["error"]["code"].as_str()), (503, Some("out_of_time")));
        // A deadline that is not ahead (an emulator's placeholder) sets no limit.
        let mut context = lambda_http::Context::default();
        context.deadline = 600_000;
        let (status, answer_body) = answer(&r, signed("/webhooks/clockings", body).with_lambda_context(context)).await;
        assert_eq!(status, 200, "{answer_body}");
        // With time enough, the same batch is stored again (the retries are duplicates).
        let mut context = lambda_http::Context::default();
        context.deadline = now_ms + 30_000;
        let (status, answer_body) = answer(&r, signed("/webhooks/clockings", body).with_lambda_context(context)).await;
        assert_eq!(status, 200, "{answer_body}");
        assert_eq!(answer_body["results"][1]["outcome"], "duplicate");
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
    async fn unknown_collections_and_routes_are_404() {
        let r = receiver();
        let (status, body) = answer(&r, signed("/webhooks/holidays", "{}")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_collection")));
        let (status, body) = answer(&r, signed("/other/clockings", "{}")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("no_route")));
    }

    #[tokio::test]
    async fn path_parameters_from_api_gateway_take_precedence() {
        let r = receiver();
        let body = r#"{"id":1,"changeVersion":"5"}"#;
        let req = signed("/prod/anything", body)
            .with_path_parameters(QueryMap::from(HashMap::from([("collection".to_string(), "clockings".to_string())])));
        assert_eq!(answer(&r, req).await.0, 200);
    }

    #[tokio::test]
    async fn stage_prefixes_and_trailing_slashes_are_routed() {
        let r = receiver();
        let body = r#"{"id":1,"changeVersion":"5"}"#;
        assert_eq!(answer(&r, signed("/prod/webhooks/clockings/", body)).await.0, 200);
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
    async fn a_store_failure_is_503_and_not_acknowledged() {
        let r = receiver();
        r.store.fail.store(true, Ordering::SeqCst);
        let (status, body) = answer(&r, signed("/webhooks/clockings", r#"{"id":1,"changeVersion":"5"}"#)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("store_unavailable")));
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
        let docs = request_metrics("Ns", Some(Collection::Clockings), &Ok(received));
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
        assert_eq!(v["BatchSize"], 7.0);
        assert_eq!(v["StoreLatency"], 3.5);
        assert_eq!(v["Collection"], "clockings");

        let rejected = Err(ReceiveError::Unauthorized(SignatureError::Mismatch.into()));
        let v = request_metrics("Ns", Some(Collection::Clockings), &rejected)[0].to_json(0);
        assert_eq!((v["SignatureRejected"].as_f64(), v["Reason"].as_str()), (Some(1.0), Some("mismatch")));
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"], ["Function", "Collection"], ["Function", "Reason"]])
        );

        let unavailable = Err(ReceiveError::StoreUnavailable(StoreError::Unavailable("down".into())));
        assert_eq!(request_metrics("Ns", None, &unavailable)[0].to_json(0)["Unavailable"], 1.0);
        // Noise anyone can send is counted apart from what a signed request meets.
        for noise in [
            ReceiveError::NoRoute,
            ReceiveError::MethodNotAllowed,
            ReceiveError::UnknownCollection("x".into()),
            ReceiveError::BodyTooLarge(9),
        ] {
            let v = request_metrics("Ns", None, &Err(noise))[0].to_json(0);
            assert_eq!(v["UnverifiedRequests"], 1.0);
            assert!(v.get("InvalidRequests").is_none() && v.get("Collection").is_none());
        }
        assert_eq!(request_metrics("Ns", None, &Err(ReceiveError::NoRoute))[0].to_json(0)["Reason"], "no_route");
        for signed in [ReceiveError::SignedBodyTooLarge(9), ReceiveError::InvalidEvent(EventError::MissingId)] {
            let v = request_metrics("Ns", Some(Collection::Clockings), &Err(signed))[0].to_json(0);
            assert_eq!(v["InvalidRequests"], 1.0);
            assert!(v.get("UnverifiedRequests").is_none());
        }
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

    impl<Q> Receiver<MemoryKeySource, MemoryRecordStore, Q> {
        fn keys_source(&self) -> &MemoryKeySource {
            self.keys.source()
        }
        fn keys_fetches(&self) -> usize {
            self.keys.source().fetches.load(Ordering::SeqCst)
        }
    }
}
