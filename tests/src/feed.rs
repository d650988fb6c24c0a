//! The change feed in moto, wired as AWS wires it: the table's stream read as Lambda's event
//! source mapping reads it (batches in order, resuming from a reported batch item failure),
//! handed to the publisher, whose events go to a bus with a rule that sends them to an SQS
//! queue, read back as a consumer would.
//!
//! moto's DynamoDB Streams and SQS are called through their JSON protocols directly (the
//! workspace builds no SDK for them); moto does not check signatures, it routes by the
//! credential scope's service.

use aws_config::SdkConfig;
use serde_json::{json, Value};

/// One moto JSON-protocol call; its answer.
async fn call(endpoint: &str, service: &str, target: &str, version: &str, body: Value) -> Value {
    let content_type = format!("application/x-amz-json-{version}");
    let headers = [("X-Amz-Target", target), ("Content-Type", content_type.as_str())];
    let (status, text) = crate::unsigned_call(endpoint, service, &headers, body.to_string()).await;
    assert!(status.is_success(), "{target}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A new event bus (no rule: what is put on it goes nowhere); its name.
pub async fn create_bus(setup: &SdkConfig) -> String {
    let bus = crate::unique("changes");
    let events = aws_sdk_eventbridge::Client::new(setup);
    events.create_event_bus().name(&bus).send().await.expect("create the bus");
    bus
}

/// A bus, a rule for every event of ours on it, and the queue the rule sends them to; and the
/// table's stream, read from its start.
pub struct Feed {
    endpoint: String,
    pub bus: String,
    queue_url: String,
    stream_arn: String,
    /// Per shard: the position to read from next (a shard iterator), as the mapping keeps it.
    positions: Vec<(String, String)>,
    /// The time spent in the publisher's handler (what Lambda would bill), over every pump.
    pub handling: std::time::Duration,
}

impl Feed {
    /// Sets the feed up for `table` in the moto at `endpoint` (`setup`: its set-up config).
    pub async fn start(endpoint: &str, setup: &SdkConfig, table: &str) -> Feed {
        let bus = create_bus(setup).await;
        let events = aws_sdk_eventbridge::Client::new(setup);
        let queue = crate::unique("consumer");
        let created = call(endpoint, "sqs", "AmazonSQS.CreateQueue", "1.0", json!({ "QueueName": queue })).await;
        let queue_url = created["QueueUrl"].as_str().expect("QueueUrl").to_owned();
        let rule = crate::unique("all-changes");
        events
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus)
            .event_pattern(json!({ "source": [protime_webhooks::publisher::feed::EVENT_SOURCE] }).to_string())
            .send()
            .await
            .expect("put the rule");
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("queue")
            .arn(format!("arn:aws:sqs:us-east-1:123456789012:{queue}"))
            .build()
            .unwrap();
        events.put_targets().rule(&rule).event_bus_name(&bus).targets(target).send().await.expect("put the target");
        let described = aws_sdk_dynamodb::Client::new(setup).describe_table().table_name(table).send().await.unwrap();
        let stream_arn =
            described.table().and_then(|t| t.latest_stream_arn()).expect("the table has a stream").to_owned();
        let mut feed = Feed {
            endpoint: endpoint.to_owned(),
            bus,
            queue_url,
            stream_arn,
            positions: Vec::new(),
            handling: Default::default(),
        };
        feed.positions = feed.shards().await.into_iter().map(|shard| (shard, String::new())).collect();
        for i in 0..feed.positions.len() {
            let shard = feed.positions[i].0.clone();
            feed.positions[i].1 = feed.iterator(&shard, "TRIM_HORIZON", None).await;
        }
        feed
    }

    async fn shards(&self) -> Vec<String> {
        let answer = self.streams("DescribeStream", json!({ "StreamArn": self.stream_arn })).await;
        answer["StreamDescription"]["Shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["ShardId"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn iterator(&self, shard: &str, kind: &str, sequence: Option<&str>) -> String {
        let mut body = json!({ "StreamArn": self.stream_arn, "ShardId": shard, "ShardIteratorType": kind });
        if let Some(sequence) = sequence {
            body["SequenceNumber"] = json!(sequence);
        }
        let answer = self.streams("GetShardIterator", body).await;
        answer["ShardIterator"].as_str().expect("ShardIterator").to_owned()
    }

    async fn streams(&self, operation: &str, body: Value) -> Value {
        call(&self.endpoint, "dynamodb", &format!("DynamoDBStreams_20120810.{operation}"), "1.0", body).await
    }

    /// Hands every stream record written since the last pump to `publisher`, in batches of at
    /// most `batch_size`, as the event source mapping would: a batch item failure makes the
    /// next batch start at that record. Returns each invocation's report.
    pub async fn pump<B: protime_webhooks::publisher::feed::EventBus>(
        &mut self,
        publisher: &protime_webhooks::publisher::Publisher<B>,
        batch_size: usize,
    ) -> Vec<protime_webhooks::publisher::PublishReport> {
        let mut reports = Vec::new();
        for i in 0..self.positions.len() {
            let shard = self.positions[i].0.clone();
            // Bounded: a publisher that never succeeds fails the test instead of spinning.
            for _ in 0..200 {
                let iterator = self.positions[i].1.clone();
                let answer =
                    self.streams("GetRecords", json!({ "ShardIterator": iterator, "Limit": batch_size })).await;
                let records = answer["Records"].as_array().cloned().unwrap_or_default();
                let next = answer["NextShardIterator"].as_str().map(str::to_owned);
                if records.is_empty() {
                    if let Some(next) = next {
                        self.positions[i].1 = next;
                    }
                    break;
                }
                let event: aws_lambda_events::dynamodb::Event = serde_json::from_value(json!({ "Records": records }))
                    .expect("stream records as Lambda delivers them");
                let started = std::time::Instant::now();
                let (response, report) = publisher.handle(&event, None).await;
                self.handling += started.elapsed();
                reports.push(report);
                match response.batch_item_failures.first().and_then(|f| f.item_identifier.clone()) {
                    Some(sequence) => {
                        self.positions[i].1 = self.iterator(&shard, "AT_SEQUENCE_NUMBER", Some(&sequence)).await;
                    }
                    None => self.positions[i].1 = next.expect("NextShardIterator"),
                }
            }
        }
        reports
    }

    /// Every event the consumer's queue has received since the last call (each as the
    /// EventBridge envelope: `detail-type`, `source`, `detail`).
    pub async fn received(&self) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let answer = call(
                &self.endpoint,
                "sqs",
                "AmazonSQS.ReceiveMessage",
                "1.0",
                json!({ "QueueUrl": self.queue_url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 3600 }),
            )
            .await;
            let messages = answer["Messages"].as_array().cloned().unwrap_or_default();
            if messages.is_empty() {
                return events;
            }
            for message in messages {
                events.push(serde_json::from_str(message["Body"].as_str().unwrap()).expect("an EventBridge event"));
                let handle = message["ReceiptHandle"].as_str().unwrap();
                call(
                    &self.endpoint,
                    "sqs",
                    "AmazonSQS.DeleteMessage",
                    "1.0",
                    json!({ "QueueUrl": self.queue_url, "ReceiptHandle": handle }),
                )
                .await;
            }
        }
    }
}
