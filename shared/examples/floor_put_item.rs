//! The floor under `make bench-cpu`'s figure: the Lambda runtime client, the API Gateway event
//! conversion and one unconditional PutItem on the same current-thread runtime, with nothing of
//! the receiver (no signature, no event parsing, no condition, no logs, no metrics). What the
//! receiver spends per event above this is its own work.
//!
//!   cargo build --release -p protime-webhooks --example floor_put_item
//!   .venv-bench/bin/python scripts/bench_cpu.py --rust target/release/examples/floor_put_item --label floor

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{run, service_fn, Body, Error, Request, Response};

fn main() -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = aws_sdk_dynamodb::Client::new(&protime_webhooks::aws::sdk_config().await);
        let table = std::env::var("TABLE_NAME")?;
        let (client, table) = (&client, &table);
        run(service_fn(move |_: Request| async move {
            let item = AttributeValue::S("floor#1".into());
            client.put_item().table_name(table).item("pk", item).send().await?;
            Ok::<_, Error>(Response::new(Body::from("{}")))
        }))
        .await
    })
}
