//! The emulator the other tests stand on: conditional writes are atomic, as on DynamoDB.
//! moto's own threaded server checks a condition and writes without a lock (two writers on one
//! new key both won in 4 of 300 rounds, measured); `scripts/moto_server.py` serializes requests.

use aws_sdk_dynamodb::types::AttributeValue;
use harness::{create_table, sdk_config, setup_config, shared_moto, unique};

const ROUNDS: usize = 100;
const WRITERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_conditional_writes_on_one_key_exactly_one_succeeds_every_time() {
    let endpoint = shared_moto().endpoint();
    let table = unique("linearizable");
    create_table(&setup_config(&endpoint).await, &table).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(&endpoint).await);
    for round in 0..ROUNDS {
        let key = format!("lease#{round}");
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(WRITERS));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (client, table, key, start) = (client.clone(), table.clone(), key.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let written = client
                        .update_item()
                        .table_name(table)
                        .key("pk", AttributeValue::S(key))
                        .update_expression("SET #owner = :owner")
                        .condition_expression("attribute_not_exists(pk)")
                        .expression_attribute_names("#owner", "owner")
                        .expression_attribute_values(":owner", AttributeValue::N(writer.to_string()))
                        .send()
                        .await;
                    match written {
                        Ok(_) => Some(writer),
                        Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                            None
                        }
                        Err(e) => panic!("update item: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)),
                    }
                })
            })
            .collect();
        let mut winners = Vec::new();
        for writer in writers {
            winners.extend(writer.await.expect("writer task"));
        }
        assert_eq!(winners.len(), 1, "round {round}: writers {winners:?} all took the one new key");
        let stored = client
            .get_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(key))
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item
            .expect("the key was written");
        assert_eq!(
            stored["owner"],
            AttributeValue::N(winners[0].to_string()),
            "round {round}: the winner's write stands"
        );
    }
}
