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
    Json(json!({"record": data, "delivered": delivery.delivered, "failed": delivery.failed})).into_response()
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
