//! The table's read indexes against moto, after an initial load from the simulator and webhook
//! changes: each month of a dated collection and each person read through Query are exactly
//! the simulator's live records, in date then id order; a record that changes date or person
//! moves, a deleted one leaves.

use aws_sdk_dynamodb::types::AttributeValue;
use harness::simulator::SimulatorConfig;
use harness::Stack;
use protime_webhooks::records::index::{self, attr, DATE_INDEX, PERSON_INDEX};
use protime_webhooks::Collection;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The ids of a month of clockings through the byDate index: every shard, merged in key order.
async fn month(stack: &Stack, year: i32, month: u32) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for partition in index::month_partitions(Collection::Clockings, year, month) {
        let items = harness::query_index(
            &stack.receiver.setup,
            &stack.receiver.table,
            DATE_INDEX,
            (attr::DATE_PARTITION, &partition),
        )
        .await;
        rows.extend(items.iter().map(sort_and_id));
    }
    rows.sort();
    rows
}

async fn person(stack: &Stack, person: u64) -> Vec<(String, String)> {
    let partition = index::person_partition(Collection::Clockings, &person.to_string());
    let items = harness::query_index(
        &stack.receiver.setup,
        &stack.receiver.table,
        PERSON_INDEX,
        (attr::PERSON_PARTITION, &partition),
    )
    .await;
    let rows: Vec<(String, String)> = items.iter().map(sort_and_id).collect();
    let mut sorted = rows.clone();
    // Integer ids in their numeric order ("9" before "44"), as the zero-padded sort key has them.
    sorted.sort_by_key(|(date, id)| (date.clone(), id.parse::<u64>().unwrap()));
    assert_eq!(rows, sorted, "Query returns a person's records in date then id order");
    rows
}

fn sort_and_id(item: &std::collections::HashMap<String, AttributeValue>) -> (String, String) {
    let date = item[attr::DATE_SORT].as_s().unwrap().split('#').next().unwrap().to_owned();
    let id = match &item["id"] {
        AttributeValue::N(n) => n.clone(),
        other => panic!("an integer id, got {other:?}"),
    };
    assert!(item.contains_key("changeOrder") && item.contains_key("receivedAt"), "the projection: {item:?}");
    (date, id)
}

/// The simulator's live clockings as (date, id), filtered.
fn expected(stack: &Stack, keep: impl Fn(&Value) -> bool) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = stack
        .simulator
        .records("clockings")
        .into_iter()
        .filter(|r| r["status"] != "Deleted" && keep(r))
        .map(|r| (r["date"].as_str().unwrap().to_owned(), r["id"].to_string()))
        .collect();
    rows.sort_by_key(|(date, id)| (date.clone(), id.parse::<u64>().unwrap()));
    rows
}

fn months_of(stack: &Stack) -> BTreeSet<(i32, u32)> {
    stack
        .simulator
        .records("clockings")
        .iter()
        .map(|r| {
            let date = r["date"].as_str().unwrap();
            (date[..4].parse().unwrap(), date[5..7].parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn months_and_persons_read_through_the_indexes_are_the_live_records_and_follow_every_change() {
    let stack = Stack::start(&["clockings", "people"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 60);
    stack.simulator.seed("people", 12);
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);

    let records = stack.simulator.records("clockings");
    let (first, second) = (records[0].clone(), records[1].clone());
    let today = stack.simulator.now().date_naive();
    let other_month = (today - chrono::Days::new(45)).format("%Y-%m-%d").to_string();
    // A record moves to another month and person; one is deleted; one is new.
    let mut moved = first.clone();
    moved["date"] = json!(other_month);
    moved["person"] = json!({"id": 999});
    stack.simulator.change("clockings", moved).await;
    stack.simulator.delete("clockings", second["id"].clone()).await;
    stack.simulator.change("clockings", json!({"id": 70001, "date": today.to_string(), "person": {"id": 999}})).await;

    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 60);
    assert_eq!(stack.assert_table_matches_simulator("people").await, 12);
    for (year, m) in months_of(&stack) {
        let prefix = format!("{year:04}-{m:02}-");
        let wanted = expected(&stack, |r| r["date"].as_str().unwrap().starts_with(&prefix));
        let mut got = month(&stack, year, m).await;
        got.sort_by_key(|(date, id)| (date.clone(), id.parse::<u64>().unwrap()));
        assert_eq!(got, wanted, "clockings of {prefix}");
    }
    let people: BTreeSet<u64> =
        stack.simulator.records("clockings").iter().filter_map(|r| r["person"]["id"].as_u64()).collect();
    assert!(people.contains(&999));
    for p in people {
        let wanted = expected(&stack, |r| r["person"]["id"].as_u64() == Some(p));
        let mut got = person(&stack, p).await;
        got.sort_by_key(|(date, id)| (date.clone(), id.parse::<u64>().unwrap()));
        assert_eq!(got, wanted, "clockings of person {p}");
    }
    // The deleted record is a tombstone in the table, out of every live partition: a Delete
    // carries no date or person, so it is under the undated tombstone partitions, in no person's.
    let tombstone = stack.receiver.item(&format!("clockings#{}", second["id"])).await.expect("tombstone");
    assert_eq!(tombstone["deleted"], AttributeValue::Bool(true));
    let partition = tombstone[attr::DATE_PARTITION].as_s().unwrap();
    assert!(partition.starts_with("deleted#clockings#undated#"), "{partition}");
    assert!(!tombstone.contains_key(attr::PERSON_PARTITION));
    let mut undated = Vec::new();
    for partition in index::undated_partitions(Collection::Clockings).map(|p| index::tombstone_partition(&p)) {
        let items = harness::query_index(
            &stack.receiver.setup,
            &stack.receiver.table,
            DATE_INDEX,
            (attr::DATE_PARTITION, &partition),
        )
        .await;
        undated.extend(items.iter().map(|i| i["pk"].as_s().unwrap().clone()));
    }
    assert_eq!(undated, [format!("clockings#{}", second["id"])]);
}

/// Items as a deployment before the indexes stored them: the same items, no index keys.
async fn strip_index_keys(stack: &Stack) -> usize {
    let client = aws_sdk_dynamodb::Client::new(&stack.receiver.setup);
    let mut stripped = 0;
    for mut item in harness::scan(&stack.receiver.setup, &stack.receiver.table).await {
        if attr::ALL.iter().any(|a| item.remove(*a).is_some()) {
            client.put_item().table_name(&stack.receiver.table).set_item(Some(item)).send().await.unwrap();
            stripped += 1;
        }
    }
    stripped
}

#[tokio::test(flavor = "multi_thread")]
async fn the_migration_gives_older_items_their_index_keys_resumably_and_changes_nothing_else() {
    use protime_webhooks::records::migrate::{self, POSITION_PREFIX, SEGMENTS};
    let stack = Stack::start(&["clockings", "people"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 50);
    stack.simulator.seed("people", 10);
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);
    stack.simulator.soft_delete("clockings", stack.simulator.records("clockings")[3]["id"].clone()).await;
    let second = stack.simulator.records("clockings")[4]["id"].clone();
    stack.simulator.delete("clockings", second).await;
    let written = harness::scan(&stack.receiver.setup, &stack.receiver.table).await;
    assert_eq!(strip_index_keys(&stack).await, 60);
    let client = aws_sdk_dynamodb::Client::new(&stack.receiver.setup);
    let table = &stack.receiver.table;

    // A run cut off after segments 1.. were through: the next goes on with segment 0 only.
    for segment in 1..SEGMENTS {
        client
            .put_item()
            .table_name(table)
            .item("pk", AttributeValue::S(format!("{POSITION_PREFIX}{segment}")))
            .send()
            .await
            .unwrap();
    }
    // Positions saved by a run of 4 segments do not describe a run of 2: refused, nothing written.
    let other = migrate::Parallelism { segments: 2, ..migrate::Parallelism::default() };
    let refused = migrate::add_index_keys(&client, table, other, |_| {}).await.unwrap_err();
    assert_eq!(refused, migrate::MigrationError::SegmentsDiffer { cut_off: SEGMENTS });
    let resumed = migrate::add_index_keys(&client, table, migrate::Parallelism::default(), |_| {}).await.unwrap();
    assert!(resumed.resumed);
    assert!(resumed.updated < 60, "only segment 0's records: {resumed:?}");
    let rest = migrate::add_index_keys(&client, table, migrate::Parallelism::default(), |_| {}).await.unwrap();
    assert!(!rest.resumed);
    assert_eq!(resumed.updated + rest.updated, 60, "{resumed:?} {rest:?}");
    assert_eq!(rest.records, 60);

    // Every item is exactly as the store wrote it, index keys included; the positions are gone.
    let mut after = harness::scan(&stack.receiver.setup, table).await;
    let mut before = written.clone();
    let by_pk = |items: &mut Vec<std::collections::HashMap<String, AttributeValue>>| {
        items.sort_by_key(|i| i["pk"].as_s().unwrap().clone());
    };
    by_pk(&mut after);
    by_pk(&mut before);
    assert_eq!(after, before);
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 48);
    assert_eq!(stack.assert_table_matches_simulator("people").await, 10);

    // Twice in a row: the second run reads everything and writes nothing.
    let again = migrate::add_index_keys(&client, table, migrate::Parallelism::default(), |_| {}).await.unwrap();
    assert_eq!((again.records, again.updated, again.changed_meanwhile), (60, 0, 0));
    assert_eq!(harness::scan(&stack.receiver.setup, table).await.len(), after.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_migration_leaves_a_record_tombstoned_after_its_read_as_the_tombstone() {
    use protime_webhooks::records::item::{attr as item_attr, record_key};
    use protime_webhooks::records::migrate::{self, ItemOutcome};
    use protime_webhooks::records::store::DynamoRecordStore;
    use protime_webhooks::records::{event::RecordId, index::TOMBSTONE_PREFIX};
    use protime_webhooks::sync::sweep::{live_record, LiveRecords};
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack
        .put_record("clockings", json!({"id": 7, "changeVersion": "5", "date": "2026-11-03", "person": {"id": 9}}))
        .await;
    assert_eq!(strip_index_keys(&stack).await, 1);
    let (client, table) = (aws_sdk_dynamodb::Client::new(&stack.receiver.setup), &stack.receiver.table);
    let pk = record_key(Collection::Clockings, &RecordId::Number("7".into()));

    // The migration's Scan reads the live record; the sweep tombstones it (same changeOrder,
    // `deleted`, a new `receivedAt`) before the migration's update of what it read.
    let read = stack.receiver.item(&pk).await.expect("the record");
    let store = DynamoRecordStore::new(client.clone(), table.clone());
    assert!(store.tombstone(Collection::Clockings, &live_record(read.clone())).await.unwrap());
    let tombstone = stack.receiver.item(&pk).await.unwrap();
    assert_eq!(
        (&tombstone[item_attr::DELETED], &tombstone[item_attr::CHANGE_ORDER]),
        (&AttributeValue::Bool(true), &read[item_attr::CHANGE_ORDER])
    );

    let outcome = migrate::migrate_item(&client, table, &read).await.unwrap();
    assert_eq!(outcome, ItemOutcome::ChangedMeanwhile);
    assert_eq!(stack.receiver.item(&pk).await.unwrap(), tombstone, "no live index keys on the tombstone");

    // A later run reads the tombstone and gives it the tombstone partitions, out of every live one.
    let run = migrate::add_index_keys(&client, table, migrate::Parallelism::default(), |_| {}).await.unwrap();
    assert_eq!((run.records, run.updated), (1, 1), "{run:?}");
    let migrated = stack.receiver.item(&pk).await.unwrap();
    for key in [attr::DATE_PARTITION, attr::PERSON_PARTITION] {
        let partition = migrated[key].as_s().unwrap();
        assert!(partition.starts_with(TOMBSTONE_PREFIX), "{key}: {partition}");
    }
}

/// A table deployed with `ReadIndexes=byDate`: reading by person answers that the index is
/// missing. The records carry both indexes' keys anyway, so once the index is added (as a stack
/// update with `ReadIndexes=byDate,byPerson` does) it holds them, with no migration.
#[tokio::test(flavor = "multi_thread")]
async fn an_index_left_out_is_named_and_one_added_later_holds_the_records_already_stored() {
    use aws_sdk_dynamodb::types::{
        CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, Projection,
        ProjectionType,
    };
    use protime_webhooks::records::index::ReadIndexes;
    use protime_webhooks::records::query::{self, QueryError, RecordQuery};
    use protime_webhooks::records::{event, item::record_item, json, Source};
    let setup = harness::setup_config(&harness::shared_moto().endpoint()).await;
    let table = harness::unique("records-by-date");
    harness::create_table_with(&setup, &table, ReadIndexes { by_date: true, by_person: false }).await;
    let client = aws_sdk_dynamodb::Client::new(&setup);
    for (id, person) in [(1, 7), (2, 7), (3, 8)] {
        let record =
            json!({"id": id, "changeVersion": "0000090200004BD0000A", "date": "2026-12-01", "person": {"id": person}});
        let event = event::parse_event(json::parse(record.to_string().as_bytes()).unwrap()).unwrap();
        let item = record_item(Collection::Clockings, &event, Source::Webhook, "2026-12-01T10:00:00Z");
        client.put_item().table_name(&table).set_item(Some(item)).send().await.expect("put");
    }
    let by_person = RecordQuery {
        collection: Collection::Clockings,
        person: Some("7".into()),
        dates: None,
        include_deleted: false,
        limit: None,
    };
    let answer = query::run(&client, &table, &by_person, |_| {}).await;
    assert_eq!(answer.err(), Some(QueryError::NoIndex(PERSON_INDEX)));

    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap();
    let create = CreateGlobalSecondaryIndexAction::builder()
        .index_name(PERSON_INDEX)
        .key_schema(key(attr::PERSON_PARTITION, KeyType::Hash))
        .key_schema(key(attr::DATE_SORT, KeyType::Range))
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .unwrap();
    client
        .update_table()
        .table_name(&table)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name(attr::PERSON_PARTITION)
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(create).build())
        .send()
        .await
        .expect("add the index");
    let records = query::run(&client, &table, &by_person, |_| {}).await.expect("read by person");
    let keys: Vec<&str> = records.iter().map(|r| r.pk.as_str()).collect();
    assert_eq!(keys, ["clockings#1", "clockings#2"]);
}
