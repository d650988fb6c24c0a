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

    /// The bus `bus_name` through a client of `sdk` (the publisher's, the CLI's republish).
    pub fn from_sdk(sdk: &aws_config::SdkConfig, bus_name: impl Into<String>) -> Self {
        Self::new(aws_sdk_eventbridge::Client::new(sdk), bus_name)
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_smithy_mocks::{mock, MockResponseInterceptor};

    fn entry(key: &str) -> Entry {
        Entry {
            detail_type: "Protime Record Changed",
            detail: "{}".into(),
            record_key: key.into(),
            data_omitted: false,
        }
    }

    #[tokio::test]
    async fn a_partial_failure_marks_exactly_the_entries_put_events_refused() {
        // PutEvents answers 200 with one result per entry, in order: an event id, or an error code.
        let rule = mock!(aws_sdk_eventbridge::Client::put_events)
            .match_requests(|r| {
                r.entries().len() == 3
                    && r.entries().iter().all(|e| {
                        e.source() == Some(EVENT_SOURCE)
                            && e.event_bus_name() == Some("changes")
                            && e.detail() == Some("{}")
                    })
            })
            .then_output(|| {
                PutEventsOutput::builder()
                    .failed_entry_count(1)
                    .entries(PutEventsResultEntry::builder().event_id("e1").build())
                    .entries(
                        PutEventsResultEntry::builder()
                            .error_code("ThrottlingException")
                            .error_message("Rate exceeded")
                            .build(),
                    )
                    .entries(PutEventsResultEntry::builder().event_id("e3").build())
                    .build()
            });
        let config = aws_sdk_eventbridge::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_eventbridge::config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_eventbridge::config::Credentials::new("id", "secret", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(MockResponseInterceptor::new().with_rule(&rule))
            .build();
        let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::from_conf(config), "changes");
        let (a, b, c) = (entry("clockings#1"), entry("clockings#2"), entry("clockings#3"));
        assert_eq!(bus.put(&[&a, &b, &c]).await, Ok(vec![false, true, false]));
        assert_eq!(rule.num_calls(), 1);
    }
}
