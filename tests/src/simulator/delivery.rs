//! Changing records, and delivering each change as a signed event to every enabled webhook.

use super::*;

impl Shared {
    /// Inserts or replaces a record under a new changeVersion, delivering nothing.
    pub(super) fn change_quietly(&self, collection: &str, data: Value) -> Value {
        self.lock().upsert(collection, data)
    }

    /// POSTs one signed event to each enabled webhook of the collection, retrying failed
    /// deliveries; a webhook whose retries are exhausted is Disabled, as Protime does.
    /// A delivery picked by [`Simulator::drop_deliveries`] is not POSTed but counts as done.
    pub(super) async fn deliver(&self, collection: &str, delete: bool, data: Value) -> Delivery {
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
            if self.take_drop() {
                delivery.dropped += 1;
                continue;
            }
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

    /// Whether the next delivery is one to drop (and counts it off).
    fn take_drop(&self) -> bool {
        let mut sim = self.lock();
        let drop = sim.drop_deliveries > 0;
        sim.drop_deliveries = sim.drop_deliveries.saturating_sub(1);
        drop
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
    /// Deliveries silently dropped ([`Simulator::drop_deliveries`]): never POSTed, yet the
    /// webhook stays Enabled as if they had been delivered.
    pub dropped: usize,
    /// Every attempt's HTTP status (0: no answer).
    pub statuses: Vec<u16>,
}

/// A record id as text (a string as is, a number in its JSON form): the records' key.
pub(super) fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
