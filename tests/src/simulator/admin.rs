//! `/_simulator/…`: endpoints of the local stack, not of Protime's API.

use super::*;

#[derive(Deserialize)]
pub(super) struct AdvanceQuery {
    hours: i64,
}

/// `POST /_simulator/advance?hours=N`: move the clock (not part of Protime's API).
pub(super) async fn admin_advance(State(shared): State<Shared>, Query(q): Query<AdvanceQuery>) -> Response {
    let mut sim = shared.lock();
    sim.clock_offset += Duration::hours(q.hours);
    sim.expire();
    Json(json!({"now": time(sim.now())})).into_response()
}

/// `POST /_simulator/changes/{collection}` with a record: change it and deliver the event.
pub(super) async fn admin_change(
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
    Json(json!({
        "record": data,
        "delivered": delivery.delivered,
        "failed": delivery.failed,
        "dropped": delivery.dropped,
    }))
    .into_response()
}

/// `POST /_simulator/raw-change/{collection}` with any text: served verbatim as one change item
/// of the collection's next delta answer (a malformed record) → `{"injected":true}`.
pub(super) async fn admin_raw_change(
    State(shared): State<Shared>,
    Path(collection): Path<String>,
    body: String,
) -> Response {
    if collection.parse::<Collection>().is_err() {
        return error(StatusCode::BAD_REQUEST, "UnknownCollection", "Unknown collection name");
    }
    shared.inject_raw(&collection, &body);
    Json(json!({ "injected": true })).into_response()
}

/// The most records one seed request may add.
const MAX_SEED: usize = 1_000_000;

/// `?count=N`, a whole number up to `max`; `Err` is the 400 to answer.
fn count(q: &HashMap<String, String>, max: usize) -> Result<usize, Box<Response>> {
    q.get("count").and_then(|c| c.parse::<usize>().ok()).filter(|c| *c <= max).ok_or_else(|| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "InvalidCount",
            &format!("count must be a whole number from 0 to {max}"),
        ))
    })
}

/// `POST /_simulator/seed/{collection}?count=N`: insert N plausible records quietly (no
/// delivery) → `{"seeded":N}`.
pub(super) async fn admin_seed(
    State(shared): State<Shared>,
    Path(collection): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if collection.parse::<Collection>().is_err() {
        return error(StatusCode::BAD_REQUEST, "UnknownCollection", "Unknown collection name");
    }
    let n = match count(&q, MAX_SEED) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    // Seeding a large count takes a while: keep it off the request threads.
    match tokio::task::spawn_blocking(move || shared.seed(&collection, n).len()).await {
        Ok(seeded) => Json(json!({ "seeded": seeded })).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "SeedFailed", "Seeding failed"),
    }
}

/// `POST /_simulator/delete/{collection}?id=N`: deletes the record quietly (no webhook delivery;
/// a delta returns the Delete, a list no longer shows it) → `{"deleted": {id, changeVersion}}`.
pub(super) async fn admin_delete(
    State(shared): State<Shared>,
    Path(collection): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = q.get("id").filter(|_| collection.parse::<Collection>().is_ok()) else {
        return error(StatusCode::BAD_REQUEST, "InvalidDelete", "A known collection and an id are required");
    };
    let id = id.parse::<u64>().map(|n| json!(n)).unwrap_or_else(|_| json!(id));
    let exists = shared.lock().records.get(&collection).is_some_and(|r| r.contains_key(&id_text(&id)));
    if !exists {
        return error(StatusCode::NOT_FOUND, "NotFound", "No such record");
    }
    let data = shared.lock().remove(&collection, id);
    Json(json!({ "deleted": data })).into_response()
}

/// `POST /_simulator/drop-deliveries?count=N`: the next N deliveries are silently dropped
/// (not POSTed; the webhook stays Enabled) → `{"dropping": <deliveries still to drop>}`.
pub(super) async fn admin_drop_deliveries(
    State(shared): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let n = match count(&q, usize::MAX) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let mut sim = shared.lock();
    sim.drop_deliveries = sim.drop_deliveries.saturating_add(n);
    Json(json!({ "dropping": sim.drop_deliveries })).into_response()
}

/// `GET /_simulator/webhooks`: every webhook with its status (never its key), for checking a stack.
pub(super) async fn admin_webhooks(State(shared): State<Shared>) -> Response {
    let mut sim = shared.lock();
    sim.expire();
    let webhooks: Vec<Value> = sim
        .webhooks
        .iter()
        .map(|w| {
            json!({
                "id": w.id,
                "collection": w.collection,
                "status": if w.enabled { "Enabled" } else { "Disabled" },
                "deleted": w.deleted,
                "validUntil": time(w.valid_until),
            })
        })
        .collect();
    Json(json!({ "webhooks": webhooks })).into_response()
}

/// `POST /_simulator/maintenance?seconds=N&retryAfter=S`: a maintenance window of N seconds from
/// now, during which every API and token request answers 503 with `Retry-After: S` (default 60)
/// → `{"until": <time>}`.
pub(super) async fn admin_maintenance(
    State(shared): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let seconds = q.get("seconds").and_then(|s| s.parse::<u32>().ok());
    let retry_after = match q.get("retryAfter") {
        None => Some(60),
        Some(s) => s.parse::<u32>().ok(),
    };
    let (Some(seconds), Some(retry_after)) = (seconds, retry_after) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidMaintenance",
            "seconds (and retryAfter, if given) must be whole numbers of seconds",
        );
    };
    let mut sim = shared.lock();
    let until = sim.now() + Duration::seconds(i64::from(seconds));
    sim.maintenance = Some((until, u64::from(retry_after)));
    Json(json!({ "until": time(until) })).into_response()
}
