//! The Protime client's list and delta paging against the simulator.

use harness::simulator::{Fault, FaultTarget, Simulator, SimulatorConfig};
use protime_webhooks::protime::client::{scopes_for, ClientOptions};
use protime_webhooks::protime::ReadPage;
use protime_webhooks::protime::{ProtimeClient, ProtimeCredentials, ProtimeError};
use protime_webhooks::records::json::Json;
use serde_json::json;

fn client(sim: &Simulator) -> ProtimeClient {
    sim.client(&["paid-presences", "clockings"])
}

fn ids(records: &[Json]) -> Vec<String> {
    records
        .iter()
        .map(|r| match r.get("id") {
            Some(Json::Number(n)) => n.clone(),
            other => panic!("id {other:?}"),
        })
        .collect()
}

/// A clockings delta gives both bounds, a year at most apart, starting no earlier than 1
/// January of the previous year: here 300 days back (or that 1 January) to 65 days ahead.
fn delta_filter(sim: &Simulator) -> String {
    use chrono::Datelike;
    let today = sim.now().date_naive();
    let earliest = chrono::NaiveDate::from_ymd_opt(today.year() - 1, 1, 1).unwrap();
    let from = (today - chrono::Duration::days(300)).max(earliest);
    format!("date ge '{from}' and date le '{}'", today + chrono::Duration::days(65))
}

fn today(sim: &Simulator) -> String {
    sim.now().format("%Y-%m-%d").to_string()
}

/// Follows nextLink until there is none; returns every record and the last page.
async fn fetch_all(client: &ProtimeClient, first: String) -> (Vec<Json>, ReadPage, usize) {
    let mut records = Vec::new();
    let mut link = Some(first);
    let mut pages = 0;
    loop {
        let page = client.fetch_page(&link.take().unwrap()).await.unwrap().read().unwrap();
        pages += 1;
        records.extend(page.records.clone());
        match &page.next_link {
            Some(next) => link = Some(next.clone()),
            None => return (records, page, pages),
        }
    }
}

#[tokio::test]
async fn lists_follow_relative_next_links_across_empty_pages() {
    let sim = Simulator::start(SimulatorConfig { page_size: 2, empty_pages: true, ..Default::default() }).await;
    for id in 1..=5 {
        sim.change_quietly("paid-presences", json!({"id": id, "date": "2026-02-01", "durationInMinutes": 480}));
    }
    sim.change_quietly("paid-presences", json!({"id": 99, "date": "2024-01-01"}));
    let client = client(&sim);
    let first = client.list_url("paid-presences", Some("date ge '2026-01-01' and date le '2026-12-31'"), false);
    let (records, last, pages) = fetch_all(&client, first).await;
    assert_eq!(ids(&records), ["1", "2", "3", "4", "5"], "the filter keeps 2026 only");
    assert_eq!(pages, 5, "three data pages with two empty pages between them");
    assert!(last.delta_link.is_none());
}

#[tokio::test]
async fn protime_errors_are_reported_with_code_and_message() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let client = client(&sim);
    // paid-presences requires a date range of at most a year.
    let err = client.fetch_page(&client.list_url("paid-presences", None, false)).await.unwrap_err();
    assert!(matches!(&err, ProtimeError::Api { status: 400, code, .. } if code == "InvalidFilter"), "{err}");
}

#[tokio::test]
async fn delta_returns_changes_since_the_last_link_and_410_means_start_over() {
    let sim = Simulator::start(SimulatorConfig { page_size: 10, ..Default::default() }).await;
    sim.change_quietly("clockings", json!({"id": 1, "date": today(&sim)}));
    let client = client(&sim);
    let (records, last, _) = fetch_all(&client, client.list_url("clockings", Some(&delta_filter(&sim)), true)).await;
    assert_eq!(ids(&records), ["1"]);
    let delta_link = last.delta_link.expect("the last page of a delta initial request carries a deltaLink");

    sim.change_quietly("clockings", json!({"id": 2, "date": today(&sim)}));
    sim.delete("clockings", json!(1)).await;
    let page = client.fetch_page(&delta_link).await.unwrap().read().unwrap();
    let kinds: Vec<(String, String)> = page
        .records
        .iter()
        .map(|c| match (c.get("changeType"), c.get("data").and_then(|d| d.get("id"))) {
            (Some(Json::String(t)), Some(Json::Number(id))) => (t.clone(), id.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, [("InsertOrUpdate".into(), "2".into()), ("Delete".into(), "1".into())]);
    let next = page.delta_link.expect("a new deltaLink");

    // A used link is gone; so is one unused for 72 hours.
    assert_eq!(client.fetch_page(&delta_link).await.unwrap_err(), ProtimeError::DeltaGone);
    sim.advance(chrono::Duration::hours(73));
    assert_eq!(client.fetch_page(&next).await.unwrap_err(), ProtimeError::DeltaGone);
}

#[tokio::test]
async fn a_delta_conflict_is_reported_for_a_later_retry() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let client = client(&sim);
    sim.inject(FaultTarget::Api, Fault::Status { status: 409, retry_after_secs: None });
    let err = client.fetch_page(&client.list_url("clockings", None, true)).await.unwrap_err();
    assert_eq!(err, ProtimeError::DeltaConflict);
}

#[tokio::test]
async fn wrong_client_credentials_are_an_auth_error_without_the_secret() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let mut options = ClientOptions::new(scopes_for(["clockings"]), "Test Company");
    options.api_base_url = Some(sim.api_base_url());
    options.token_url = Some(sim.token_url());
    let client =
        ProtimeClient::new(ProtimeCredentials::new("sim", "simulator.local", "sim-client", "wrong-secret"), options)
            .unwrap();
    let err = client.list_webhooks(None).await.unwrap_err();
    assert!(matches!(err, ProtimeError::Auth { status: 401, .. }), "{err}");
    assert!(!err.to_string().contains("wrong-secret"));
}

#[tokio::test]
async fn webhooks_can_be_filtered_by_status() {
    let sim = Simulator::start(SimulatorConfig::default()).await;
    let client = client(&sim);
    client.create_webhook("https://example.com/webhooks/clockings", "clockings", "").await.unwrap();
    client.create_webhook("https://example.com/webhooks/breaks", "breaks", "").await.unwrap();
    sim.disable("breaks");
    let disabled = client.list_webhooks(Some("status eq 'Disabled'")).await.unwrap();
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0].collection_name, "breaks");
    let one = client.get_webhook(&disabled[0].id).await.unwrap().unwrap();
    assert_eq!(one, disabled[0]);
    client.delete_webhook(&one.id).await.unwrap();
    assert_eq!(client.get_webhook(&one.id).await.unwrap(), None);
    assert_eq!(client.list_webhooks(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_delta_round_starts_over_when_its_link_has_expired() {
    let sim = Simulator::start(SimulatorConfig { page_size: 2, ..Default::default() }).await;
    for id in 1..=3 {
        sim.change_quietly("clockings", json!({"id": id, "date": today(&sim)}));
    }
    let client = client(&sim);
    let initial = || client.list_url("clockings", Some(&delta_filter(&sim)), true);
    let (first, last, _) = fetch_all(&client, initial()).await;
    assert_eq!(first.len(), 3, "initial request: every record");
    let link = last.delta_link.expect("a deltaLink to store");

    sim.change_quietly("clockings", json!({"id": 4, "date": today(&sim)}));
    let (second, last, _) = fetch_all(&client, link).await;
    assert_eq!(second.len(), 1, "only the change since");
    let link = last.delta_link.unwrap();

    sim.advance(chrono::Duration::hours(73));
    assert_eq!(client.fetch_page(&link).await.unwrap_err(), ProtimeError::DeltaGone, "410 Gone: start over");
    let (third, last, _) = fetch_all(&client, initial()).await;
    assert_eq!(third.len(), 4);
    assert!(last.delta_link.is_some());
}
