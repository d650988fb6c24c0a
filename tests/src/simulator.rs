//! A Protime stand-in for tests and local runs: the token endpoint, the webhooks API, the
//! collection list and delta endpoints, and an emitter that POSTs signed events to the
//! destinations. Its clock can be advanced and faults can be injected.

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use protime_webhooks::receiver::signature::{authorization_header, SigningKey};
use protime_webhooks::Collection;
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

pub const API_PREFIX: &str = "/connector/protimeapi/api/v1";

/// How events are shaped on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyShape {
    /// `{"id","changeVersion",…}`
    Flat,
    /// `{"changeType","data":{…}}`
    Delta,
    /// `[{"changeType","data":{…}}]`
    Array,
}

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    pub token_lifetime: Duration,
    pub webhook_validity: Duration,
    pub page_size: usize,
    /// Put an empty page between data pages (they are not the end of a list).
    pub empty_pages: bool,
    /// The field of the create answer that carries the key.
    pub key_field: String,
    pub delivery_attempts: u32,
    pub delivery_backoff: std::time::Duration,
    pub body_shape: BodyShape,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            tenant: "sim".into(),
            client_id: "sim-client".into(),
            client_secret: "sim-client-secret".into(),
            token_lifetime: Duration::seconds(1800),
            webhook_validity: Duration::days(30),
            page_size: 3,
            empty_pages: true,
            key_field: "privateWebhookKey".into(),
            delivery_attempts: 3,
            delivery_backoff: std::time::Duration::from_millis(20),
            body_shape: BodyShape::Flat,
        }
    }
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    Token,
    Api,
}

/// What the next matching request gets instead of its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Status {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    /// Answer only after this long (longer than the client's timeout: a timeout).
    Delay(std::time::Duration),
    /// Let this request through untouched (to aim the next fault at a later request).
    Pass,
    /// Every access token lapses just before this request is checked.
    ExpireTokens,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimWebhook {
    pub id: String,
    pub collection: String,
    pub destination_url: String,
    pub external_references: String,
    pub key: String,
    pub valid_until: DateTime<Utc>,
    pub enabled: bool,
    pub deleted: bool,
}

/// One request the simulator answered, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub user_agent: String,
    pub status: u16,
}

#[derive(Debug, Clone)]
struct Change {
    seq: u64,
    collection: String,
    delete: bool,
    data: Value,
}

#[derive(Default)]
struct Sim {
    clock_offset: Duration,
    tokens: HashMap<String, (DateTime<Utc>, Vec<String>)>,
    webhooks: Vec<SimWebhook>,
    records: HashMap<String, BTreeMap<String, Value>>,
    changes: Vec<Change>,
    next_version: u64,
    delta_tokens: HashMap<String, (String, u64, DateTime<Utc>)>,
    faults: HashMap<&'static str, VecDeque<Fault>>,
    seen: Vec<Seen>,
    issued: Vec<String>,
}

impl Sim {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    /// Webhooks whose validUntil passed are Disabled.
    fn expire(&mut self) {
        let now = self.now();
        for w in &mut self.webhooks {
            if w.enabled && w.valid_until <= now {
                w.enabled = false;
            }
        }
    }
}

#[derive(Clone)]
struct Shared {
    sim: Arc<Mutex<Sim>>,
    config: Arc<SimulatorConfig>,
    http: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Sim> {
        self.sim.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running simulator on 127.0.0.1; stops when dropped.
pub struct Simulator {
    shared: Shared,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

impl Simulator {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(config: SimulatorConfig) -> Simulator {
        Simulator::start_on(config, 0).await
    }

    pub async fn start_on(config: SimulatorConfig, port: u16) -> Simulator {
        let http =
            reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().expect("delivery client");
        let shared = Shared { sim: Arc::new(Mutex::new(Sim::default())), config: Arc::new(config), http };
        let app = Router::new()
            .route("/tenants/{tenant}/connect/token", post(token))
            .route(&format!("{API_PREFIX}/webhooks"), get(list_webhooks).post(create_webhook))
            .route(&format!("{API_PREFIX}/webhooks/{{id}}"), get(get_webhook).delete(delete_webhook))
            .route(&format!("{API_PREFIX}/delta/{{collection}}"), get(delta))
            .route(&format!("{API_PREFIX}/{{collection}}"), get(list_collection))
            .route("/_simulator/advance", post(admin_advance))
            .route("/_simulator/changes/{collection}", post(admin_change))
            .with_state(shared.clone());
        let (addr, server) = crate::serve_on_loopback(app, port).await;
        Simulator { shared, addr, server }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn api_base_url(&self) -> String {
        format!("{}{API_PREFIX}", self.base_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}/tenants/{}/connect/token", self.base_url(), self.shared.config.tenant)
    }

    pub fn config(&self) -> &SimulatorConfig {
        &self.shared.config
    }

    /// The credentials secret's JSON for this simulator.
    pub fn credentials_json(&self) -> String {
        let c = &self.shared.config;
        json!({"tenant": c.tenant, "environment": "simulator.local", "clientId": c.client_id, "clientSecret": c.client_secret})
            .to_string()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.shared.lock().now()
    }

    /// Moves the simulator's clock forward (webhooks expire, tokens lapse).
    pub fn advance(&self, by: Duration) {
        let mut sim = self.shared.lock();
        sim.clock_offset += by;
        sim.expire();
    }

    /// Every access token lapses at once (as if 30 minutes passed for tokens only).
    pub fn expire_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    pub fn inject(&self, target: FaultTarget, fault: Fault) {
        let key = match target {
            FaultTarget::Token => "token",
            FaultTarget::Api => "api",
        };
        self.shared.lock().faults.entry(key).or_default().push_back(fault);
    }

    pub fn webhooks(&self) -> Vec<SimWebhook> {
        let mut sim = self.shared.lock();
        sim.expire();
        sim.webhooks.clone()
    }

    /// The live (not deleted) webhook for a collection.
    pub fn webhook(&self, collection: &str) -> Option<SimWebhook> {
        self.webhooks().into_iter().find(|w| w.collection == collection && !w.deleted)
    }

    /// Disables a webhook as Protime does when its delivery retries are exhausted.
    pub fn disable(&self, collection: &str) {
        let mut sim = self.shared.lock();
        for w in sim.webhooks.iter_mut().filter(|w| w.collection == collection) {
            w.enabled = false;
        }
    }

    /// Every access token issued so far (for checking that none is ever logged).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.lock().issued.clone()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().seen.clone()
    }

    /// How many requests matched `method` and a path starting with `prefix` (under the API).
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        let full = format!("{API_PREFIX}{prefix}");
        self.seen().iter().filter(|s| s.method == method && s.path.starts_with(&full)).count()
    }

    /// The record as the simulator holds it (with its changeVersion).
    pub fn record(&self, collection: &str, id: &str) -> Option<Value> {
        self.shared.lock().records.get(collection).and_then(|r| r.get(id)).cloned()
    }

    /// Changes a record without delivering anything (as changes made while no webhook is enabled).
    pub fn change_quietly(&self, collection: &str, data: Value) -> Value {
        self.shared.change_quietly(collection, data)
    }

    /// Changes a record and delivers the event to every enabled webhook of the collection.
    pub async fn change(&self, collection: &str, data: Value) -> Delivery {
        let data = self.shared.change_quietly(collection, data);
        self.shared.deliver(collection, false, data).await
    }

    /// Deletes a record and delivers the Delete event.
    pub async fn delete(&self, collection: &str, id: Value) -> Delivery {
        let data = {
            let mut sim = self.shared.lock();
            sim.next_version += 1;
            let seq = sim.next_version;
            let data = json!({"id": id, "changeVersion": seq.to_string()});
            sim.records.entry(collection.into()).or_default().remove(&id_text(&id));
            sim.changes.push(Change { seq, collection: collection.into(), delete: true, data: data.clone() });
            data
        };
        self.shared.deliver(collection, true, data).await
    }
}

impl Shared {
    fn change_quietly(&self, collection: &str, mut data: Value) -> Value {
        let mut sim = self.lock();
        sim.next_version += 1;
        let seq = sim.next_version;
        data["changeVersion"] = json!(seq.to_string());
        let id = id_text(&data["id"]);
        sim.records.entry(collection.into()).or_default().insert(id, data.clone());
        sim.changes.push(Change { seq, collection: collection.into(), delete: false, data: data.clone() });
        data
    }
    /// POSTs one signed event to each enabled webhook of the collection, retrying failed
    /// deliveries; a webhook whose retries are exhausted is Disabled, as Protime does.
    async fn deliver(&self, collection: &str, delete: bool, data: Value) -> Delivery {
        let config = &self.config;
        let body = match (delete, config.body_shape) {
            (false, BodyShape::Flat) => data.clone(),
            (_, BodyShape::Array) => {
                json!([{"changeType": if delete { "Delete" } else { "InsertOrUpdate" }, "data": data}])
            }
            _ => json!({"changeType": if delete { "Delete" } else { "InsertOrUpdate" }, "data": data}),
        }
        .to_string();
        let targets: Vec<String> = {
            let mut sim = self.lock();
            sim.expire();
            sim.webhooks
                .iter()
                .filter(|w| w.collection == collection && w.enabled && !w.deleted)
                .map(|w| w.id.clone())
                .collect()
        };
        let mut delivery = Delivery::default();
        for id in targets {
            let mut delivered = false;
            for attempt in 0..config.delivery_attempts {
                if attempt > 0 {
                    tokio::time::sleep(config.delivery_backoff * 2u32.pow(attempt - 1)).await;
                }
                // The key in force at the time of each attempt: a renewal switches at once.
                let Some((url, key)) = self.live_key(&id) else { break };
                let auth = authorization_header(&SigningKey::new(key), body.as_bytes());
                let sent = self
                    .http
                    .post(&url)
                    .header("Authorization", auth)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let status = sent.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
                delivery.statuses.push(status);
                if (200..300).contains(&status) {
                    delivered = true;
                    break;
                }
            }
            if delivered {
                delivery.delivered += 1;
            } else {
                delivery.failed += 1;
                let mut sim = self.lock();
                if let Some(w) = sim.webhooks.iter_mut().find(|w| w.id == id) {
                    w.enabled = false;
                }
            }
        }
        delivery
    }

    fn live_key(&self, id: &str) -> Option<(String, String)> {
        let sim = self.lock();
        sim.webhooks.iter().find(|w| w.id == id && !w.deleted).map(|w| (w.destination_url.clone(), w.key.clone()))
    }
}

/// What happened to one event's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub delivered: usize,
    pub failed: usize,
    /// Every attempt's HTTP status (0: no answer).
    pub statuses: Vec<u16>,
}

fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Records the request and applies an injected fault, if one is queued for `target`.
async fn intercept(
    shared: &Shared,
    target: &'static str,
    method: &str,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    let fault = shared.lock().faults.get_mut(target).and_then(|q| q.pop_front());
    let user_agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let record = |status: u16| {
        shared.lock().seen.push(Seen {
            method: method.into(),
            path: path.into(),
            user_agent: user_agent.clone(),
            status,
        })
    };
    match fault {
        Some(Fault::Status { status, retry_after_secs }) => {
            record(status);
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = error(code, "Injected", "injected fault");
            if let Some(secs) = retry_after_secs {
                response.headers_mut().insert("Retry-After", secs.to_string().parse().unwrap());
            }
            Some(response)
        }
        Some(Fault::Delay(by)) => {
            tokio::time::sleep(by).await;
            record(0);
            None
        }
        Some(Fault::ExpireTokens) => {
            shared.lock().tokens.clear();
            record(200);
            None
        }
        Some(Fault::Pass) | None => {
            record(200);
            None
        }
    }
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

/// Scopes the simulated client may ask for.
fn allowed_scope(scope: &str) -> bool {
    scope == "connector-protimeapi-webhooks.read"
        || scope == "connector-protimeapi-webhooks.write"
        || scope
            .strip_prefix("connector-protimeapi-")
            .and_then(|s| s.strip_suffix(".read"))
            .is_some_and(|c| c.parse::<Collection>().is_ok())
}

async fn token(
    State(shared): State<Shared>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    if let Some(r) = intercept(&shared, "token", "POST", "/token", &headers).await {
        return r;
    }
    let config = &shared.config;
    if tenant != config.tenant || form.grant_type.as_deref() != Some("client_credentials") {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "unsupported_grant_type"}))).into_response();
    }
    if form.client_id.as_deref() != Some(config.client_id.as_str())
        || form.client_secret.as_deref() != Some(config.client_secret.as_str())
    {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    }
    let scopes: Vec<String> = form.scope.unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    if scopes.is_empty() || !scopes.iter().all(|s| allowed_scope(s)) {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_scope"}))).into_response();
    }
    let token = random_hex(24);
    let mut sim = shared.lock();
    let expires = sim.now() + config.token_lifetime;
    sim.tokens.insert(token.clone(), (expires, scopes.clone()));
    sim.issued.push(token.clone());
    Json(json!({
        "access_token": token,
        "expires_in": config.token_lifetime.num_seconds(),
        "token_type": "Bearer",
        "scope": scopes.join(" "),
    }))
    .into_response()
}

/// Checks the bearer token and scope of an API request; `Err` is the answer to send.
async fn authorize(
    shared: &Shared,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    scope: &str,
) -> Result<(), Response> {
    if let Some(r) = intercept(shared, "api", method, path, headers).await {
        return Err(r);
    }
    if headers.get("user-agent").is_none() {
        return Err(error(StatusCode::BAD_REQUEST, "MissingUserAgent", "A User-Agent header is required"));
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let sim = shared.lock();
    match sim.tokens.get(token) {
        Some((expires, _)) if *expires <= sim.now() => {
            Err(error(StatusCode::UNAUTHORIZED, "Unauthorized", "The access token has expired"))
        }
        Some((_, scopes)) if scopes.iter().any(|s| s == scope) => Ok(()),
        Some(_) => Err(error(StatusCode::UNAUTHORIZED, "Unauthorized", "Insufficient scope")),
        None => Err(error(StatusCode::UNAUTHORIZED, "Unauthorized", "Missing or invalid access token")),
    }
}

fn webhook_json(w: &SimWebhook) -> Value {
    json!({
        "id": w.id,
        "validUntil": time(w.valid_until),
        "status": if w.enabled { "Enabled" } else { "Disabled" },
        "destinationUrl": w.destination_url,
        "collectionName": w.collection,
    })
}

/// `<field> eq '<value>'`, the filter form the webhooks list accepts.
fn parse_eq(filter: &str) -> Option<(&str, &str)> {
    let (field, value) = filter.split_once(" eq ")?;
    Some((field.trim(), value.trim().strip_prefix('\'')?.strip_suffix('\'')?))
}

async fn list_webhooks(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) =
        authorize(&shared, "GET", &format!("{API_PREFIX}/webhooks"), &headers, "connector-protimeapi-webhooks.read")
            .await
    {
        return r;
    }
    let filter = match q.get("filter").map(|f| parse_eq(f)) {
        None => None,
        Some(Some((field @ ("status" | "collectionName"), value))) => Some((field.to_owned(), value.to_owned())),
        Some(_) => return error(StatusCode::BAD_REQUEST, "InvalidFilter", "Unsupported filter"),
    };
    let mut sim = shared.lock();
    sim.expire();
    let value: Vec<Value> = sim
        .webhooks
        .iter()
        .filter(|w| !w.deleted)
        .map(webhook_json)
        .filter(|w| filter.as_ref().is_none_or(|(field, value)| w[field.as_str()] == value.as_str()))
        .collect();
    Json(json!({ "value": value })).into_response()
}

async fn get_webhook(State(shared): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = authorize(
        &shared,
        "GET",
        &format!("{API_PREFIX}/webhooks/{id}"),
        &headers,
        "connector-protimeapi-webhooks.read",
    )
    .await
    {
        return r;
    }
    let mut sim = shared.lock();
    sim.expire();
    match sim.webhooks.iter().find(|w| w.id == id && !w.deleted) {
        Some(w) => Json(webhook_json(w)).into_response(),
        None => error(StatusCode::NOT_FOUND, "NotFound", "No such webhook"),
    }
}

async fn delete_webhook(State(shared): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = authorize(
        &shared,
        "DELETE",
        &format!("{API_PREFIX}/webhooks/{id}"),
        &headers,
        "connector-protimeapi-webhooks.write",
    )
    .await
    {
        return r;
    }
    let mut sim = shared.lock();
    match sim.webhooks.iter_mut().find(|w| w.id == id && !w.deleted) {
        Some(w) => {
            w.deleted = true;
            w.enabled = false;
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "NotFound", "No such webhook"),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    destination_url: Option<String>,
    collection_name: Option<String>,
}

async fn create_webhook(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Option<Json<CreateBody>>,
) -> Response {
    if let Err(r) =
        authorize(&shared, "POST", &format!("{API_PREFIX}/webhooks"), &headers, "connector-protimeapi-webhooks.write")
            .await
    {
        return r;
    }
    let Some(Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "InvalidBody", "Body must be JSON {destinationUrl, collectionName}");
    };
    let destination = body.destination_url.unwrap_or_default();
    if !(destination.starts_with("https://") || destination.starts_with("http://")) || destination.contains(' ') {
        return error(StatusCode::BAD_REQUEST, "InvalidDestinationUrl", "Invalid destination URL");
    }
    let collection = body.collection_name.unwrap_or_default();
    if collection.parse::<Collection>().is_err() {
        return error(StatusCode::BAD_REQUEST, "UnknownCollection", "Unknown collection name");
    }
    let references = q.get("externalReferences").cloned().unwrap_or_default();
    let config = shared.config.clone();
    let mut sim = shared.lock();
    let now = sim.now();
    let key = random_hex(32);
    let existing =
        sim.webhooks.iter_mut().find(|w| !w.deleted && w.destination_url == destination && w.collection == collection);
    let (status, webhook) = match existing {
        // Same destination and collection: re-enabled and renewed, never duplicated.
        Some(w) => {
            w.key = key;
            w.enabled = true;
            w.valid_until = now + config.webhook_validity;
            (StatusCode::OK, w.clone())
        }
        None => {
            let w = SimWebhook {
                id: format!("{}-{}-{}-{}", random_hex(4), random_hex(2), random_hex(2), random_hex(6)),
                collection,
                destination_url: destination,
                external_references: references,
                key,
                valid_until: now + config.webhook_validity,
                enabled: true,
                deleted: false,
            };
            sim.webhooks.push(w.clone());
            (StatusCode::CREATED, w)
        }
    };
    let mut answer = webhook_json(&webhook);
    answer[config.key_field.as_str()] = json!(webhook.key);
    let location = format!("{API_PREFIX}/webhooks/{}", webhook.id);
    (status, [("Location", location)], Json(answer)).into_response()
}

/// `date ge 'A' and date le 'B'` (either bound optional) → the bounds.
fn parse_date_filter(filter: &str) -> Option<(Option<String>, Option<String>)> {
    let mut from = None;
    let mut to = None;
    for part in filter.split(" and ") {
        let part = part.trim();
        let (op_value, is_from) = if let Some(rest) = part.strip_prefix("date ge ") {
            (rest, true)
        } else if let Some(rest) = part.strip_prefix("date le ") {
            (rest, false)
        } else {
            return None;
        };
        let value = op_value.trim().strip_prefix('\'')?.strip_suffix('\'')?.to_owned();
        if is_from {
            from = Some(value);
        } else {
            to = Some(value);
        }
    }
    Some((from, to))
}

async fn list_collection(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(collection): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("{API_PREFIX}/{collection}");
    if collection.parse::<Collection>().is_err() {
        return error(StatusCode::NOT_FOUND, "NotFound", "Unknown collection");
    }
    if let Err(r) = authorize(&shared, "GET", &path, &headers, &format!("connector-protimeapi-{collection}.read")).await
    {
        return r;
    }
    let filter = q.get("filter").cloned();
    let bounds = match filter.as_deref().map(parse_date_filter) {
        None => (None, None),
        Some(Some(b)) => b,
        Some(None) => return error(StatusCode::BAD_REQUEST, "InvalidFilter", "Unsupported filter"),
    };
    if collection == "paid-presences" {
        // Protime requires a date range of at most one year here.
        let ok = match &bounds {
            (Some(from), Some(to)) => match (from.parse::<chrono::NaiveDate>(), to.parse::<chrono::NaiveDate>()) {
                (Ok(f), Ok(t)) => (t - f).num_days() < 366,
                _ => false,
            },
            _ => false,
        };
        if !ok {
            return error(StatusCode::BAD_REQUEST, "InvalidFilter", "A date range of at most one year is required");
        }
    }
    let delta = q.contains_key("delta");
    let skip_token = q.get("skipToken").cloned().unwrap_or_default();
    let config = shared.config.clone();
    let mut sim = shared.lock();
    let in_range = |r: &Value| {
        let date = r["date"].as_str();
        bounds.0.as_deref().is_none_or(|from| date.is_some_and(|d| d >= from))
            && bounds.1.as_deref().is_none_or(|to| date.is_some_and(|d| d <= to))
    };
    let records: Vec<Value> =
        sim.records.get(&collection).map(|r| r.values().filter(|r| in_range(r)).cloned().collect()).unwrap_or_default();
    // skipToken "N" → data page from N; "N.e" → an empty page that leads to "N".
    let (start, empty) = match skip_token.strip_suffix(".e") {
        Some(n) => (n.parse().unwrap_or(0), true),
        None => (skip_token.parse::<usize>().unwrap_or(0), false),
    };
    let link = |token: String| {
        let mut url = reqwest::Url::parse("http://x").unwrap();
        url.set_path(&path);
        if let Some(f) = &filter {
            url.query_pairs_mut().append_pair("filter", f);
        }
        url.query_pairs_mut().append_pair("skipToken", &token);
        if delta {
            url.query_pairs_mut().append_key_only("delta");
        }
        format!("{}?{}", url.path(), url.query().unwrap_or(""))
    };
    let mut page = json!({});
    if empty {
        page["value"] = json!([]);
        page["nextLink"] = json!(link(start.to_string()));
        return Json(page).into_response();
    }
    let end = (start + config.page_size).min(records.len());
    page["value"] = json!(records[start.min(end)..end]);
    if end < records.len() {
        let next = if config.empty_pages { format!("{end}.e") } else { end.to_string() };
        page["nextLink"] = json!(link(next));
    } else if delta {
        let token = random_hex(16);
        let seq = sim.next_version;
        let now = sim.now();
        sim.delta_tokens.insert(token.clone(), (collection.clone(), seq, now));
        page["deltaLink"] = json!(format!("{API_PREFIX}/delta/{collection}?deltaToken={token}"));
    }
    Json(page).into_response()
}

async fn delta(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(collection): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("{API_PREFIX}/delta/{collection}");
    if let Err(r) = authorize(&shared, "GET", &path, &headers, &format!("connector-protimeapi-{collection}.read")).await
    {
        return r;
    }
    let mut sim = shared.lock();
    let now = sim.now();
    let Some((token_collection, since, last_call)) = q.get("deltaToken").and_then(|t| sim.delta_tokens.remove(t))
    else {
        return error(StatusCode::GONE, "Gone", "The delta link is unknown or expired");
    };
    if token_collection != collection || now - last_call > Duration::hours(72) {
        return error(StatusCode::GONE, "Gone", "The delta link is unknown or expired");
    }
    let value: Vec<Value> = sim
        .changes
        .iter()
        .filter(|c| c.collection == collection && c.seq > since)
        .map(|c| json!({"changeType": if c.delete { "Delete" } else { "InsertOrUpdate" }, "data": c.data}))
        .collect();
    let token = random_hex(16);
    let seq = sim.next_version;
    sim.delta_tokens.insert(token.clone(), (collection.clone(), seq, now));
    Json(json!({"value": value, "deltaLink": format!("{API_PREFIX}/delta/{collection}?deltaToken={token}")}))
        .into_response()
}

#[derive(Deserialize)]
struct AdvanceQuery {
    hours: i64,
}

/// `POST /_simulator/advance?hours=N`: move the clock (not part of Protime's API).
async fn admin_advance(State(shared): State<Shared>, Query(q): Query<AdvanceQuery>) -> Response {
    let mut sim = shared.lock();
    sim.clock_offset += Duration::hours(q.hours);
    sim.expire();
    Json(json!({"now": time(sim.now())})).into_response()
}

/// `POST /_simulator/changes/{collection}` with a record: change it and deliver the event.
async fn admin_change(
    State(shared): State<Shared>,
    Path(collection): Path<String>,
    Json(record): Json<Value>,
) -> Response {
    if collection.parse::<Collection>().is_err() || record.get("id").is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidChange",
            "A known collection and a record with an id are required",
        );
    }
    let data = shared.change_quietly(&collection, record);
    let delivery = shared.deliver(&collection, false, data.clone()).await;
    Json(json!({"record": data, "delivered": delivery.delivered, "failed": delivery.failed})).into_response()
}
