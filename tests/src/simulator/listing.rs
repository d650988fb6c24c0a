//! The collection list endpoints and delta (initial requests, delta links, expiry, conflicts).

use super::api::authorize;
use super::*;

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

pub(super) async fn delta(
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
