//! The Protime simulator's own behaviour, which the syncer's tests rely on: Protime-like
//! changeVersions, seeding, delta semantics, faults aimed at one path and dropped deliveries.

use chrono::{Datelike, NaiveDate};
use harness::fast_retries;
use harness::simulator::{Delivery, Fault, FaultTarget, ScopeRefusal, Simulator, SimulatorConfig, DATED_COLLECTIONS};
use protime_webhooks::protime::client::{scopes_for, ClientOptions};
use protime_webhooks::protime::{ProtimeClient, ProtimeCredentials};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const COLLECTIONS: [&str; 8] = [
    "clockings",
    "assignments",
    "paid-presences",
    "people",
    "breaks",
    "shift-definitions",
    "contracts",
    "counter-groups",
];

/// The API as a syncer sees it, without the client's retries: statuses and bodies as sent.
struct Raw {
    http: reqwest::Client,
    base: String,
    api: String,
    token: String,
}

impl Raw {
    async fn new(sim: &Simulator) -> Raw {
        let http = reqwest::Client::new();
        let c = sim.config();
        let scope = scopes_for(COLLECTIONS).join(" ");
        let answer: Value = http
            .post(sim.token_url())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &c.client_id),
                ("client_secret", &c.client_secret),
                ("scope", &scope),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = answer["access_token"].as_str().expect("a token").to_owned();
        Raw { http, base: sim.base_url(), api: sim.api_base_url(), token }
    }

    /// GETs a link as Protime returns them (origin-relative) or a path under the API.
    async fn get(&self, link: &str) -> (u16, Value, Option<String>) {
        let url = if link.starts_with(harness::simulator::API_PREFIX) {
            format!("{}{link}", self.base)
        } else {
            format!("{}{link}", self.api)
        };
        let answer = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .header("User-Agent", "simulator-tests/1.0 (Test Company)")
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let retry_after = answer.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        (status, answer.json().await.unwrap_or(Value::Null), retry_after)
    }

    /// A list or delta initial request from `first` to its last page: (records, data pages,
    /// empty pages, the deltaLink).
    async fn all_pages(&self, first: &str) -> (Vec<Value>, usize, usize, Option<String>) {
        let (mut records, mut data_pages, mut empty_pages) = (Vec::new(), 0, 0);
        let mut link = first.to_owned();
        loop {
            let (status, page, _) = self.get(&link).await;
            assert_eq!(status, 200, "{link}: {page}");
            let value = page["value"].as_array().expect("a value array");
            if value.is_empty() {
                empty_pages += 1;
            } else {
                data_pages += 1;
            }
            records.extend(value.iter().cloned());
            match page["nextLink"].as_str() {
                Some(next) => link = next.to_owned(),
                None => return (records, data_pages, empty_pages, page["deltaLink"].as_str().map(str::to_owned)),
            }
        }
    }

    async fn admin(&self, path_and_query: &str) -> (u16, Value) {
        let answer = self.http.post(format!("{}{path_and_query}", self.base)).send().await.unwrap();
        (answer.status().as_u16(), answer.json().await.unwrap_or(Value::Null))
    }
}

/// 1 January of the previous year (the simulator reckons it on the machine's date; these tests do not advance).
fn earliest(sim: &Simulator) -> NaiveDate {
    NaiveDate::from_ymd_opt(sim.now().year() - 1, 1, 1).unwrap()
}

/// A range clockings and assignments accept (both bounds, a year at most, from no earlier than
/// 1 January of the previous year) holding every seeded record: 300 days back to 65 ahead.
fn seeded_range(sim: &Simulator) -> (NaiveDate, NaiveDate) {
    let today = sim.now().date_naive();
    ((today - chrono::Duration::days(300)).max(earliest(sim)), today + chrono::Duration::days(65))
}

/// `date ge '…' and date le '…'` over [`seeded_range`].
fn seeded_filter(sim: &Simulator) -> String {
    let (from, to) = seeded_range(sim);
    format!("date ge '{from}' and date le '{to}'")
}

/// The first page of a delta initial request over [`seeded_range`].
fn delta_initial(sim: &Simulator, collection: &str) -> String {
    let (from, to) = seeded_range(sim);
    format!("/{collection}?filter=date%20ge%20'{from}'%20and%20date%20le%20'{to}'&delta")
}

fn today(sim: &Simulator) -> String {
    sim.now().format("%Y-%m-%d").to_string()
}

fn id(record: &Value) -> String {
    record["id"].to_string()
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn versions_are_twenty_upper_case_hex_digits() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let mut versions = Vec::new();
    for n in 1..=11 {
        versions.push(sim.change_quietly("clockings", json!({"id": n}))["changeVersion"].as_str().unwrap().to_owned());
    }
    versions.push(sim.delete_quietly("clockings", json!(1))["changeVersion"].as_str().unwrap().to_owned());
    assert_eq!(versions[9], "0000000000000000000A");
    assert_eq!(versions[11], "0000000000000000000C");
    for v in &versions {
        assert!(v.len() == 20 && v.chars().all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)), "{v}");
    }
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "fixed width: text order is change order");
}

#[tokio::test]
async fn seeded_records_are_fresh_plausible_and_come_back_through_a_delta_initial_request() {
    let sim = Simulator::start(SimulatorConfig { page_size: 100, empty_pages: true, ..Default::default() }).await;
    sim.change_quietly("clockings", json!({"id": 7, "date": today(&sim)}));
    sim.delete_quietly("clockings", json!(9));
    let seeded = sim.seed("clockings", 1000);
    assert_eq!(seeded.len(), 1000);
    let ids: Vec<u64> = seeded.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (10..1010).collect::<Vec<u64>>(), "after the highest id, deleted ones included");
    let from = (sim.now().date_naive() - chrono::Duration::days(240)).max(earliest(&sim));
    for record in &seeded {
        let date: NaiveDate = record["date"].as_str().unwrap().parse().unwrap();
        // Clockings reach the next day (night shifts).
        assert!(from <= date && date <= sim.now().date_naive().succ_opt().unwrap(), "{record}");
        assert!(record["person"]["id"].is_u64() && record["kind"] == "InOut", "{record}");
    }
    let versions: BTreeSet<&str> = seeded.iter().map(|r| r["changeVersion"].as_str().unwrap()).collect();
    assert_eq!(versions.len(), 1000);
    for collection in ["people", "shift-definitions", "counter-definitions"] {
        assert!(sim.seed(collection, 3).iter().all(|r| r.get("date").is_none()), "{collection} has no date");
    }
    for collection in DATED_COLLECTIONS {
        assert!(sim.seed(collection, 2).iter().all(|r| r["date"].is_string()), "{collection} is dated");
    }

    let raw = Raw::new(&sim).await;
    let (records, data_pages, empty_pages, delta_link) = raw.all_pages(&delta_initial(&sim, "clockings")).await;
    assert_eq!(records.len(), 1001 + 2);
    assert_eq!((data_pages, empty_pages), (11, 10), "an empty page between data pages, never the end");
    assert!(delta_link.is_some());
    let listed: BTreeSet<String> = records.iter().map(id).collect();
    let truth: BTreeSet<String> = sim.records("clockings").iter().map(id).collect();
    assert_eq!(listed, truth);
    assert!(sim.records("clockings").windows(2).all(|w| id(&w[0]) < id(&w[1])));

    // The project's client reads the same.
    let mut options = ClientOptions::new(scopes_for(COLLECTIONS), "Test Company");
    options.api_base_url = Some(sim.api_base_url());
    options.token_url = Some(sim.token_url());
    fast_retries(&mut options);
    let client = ProtimeClient::new(ProtimeCredentials::from_json(&sim.credentials_json()).unwrap(), options).unwrap();
    let filter = seeded_filter(&sim);
    let mut link = Some(client.list_url("clockings", Some(&filter), true));
    let mut read = 0;
    while let Some(current) = link.take() {
        let page = client.fetch_page(&current).await.unwrap().read().unwrap();
        read += page.records.len();
        link = page.next_link;
    }
    assert_eq!(read, 1003);
}

#[tokio::test]
async fn a_hundred_thousand_seeded_records_page_through_a_delta_initial_request() {
    let sim = Simulator::start(SimulatorConfig { page_size: 5000, empty_pages: false, ..Default::default() }).await;
    assert_eq!(sim.seed("clockings", 100_000).len(), 100_000);
    let raw = Raw::new(&sim).await;
    let (records, data_pages, _, delta_link) = raw.all_pages(&delta_initial(&sim, "clockings")).await;
    assert_eq!((records.len(), data_pages), (100_000, 20));
    assert!(delta_link.is_some());
    assert_eq!(sim.seed("clockings", 1)[0]["id"], 100_001);
}

#[tokio::test]
async fn a_delta_returns_the_latest_change_of_each_record_since_its_link() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    sim.seed("clockings", 10);
    let raw = Raw::new(&sim).await;
    let (records, _, _, link) = raw.all_pages(&delta_initial(&sim, "clockings")).await;
    assert_eq!(records.len(), 10);
    let link = link.unwrap();

    let date = today(&sim);
    sim.change_quietly("clockings", json!({"id": 1, "date": date, "v": "a"}));
    sim.change_quietly("clockings", json!({"id": 1, "date": date, "v": "b"}));
    let delete = sim.delete_quietly("clockings", json!(2));
    let soft: Delivery = sim.soft_delete("clockings", json!(3)).await;
    assert_eq!(soft, Delivery::default(), "no webhook: nothing to deliver");
    sim.change_quietly("clockings", json!({"id": 11, "date": date}));
    sim.delete_quietly("clockings", json!(4));
    sim.change_quietly("clockings", json!({"id": 4, "date": date, "v": "re-created"}));
    sim.change_quietly("breaks", json!({"id": 1, "date": date}));
    sim.change_quietly("clockings", json!({"id": 12, "date": "2001-01-01"}));

    let (status, page, _) = raw.get(&link).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.get("nextLink").is_none(), "one page");
    let changes: Vec<(&str, String)> =
        page["value"].as_array().unwrap().iter().map(|c| (c["changeType"].as_str().unwrap(), id(&c["data"]))).collect();
    assert_eq!(
        changes,
        [
            ("InsertOrUpdate", "1".into()),
            ("Delete", "2".into()),
            ("InsertOrUpdate", "3".into()),
            ("InsertOrUpdate", "11".into()),
            ("InsertOrUpdate", "4".into()),
        ],
        "collapsed to the current state; other collections and records outside the filter left out"
    );
    let value = page["value"].as_array().unwrap();
    assert_eq!(value[0]["data"], sim.record("clockings", "1").unwrap());
    assert_eq!(value[0]["data"]["v"], "b");
    assert_eq!(value[1]["data"], delete);
    assert_eq!(value[2]["data"]["status"], "Deleted");
    assert_eq!(value[2]["data"]["kind"], "InOut", "a soft delete keeps the record's fields");

    // The truth a sync should end with.
    let truth = sim.records("clockings");
    assert_eq!(truth.len(), 11, "1, 3 (soft-deleted), 4..=12");
    assert!(truth.iter().any(|r| r["id"] == 3 && r["status"] == "Deleted"));
    assert!(!truth.iter().any(|r| r["id"] == 2));
    assert_eq!(sim.deleted("clockings"), [("2".to_owned(), delete["changeVersion"].as_str().unwrap().to_owned())]);

    // The used link is gone; the new one has nothing yet and stays alive.
    let next = page["deltaLink"].as_str().unwrap().to_owned();
    assert_eq!(raw.get(&link).await.0, 410);
    let (status, page, _) = raw.get(&next).await;
    assert_eq!((status, page["value"].as_array().unwrap().len()), (200, 0));
    assert!(page["deltaLink"].is_string());
}

#[tokio::test]
async fn a_new_delta_initial_request_ends_the_collections_other_deltas() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    sim.seed("clockings", 4);
    sim.seed("assignments", 4);
    let raw = Raw::new(&sim).await;
    let first = raw.all_pages(&delta_initial(&sim, "clockings")).await.3.unwrap();
    let other = raw.all_pages(&delta_initial(&sim, "assignments")).await.3.unwrap();
    let second = raw.all_pages(&delta_initial(&sim, "clockings")).await.3.unwrap();
    let (status, body, _) = raw.get(&first).await;
    assert_eq!((status, error_code(&body)), (410, "Gone"));
    assert_eq!(raw.get(&second).await.0, 200);
    assert_eq!(raw.get(&other).await.0, 200, "another collection's delta is not touched");
}

#[tokio::test]
async fn delta_initial_requests_follow_protimes_rules() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let raw = Raw::new(&sim).await;
    // people, contracts and counter-groups: a delta without a filter (the person filter, or any
    // other, cannot be used with it).
    for collection in ["people", "contracts", "counter-groups"] {
        assert_eq!(raw.get(&format!("/{collection}?delta")).await.0, 200, "{collection}");
        let (status, body, _) = raw.get(&format!("/{collection}?delta&filter=date%20ge%20'2026-01-01'")).await;
        assert_eq!((status, error_code(&body)), (400, "InvalidFilter"), "{collection}");
    }
    // The initial delta's nextLink carries a continuationToken and the deltaToken; followed as
    // given, it ends with the deltaLink.
    let seeded = sim.seed("people", sim.config().page_size * 2 + 1);
    let (_, first, _) = raw.get("/people?delta").await;
    let next = first["nextLink"].as_str().expect("paged");
    assert!(
        next.contains("continuationToken=") && next.contains("deltaToken=") && !next.contains("skipToken"),
        "{next}"
    );
    let (records, _, _, delta_link) = raw.all_pages("/people?delta").await;
    assert_eq!(records.len(), seeded.len());
    assert!(delta_link.is_some_and(|l| l.contains("/delta/people?deltaToken=")));

    // clockings and assignments, read strictly: both bounds at most 366 days apart, for a list
    // and a delta alike, and a delta starting no earlier than 1 January of the previous year.
    let too_early = earliest(&sim).pred_opt().unwrap();
    let range = |from: NaiveDate, days: i64| {
        format!("date%20ge%20'{from}'%20and%20date%20le%20'{}'", from + chrono::Duration::days(days))
    };
    for collection in ["clockings", "assignments"] {
        for query in ["?delta", "", "?filter=date%20ge%20'2026-01-01'", "?filter=date%20le%20'2026-12-31'"] {
            let (status, body, _) = raw.get(&format!("/{collection}{query}")).await;
            assert_eq!((status, error_code(&body)), (400, "InvalidFilter"), "{collection}{query}: both bounds");
        }
        let (status, body, _) = raw.get(&format!("/{collection}?filter={}&delta", range(too_early, 300))).await;
        assert_eq!((status, error_code(&body)), (400, "InvalidFilter"), "{collection}: {too_early} is too early");
        let (status, _, _) = raw.get(&format!("/{collection}?filter={}&delta", range(earliest(&sim), 366))).await;
        assert_eq!(status, 400, "{collection}: 367 days");
        assert_eq!(raw.get(&format!("/{collection}?filter={}&delta", range(earliest(&sim), 365))).await.0, 200);
        assert_eq!(raw.get(&delta_initial(&sim, collection)).await.0, 200);
        // A list may start before the previous year, still a year at most.
        assert_eq!(raw.get(&format!("/{collection}?filter={}", range(too_early, 365))).await.0, 200);
        assert_eq!(raw.get(&format!("/{collection}?filter={}", range(too_early, 366))).await.0, 400);
    }

    // paid-presences: a plain list needs a range of at most a year; a delta only a start.
    let start = earliest(&sim);
    assert_eq!(raw.get(&format!("/paid-presences?filter=date%20ge%20'{start}'")).await.0, 400);
    assert_eq!(raw.get(&format!("/paid-presences?filter=date%20ge%20'{start}'&delta")).await.0, 200);
    assert_eq!(raw.get("/paid-presences?delta").await.0, 400);
    let in_a_year = start + chrono::Duration::days(364);
    let range = format!("date%20ge%20'{start}'%20and%20date%20le%20'{in_a_year}'");
    assert_eq!(raw.get(&format!("/paid-presences?filter={range}")).await.0, 200);

    let (status, body, _) = raw.get("/breaks?skipToken=nonsense").await;
    assert_eq!((status, error_code(&body)), (400, "InvalidSkipToken"));
}

#[tokio::test]
async fn a_fault_aimed_at_a_path_hits_only_that_path() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    sim.seed("breaks", 2);
    sim.seed("clockings", 2);
    let raw = Raw::new(&sim).await;
    let breaks_link = raw.all_pages("/breaks?delta").await.3.unwrap();

    sim.inject_on("/clockings", Fault::Status { status: 409, retry_after_secs: None });
    sim.inject_on("/delta/breaks", Fault::Status { status: 429, retry_after_secs: Some(7) });
    sim.inject_on("/people", Fault::Status { status: 403, retry_after_secs: None });
    sim.inject(FaultTarget::Api, Fault::Status { status: 500, retry_after_secs: None });

    let (status, body, _) = raw.get("/people").await;
    assert_eq!((status, error_code(&body)), (403, "Forbidden"), "aimed faults come before the api queue");
    let (status, body, _) = raw.get("/breaks").await;
    assert_eq!((status, error_code(&body)), (500, "InternalServerError"), "the api queue: any path");
    assert_eq!(raw.get("/breaks").await.0, 200, "/delta/breaks is not /breaks");
    assert_eq!(raw.get("/people").await.0, 200, "used up");

    let (status, body, _) = raw.get(&delta_initial(&sim, "clockings")).await;
    assert_eq!((status, error_code(&body)), (409, "Conflict"));
    assert_eq!(raw.all_pages(&delta_initial(&sim, "clockings")).await.0.len(), 2);

    let (status, body, retry_after) = raw.get(&breaks_link).await;
    assert_eq!((status, error_code(&body), retry_after.as_deref()), (429, "TooManyRequests", Some("7")));
    assert_eq!(raw.get(&breaks_link).await.0, 200, "the refused request did not use the link up");

    // Every request is recorded with its path and the status it got.
    let statuses = |suffix: &str| -> Vec<u16> {
        sim.seen().iter().filter(|s| s.path.ends_with(suffix)).map(|s| s.status).collect()
    };
    assert_eq!(statuses("/people"), [403, 200]);
    assert_eq!(statuses("/delta/breaks"), [429, 200]);
    assert_eq!(sim.count("GET", "/delta/breaks"), 2);
    assert_eq!(sim.count("GET", "/clockings"), 2, "the 409 and the retry's one page");
}

/// A destination that answers 200 and counts the POSTs it gets.
async fn counting_destination() -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let posts = Arc::new(AtomicUsize::new(0));
    let counter = posts.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            "ok"
        }
    });
    let (addr, server) = harness::serve_on_loopback(app, 0).await;
    (format!("http://{addr}"), posts, server)
}

#[tokio::test]
async fn a_dropped_delivery_is_never_posted_yet_the_webhook_stays_enabled() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let (destination, posts, _server) = counting_destination().await;
    let raw = Raw::new(&sim).await;
    let created = raw
        .http
        .post(format!("{}/webhooks", raw.api))
        .bearer_auth(&raw.token)
        .header("User-Agent", "simulator-tests/1.0 (Test Company)")
        .json(&json!({"destinationUrl": format!("{destination}/webhooks/clockings"), "collectionName": "clockings"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);

    sim.drop_deliveries(1);
    let dropped = sim.change("clockings", json!({"id": 1, "date": today(&sim)})).await;
    assert_eq!(dropped, Delivery { delivered: 0, failed: 0, dropped: 1, statuses: vec![] });
    assert_eq!(posts.load(Ordering::SeqCst), 0, "nothing was POSTed");
    assert!(sim.webhook("clockings").unwrap().enabled, "Protime believes it delivered");

    let delivered = sim.change("clockings", json!({"id": 2, "date": today(&sim)})).await;
    assert_eq!((delivered.delivered, delivered.dropped), (1, 0));
    assert_eq!(posts.load(Ordering::SeqCst), 1);

    // Through the admin endpoint: a soft delete and a Delete are dropped alike.
    assert_eq!(raw.admin("/_simulator/drop-deliveries?count=2").await, (200, json!({"dropping": 2})));
    assert_eq!(sim.soft_delete("clockings", json!(1)).await.dropped, 1);
    assert_eq!(sim.delete("clockings", json!(2)).await.dropped, 1);
    assert_eq!(sim.change("clockings", json!({"id": 3, "date": today(&sim)})).await.delivered, 1);
    assert_eq!(posts.load(Ordering::SeqCst), 2);
    assert_eq!(raw.admin("/_simulator/drop-deliveries?count=many").await.0, 400);
}

#[tokio::test]
async fn the_seed_endpoint_seeds_and_refuses_bad_input() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let raw = Raw::new(&sim).await;
    assert_eq!(raw.admin("/_simulator/seed/breaks?count=25").await, (200, json!({"seeded": 25})));
    assert_eq!(raw.admin("/_simulator/seed/breaks?count=5").await, (200, json!({"seeded": 5})));
    let ids: BTreeSet<String> = sim.records("breaks").iter().map(id).collect();
    assert_eq!(ids.len(), 30, "fresh ids each time");
    assert!(sim.webhooks().is_empty());
    for bad in ["/_simulator/seed/breaks", "/_simulator/seed/breaks?count=-1", "/_simulator/seed/breaks?count=2000000"]
    {
        let (status, body) = raw.admin(bad).await;
        assert_eq!((status, error_code(&body)), (400, "InvalidCount"), "{bad}");
    }
    let (status, body) = raw.admin("/_simulator/seed/timesheets?count=1").await;
    assert_eq!((status, error_code(&body)), (400, "UnknownCollection"));
}

/// The token endpoint's raw answer for `scope`.
async fn token_answer(sim: &Simulator, scope: &str) -> (u16, Value) {
    let c = sim.config();
    let answer = reqwest::Client::new()
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn scopes_are_granted_as_configured_and_a_missing_one_is_a_403() {
    let granted = ["connector-protimeapi-webhooks.read", "connector-protimeapi-breaks.read"];
    let sim = Simulator::start(SimulatorConfig {
        granted_scopes: Some(granted.iter().map(|s| s.to_string()).collect()),
        token_lifetime: chrono::Duration::seconds(2),
        ..Default::default()
    })
    .await;
    // Subset: the granted part of what was asked, said in `scope`; expires_in follows the config.
    let (status, answer) = token_answer(&sim, &scopes_for(COLLECTIONS).join(" ")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["scope"], "connector-protimeapi-webhooks.read connector-protimeapi-breaks.read");
    assert_eq!(answer["expires_in"], 2);
    // Nothing asked for granted, or an unknown scope: invalid_scope.
    let (status, answer) = token_answer(&sim, "connector-protimeapi-people.read").await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_scope")));
    assert_eq!(token_answer(&sim, "connector-protimeapi-timesheets.read").await.1["error"], "invalid_scope");

    // A token without the scope a request needs: 403 with Protime's error body.
    let raw = Raw::new(&sim).await;
    let (status, body, _) = raw.get("/people").await;
    assert_eq!((status, error_code(&body)), (403, "Forbidden"));
    assert_eq!(body["error"]["message"], "The access token lacks the scope connector-protimeapi-people.read");
    assert_eq!(raw.get("/breaks").await.0, 200);

    // Granted at runtime: new tokens carry it; issued ones keep theirs.
    sim.grant_scopes(None);
    assert_eq!(raw.get("/people").await.0, 403);
    assert_eq!(Raw::new(&sim).await.get("/people").await.0, 200);
}

#[tokio::test]
async fn strict_scope_refusal_names_the_scopes_not_granted() {
    let sim = Simulator::start(SimulatorConfig {
        granted_scopes: Some(vec!["connector-protimeapi-webhooks.read".into()]),
        scope_refusal: ScopeRefusal::Strict,
        ..Default::default()
    })
    .await;
    let (status, answer) =
        token_answer(&sim, "connector-protimeapi-webhooks.read connector-protimeapi-people.read").await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_scope")));
    assert!(answer["error_description"].as_str().unwrap().ends_with(": connector-protimeapi-people.read"), "{answer}");
    assert_eq!(token_answer(&sim, "connector-protimeapi-webhooks.read").await.0, 200);
}

#[tokio::test]
async fn invalid_webhooks_and_injected_validation_errors_are_bare_validation_errors() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let raw = Raw::new(&sim).await;
    let answer = raw
        .http
        .post(format!("{}/webhooks", raw.api))
        .bearer_auth(&raw.token)
        .header("User-Agent", "simulator-tests/1.0 (Test Company)")
        .json(&json!({"destinationUrl": "ftp://x", "collectionName": "clockings"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body,
        json!({"validationErrors": [{"propertyName": "destinationUrl", "message": "The destination URL is not a valid URL"}]})
    );
    sim.inject(FaultTarget::Api, Fault::Validation { messages: vec!["bad filter".into()] });
    assert_eq!(raw.get("/breaks").await.1, json!({"validationErrors": ["bad filter"]}));
}

#[tokio::test]
async fn a_maintenance_window_answers_503_with_retry_after_until_it_ends() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let raw = Raw::new(&sim).await;
    sim.maintenance(std::time::Duration::from_secs(60), 30);
    let (status, body, retry_after) = raw.get("/breaks").await;
    assert_eq!((status, error_code(&body), retry_after.as_deref()), (503, "ServiceUnavailable", Some("30")));
    assert_eq!(token_answer(&sim, "connector-protimeapi-breaks.read").await.0, 503, "the token endpoint too");
    sim.advance(chrono::Duration::seconds(61));
    assert_eq!(raw.get("/breaks").await.0, 200);

    // The local stack's endpoint: seconds from now, Retry-After (default 60).
    let (status, _) = raw.admin("/_simulator/maintenance?seconds=120").await;
    assert_eq!(status, 200);
    assert_eq!(raw.get("/breaks").await.2.as_deref(), Some("60"));
    sim.advance(chrono::Duration::seconds(121));
    assert_eq!(raw.get("/breaks").await.0, 200);
    assert_eq!(raw.admin("/_simulator/maintenance?seconds=x").await.0, 400);
}
