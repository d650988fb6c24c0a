//! A Protime stand-in for tests and local runs: the token endpoint, the webhooks API, the
//! collection list and delta endpoints, and an emitter that POSTs signed events to the
//! destinations. Its clock can be advanced and faults can be injected.
//!
//! - this file: the configuration, the shared state and the [`Simulator`] handle tests use;
//! - `api.rs`: the token endpoint and the webhooks API;
//! - `listing.rs`: the collection list and delta endpoints;
//! - `delivery.rs`: changing records and POSTing signed events to the destinations;
//! - `faults.rs`: injected faults and the record of every request;
//! - `admin.rs`: the `/_simulator/…` endpoints of the local stack.

mod admin;
mod api;
mod delivery;
mod faults;
mod listing;

use admin::{admin_advance, admin_change, admin_webhooks};
use api::{create_webhook, delete_webhook, get_webhook, list_webhooks, token};
use delivery::id_text;
pub use delivery::Delivery;
pub use faults::{Fault, FaultTarget};
use listing::{delta, list_collection};

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
            .route("/_simulator/webhooks", get(admin_webhooks))
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
