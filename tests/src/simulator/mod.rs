//! A Protime stand-in for tests and local runs: the token endpoint, the webhooks API, the
//! collection list and delta endpoints, and an emitter that POSTs signed events to the
//! destinations. Its clock can be advanced and faults can be injected.
//!
//! It answers in Protime's terms: scopes granted to the API client ([`SimulatorConfig::granted_scopes`],
//! [`Simulator::grant_scopes`]) are issued as a subset or refused with `invalid_scope`
//! ([`ScopeRefusal`]); a token without the scope a request needs gets 403; model-validation
//! errors are a bare `{"validationErrors":[…]}` 400; a maintenance window
//! ([`Simulator::maintenance`]) answers 503 with `Retry-After`; `expires_in` follows
//! [`SimulatorConfig::token_lifetime`].
//!
//! - this file: the configuration, the shared state and the [`Simulator`] handle tests use;
//! - `api.rs`: the token endpoint and the webhooks API;
//! - `listing.rs`: the collection list and delta endpoints;
//! - `delivery.rs`: changing records and POSTing signed events to the destinations;
//! - `faults.rs`: injected faults and the record of every request;
//! - `seed.rs`: plausible records in bulk, for load runs;
//! - `admin.rs`: the `/_simulator/…` endpoints of the local stack.
//!
//! Every changeVersion it issues looks like Protime's: 20 upper-case hex digits
//! (`0000000000000000002A`), from one counter shared by every collection.

mod admin;
mod api;
mod delivery;
mod faults;
mod listing;
mod seed;

use admin::{
    admin_advance, admin_change, admin_delete, admin_drop_deliveries, admin_maintenance, admin_raw_change, admin_seed,
    admin_webhooks,
};
use api::{create_webhook, delete_webhook, get_webhook, list_webhooks, token};
use delivery::id_text;
pub use delivery::Delivery;
pub use faults::{Fault, FaultTarget};
use listing::{delta, list_collection};
pub use seed::{sample_record, DATED_COLLECTIONS};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, Utc};
use protime_webhooks::signing::signature::{authorization_header, SigningKey};
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
    /// The scopes granted to the API client in myProtime (`None`: every valid scope); changed
    /// at runtime with [`Simulator::grant_scopes`].
    pub granted_scopes: Option<Vec<String>>,
    /// What the token endpoint does when asked for a scope that is not granted.
    pub scope_refusal: ScopeRefusal,
}

/// What the token endpoint does when asked for a valid scope the API client was not granted
/// (a scope that does not exist at all is always `400 {"error":"invalid_scope"}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScopeRefusal {
    /// Issue the token with the granted part of what was asked, and say so in the answer's
    /// `scope` (`invalid_scope` only when nothing asked for is granted).
    #[default]
    Subset,
    /// `400 {"error":"invalid_scope","error_description":…}` naming the scopes not granted.
    Strict,
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
            granted_scopes: None,
            scope_refusal: ScopeRefusal::Subset,
        }
    }
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

/// One request to Protime's endpoints, for assertions: its path (the token endpoint as
/// `/token`) and the status it was answered (an injected fault's included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The query string (empty when none): tells a delta initial request (`…&delta`) apart.
    pub query: String,
    pub user_agent: String,
    pub status: u16,
}

/// One entry of a collection's change log (what a delta returns).
#[derive(Debug, Clone)]
struct Change {
    seq: u64,
    /// The record's id as text.
    id: String,
    delete: bool,
    /// Shared with the listed record: one copy of each version in memory.
    data: Arc<Value>,
}

/// The `date ge` / `date le` bounds of a list filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct DateBounds {
    from: Option<String>,
    to: Option<String>,
}

/// What a delta token stands for.
#[derive(Debug, Clone)]
struct DeltaToken {
    collection: String,
    /// Changes after this sequence number are returned when the token is followed.
    since: u64,
    /// The filter of the delta initial request.
    bounds: DateBounds,
    last_use: DateTime<Utc>,
}

#[derive(Default)]
struct Sim {
    clock_offset: Duration,
    tokens: HashMap<String, (DateTime<Utc>, Vec<String>)>,
    webhooks: Vec<SimWebhook>,
    /// Listed records per collection, by id text.
    records: HashMap<String, BTreeMap<String, Arc<Value>>>,
    /// Hard-deleted ids per collection (not re-created since) → the Delete's changeVersion.
    deleted: HashMap<String, BTreeMap<String, String>>,
    /// Change log per collection, in sequence order.
    changes: HashMap<String, Vec<Change>>,
    next_version: u64,
    /// Change items served verbatim by the deltas that cover them (a malformed record Protime
    /// might send), per collection, at their sequence number; never listed.
    raw_changes: HashMap<String, Vec<(u64, String)>>,
    /// Items listed verbatim after the webhooks in `GET /webhooks` (another integration's
    /// webhook in a shape ours never has); never filtered out, never renewed.
    raw_webhooks: Vec<Value>,
    delta_tokens: HashMap<String, DeltaToken>,
    faults: HashMap<&'static str, VecDeque<Fault>>,
    /// Faults for the next API request whose path (after the API prefix) starts with the prefix.
    path_faults: Vec<(String, Fault)>,
    /// How many of the next (event, webhook) deliveries are silently dropped.
    drop_deliveries: usize,
    seen: Vec<Seen>,
    issued: Vec<String>,
    /// The scopes granted to the API client (`None`: every valid scope).
    granted_scopes: Option<Vec<String>>,
    /// A maintenance window: until then (on the simulator's clock) every API and token request
    /// answers 503 with `Retry-After` of the given seconds.
    maintenance: Option<(DateTime<Utc>, u64)>,
}

impl Shared {
    /// See [`Simulator::inject_raw_change`].
    fn inject_raw(&self, collection: &str, text: &str) {
        let mut sim = self.lock();
        sim.next_version += 1;
        let seq = sim.next_version;
        sim.raw_changes.entry(collection.to_owned()).or_default().push((seq, text.to_owned()));
    }
}

impl Sim {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    /// 1 January of the previous year: the earliest start a clockings or assignments delta
    /// accepts. Reckoned on the machine's date, not on the advanced clock: advancing stands for
    /// time passing for webhooks, tokens and deltas, while the functions under `cargo lambda
    /// watch` keep the machine's clock. On the advanced clock, `make advance HOURS=721` in
    /// December would move "the previous year" past the start the syncer (rightly) computes.
    fn earliest_delta_start(&self) -> NaiveDate {
        let year = Utc::now().year() - 1;
        NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(NaiveDate::MIN)
    }

    /// Inserts or replaces a record under a new changeVersion and logs the change.
    fn upsert(&mut self, collection: &str, mut data: Value) -> Value {
        self.next_version += 1;
        let seq = self.next_version;
        data["changeVersion"] = json!(version(seq));
        let id = id_text(&data["id"]);
        if let Some(deleted) = self.deleted.get_mut(collection) {
            deleted.remove(&id);
        }
        let shared = Arc::new(data);
        self.records.entry(collection.into()).or_default().insert(id.clone(), shared.clone());
        let data = Value::clone(&shared);
        self.changes.entry(collection.into()).or_default().push(Change { seq, id, delete: false, data: shared });
        data
    }

    /// Removes a record under a new changeVersion and logs the Delete; returns its data.
    fn remove(&mut self, collection: &str, id: Value) -> Value {
        self.next_version += 1;
        let seq = self.next_version;
        let id_key = id_text(&id);
        let data = json!({"id": id, "changeVersion": version(seq)});
        if let Some(records) = self.records.get_mut(collection) {
            records.remove(&id_key);
        }
        self.deleted.entry(collection.into()).or_default().insert(id_key.clone(), version(seq));
        self.changes.entry(collection.into()).or_default().push(Change {
            seq,
            id: id_key,
            delete: true,
            data: Arc::new(data.clone()),
        });
        data
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

/// A changeVersion as Protime writes them: 20 upper-case hex digits.
pub fn version(seq: u64) -> String {
    format!("{seq:020X}")
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Protime's error body: `{"error":{"code","message"}}`.
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
        let sim = Sim { granted_scopes: config.granted_scopes.clone(), ..Sim::default() };
        let shared = Shared { sim: Arc::new(Mutex::new(sim)), config: Arc::new(config), http };
        // Protime's endpoints: every request is recorded in `seen` with the status it got.
        let protime = Router::new()
            .route("/tenants/{tenant}/connect/token", post(token))
            .route(&format!("{API_PREFIX}/webhooks"), get(list_webhooks).post(create_webhook))
            .route(&format!("{API_PREFIX}/webhooks/{{id}}"), get(get_webhook).delete(delete_webhook))
            .route(&format!("{API_PREFIX}/delta/{{collection}}"), get(delta))
            .route(&format!("{API_PREFIX}/{{collection}}"), get(list_collection))
            .route_layer(axum::middleware::from_fn_with_state(shared.clone(), faults::record));
        let app = protime
            .route("/_simulator/advance", post(admin_advance))
            .route("/_simulator/changes/{collection}", post(admin_change))
            .route("/_simulator/seed/{collection}", post(admin_seed))
            .route("/_simulator/raw-change/{collection}", post(admin_raw_change))
            .route("/_simulator/drop-deliveries", post(admin_drop_deliveries))
            .route("/_simulator/delete/{collection}", post(admin_delete))
            .route("/_simulator/webhooks", get(admin_webhooks))
            .route("/_simulator/maintenance", post(admin_maintenance))
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

    /// A Protime client of this simulator's API client (its credentials, the scopes of
    /// `collections` and the webhooks), as an operator's tooling or another integration holds
    /// one, with short retry delays.
    pub fn client(&self, collections: &[&str]) -> protime_webhooks::protime::ProtimeClient {
        use protime_webhooks::protime::client::{scopes_for, ClientOptions};
        let mut options = ClientOptions::new(scopes_for(collections.iter().copied()), "Test Company");
        options.api_base_url = Some(self.api_base_url());
        options.token_url = Some(self.token_url());
        crate::fast_retries(&mut options);
        let credentials = protime_webhooks::protime::ProtimeCredentials::from_json(&self.credentials_json())
            .expect("the simulator's credentials");
        protime_webhooks::protime::ProtimeClient::new(credentials, options).expect("a client")
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

    /// Changes the scopes granted to the API client (`None`: every valid scope). Tokens already
    /// issued keep the scopes they were issued with, as real tokens do.
    pub fn grant_scopes(&self, scopes: Option<Vec<String>>) {
        self.shared.lock().granted_scopes = scopes;
    }

    /// A maintenance window starting now for `for_` (wall-clock time, and on the simulator's
    /// clock: [`Self::advance`] past it ends it too): every API and token request answers 503
    /// with `Retry-After: retry_after_secs` and Protime's error body until it ends.
    pub fn maintenance(&self, for_: std::time::Duration, retry_after_secs: u64) {
        let mut sim = self.shared.lock();
        let span = Duration::from_std(for_).unwrap_or(Duration::days(36_500));
        let until = sim.now().checked_add_signed(span).unwrap_or(DateTime::<Utc>::MAX_UTC);
        sim.maintenance = Some((until, retry_after_secs));
    }

    /// Every access token lapses at once (as if 30 minutes passed for tokens only).
    pub fn expire_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// Queues a fault for the next request of `target` (after any [`Self::inject_on`] fault).
    pub fn inject(&self, target: FaultTarget, fault: Fault) {
        let key = match target {
            FaultTarget::Token => "token",
            FaultTarget::Api => "api",
        };
        self.shared.lock().faults.entry(key).or_default().push_back(fault);
    }

    /// Queues a fault for the next API request whose path after the API prefix starts with
    /// `path_prefix` (`/delta/clockings`, `/clockings`, `/people`, `/webhooks`, …). Checked
    /// before the [`FaultTarget::Api`] queue; several for one prefix apply in order.
    pub fn inject_on(&self, path_prefix: &str, fault: Fault) {
        self.shared.lock().path_faults.push((path_prefix.to_owned(), fault));
    }

    /// The next `n` deliveries (one event to one webhook each) silently fail: nothing is POSTed,
    /// yet Protime counts them delivered and the webhook stays Enabled.
    pub fn drop_deliveries(&self, n: usize) {
        let mut sim = self.shared.lock();
        sim.drop_deliveries = sim.drop_deliveries.saturating_add(n);
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
        self.shared.lock().records.get(collection).and_then(|r| r.get(id)).map(|r| Value::clone(r))
    }

    /// Every listed record of a collection (soft-deleted ones included, with status Deleted),
    /// sorted by id text: the truth a sync should end with.
    pub fn records(&self, collection: &str) -> Vec<Value> {
        let sim = self.shared.lock();
        sim.records.get(collection).map(|r| r.values().map(|v| Value::clone(v)).collect()).unwrap_or_default()
    }

    /// Hard-deleted records of a collection not re-created since: (id text, the Delete's
    /// changeVersion), sorted by id text.
    pub fn deleted(&self, collection: &str) -> Vec<(String, String)> {
        let sim = self.shared.lock();
        sim.deleted
            .get(collection)
            .map(|d| d.iter().map(|(id, v)| (id.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Inserts `count` plausible records with fresh ids, quietly (no delivery; they are in the
    /// change log). Dated collections get dates spread over the last 240 days
    /// (clockings up to tomorrow, assignments up to 90 days ahead). Returns them.
    pub fn seed(&self, collection: &str, count: usize) -> Vec<Value> {
        self.shared.seed(collection, count)
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
        let data = self.delete_quietly(collection, id);
        self.shared.deliver(collection, true, data).await
    }

    /// Deletes a record without delivering anything; returns the Delete's data
    /// `{id, changeVersion}` (a delta returns it).
    pub fn delete_quietly(&self, collection: &str, id: Value) -> Value {
        self.shared.lock().remove(collection, id)
    }

    /// Puts `text` verbatim, as one item of `value`, into the next delta answer of `collection`
    /// (e.g. a record with a duplicate key, a number DynamoDB cannot hold, or nested too deep,
    /// which a JSON value could not even represent). It is never listed.
    pub fn inject_raw_change(&self, collection: &str, text: &str) {
        self.shared.inject_raw(collection, text)
    }

    /// Lists `item` verbatim in every `GET /webhooks` answer from now on, after the simulator's
    /// own webhooks (e.g. one with no destination, a numeric id, or not an object at all).
    pub fn inject_raw_webhook(&self, item: Value) {
        self.shared.lock().raw_webhooks.push(item)
    }

    /// Soft-deletes a record as myProtime does for clockings: it stays listed with
    /// `"status":"Deleted"` under a new changeVersion, delivered as an InsertOrUpdate.
    /// An unknown id becomes a record `{id, status: Deleted}`.
    pub async fn soft_delete(&self, collection: &str, id: Value) -> Delivery {
        let data = self.soft_delete_quietly(collection, id);
        self.shared.deliver(collection, false, data).await
    }

    /// [`Self::soft_delete`] without delivering anything; returns the record as changed.
    pub fn soft_delete_quietly(&self, collection: &str, id: Value) -> Value {
        let mut sim = self.shared.lock();
        let existing = sim.records.get(collection).and_then(|r| r.get(&id_text(&id))).map(|r| Value::clone(r));
        let mut data = existing.unwrap_or_else(|| json!({"id": id}));
        data["status"] = json!("Deleted");
        sim.upsert(collection, data)
    }
}
