//! The collection list endpoints and delta (initial requests, delta links, expiry, one active
//! delta per collection).
//!
//! Lists are paged in id-text order. `skipToken` (a list) or `continuationToken` (a delta initial
//! request, whose nextLink also carries a `deltaToken`) holds the position (the last id served)
//! and the sequence number at the first page, so a delta initial request's deltaLink covers
//! every change made since the listing began (a record changed meanwhile may come twice, never
//! zero times), and paging 100,000 records costs no more than listing them once.

use super::api::authorize;
use super::*;
use std::ops::Bound;

/// How long a delta link lives after its last use.
const DELTA_LIFETIME_HOURS: i64 = 72;

impl DateBounds {
    /// Whether a record's `date` is within the bounds (no bound: every record; a bound and no
    /// date: outside).
    fn contains(&self, record: &Value) -> bool {
        let date = record["date"].as_str();
        self.from.as_deref().is_none_or(|from| date.is_some_and(|d| d >= from))
            && self.to.as_deref().is_none_or(|to| date.is_some_and(|d| d <= to))
    }
}

/// `date ge 'A' and date le 'B'` (either bound optional) → the bounds.
fn parse_date_filter(filter: &str) -> Option<DateBounds> {
    let mut bounds = DateBounds::default();
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
            bounds.from = Some(value);
        } else {
            bounds.to = Some(value);
        }
    }
    Some(bounds)
}

/// The day a filter bound names (`2025-01-01`, possibly followed by a time).
fn day(bound: &str) -> Option<NaiveDate> {
    bound.get(..10)?.parse().ok()
}

/// Whether the bounds name both days, at most a year apart.
fn within_a_year(bounds: &DateBounds) -> bool {
    match (bounds.from.as_deref().and_then(day), bounds.to.as_deref().and_then(day)) {
        (Some(from), Some(to)) => (to - from).num_days() < 366,
        _ => false,
    }
}

/// Protime's rules on a list or delta initial request; `Err` is the 400's code and message.
fn check_request(sim: &Sim, collection: &str, bounds: &DateBounds, delta: bool) -> Result<(), (&'static str, String)> {
    let invalid = |message: String| Err(("InvalidFilter", message));
    let start = bounds.from.as_deref().and_then(day);
    let filtered = bounds.from.is_some() || bounds.to.is_some();
    match collection {
        "contracts" | "counter-groups" | "people" if delta && filtered => {
            invalid(format!("The {collection} delta takes no filter"))
        }
        "paid-presences" if !delta && !within_a_year(bounds) => {
            invalid("A date range of at most one year is required".into())
        }
        "paid-presences" if delta && (start.is_none() || bounds.to.is_some() && !within_a_year(bounds)) => {
            invalid("A delta needs a start date (date ge) and a range of at most one year".into())
        }
        // Read strictly: both bounds, at most a year apart, for a list and a delta alike; a
        // delta starting no earlier than 1 January of the previous year.
        "clockings" | "assignments" if !within_a_year(bounds) => {
            invalid("A date range (date ge and date le) of at most one year is required".into())
        }
        "clockings" | "assignments" if delta => {
            let earliest = sim.earliest_delta_start();
            if start.is_some_and(|s| s >= earliest) {
                Ok(())
            } else {
                invalid(format!("A delta needs a start date (date ge) no earlier than {earliest}"))
            }
        }
        _ => Ok(()),
    }
}

/// Where a list page starts.
struct Position {
    /// The sequence number when the first page was served.
    since: u64,
    /// The id text of the last record served (none: the first page).
    after: Option<String>,
    /// An empty page that leads to the data page at the same position.
    empty: bool,
}

impl Position {
    /// `d<since>~<after>` (a data page) or `e<since>~<after>` (an empty page before it).
    fn token(&self) -> String {
        let kind = if self.empty { 'e' } else { 'd' };
        format!("{kind}{}~{}", self.since, self.after.as_deref().unwrap_or(""))
    }

    fn parse(token: &str) -> Option<Position> {
        let empty = match token.get(..1)? {
            "d" => false,
            "e" => true,
            _ => return None,
        };
        let (since, after) = token[1..].split_once('~')?;
        Some(Position { since: since.parse().ok()?, after: Some(after.to_owned()), empty })
    }
}

/// The relative nextLink for `position`, keeping the request's filter, references and delta flag:
/// a list's carries a `skipToken`, a delta initial request's a `continuationToken` and the
/// `deltaToken` of the delta being built.
fn next_link(path: &str, q: &HashMap<String, String>, delta: bool, position: &Position) -> String {
    let mut pairs = reqwest::Url::parse("http://simulator.local/").expect("a constant, valid URL");
    {
        let mut query = pairs.query_pairs_mut();
        for name in ["filter", "externalReferences"] {
            if let Some(value) = q.get(name) {
                query.append_pair(name, value);
            }
        }
        if delta {
            query.append_key_only("delta");
            query.append_pair("continuationToken", &position.token());
            let building = q.get("deltaToken").cloned().unwrap_or_else(|| random_hex(8));
            query.append_pair("deltaToken", &building);
        } else {
            query.append_pair("skipToken", &position.token());
        }
    }
    format!("{path}?{}", pairs.query().unwrap_or(""))
}

fn delta_link(collection: &str, token: &str) -> String {
    format!("{API_PREFIX}/delta/{collection}?deltaToken={token}")
}

/// `GET /<collection>[?filter=…][&delta][&skipToken=…]`: a list page, or a delta initial
/// request's page (its last page carries the deltaLink and ends every other delta of the
/// collection).
pub(super) async fn list_collection(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(collection): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("{API_PREFIX}/{collection}");
    if collection.parse::<Collection>().is_err() {
        return error(StatusCode::NOT_FOUND, "NotFound", "Unknown collection");
    }
    if let Err(r) = authorize(&shared, &path, &headers, &format!("connector-protimeapi-{collection}.read")).await {
        return r;
    }
    let bounds = match q.get("filter").map(|f| parse_date_filter(f)) {
        None => DateBounds::default(),
        Some(Some(b)) => b,
        Some(None) => return error(StatusCode::BAD_REQUEST, "InvalidFilter", "Unsupported filter"),
    };
    let delta = q.contains_key("delta");
    let mut sim = shared.lock();
    if let Err((code, message)) = check_request(&sim, &collection, &bounds, delta) {
        return error(StatusCode::BAD_REQUEST, code, &message);
    }
    let token = if delta { q.get("continuationToken") } else { q.get("skipToken") };
    let position = match token.map(|t| Position::parse(t)) {
        None => Position { since: sim.next_version, after: None, empty: false },
        Some(Some(p)) => p,
        Some(None) => return error(StatusCode::BAD_REQUEST, "InvalidSkipToken", "Unknown skipToken"),
    };
    if position.empty {
        let next = next_link(&path, &q, delta, &Position { empty: false, ..position });
        return Json(json!({"value": [], "nextLink": next})).into_response();
    }
    let page_size = shared.config.page_size.max(1);
    let (value, last, more) = {
        let lower = position.after.clone().map_or(Bound::Unbounded, Bound::Excluded);
        let mut page: Vec<(&String, &Arc<Value>)> = sim
            .records
            .get(&collection)
            .map(|r| {
                r.range((lower, Bound::Unbounded)).filter(|(_, v)| bounds.contains(v)).take(page_size + 1).collect()
            })
            .unwrap_or_default();
        let more = page.len() > page_size;
        page.truncate(page_size);
        let last = page.last().map(|(id, _)| (*id).clone());
        (page.into_iter().map(|(_, v)| Value::clone(v)).collect::<Vec<Value>>(), last, more)
    };
    let mut answer = json!({ "value": value });
    if more {
        let next = Position { since: position.since, after: last, empty: shared.config.empty_pages };
        answer["nextLink"] = json!(next_link(&path, &q, delta, &next));
    } else if delta {
        // One active delta per collection: this one replaces every other.
        sim.delta_tokens.retain(|_, t| t.collection != collection);
        let token = random_hex(16);
        let last_use = sim.now();
        sim.delta_tokens.insert(
            token.clone(),
            DeltaToken { collection: collection.clone(), since: position.since, bounds, last_use },
        );
        answer["deltaLink"] = json!(delta_link(&collection, &token));
    }
    Json(answer).into_response()
}

/// `GET /delta/<collection>?deltaToken=…`: in one page, every change since the token (the
/// latest of each record: its current state or its Delete) and a new deltaLink. The token is
/// used up; an unknown one, or one unused for 72 hours, is 410 Gone.
pub(super) async fn delta(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(collection): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("{API_PREFIX}/delta/{collection}");
    if let Err(r) = authorize(&shared, &path, &headers, &format!("connector-protimeapi-{collection}.read")).await {
        return r;
    }
    let mut sim = shared.lock();
    let now = sim.now();
    let gone = || error(StatusCode::GONE, "Gone", "The delta link is unknown or expired");
    let Some(token) = q.get("deltaToken").and_then(|t| sim.delta_tokens.remove(t)) else {
        return gone();
    };
    if token.collection != collection || now - token.last_use > Duration::hours(DELTA_LIFETIME_HOURS) {
        return gone();
    }
    let value: Vec<Value> = {
        let log = sim.changes.get(&collection).map(Vec::as_slice).unwrap_or_default();
        let recent = &log[log.partition_point(|c| c.seq <= token.since)..];
        let latest: HashMap<&str, u64> = recent.iter().map(|c| (c.id.as_str(), c.seq)).collect();
        recent
            .iter()
            .filter(|c| latest.get(c.id.as_str()) == Some(&c.seq))
            .filter(|c| c.delete || token.bounds.contains(&c.data))
            .map(|c| json!({"changeType": if c.delete { "Delete" } else { "InsertOrUpdate" }, "data": *c.data}))
            .collect()
    };
    let raw: Vec<String> = sim
        .raw_changes
        .get(&collection)
        .map(|changes| changes.iter().filter(|(seq, _)| *seq > token.since).map(|(_, text)| text.clone()).collect())
        .unwrap_or_default();
    let next = random_hex(16);
    let since = sim.next_version;
    sim.delta_tokens.insert(next.clone(), DeltaToken { since, last_use: now, ..token });
    let link = delta_link(&collection, &next);
    if raw.is_empty() {
        return Json(json!({"value": value, "deltaLink": link})).into_response();
    }
    // Injected items are spliced in as text: they need not be valid as a JSON value would be.
    let items: Vec<String> = value.iter().map(Value::to_string).chain(raw).collect();
    let body = format!(r#"{{"value":[{}],"deltaLink":{}}}"#, items.join(","), Value::from(link));
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}
