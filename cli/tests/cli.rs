//! The `protime-webhooks` binary against moto: every command, its text and its JSON, and its exit
//! code (0 healthy, 1 error, 2 something unhealthy).

use chrono::{Duration, Utc};
use harness::{signed, ReceiverFixture};
use protime_webhooks::protime::WebhookStatus;
use protime_webhooks::renewer::plan::SubscriptionState;
use protime_webhooks::renewer::state::{DynamoSubscriptionStore, SubscriptionStore};
use protime_webhooks::Collection;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

const KEY: &str = "cli-key-1";

/// Runs the CLI against the fixture's table, bucket and keys; returns (exit code, stdout).
fn cli(f: &ReceiverFixture, args: &[&str]) -> (i32, String) {
    let output = command(f, args).output().expect("run protime-webhooks");
    result(output)
}

fn command(f: &ReceiverFixture, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_protime-webhooks"));
    command
        .args(["--endpoint-url", &harness::shared_moto().endpoint(), "--region", "us-east-1"])
        .args(["--table", &f.table, "--key-prefix", &f.prefix])
        .args(f.bucket.iter().flat_map(|b| ["--bucket", b.as_str()]))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .env_remove("TABLE_NAME")
        .env_remove("QUARANTINE_BUCKET")
        .env("NO_COLOR", "1");
    command
}

fn result(output: Output) -> (i32, String) {
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    (output.status.code().unwrap_or(-1), stdout)
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

async fn subscription(f: &ReceiverFixture, collection: Collection, status: WebhookStatus, hours_left: i64) {
    let now = Utc::now();
    let state = SubscriptionState {
        webhook_id: Some(format!("w-{collection}")),
        status: Some(status),
        valid_until: Some(now + Duration::hours(hours_left)),
        destination_url: Some(format!("https://api.example.com/webhooks/{collection}")),
        external_references: Some(String::new()),
        last_renewed_at: Some(now - Duration::hours(1)),
        last_seen_enabled_at: Some(now),
        ..Default::default()
    };
    let store = DynamoSubscriptionStore::new(aws_sdk_dynamodb::Client::new(&f.config), &f.table);
    store.save(collection, &state).await.expect("save state");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_is_healthy_when_every_subscription_is_enabled_and_not_due() {
    let f = ReceiverFixture::with_quarantine(KEY).await;
    subscription(&f, Collection::Clockings, WebhookStatus::Enabled, 700).await;
    subscription(&f, Collection::Breaks, WebhookStatus::Enabled, 500).await;
    let (code, out) = cli(&f, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let report = json(&out);
    assert_eq!(report["healthy"], true);
    let rows = report["collections"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["collection"].as_str().unwrap()).collect::<Vec<_>>(), ["breaks", "clockings"]);
    let clockings = &rows[1];
    assert_eq!((clockings["status"].as_str(), clockings["webhookId"].as_str()), (Some("Enabled"), Some("w-clockings")));
    assert_eq!(clockings["problems"], serde_json::json!([]));
    assert_eq!(clockings["quarantinedLast24h"], 0);
    assert!(clockings["hoursLeft"].as_f64().unwrap() > 699.0);

    let (code, text) = cli(&f, &["status"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("COLLECTION  STATUS   WEBHOOK"), "{text}");
    assert!(lines[2].starts_with("clockings   Enabled  w-clockings"), "{text}");
    assert!(lines[2].ends_with("-           0                ok"), "no event yet: {text}");

    // The receiver notes when it last acknowledged an event of the collection.
    assert_eq!(clockings["lastEventAt"], Value::Null);
    assert_eq!(f.send(signed("clockings", r#"{"id":5,"changeVersion":"1"}"#, KEY)).await.0, 200);
    let (_, out) = cli(&f, &["status", "--json"]);
    let noted = json(&out)["collections"][1]["lastEventAt"].as_str().map(str::to_owned).expect("lastEventAt");
    let noted = chrono::DateTime::parse_from_rfc3339(&noted).unwrap();
    assert!((Utc::now() - noted.with_timezone(&Utc)).num_seconds() < 60, "{noted}");
    assert_eq!(json(&out)["collections"][0]["lastEventAt"], Value::Null, "breaks had no event");
}

#[tokio::test(flavor = "multi_thread")]
async fn expiring_and_disabled_subscriptions_are_unhealthy_with_exit_code_2() {
    let f = ReceiverFixture::new(KEY).await;
    subscription(&f, Collection::Clockings, WebhookStatus::Enabled, 10).await;
    subscription(&f, Collection::Breaks, WebhookStatus::Disabled, -5).await;
    subscription(&f, Collection::People, WebhookStatus::Enabled, 700).await;
    let (code, out) = cli(&f, &["status", "--json"]);
    assert_eq!(code, 2, "{out}");
    let report = json(&out);
    let problems = |c: &str| {
        let row = report["collections"].as_array().unwrap().iter().find(|r| r["collection"] == c).unwrap().clone();
        row["problems"].clone()
    };
    assert_eq!(problems("clockings"), serde_json::json!(["expiring"]));
    assert_eq!(problems("breaks"), serde_json::json!(["disabled", "expiring"]));
    assert_eq!(problems("people"), serde_json::json!([]));
    let (code, text) = cli(&f, &["status", "--collections", "clockings,paid-presences"]);
    assert_eq!(code, 2);
    assert!(text.lines().any(|l| l.starts_with("paid-presences") && l.ends_with("no subscription")), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_says_which_key_matched_or_why_none_did_and_never_prints_a_key() {
    let f = ReceiverFixture::new(KEY).await;
    let dir = std::env::temp_dir().join(harness::unique("cli-verify"));
    std::fs::create_dir_all(&dir).unwrap();
    let body_file = dir.join("body.json");
    let body = br#"{"id":1,"changeVersion":"1"}"#;
    std::fs::write(&body_file, body).unwrap();
    let body_path = body_file.to_str().unwrap();
    let sign = |key: &str| {
        protime_webhooks::receiver::signature::authorization_header(
            &protime_webhooks::receiver::signature::SigningKey::new(key),
            body,
        )
    };

    let (code, out) = cli(&f, &["verify", "clockings", "--body", body_path, "--signature", &sign(KEY)]);
    assert_eq!((code, out.as_str()), (0, "the signature matches the current key\n"));
    // The bare base64, as some captures hold it.
    let bare = sign(KEY).split_once(' ').unwrap().1.to_owned();
    assert_eq!(cli(&f, &["verify", "clockings", "--body", body_path, "--signature", &bare]).0, 0);

    harness::put_secret(&f.config, &format!("{}clockings", f.prefix), "cli-key-2").await;
    let (code, out) = cli(&f, &["verify", "clockings", "--body", body_path, "--signature", &sign(KEY), "--json"]);
    assert_eq!((code, json(&out)["matched"].as_str()), (0, Some("previous")));

    let (code, out) = cli(&f, &["verify", "clockings", "--body", body_path, "--signature", &sign("forged"), "--json"]);
    assert_eq!(
        (code, json(&out)["reason"].as_str(), json(&out)["matched"].clone()),
        (2, Some("mismatch"), Value::Null)
    );
    let (code, out) =
        cli(&f, &["verify", "clockings", "--body", body_path, "--signature", "HMAC-SHA256 !!!", "--json"]);
    assert_eq!((code, json(&out)["reason"].as_str()), (2, Some("invalid_base64")));
    let (code, out) = cli(&f, &["verify", "breaks", "--body", body_path, "--signature", &sign(KEY), "--json"]);
    assert_eq!((code, json(&out)["reason"].as_str()), (2, Some("no_key")));
    for output in [out, cli(&f, &["verify", "clockings", "--body", body_path, "--signature", &sign("x")]).1] {
        assert!(!output.contains(KEY) && !output.contains("cli-key-2"), "{output}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_prints_the_stored_record_and_exits_2_when_there_is_none() {
    let f = ReceiverFixture::new(KEY).await;
    let body = r#"{"changeType":"Delete","data":{"id":42,"changeVersion":"0000090200004BD0000A"}}"#;
    assert_eq!(f.send(signed("clockings", body, KEY)).await.0, 200);
    let (code, out) = cli(&f, &["get", "clockings", "42", "--json"]);
    assert_eq!(code, 0, "{out}");
    let record = &json(&out)["record"];
    assert_eq!(
        (record["changeVersion"].as_str(), record["deleted"].as_bool()),
        (Some("0000090200004BD0000A"), Some(true))
    );
    assert_eq!(record["source"], "webhook");
    let (code, text) = cli(&f, &["get", "clockings", "42"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("changeVersion   0000090200004BD0000A\n") && text.contains("deleted         yes (tombstone)\n"),
        "{text}"
    );
    let (code, text) = cli(&f, &["get", "clockings", "43"]);
    assert_eq!((code, text.as_str()), (2, "no record clockings#43\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn quarantine_list_and_show_give_back_what_the_receiver_kept() {
    let f = ReceiverFixture::with_quarantine(KEY).await;
    let (status, answer) = f.send(signed("clockings", "definitely not json", KEY)).await;
    assert_eq!(status, 202);
    let key = answer["quarantined"]["key"].as_str().unwrap().to_owned();

    let (code, out) = cli(&f, &["quarantine", "list", "--json"]);
    assert_eq!(code, 0, "{out}");
    let objects = json(&out)["objects"].clone();
    assert_eq!(objects.as_array().unwrap().len(), 1);
    assert_eq!((objects[0]["key"].as_str(), objects[0]["reason"].as_str()), (Some(key.as_str()), Some("not_json")));
    let tomorrow = (Utc::now() + Duration::days(1)).format("%Y-%m-%d").to_string();
    let (_, out) = cli(&f, &["quarantine", "list", "--since", &tomorrow, "--json"]);
    assert_eq!(json(&out)["objects"], serde_json::json!([]));
    let (_, out) = cli(&f, &["quarantine", "list", "--collection", "breaks", "--json"]);
    assert_eq!(json(&out)["objects"], serde_json::json!([]));

    let (code, text) = cli(&f, &["quarantine", "show", &key]);
    assert_eq!(code, 0);
    assert!(text.contains("reason: not_json\n") && text.contains("signature: verified\n"), "{text}");
    assert!(text.ends_with("\ndefinitely not json\n"), "{text}");
}

/// Puts an object into the quarantine bucket as the receiver does.
async fn kept(f: &ReceiverFixture, key: &str, body: &str, reason: &str) {
    protime_webhooks::records::quarantine::S3Quarantine::client(&f.config)
        .put_object()
        .bucket(f.bucket.as_deref().unwrap())
        .key(key)
        .body(body.as_bytes().to_vec().into())
        .metadata("reason", reason)
        .metadata("collection", "clockings")
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_after_the_fix_stores_the_body_once_and_a_second_replay_changes_nothing() {
    let f = ReceiverFixture::with_quarantine(KEY).await;
    // Kept by a release that refused it (say, a changeVersion rule since relaxed): storable now.
    kept(
        &f,
        "clockings/2026/11/01/090000.000Z-a.json",
        r#"{"id":77,"changeVersion":"0000090200004BD0000A"}"#,
        "dynamodb_validation",
    )
    .await;
    // Still unstorable under today's rules.
    kept(
        &f,
        "clockings/2026/11/01/090001.000Z-b.json",
        r#"{"id":78,"changeVersion":"1","":"x"}"#,
        "empty_attribute_name",
    )
    .await;

    let (code, out) = cli(&f, &["quarantine", "replay", "--all", "--dry-run", "--json"]);
    assert_eq!(code, 2, "{out}");
    let outcomes: Vec<String> =
        json(&out)["objects"].as_array().unwrap().iter().map(|o| o["outcome"].as_str().unwrap().to_owned()).collect();
    assert_eq!(outcomes, ["would-replay", "still-unstorable"]);
    assert!(f.item("clockings#77").await.is_none(), "a dry run writes nothing");

    let (code, text) = cli(&f, &["quarantine", "replay", "--all"]);
    assert_eq!(code, 2, "one body is still unstorable: {text}");
    assert!(text.contains("090000.000Z-a.json  replayed: 77 stored\n"), "{text}");
    assert!(text.contains("090001.000Z-b.json  still unstorable (empty_attribute_name)\n"), "{text}");
    let stored = f.item("clockings#77").await.expect("replayed into the table");
    assert_eq!(
        (harness::s(&stored, "changeVersion"), harness::s(&stored, "source")),
        ("0000090200004BD0000A", "webhook")
    );

    let (_, out) = cli(&f, &["quarantine", "replay", "clockings/2026/11/01/090000.000Z-a.json", "--json"]);
    let object = &json(&out)["objects"][0];
    assert_eq!(object["outcome"], "already-replayed", "{out}");
    assert_eq!(f.item("clockings#77").await.unwrap(), stored, "the second replay changes nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_signs_with_the_stored_key_and_prints_the_receivers_answer() {
    let f = ReceiverFixture::new(KEY).await;
    let config = protime_webhooks::config::ReceiverConfig::new(f.table.clone(), f.prefix.clone());
    let receiver = protime_webhooks::receiver::AwsReceiver::from_config(&config, &f.config);
    let server = harness::ReceiverServer::start(std::sync::Arc::new(receiver)).await;
    let url = format!("{}/webhooks/clockings", server.base_url());
    let mut child = command(&f, &["send", "clockings", "--body", "-", "--url", &url, "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(br#"{"id":7,"changeVersion":"3"}"#).unwrap();
    let (code, out) = result(tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap());
    assert_eq!(code, 0, "{out}");
    let answer = json(&out);
    assert_eq!(
        (answer["status"].as_u64(), answer["body"]["results"][0]["outcome"].as_str()),
        (Some(200), Some("stored"))
    );
    assert!(f.item("clockings#7").await.is_some());
}

#[test]
fn every_command_has_help_and_a_missing_table_is_a_clear_error() {
    for args in [&["--help"][..], &["status", "--help"], &["verify", "--help"], &["quarantine", "list", "--help"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_protime-webhooks")).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("Usage:"), "{args:?}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_protime-webhooks"))
        .args(["status", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"])
        .env_remove("TABLE_NAME")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "protime-webhooks: no record table: pass --table or set TABLE_NAME\n"
    );
}
