//! The receiver handler with the real AWS SDK against a real moto server.

use aws_sdk_dynamodb::types::AttributeValue;
use harness::{put_signing_key, request, s, signed, Moto, ReceiverFixture};
use rand::seq::SliceRandom;
use serde_json::json;
use std::collections::HashMap;

const KEY: &str = "webhook-key-1";

fn outcomes(body: &serde_json::Value) -> Vec<&str> {
    body["results"].as_array().expect("results").iter().map(|r| r["outcome"].as_str().unwrap()).collect()
}

async fn send_version(f: &ReceiverFixture, id: u32, version: &str) -> (u16, serde_json::Value) {
    f.send(signed("clockings", &format!(r#"{{"id":{id},"changeVersion":"{version}"}}"#), KEY)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_event_is_stored_with_native_attributes() {
    let f = ReceiverFixture::new(KEY).await;
    let body = r#"{"changeVersion":"7","id":42,"person":{"id":123,"externalReferences":{"@badge-number":"6767676"}},"date":"2025-03-31","timeOfDayInMinutes":-15,"kind":"InOut","flags":[true,null],"newField":1.25}"#;
    let (status, answer) = f.send(signed("clockings", body, KEY)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"results":[{"id":"42","changeVersion":"7","changeType":"InsertOrUpdate","outcome":"stored"}]})
    );

    let item = f.item("clockings#42").await.expect("stored");
    assert_eq!(s(&item, "collection"), "clockings");
    assert_eq!(item["id"], AttributeValue::N("42".into()));
    assert_eq!(s(&item, "changeVersion"), "7");
    assert_eq!(item["deleted"], AttributeValue::Bool(false));
    assert_eq!(s(&item, "source"), "webhook");
    assert!(s(&item, "receivedAt").ends_with('Z'));
    let person = item["person"].as_m().expect("nested map");
    assert_eq!(person["id"], AttributeValue::N("123".into()));
    assert_eq!(person["externalReferences"].as_m().unwrap()["@badge-number"], AttributeValue::S("6767676".into()));
    assert_eq!(item["timeOfDayInMinutes"], AttributeValue::N("-15".into()));
    assert_eq!(item["flags"], AttributeValue::L(vec![AttributeValue::Bool(true), AttributeValue::Null(true)]));
    assert_eq!(item["newField"], AttributeValue::N("1.25".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_event_is_a_duplicate() {
    let f = ReceiverFixture::new(KEY).await;
    assert_eq!(outcomes(&send_version(&f, 1, "5").await.1), ["stored"]);
    let (status, answer) = send_version(&f, 1, "5").await;
    assert_eq!((status, outcomes(&answer)), (200, vec!["duplicate"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_event_is_stale_and_leaves_the_item_unchanged() {
    let f = ReceiverFixture::new(KEY).await;
    let newer = r#"{"id":1,"changeVersion":"B","value":"new"}"#;
    let older = r#"{"id":1,"changeVersion":"A","value":"old"}"#;
    f.send(signed("clockings", newer, KEY)).await;
    let before = f.item("clockings#1").await.unwrap();
    let (status, answer) = f.send(signed("clockings", older, KEY)).await;
    assert_eq!((status, outcomes(&answer)), (200, vec!["stale"]));
    assert_eq!(f.item("clockings#1").await.unwrap(), before);
    assert_eq!(s(&before, "value"), "new");
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_versions_in_random_order_leave_the_highest() {
    let f = ReceiverFixture::new(KEY).await;
    let mut versions: Vec<u32> = (1..=20).collect();
    versions.shuffle(&mut rand::rng());
    let mut stored = 0;
    for v in &versions {
        let (status, answer) = send_version(&f, 7, &v.to_string()).await;
        assert_eq!(status, 200);
        stored += usize::from(outcomes(&answer) == ["stored"]);
    }
    let item = f.item("clockings#7").await.unwrap();
    assert_eq!(s(&item, "changeVersion"), "20");
    // Exactly the versions that were a new maximum when they arrived were written.
    let new_maxima = versions
        .iter()
        .scan(0, |max, &v| {
            Some(if v > *max {
                *max = v;
                1
            } else {
                0
            })
        })
        .sum::<usize>();
    assert_eq!(stored, new_maxima, "order was {versions:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn version_10_replaces_version_9() {
    let f = ReceiverFixture::new(KEY).await;
    send_version(&f, 3, "9").await;
    let (_, answer) = send_version(&f, 3, "10").await;
    assert_eq!(outcomes(&answer), ["stored"]);
    assert_eq!(s(&f.item("clockings#3").await.unwrap(), "changeVersion"), "10");
    let (_, answer) = send_version(&f, 3, "9").await;
    assert_eq!(outcomes(&answer), ["stale"]);
}

/// Protime's real versions: 20 characters of upper-case hex, some all digits.
fn hex_version(rng: &mut impl rand::Rng) -> String {
    let digits_only = rng.random_bool(0.5);
    let alphabet: &[u8] = if digits_only { b"0123456789" } else { b"0123456789ABCDEF" };
    (0..20).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn protimes_hex_versions_in_random_order_leave_the_greatest_by_string_order() {
    let f = ReceiverFixture::new(KEY).await;
    let mut rng = rand::rng();
    for id in 0..5 {
        let mut versions: Vec<String> = (0..12).map(|_| hex_version(&mut rng)).collect();
        // The case that was lost: a lettered version stored, then a newer all-digit one.
        versions.extend(["0000090200004BD0000A".to_owned(), "00000902000050000000".to_owned()]);
        versions.shuffle(&mut rng);
        for v in &versions {
            assert_eq!(send_version(&f, id, v).await.0, 200);
        }
        let item = f.item(&format!("clockings#{id}")).await.unwrap();
        assert_eq!(s(&item, "changeVersion"), versions.iter().max().unwrap(), "arrival order {versions:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_at_the_stored_version_wins_and_an_update_at_it_is_then_a_duplicate() {
    let f = ReceiverFixture::new(KEY).await;
    assert_eq!(outcomes(&send_version(&f, 4, "0000090200004BD0000A").await.1), ["stored"]);
    let delete = r#"{"changeType":"Delete","data":{"id":4,"changeVersion":"0000090200004BD0000A"}}"#;
    assert_eq!(outcomes(&f.send(signed("clockings", delete, KEY)).await.1), ["stored"]);
    assert_eq!(f.item("clockings#4").await.unwrap()["deleted"], AttributeValue::Bool(true));
    assert_eq!(outcomes(&send_version(&f, 4, "0000090200004BD0000A").await.1), ["duplicate"]);
    assert_eq!(outcomes(&f.send(signed("clockings", delete, KEY)).await.1), ["duplicate"]);
    assert_eq!(f.item("clockings#4").await.unwrap()["deleted"], AttributeValue::Bool(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_soft_deleted_clocking_is_stored_as_a_tombstone_with_its_fields() {
    let f = ReceiverFixture::new(KEY).await;
    let body = r#"{"id":8,"changeVersion":"0000090200004BD0000B","status":"Deleted","timeOfDayInMinutes":480}"#;
    assert_eq!(outcomes(&f.send(signed("clockings", body, KEY)).await.1), ["stored"]);
    let item = f.item("clockings#8").await.unwrap();
    assert_eq!(item["deleted"], AttributeValue::Bool(true));
    assert_eq!((s(&item, "status"), &item["timeOfDayInMinutes"]), ("Deleted", &AttributeValue::N("480".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn records_an_earlier_release_stored_are_replaced_by_newer_versions_only() {
    let f = ReceiverFixture::new(KEY).await;
    let client = aws_sdk_dynamodb::Client::new(&f.config);
    // As an earlier release wrote them: decimal versions padded to 40, others raw.
    for (id, version, order) in
        [(20, "0000090200004BD0000A", "0000090200004BD0000A".to_owned()), (21, "9", format!("{:0>40}", "9"))]
    {
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(format!("clockings#{id}"))),
            ("collection".to_owned(), AttributeValue::S("clockings".into())),
            ("id".to_owned(), AttributeValue::N(id.to_string())),
            ("changeVersion".to_owned(), AttributeValue::S(version.into())),
            ("changeOrder".to_owned(), AttributeValue::S(order)),
            ("deleted".to_owned(), AttributeValue::Bool(false)),
        ]);
        client.put_item().table_name(&f.table).set_item(Some(item)).send().await.unwrap();
    }
    assert_eq!(outcomes(&send_version(&f, 20, "00000902000049999999").await.1), ["stale"]);
    assert_eq!(outcomes(&send_version(&f, 20, "0000090200004BD0000A").await.1), ["duplicate"]);
    assert_eq!(outcomes(&send_version(&f, 20, "00000902000050000000").await.1), ["stored"]);
    assert_eq!(s(&f.item("clockings#20").await.unwrap(), "changeVersion"), "00000902000050000000");
    assert_eq!(outcomes(&send_version(&f, 21, "8").await.1), ["stale"]);
    assert_eq!(outcomes(&send_version(&f, 21, "10").await.1), ["stored"]);
    let item = f.item("clockings#21").await.unwrap();
    assert_eq!((s(&item, "changeVersion"), s(&item, "changeOrder").len()), ("10", 64));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_is_not_resurrected_by_an_older_insert() {
    let f = ReceiverFixture::new(KEY).await;
    send_version(&f, 9, "3").await;
    let delete = r#"{"changeType":"Delete","data":{"id":9,"changeVersion":"5"}}"#;
    assert_eq!(outcomes(&f.send(signed("clockings", delete, KEY)).await.1), ["stored"]);
    let (_, answer) = send_version(&f, 9, "4").await;
    assert_eq!(outcomes(&answer), ["stale"]);
    let item = f.item("clockings#9").await.unwrap();
    assert_eq!(item["deleted"], AttributeValue::Bool(true));
    assert_eq!(s(&item, "changeVersion"), "5");
    // A newer insert after the delete does bring the record back.
    send_version(&f, 9, "6").await;
    assert_eq!(f.item("clockings#9").await.unwrap()["deleted"], AttributeValue::Bool(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_array_body_stores_every_event() {
    let f = ReceiverFixture::new(KEY).await;
    let body = json!([
        {"id": 1, "changeVersion": "1"},
        {"changeType": "InsertOrUpdate", "data": {"id": 2, "changeVersion": "1"}},
        {"changeType": "Delete", "data": {"id": 3, "changeVersion": "1"}},
        {"id": 1, "changeVersion": "1"}
    ])
    .to_string();
    let (status, answer) = f.send(signed("clockings", &body, KEY)).await;
    assert_eq!(status, 200);
    let got = outcomes(&answer);
    assert_eq!(&got[1..3], ["stored", "stored"]);
    // A batch's writes run concurrently: of the two identical events either may be the one
    // stored, and the other is then the duplicate.
    let mut repeated = [got[0], got[3]];
    repeated.sort();
    assert_eq!(repeated, ["duplicate", "stored"]);
    assert_eq!(f.items().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_or_missing_signatures_are_401_and_write_nothing() {
    let f = ReceiverFixture::new(KEY).await;
    let body = br#"{"id":1,"changeVersion":"1"}"#;
    let wrong = protime_webhooks::signing::signature::authorization_header(
        &protime_webhooks::signing::signature::SigningKey::new("other"),
        body,
    );
    for auth in [None, Some("HMAC-SHA256"), Some("Basic dXNlcjpwYXNz"), Some("HMAC-SHA256 AAAA"), Some(wrong.as_str())]
    {
        let (status, answer) = f.send(request("clockings", body, auth)).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(answer["error"]["code"], "invalid_signature");
    }
    assert!(f.items().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_reserialised_after_signing_is_401() {
    let f = ReceiverFixture::new(KEY).await;
    let original = r#"{"id":1,"changeVersion":"1","date":"2025-01-01"}"#;
    let auth = protime_webhooks::signing::signature::authorization_header(
        &protime_webhooks::signing::signature::SigningKey::new(KEY),
        original.as_bytes(),
    );
    let reserialised =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(original).unwrap()).unwrap();
    let (status, _) = f.send(request("clockings", reserialised.as_bytes(), Some(&auth))).await;
    assert_eq!(status, 401);
    assert!(f.items().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_is_400() {
    let f = ReceiverFixture::new(KEY).await;
    let (status, answer) = f.send(signed("clockings", r#"{"id":1,"changeVersion":"1""#, KEY)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_event")));
    let mixed = r#"[{"id":1,"changeVersion":"1"},{"id":2}]"#;
    assert_eq!(f.send(signed("clockings", mixed, KEY)).await.0, 400);
    assert!(f.items().await.is_empty(), "a batch with one invalid event writes nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_collection_is_404() {
    let f = ReceiverFixture::new(KEY).await;
    let (status, answer) = f.send(signed("timesheets", r#"{"id":1,"changeVersion":"1"}"#, KEY)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("unknown_collection")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_body_over_the_limit_is_kept_whole_and_an_unsigned_one_is_413() {
    let f = ReceiverFixture::with_quarantine(KEY).await;
    let body = format!(
        r#"[{{"id":1,"changeVersion":"1","blob":"{}"}}]"#,
        "x".repeat(protime_webhooks::config::DEFAULT_MAX_BODY_BYTES)
    );
    let (status, answer) = f.send(request("clockings", body.as_bytes(), None)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("body_too_large")));
    assert!(f.quarantined().await.is_empty(), "nothing unsigned is kept");
    let (status, answer) = f.send(signed("clockings", &body, KEY)).await;
    assert_eq!((status, answer["quarantined"]["reason"].as_str()), (202, Some("body_too_large")), "{answer}");
    let kept = f.quarantined().await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].1.as_slice(), body.as_bytes(), "byte for byte, for replay");
    assert_eq!(kept[0].2.get("signature").map(String::as_str), Some("verified"));
    assert!(f.items().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_is_413() {
    let f = ReceiverFixture::new(KEY).await;
    let body = format!(
        r#"{{"id":1,"changeVersion":"1","blob":"{}"}}"#,
        "x".repeat(protime_webhooks::config::DEFAULT_MAX_BODY_BYTES)
    );
    let (status, answer) = f.send(signed("clockings", &body, KEY)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("body_too_large")));
    // Under the body limit but over DynamoDB's item limit: also 413, never a retry-forever 503.
    let body = format!(r#"{{"id":1,"changeVersion":"1","blob":"{}"}}"#, "x".repeat(500 * 1024));
    let (status, answer) = f.send(signed("clockings", &body, KEY)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("event_too_large")));
    assert!(f.items().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_rotated_while_warm_is_honoured_without_a_restart() {
    let f = ReceiverFixture::new(KEY).await;
    assert_eq!(send_version(&f, 1, "1").await.0, 200, "warms the key cache");
    put_signing_key(&f.setup, &f.keys_secret, "clockings", "webhook-key-2").await;

    let (status, answer) = f.send(signed("clockings", r#"{"id":1,"changeVersion":"2"}"#, "webhook-key-2")).await;
    assert_eq!((status, outcomes(&answer)), (200, vec!["stored"]));
    // An event signed just before the rotation is still accepted within the grace window.
    let (status, _) = f.send(signed("clockings", r#"{"id":2,"changeVersion":"1"}"#, KEY)).await;
    assert_eq!(status, 200);
    // A key that was never issued is not.
    assert_eq!(f.send(signed("clockings", r#"{"id":3,"changeVersion":"1"}"#, "forged")).await.0, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_signing_key_secret_is_401() {
    let f = ReceiverFixture::new(KEY).await;
    assert_eq!(f.send(signed("breaks", r#"{"id":1,"changeVersion":"1"}"#, KEY)).await.0, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_acknowledged_while_the_emulator_is_down_and_the_retry_is_stored() {
    let moto = Moto::start();
    let f = ReceiverFixture::on(&moto.endpoint(), KEY).await;
    assert_eq!(send_version(&f, 1, "1").await.0, 200, "warms the key cache");

    let port = moto.stop();
    let event = r#"{"id":2,"changeVersion":"1"}"#;
    let (status, answer) = f.send(signed("clockings", event, KEY)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("store_unavailable")));

    // The emulator comes back empty: recreate what the deployment holds, then Protime retries.
    let moto = Moto::start_on(port);
    harness::create_table(&f.setup, &f.table).await;
    put_signing_key(&f.setup, &f.keys_secret, "clockings", KEY).await;
    let (status, answer) = f.send(signed("clockings", event, KEY)).await;
    assert_eq!((status, outcomes(&answer)), (200, vec!["stored"]));
    let items: Vec<HashMap<_, _>> = f.items().await;
    assert_eq!(items.len(), 1);
    drop(moto);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_secrets_manager_at_cold_start_is_503() {
    let moto = Moto::start();
    let f = ReceiverFixture::on(&moto.endpoint(), KEY).await;
    drop(moto);
    let (status, answer) = send_version(&f, 1, "1").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("keys_unavailable")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_body_that_is_no_event_is_kept_byte_for_byte_in_the_quarantine_bucket() {
    let f = ReceiverFixture::with_quarantine(KEY).await;
    let body = "{\"id\": 1, \"changeVersion\": not json at all";
    let (status, answer) = f.send(signed("clockings", body, KEY)).await;
    assert_eq!((status, answer["quarantined"]["reason"].as_str()), (202, Some("not_json")), "{answer}");
    let kept = f.quarantined().await;
    assert_eq!(kept.len(), 1);
    let (key, bytes, metadata) = &kept[0];
    assert_eq!(answer["quarantined"]["key"].as_str(), Some(key.as_str()));
    assert!(key.starts_with("clockings/") && key.ends_with(".json"), "{key}");
    assert_eq!(bytes.as_slice(), body.as_bytes());
    assert_eq!(metadata.get("reason").map(String::as_str), Some("not_json"));
    assert_eq!(metadata.get("collection").map(String::as_str), Some("clockings"));
    assert_eq!(metadata.get("signature").map(String::as_str), Some("verified"));
    assert!(f.items().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn one_unstorable_event_of_a_batch_is_quarantined_and_the_others_are_stored() {
    let f = ReceiverFixture::with_quarantine(KEY).await;
    // moto stores an empty attribute name; DynamoDB refuses it: checked before writing.
    let unstorable = r#"{"id":2,"changeVersion":"1","person":{"":7}}"#;
    let body = format!(r#"[{{"id":1,"changeVersion":"1"}},{unstorable},{{"id":3,"changeVersion":"1"}}]"#);
    let (status, answer) = f.send(signed("clockings", &body, KEY)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(outcomes(&answer), ["stored", "quarantined", "stored"]);
    assert_eq!(answer["results"][1]["reason"], "empty_attribute_name");
    let kept = f.quarantined().await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].1.as_slice(), unstorable.as_bytes(), "the event's own text, byte for byte");
    assert_eq!(kept[0].2.get("record-id").map(String::as_str), Some("2"));
    let mut stored: Vec<String> = f.items().await.iter().map(|i| s(i, "pk").to_owned()).collect();
    stored.sort();
    assert_eq!(stored, ["clockings#1", "clockings#3"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_bodies_never_reach_the_quarantine_bucket() {
    let f = ReceiverFixture::with_quarantine(KEY).await;
    let (status, _) = f.send(request("clockings", b"not json", None)).await;
    assert_eq!(status, 401);
    let (status, _) = f.send(signed("clockings", "not json", "another-key")).await;
    assert_eq!(status, 401);
    assert!(f.quarantined().await.is_empty());
}
