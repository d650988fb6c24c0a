//! The EventBridge adapter of [`EventBus`]: one PutEvents call per batch.

use super::feed::{BusError, Entry, EventBus, EVENT_SOURCE};
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        EventBridgeBus { client, bus_name: bus_name.into() }
    }
}

impl EventBus for EventBridgeBus {
    async fn put(&self, entries: &[&Entry]) -> Result<Vec<bool>, BusError> {
        let request: Vec<PutEventsRequestEntry> = entries
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(EVENT_SOURCE)
                    .detail_type(e.detail_type)
                    .detail(&e.detail)
                    .build()
            })
            .collect();
        let answer = self
            .client
            .put_events()
            .set_entries(Some(request))
            .send()
            .await
            .map_err(|e| BusError(DisplayErrorContext(e).to_string()))?;
        // One result per entry, in order; a failed one carries an error code and no event id.
        let results = answer.entries();
        Ok((0..entries.len()).map(|i| results.get(i).is_none_or(|r| r.error_code().is_some())).collect())
    }
}
