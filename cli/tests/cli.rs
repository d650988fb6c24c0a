//! The `protime-webhooks` binary against moto: every command, its text and its JSON, and its exit
//! code (0 healthy, 1 error, 2 something unhealthy).

use axum::extract::{Path, State};
use chrono::{Duration, Utc};
use harness::feed::Feed;
use harness::simulator::{Fault, ScopeRefusal, SimulatorConfig};
use harness::{signed, ReceiverFixture, Stack};
use protime_webhooks::protime::WebhookStatus;
use protime_webhooks::renewer::plan::SubscriptionState;
use protime_webhooks::renewer::state::{DynamoSubscriptionStore, SubscriptionStore};
use protime_webhooks::sync::apply::RecordCounts;
use protime_webhooks::sync::state::{sync_item, Phase, SyncMode, SyncState};
use protime_webhooks::sync::{AwsSyncer, SyncRunError};
use protime_webhooks::Collection;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

const KEY: &str = "cli-key-1";

/// Runs the CLI against the fixture's table, bucket and keys; returns (exit code, stdout).
fn cli(f: &ReceiverFixture, args: &[&str]) -> (i32, String) {
    let output = command(f, args).output().expect("run protime-webhooks");
    result(output)
}

fn command(f: &ReceiverFixture, args: &[&str]) -> Command {
    let mut command = bare_command();
    command
        .args(["--table", &f.table, "--keys-secret", &f.keys_secret])
        .args(f.bucket.iter().flat_map(|b| ["--bucket", b.as_str()]))
        .args(args);
    command
}

/// The CLI against moto, naming no resource: they come from `--stack` or the variables set.
fn bare_command() -> Command {
    bare_command_on(&harness::shared_moto().endpoint())
}

/// The same against the emulator at `endpoint`.
fn bare_command_on(endpoint: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_protime-webhooks"));
    command
        .args(["--endpoint-url", endpoint, "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("NO_COLOR", "1");
    for name in [
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_LAMBDA",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_ENDPOINT_URL_CLOUDFORMATION",
        "TABLE_NAME",
        "QUARANTINE_BUCKET",
        "SYNCER_FUNCTION",
        "SIGNING_KEYS_SECRET",
        "EVENT_BUS_NAME",
        "AWS_ENDPOINT_URL_EVENTBRIDGE",
        "FIELD_POLICY",
        "TOMBSTONE_RETENTION_DAYS",
    ] {
        command.env_remove(name);
    }
    command
}

/// Runs a command off the async runtime (the test's own servers keep answering); returns
/// (exit code, stdout, stderr).
async fn run(mut command: Command) -> (i32, String, String) {
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run protime-webhooks");
    let stderr = String::from_utf8(output.stderr.clone()).expect("utf-8 errors");
    let (code, stdout) = result(output);
    (code, stdout, stderr)
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
        // 90 s more, so the hours left read the same while the test runs (snapshots).
        valid_until: Some(now + Duration::hours(hours_left) + Duration::seconds(90)),
        destination_url: Some(format!("https://api.example.com/webhooks/{collection}")),
        external_references: Some(String::new()),
        last_renewed_at: Some(now - Duration::hours(1)),
        last_seen_enabled_at: Some(now),
        ..Default::default()
    };
    let store = DynamoSubscriptionStore::new(aws_sdk_dynamodb::Client::new(&f.setup), &f.table);
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
    // LAST EVENT, QUARANTINED 24H, SYNC, INITIAL LOAD, LAG, VERIFIED, DRIFT, PROBLEMS: no event,
    // no sync item yet.
    let last: Vec<&str> = lines[2].split_whitespace().rev().take(8).collect();
    assert_eq!(last, ["ok", "-", "-", "-", "-", "-", "0", "-"], "no event yet: {text}");
    assert_eq!(clockings["sync"], Value::Null, "no sync item");

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
        protime_webhooks::signing::signature::authorization_header(
            &protime_webhooks::signing::signature::SigningKey::new(key),
            body,
        )
    };

    let (code, out) = cli(&f, &["verify", "clockings", "--body", body_path, "--signature", &sign(KEY)]);
    assert_eq!((code, out.as_str()), (0, "the signature matches the current key\n"));
    // The bare base64, as some captures hold it.
    let bare = sign(KEY).split_once(' ').unwrap().1.to_owned();
    assert_eq!(cli(&f, &["verify", "clockings", "--body", body_path, "--signature", &bare]).0, 0);

    harness::put_signing_key(&f.setup, &f.keys_secret, "clockings", "cli-key-2").await;
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
    assert!(
        text.contains("expiresAt       ") && text.contains("(the table's TTL removes the tombstone then)"),
        "{text}"
    );
    let (code, text) = cli(&f, &["get", "clockings", "43"]);
    assert_eq!((code, text.as_str()), (2, "no record clockings#43\n"));
}

/// `apply-field-policy` with the policy of this shell: says which policy it applies and from
/// where before writing, rewrites what the policy changes once, and a second run nothing.
#[tokio::test(flavor = "multi_thread")]
async fn apply_field_policy_rewrites_what_the_policy_changes_once() {
    let f = ReceiverFixture::new(KEY).await;
    for id in [1, 2] {
        let record = serde_json::json!({"id": id, "changeVersion": "0000090200004BD0000A", "date": "2026-12-01",
                                        "person": {"id": 4}, "comment": format!("note {id}")});
        assert_eq!(f.send(signed("clockings", &record.to_string(), KEY)).await.0, 200);
    }
    let apply = || {
        let mut command = command(&f, &["apply-field-policy", "--segments", "1"]);
        command.env("FIELD_POLICY", "clockings.comment=drop");
        command
    };
    let (code, out, stderr) = run(apply()).await;
    assert_eq!(code, 0, "{out}{stderr}");
    assert!(stderr.contains("field policy clockings.comment=drop (FIELD_POLICY in this shell)"), "{stderr}");
    assert!(out.contains("rewritten           2\n"), "{out}");
    let item = f.item("clockings#1").await.unwrap();
    assert!(!item.contains_key("comment") && item.contains_key("policyAppliedAt"), "{item:?}");
    let (code, out, _) = run(apply()).await;
    assert_eq!(code, 0);
    assert!(out.contains("rewritten           0\n"), "a second run changes nothing: {out}");
    let mut bad = command(&f, &["apply-field-policy"]);
    bad.env("FIELD_POLICY", "clockings.comment=erase");
    let (code, _, stderr) = run(bad).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("FIELD_POLICY entry \"clockings.comment=erase\""), "{stderr}");
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

/// Puts an object into the quarantine bucket as the receiver does, or (`metadata` empty) as
/// someone else with `s3:PutObject` on the bucket could.
async fn put_kept(f: &ReceiverFixture, key: &str, body: &str, reason: &str, metadata: &[(&str, &str)]) {
    let mut put = protime_webhooks::records::quarantine::S3Quarantine::client(&f.setup)
        .put_object()
        .bucket(f.bucket.as_deref().unwrap())
        .key(key)
        .body(body.as_bytes().to_vec().into())
        .metadata("reason", reason)
        .metadata("collection", "clockings");
    for (name, value) in metadata {
        put = put.metadata(*name, *value);
    }
    put.send().await.unwrap();
}

async fn kept(f: &ReceiverFixture, key: &str, body: &str, reason: &str) {
    put_kept(f, key, body, reason, &[("source", "webhook"), ("signature", "verified")]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_refuses_objects_the_functions_did_not_keep_and_changes_of_another_type() {
    let f = ReceiverFixture::with_quarantine(KEY).await;
    let record = r#"{"id":81,"changeVersion":"0000090200004BD0000A","hours":8}"#;
    // Put by hand: no source, no verified signature.
    put_kept(&f, "clockings/2026/11/01/100000.000Z-a.json", record, "not_json", &[]).await;
    // A webhook body whose signature was never verified.
    put_kept(&f, "clockings/2026/11/01/100001.000Z-b.json", record, "not_json", &[("source", "webhook")]).await;
    // Kept by the syncer as a Delete, but the body is live data: it would undelete the record.
    put_kept(
        &f,
        "clockings/2026/11/01/100002.000Z-c.json",
        record,
        "number_out_of_range",
        &[("source", "delta"), ("change-type", "Delete"), ("record-id", "81")],
    )
    .await;
    // Kept by a 0.1.0 receiver (signature verified, no source yet): replayed.
    put_kept(
        &f,
        "clockings/2026/11/01/100003.000Z-d.json",
        r#"{"id":82,"changeVersion":"0000090200004BD0000A"}"#,
        "dynamodb_validation",
        &[("signature", "verified")],
    )
    .await;

    let (code, out) = cli(&f, &["quarantine", "replay", "--all", "--json"]);
    assert_eq!(code, 2, "{out}");
    let objects = json(&out)["objects"].as_array().unwrap().clone();
    let verdicts: Vec<(String, String)> = objects
        .iter()
        .map(|o| (o["outcome"].as_str().unwrap().to_owned(), o["reason"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("refused".to_owned(), "unknown_source".to_owned()),
            ("refused".to_owned(), "unverified".to_owned()),
            ("refused".to_owned(), "change_type_mismatch".to_owned()),
            ("replayed".to_owned(), String::new()),
        ],
        "{out}"
    );
    assert!(f.item("clockings#81").await.is_none(), "nothing refused reaches the table");
    let stored = f.item("clockings#82").await.expect("the 0.1.0 body replayed");
    assert_eq!(harness::s(&stored, "source"), "webhook");
    let (code, text) = cli(&f, &["quarantine", "replay", "clockings/2026/11/01/100000.000Z-a.json"]);
    assert_eq!(code, 2);
    assert!(text.contains("100000.000Z-a.json  refused: its metadata names no source"), "{text}");
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
    let config = protime_webhooks::config::ReceiverConfig::new(f.table.clone(), f.keys_secret.clone());
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
    for args in [
        &["--help"][..],
        &["status", "--help"],
        &["sync", "--help"],
        &["verify", "--help"],
        &["quarantine", "list", "--help"],
        &["query", "--help"],
        &["migrate-indexes", "--help"],
        &["republish", "--help"],
    ] {
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

// ---- sync state in `status` -------------------------------------------------------------------

/// Writes a collection's `sync#<collection>` item as the syncer's checkpoints do.
async fn sync_state(f: &ReceiverFixture, collection: Collection, state: &SyncState) {
    aws_sdk_dynamodb::Client::new(&f.setup)
        .put_item()
        .table_name(&f.table)
        .set_item(Some(sync_item(collection, state).unwrap()))
        .send()
        .await
        .expect("put the sync item");
}

/// A collection whose baseline is complete and whose last round ended `ago`.
fn synced(mode: SyncMode, ago: Duration) -> SyncState {
    let now = Utc::now();
    SyncState {
        mode: Some(mode),
        phase: Some(Phase::Incremental),
        cursor: (mode == SyncMode::Delta).then(|| format!("/delta/x?deltaToken={CURSOR_TOKEN}")),
        cursor_at: Some(now - ago),
        filter: Some("date ge '2025-01-01'".into()),
        from: chrono::NaiveDate::from_ymd_opt(2025, 1, 1),
        pages: 40,
        records: RecordCounts { fetched: 100, stored: 100, ..Default::default() },
        started_at: Some(now - Duration::days(3)),
        initial_completed_at: Some(now - Duration::days(2)),
        last_synced_at: Some(now - ago),
        ..Default::default()
    }
}

const CURSOR_TOKEN: &str = "cursor-s3cr3t";
const ERROR_TOKEN: &str = "error-s3cr3t";

/// Timestamps vary from run to run, and so does a lag of a few seconds (the time a pass's sweep
/// took after its last page): replaced by placeholders of the same width, so the columns stay
/// aligned; everything else in these snapshots is fixed.
fn snapshot_filters() -> Vec<(&'static str, &'static str)> {
    vec![(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "YYYY-MM-DDThh:mm:ssZ"), (r"  \ds  ", "  Ns  ")]
}

fn row<'a>(report: &'a Value, collection: &str) -> &'a Value {
    report["collections"].as_array().unwrap().iter().find(|r| r["collection"] == collection).expect(collection)
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("an object").keys().cloned().collect();
    keys.sort();
    keys
}

/// The `sync` object's schema: every key always present (null when unknown).
const SYNC_KEYS: [&str; 21] = [
    "cursorAt",
    "deltaExpiredAt",
    "drift",
    "errorRuns",
    "filter",
    "from",
    "history",
    "historyFailing",
    "initialLoad",
    "lagSeconds",
    "lastError",
    "lastErrorAt",
    "lastSyncedAt",
    "mode",
    "phase",
    "reconcileFailing",
    "reconciling",
    "running",
    "sweepHeld",
    "to",
    "verifiedAt",
];

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_sync_progress_and_lag_and_an_initial_load_alone_is_not_unhealthy() {
    let f = ReceiverFixture::with_quarantine(KEY).await;
    for collection in [Collection::Clockings, Collection::Breaks, Collection::People] {
        subscription(&f, collection, WebhookStatus::Enabled, 700).await;
    }
    // Incremental, last round 5 minutes ago.
    sync_state(&f, Collection::Clockings, &synced(SyncMode::Delta, Duration::seconds(5 * 60 + 10))).await;
    // The initial load is under way: 4 pages, 12 records so far.
    let loading = SyncState {
        mode: Some(SyncMode::Delta),
        phase: Some(Phase::Initial),
        cursor: Some(format!("/breaks?$skipToken={CURSOR_TOKEN}")),
        cursor_at: Some(Utc::now()),
        pages: 4,
        records: RecordCounts { fetched: 12, stored: 12, ..Default::default() },
        started_at: Some(Utc::now() - Duration::minutes(10)),
        ..Default::default()
    };
    sync_state(&f, Collection::Breaks, &loading).await;
    // Its last delta round 10 minutes ago.
    sync_state(&f, Collection::People, &synced(SyncMode::Delta, Duration::minutes(10))).await;

    let (code, out) = cli(&f, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let report = json(&out);
    assert_eq!(report["healthy"], true);
    let clockings = &row(&report, "clockings")["sync"];
    assert_eq!(keys(clockings), SYNC_KEYS, "the sync object's schema");
    assert_eq!(keys(&clockings["initialLoad"]), ["complete", "completedAt", "pages", "startedAt", "stored"]);
    assert_eq!((clockings["mode"].as_str(), clockings["phase"].as_str()), (Some("delta"), Some("incremental")));
    assert_eq!(
        (clockings["initialLoad"]["complete"].as_bool(), clockings["initialLoad"]["pages"].clone()),
        (Some(true), Value::Null)
    );
    let lag = clockings["lagSeconds"].as_i64().unwrap();
    assert!((310..400).contains(&lag), "{lag}");
    assert_eq!((clockings["errorRuns"].as_u64(), clockings["running"].as_bool()), (Some(0), Some(false)));
    let breaks = row(&report, "breaks");
    assert_eq!(breaks["problems"], serde_json::json!([]), "a load under way is shown, not unhealthy");
    let load = &breaks["sync"]["initialLoad"];
    assert_eq!(
        (load["complete"].as_bool(), load["pages"].as_u64(), load["stored"].as_u64()),
        (Some(false), Some(4), Some(12))
    );
    assert_eq!(breaks["sync"]["lagSeconds"], Value::Null, "never complete: no lag yet");
    let people = &row(&report, "people")["sync"];
    let lag = people["lagSeconds"].as_i64().unwrap();
    assert!((600..700).contains(&lag), "{lag}");
    assert!(!out.contains(CURSOR_TOKEN) && !out.contains("cursor\""), "the cursor is never printed: {out}");

    let (code, text) = cli(&f, &["status"]);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains(CURSOR_TOKEN));
    insta::with_settings!({ filters => snapshot_filters() }, {
        insta::assert_snapshot!("status_sync_healthy", text);
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn status_flags_a_lagging_copy_and_a_sync_error_with_exit_code_2_and_never_prints_a_token() {
    let f = ReceiverFixture::with_quarantine(KEY).await;
    for collection in [Collection::Clockings, Collection::PaidPresences, Collection::Absences] {
        subscription(&f, collection, WebhookStatus::Enabled, 700).await;
    }
    sync_state(&f, Collection::Clockings, &synced(SyncMode::Delta, Duration::seconds(5 * 60 + 10))).await;
    // Last complete round 2 hours ago: over the 2700 s alarm threshold.
    sync_state(&f, Collection::PaidPresences, &synced(SyncMode::Delta, Duration::minutes(120))).await;
    // The last two runs failed; the message quotes a page URL with its delta token.
    let failing = SyncState {
        last_error: Some(format!(
            "fetching a page: could not reach Protime: error sending request for url \
             (http://127.0.0.1:1/api/v1/delta/absences?deltaToken={ERROR_TOKEN})"
        )),
        last_error_at: Some(Utc::now() - Duration::minutes(1)),
        error_runs: 2,
        ..synced(SyncMode::Delta, Duration::minutes(20))
    };
    sync_state(&f, Collection::Absences, &failing).await;
    // A sync item without a subscription still gets its row.
    sync_state(&f, Collection::Counters, &synced(SyncMode::Delta, Duration::minutes(3))).await;

    let (code, out) = cli(&f, &["status", "--json"]);
    assert_eq!(code, 2, "{out}");
    let report = json(&out);
    assert_eq!(report["healthy"], false);
    let names: Vec<&str> =
        report["collections"].as_array().unwrap().iter().map(|r| r["collection"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.contains(&"counters"), "a row for every sync item: {names:?}");
    assert_eq!(row(&report, "clockings")["problems"], serde_json::json!([]));
    assert_eq!(row(&report, "paid-presences")["problems"], serde_json::json!(["lagging"]));
    assert_eq!(row(&report, "absences")["problems"], serde_json::json!(["sync error"]));
    assert_eq!(row(&report, "counters")["problems"], serde_json::json!(["no subscription"]));
    let absences = &row(&report, "absences")["sync"];
    assert_eq!(absences["errorRuns"], 2);
    assert!(absences["lastError"].as_str().unwrap().contains("deltaToken=[redacted])"), "{absences}");
    for secret in [CURSOR_TOKEN, ERROR_TOKEN] {
        assert!(!out.contains(secret), "{out}");
    }

    let (code, text) = cli(&f, &["status"]);
    assert_eq!(code, 2, "{text}");
    for secret in [CURSOR_TOKEN, ERROR_TOKEN] {
        assert!(!text.contains(secret), "{text}");
    }
    insta::with_settings!({ filters => snapshot_filters() }, {
        insta::assert_snapshot!("status_sync_unhealthy", text);
    });

    // A higher threshold: the 2 h lag is no longer a problem.
    let (_, out) = cli(&f, &["status", "--json", "--max-lag-seconds", "10000"]);
    assert_eq!(row(&json(&out), "paid-presences")["problems"], serde_json::json!([]));
}

// ---- `sync`: Lambda's Invoke API served by a real syncer -------------------------------------

/// Lambda's Invoke API for one function name, running a real syncer on each payload as the
/// syncer function does: its report, or Lambda's function error for a run that failed.
struct LambdaServer {
    url: String,
    payloads: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LambdaServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Lambda {
    name: String,
    syncer: AwsSyncer,
    payloads: Arc<Mutex<Vec<Value>>>,
    style: Style,
}

/// How errors are answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// As Lambda: a failed invocation is 200 with `X-Amz-Function-Error`; an unknown function
    /// 404 `ResourceNotFoundException`.
    Lambda,
    /// As `cargo lambda watch` (the local stack): a failed invocation is 500 with the error as
    /// the body, its type the handler's Rust type name; an unknown function 404 "Missing
    /// function".
    CargoLambdaWatch,
}

impl LambdaServer {
    async fn start(stack: &Stack, name: &str, vars: &[(&str, &str)]) -> LambdaServer {
        LambdaServer::start_as(Style::Lambda, stack, name, vars).await
    }

    async fn start_as(style: Style, stack: &Stack, name: &str, vars: &[(&str, &str)]) -> LambdaServer {
        let payloads = Arc::new(Mutex::new(Vec::new()));
        let syncer = stack.syncer(vars);
        let lambda = Arc::new(Lambda { name: name.into(), syncer, payloads: payloads.clone(), style });
        let app = axum::Router::new()
            .route("/2015-03-31/functions/{name}/invocations", axum::routing::post(invoke))
            .with_state(lambda);
        let (addr, task) = harness::serve_on_loopback(app, 0).await;
        LambdaServer { url: format!("http://{addr}"), payloads, task }
    }

    fn payloads(&self) -> Vec<Value> {
        self.payloads.lock().unwrap().clone()
    }
}

async fn invoke(
    State(lambda): State<Arc<Lambda>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let watch = lambda.style == Style::CargoLambdaWatch;
    if name != lambda.name && watch {
        let detail = "that function doesn't exist as a binary in your project. Available functions: {\"syncer\"}";
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({ "detail": detail, "title": "Missing function" })),
        )
            .into_response();
    }
    if name != lambda.name {
        let message = format!("Function not found: arn:aws:lambda:us-east-1:123456789012:function:{name}");
        return (
            axum::http::StatusCode::NOT_FOUND,
            [("x-amzn-ErrorType", "ResourceNotFoundException")],
            axum::Json(serde_json::json!({ "Type": "User", "Message": message })),
        )
            .into_response();
    }
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    lambda.payloads.lock().unwrap().push(payload.clone());
    let function_error = |error: SyncRunError| {
        if watch {
            let error_type = "&alloc::boxed::Box<dyn core::error::Error + core::marker::Send + core::marker::Sync>";
            let body = serde_json::json!({ "errorType": error_type, "errorMessage": error.to_string() });
            return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response();
        }
        (
            [("X-Amz-Function-Error", "Unhandled")],
            axum::Json(serde_json::json!({ "errorType": error.error_type(), "errorMessage": error.to_string() })),
        )
            .into_response()
    };
    // As the function: its handler's answer (a run that ends is its report, healthy or not).
    let deadline = std::time::SystemTime::now() + std::time::Duration::from_secs(900);
    match lambda.syncer.handle(payload, deadline).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(error) => function_error(error),
    }
}

/// The CLI against the stack's table, invoking the syncer at `lambda` (which wins over
/// `--endpoint-url` for Lambda only: DynamoDB still goes to moto).
fn sync_command(stack: &Stack, lambda: &LambdaServer, args: &[&str]) -> Command {
    let mut command = command(&stack.receiver, args);
    command.env("AWS_ENDPOINT_URL_LAMBDA", &lambda.url).env("SYNCER_FUNCTION", "syncer");
    command
}

/// `SYNC_FROM` at the start of the clockings' rolling window (243 days back): no history before
/// it to list, so page counts do not depend on the date (the history takes one or two ranges
/// depending on the day of the year; it is tested in the integration tests).
fn window_start(stack: &Stack) -> String {
    (stack.simulator.now().date_naive() - chrono::Duration::days(243)).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_runs_a_backfill_through_the_deployed_syncer_and_prints_its_report() {
    let stack = Stack::start(&["clockings", "breaks"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 10);
    stack.simulator.seed("breaks", 5);
    assert!(stack.renew().await.healthy);
    let from = window_start(&stack);
    assert!(stack.sync(&[("SYNC_FROM", &from)]).await.healthy);
    let today = stack.simulator.now().format("%Y-%m-%d").to_string();
    stack.simulator.change_quietly("clockings", serde_json::json!({"id": 9001, "date": today, "kind": "InOut"}));
    let lambda = LambdaServer::start(&stack, "syncer", &[("SYNC_FROM", &from)]).await;

    let (code, text, stderr) =
        run(sync_command(&stack, &lambda, &["sync", "clockings", "--reinitialize", "--from", &from])).await;
    assert_eq!(code, 0, "{text}{stderr}");
    assert_eq!(
        lambda.payloads(),
        [serde_json::json!({"collections": ["clockings"], "reinitialize": true, "from": from})]
    );
    insta::with_settings!({ filters => snapshot_filters() }, {
        insta::assert_snapshot!("sync_backfill", text);
    });
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 11);
    let state = stack.receiver.item("sync#clockings").await.unwrap();
    let to = stack.simulator.now().date_naive() + chrono::Duration::days(122);
    assert_eq!(harness::s(&state, "filter"), format!("date ge '{from}' and date le '{to}'"));

    // A normal run, as JSON: the report as the syncer returned it.
    let (code, out, _) = run(sync_command(&stack, &lambda, &["sync", "clockings,breaks", "--json"])).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        lambda.payloads()[1],
        serde_json::json!({"collections": ["clockings", "breaks"], "reinitialize": false})
    );
    let report = json(&out);
    assert_eq!(keys(&report), ["collections", "healthy"], "no totals without --wait");
    let first = &report["collections"][0];
    assert_eq!(
        keys(first),
        [
            "collection",
            "cursorAgeSeconds",
            "deltaExpired",
            "errorRuns",
            "initialCompletedAt",
            "lagSeconds",
            "mode",
            "outcome",
            "pages",
            "phase",
            "records",
            "verifiedAt"
        ]
    );
    assert_eq!((first["collection"].as_str(), first["outcome"].as_str()), (Some("clockings"), Some("complete")));
    assert!(!out.contains("deltaToken"), "{out}");

    // The copy is complete and current: status agrees.
    let (code, out) = cli(&stack.receiver, &["status", "--json", "--collections", "clockings,breaks"]);
    assert_eq!(code, 0, "{out}");
    let report = json(&out);
    let clockings = &row(&report, "clockings")["sync"];
    assert_eq!(
        (clockings["phase"].as_str(), clockings["initialLoad"]["complete"].as_bool()),
        (Some("incremental"), Some(true))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_wait_invokes_again_until_every_collection_is_complete() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 30);
    let from = window_start(&stack);
    let lambda = LambdaServer::start(&stack, "syncer", &[("SYNC_MAX_PAGES_PER_RUN", "4"), ("SYNC_FROM", &from)]).await;

    let (code, out, stderr) =
        run(sync_command(&stack, &lambda, &["sync", "clockings", "--wait", "--pause-seconds", "0", "--json"])).await;
    assert_eq!(code, 0, "{out}{stderr}");
    assert!(stderr.is_empty(), "no progress bar off a terminal: {stderr:?}");
    let report = json(&out);
    // 30 records, 3 per page with empty pages between: 19 pages, 4 per run.
    assert_eq!(report["runs"], 5, "{out}");
    assert_eq!(report["collections"][0]["outcome"], "complete");
    assert_eq!(report["totals"]["clockings"]["pages"], 19);
    assert_eq!(report["totals"]["clockings"]["records"]["stored"], 30);
    assert_eq!(lambda.payloads().len(), 5);
    assert!(lambda
        .payloads()
        .iter()
        .all(|p| *p == serde_json::json!({"collections": ["clockings"], "reinitialize": false})));
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 30);

    // A backfill with --wait, as text: the first run reinitializes, the ones after resume it.
    let args = ["sync", "clockings", "--reinitialize", "--wait", "--pause-seconds", "0"];
    let (code, text, _) = run(sync_command(&stack, &lambda, &args)).await;
    assert_eq!(code, 0, "{text}");
    let payloads = lambda.payloads();
    assert_eq!(payloads.len(), 10);
    assert_eq!(payloads[5]["reinitialize"], true);
    assert!(payloads[6..].iter().all(|p| p["reinitialize"] == false));
    insta::with_settings!({ filters => snapshot_filters() }, {
        insta::assert_snapshot!("sync_wait", text);
    });

    // --max-runs gives up early: exit 2.
    let args = ["sync", "clockings", "--reinitialize", "--wait", "--pause-seconds", "0", "--max-runs", "2"];
    let (code, _, stderr) = run(sync_command(&stack, &lambda, &args)).await;
    assert_eq!(code, 2);
    assert_eq!(stderr, "protime-webhooks: gave up after 2 runs: clockings not done yet\n");

    // Without --wait, a partial run says how it goes on, and is not unhealthy.
    let (code, text, _) = run(sync_command(&stack, &lambda, &["sync", "clockings", "--reinitialize"])).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\nclockings   partial  initial  4      0       6 "), "{text}");
    assert!(
        text.ends_with("\nclockings: partial: the next run resumes from its checkpoint (--wait keeps invoking)\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_failures_exit_1_and_a_conflict_exits_2() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 3);
    let lambda = LambdaServer::start(&stack, "syncer", &[]).await;

    // No function named anywhere.
    let mut unnamed = command(&stack.receiver, &["sync", "clockings"]);
    unnamed.env("AWS_ENDPOINT_URL_LAMBDA", &lambda.url);
    let (code, _, stderr) = run(unnamed).await;
    assert_eq!(
        (code, stderr.as_str()),
        (1, "protime-webhooks: no syncer function: pass --syncer-function or set SYNCER_FUNCTION\n")
    );

    // A function that does not exist.
    let (code, _, stderr) =
        run(sync_command(&stack, &lambda, &["sync", "clockings", "--syncer-function", "nope"])).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("invoking the syncer function nope") && stderr.contains("ResourceNotFoundException"),
        "{stderr}"
    );

    // The function fails: a collection it does not sync.
    let (code, out, stderr) = run(sync_command(&stack, &lambda, &["sync", "breaks"])).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        stderr,
        "protime-webhooks: the syncer function syncer failed: InvalidRequest: the request names collections that \
         are not configured: breaks\n"
    );
    let (code, out, _) = run(sync_command(&stack, &lambda, &["sync", "breaks", "--json"])).await;
    assert_eq!(code, 1);
    assert_eq!(
        json(&out),
        serde_json::json!({"functionError": "Unhandled", "error": {"errorType": "InvalidRequest",
            "errorMessage": "the request names collections that are not configured: breaks"}})
    );

    // A collection in error fails the invocation (as deployed), whose errorMessage is the
    // report: printed as one, the error with it, exit 2; status then shows the error.
    stack.simulator.inject_on("/clockings", Fault::Status { status: 403, retry_after_secs: None });
    let (code, out, stderr) = run(sync_command(&stack, &lambda, &["sync", "clockings"])).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(out.contains("clockings") && out.contains("error") && out.contains("403"), "{out}");
    stack.simulator.inject_on("/clockings", Fault::Status { status: 403, retry_after_secs: None });
    let (code, out, _) = run(sync_command(&stack, &lambda, &["sync", "clockings", "--json"])).await;
    assert_eq!(code, 2);
    let report = json(&out);
    assert_eq!(
        (report["healthy"].as_bool(), report["collections"][0]["outcome"].as_str()),
        (Some(false), Some("error"))
    );
    let (code, out) = cli(&stack.receiver, &["status", "--json", "--collections", "clockings"]);
    assert_eq!(code, 2);
    assert!(row(&json(&out), "clockings")["problems"].as_array().unwrap().contains(&serde_json::json!("sync error")));

    // 409: the run answers, the collection ended in conflict: exit 2.
    stack.simulator.inject_on("/clockings", Fault::Status { status: 409, retry_after_secs: None });
    let (code, text, _) = run(sync_command(&stack, &lambda, &["sync", "clockings"])).await;
    assert_eq!(code, 2, "{text}");
    insta::assert_snapshot!("sync_conflict", text);
    let (code, _, _) = run(sync_command(&stack, &lambda, &["sync", "clockings"])).await;
    assert_eq!(code, 0, "the next run completes");
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_reads_the_answers_of_cargo_lambda_watch_as_the_local_stack_gives_them() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 3);
    let lambda = LambdaServer::start_as(Style::CargoLambdaWatch, &stack, "syncer", &[]).await;
    let (code, out, _) = run(sync_command(&stack, &lambda, &["sync", "clockings", "--json"])).await;
    assert_eq!((code, json(&out)["collections"][0]["outcome"].as_str()), (0, Some("complete")), "{out}");

    let (code, _, stderr) = run(sync_command(&stack, &lambda, &["sync", "breaks"])).await;
    assert_eq!(
        (code, stderr.as_str()),
        (
            1,
            "protime-webhooks: the syncer function syncer failed: the request names collections that are not \
             configured: breaks\n"
        ),
        "a Rust type name is no error type worth printing"
    );
    let (code, _, stderr) =
        run(sync_command(&stack, &lambda, &["sync", "clockings", "--syncer-function", "nope"])).await;
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "protime-webhooks: invoking the syncer function nope: HTTP 404: that function doesn't exist as a binary in \
         your project. Available functions: {\"syncer\"}\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_on_a_stack_whose_credentials_are_not_filled_in_says_so_and_exits_2() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.unconfigure().await;
    let lambda = LambdaServer::start(&stack, "syncer", &[]).await;
    let (code, out, stderr) = run(sync_command(&stack, &lambda, &["sync", "clockings"])).await;
    assert_eq!((code, out.as_str()), (2, ""), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "protime-webhooks: nothing synced: the Protime credentials secret {} is not filled in yet (it holds \
             REPLACE_ME or an empty field): put the tenant, environment, clientId and clientSecret in it \
             (docs/deploying.md, First deployment)\n",
            stack.credentials_secret
        )
    );
    let (code, out, _) = run(sync_command(&stack, &lambda, &["sync", "clockings", "--json"])).await;
    assert_eq!((code, json(&out)["healthy"].as_bool()), (2, Some(false)), "{out}");
    assert!(json(&out)["notConfigured"].as_str().is_some_and(|why| why.contains("not filled in yet")), "{out}");
}

// ---- `--stack`: resources from a CloudFormation stack's outputs -------------------------------

/// A stack in moto whose outputs name the fixture's resources (literal values, as a deployed
/// stack's outputs are to the CLI).
async fn create_stack(f: &ReceiverFixture, syncer: &str) -> String {
    let name = harness::unique("pw");
    let outputs = serde_json::json!({
        "TableName": {"Value": f.table},
        "QuarantineBucketName": {"Value": f.bucket.clone().unwrap_or_default()},
        "SyncerFunctionName": {"Value": syncer},
        "SigningKeysSecretArn": {"Value": f.keys_secret},
    });
    let template = serde_json::json!({
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": outputs,
    });
    // Set-up: generous timeouts, and a stack a retried attempt already created is fine.
    let created = aws_sdk_cloudformation::Client::new(&f.setup)
        .create_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .send()
        .await;
    if let Err(e) = created {
        let exists = e.as_service_error().is_some_and(|e| e.is_already_exists_exception());
        assert!(exists, "create the stack in moto: {}", aws_sdk_cloudformation::error::DisplayErrorContext(&e));
    }
    name
}

#[tokio::test(flavor = "multi_thread")]
async fn stack_outputs_name_the_table_bucket_syncer_and_keys_and_flags_win() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 3);
    let mut f = ReceiverFixture::with_quarantine(KEY).await;
    // The stack's resources: the syncer's table, a quarantine bucket, the fixture's keys.
    f.table = stack.receiver.table.clone();
    let name = create_stack(&f, "pw-SyncerFunction-X1").await;
    let lambda = LambdaServer::start(&stack, "pw-SyncerFunction-X1", &[]).await;
    subscription(&f, Collection::Clockings, WebhookStatus::Enabled, 700).await;

    let mut sync = bare_command();
    sync.args(["--stack", &name, "sync", "clockings", "--json"]).env("AWS_ENDPOINT_URL_LAMBDA", &lambda.url);
    let (code, out, stderr) = run(sync).await;
    assert_eq!(code, 0, "{out}{stderr}");
    assert_eq!(json(&out)["collections"][0]["outcome"], "complete");

    let mut status = bare_command();
    status.args(["--stack", &name, "status", "--json"]);
    let (code, out, stderr) = run(status).await;
    assert_eq!(code, 0, "{out}{stderr}");
    let report = json(&out);
    let clockings = row(&report, "clockings");
    assert_eq!(
        (clockings["quarantinedLast24h"].as_u64(), clockings["sync"]["phase"].as_str()),
        (Some(0), Some("incremental"))
    );

    // The signing-keys secret comes from SigningKeysSecretArn.
    let body = std::env::temp_dir().join(harness::unique("cli-stack-body"));
    std::fs::write(&body, b"{}").unwrap();
    let signature = protime_webhooks::signing::signature::authorization_header(
        &protime_webhooks::signing::signature::SigningKey::new(KEY),
        b"{}",
    );
    let mut verify = bare_command();
    verify.args(["--stack", &name, "verify", "clockings", "--body", body.to_str().unwrap(), "--signature", &signature]);
    assert_eq!(run(verify).await.1, "the signature matches the current key\n");

    // An explicit flag (or variable) wins over the stack's output.
    let mut other = bare_command();
    other
        .args(["--stack", &name, "--syncer-function", "nope", "sync", "clockings"])
        .env("AWS_ENDPOINT_URL_LAMBDA", &lambda.url);
    let (code, _, stderr) = run(other).await;
    assert!(code == 1 && stderr.contains("function nope"), "{stderr}");
    let mut other = bare_command();
    other.args(["--stack", &name, "status"]).env("TABLE_NAME", "no-such-table");
    let (code, _, stderr) = run(other).await;
    assert!(code == 1 && stderr.contains("ResourceNotFound"), "{stderr}");

    let mut missing = bare_command();
    missing.args(["--stack", "no-such-stack", "status"]);
    let (code, _, stderr) = run(missing).await;
    assert!(
        code == 1 && stderr.starts_with("protime-webhooks: reading the outputs of stack no-such-stack: "),
        "{stderr}"
    );
}

// ---- query ------------------------------------------------------------------------------------

/// The simulator's records of `collection` that `keep` selects, as `query --json` lists them:
/// by date, then id; a soft-deleted one with `"deleted": true`, only when `deleted` is asked.
fn wanted(stack: &Stack, collection: &str, deleted: bool, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut records: Vec<Value> = stack
        .simulator
        .records(collection)
        .into_iter()
        .filter(|r| keep(r) && (deleted || r["status"] != "Deleted"))
        .map(|mut r| {
            if r["status"] == "Deleted" {
                r["deleted"] = Value::Bool(true);
            }
            r
        })
        .collect();
    records.sort_by_key(|r| (r["date"].as_str().unwrap_or_default().to_owned(), r["id"].as_u64().unwrap()));
    records
}

async fn query(stack: &Stack, args: &[&str]) -> Vec<Value> {
    let (code, out, stderr) = run(command(&stack.receiver, &[&["query", "--json"], args].concat())).await;
    assert_eq!(code, 0, "query {args:?}: {out}{stderr}");
    let answer = json(&out);
    let records = answer["records"].as_array().unwrap().clone();
    assert_eq!(answer["count"], records.len(), "{out}");
    records
}

#[tokio::test(flavor = "multi_thread")]
async fn query_lists_exactly_the_live_records_of_a_person_a_day_or_a_range_and_tombstones_on_request() {
    let stack = Stack::start(&["clockings", "shift-definitions"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 80);
    stack.simulator.seed("shift-definitions", 6);
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);
    // Webhook changes after the load: a record moves to another day and person, one is
    // soft-deleted (a tombstone that keeps its fields), one is deleted.
    let records = stack.simulator.records("clockings");
    let today = stack.simulator.now().date_naive();
    let mut moved = records[0].clone();
    moved["date"] = serde_json::json!((today - chrono::Days::new(3)).to_string());
    moved["person"] = serde_json::json!({"id": 4242});
    stack.simulator.change("clockings", moved.clone()).await;
    stack.simulator.soft_delete("clockings", records[1]["id"].clone()).await;
    stack.simulator.delete("clockings", records[2]["id"].clone()).await;
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 78);

    let date = |r: &Value| r["date"].as_str().unwrap().to_owned();
    let person = |r: &Value| r["person"]["id"].to_string();
    let live = stack.simulator.records("clockings");
    for p in [person(&live[0]), person(&live[5]), person(&live[9]), "4242".to_owned()] {
        let got = query(&stack, &["clockings", "--person", &p]).await;
        assert!(!got.is_empty(), "person {p} has records");
        assert_eq!(got, wanted(&stack, "clockings", false, |r| person(r) == p), "person {p}");
    }
    for day in [date(&live[0]), date(&live[4]), date(&live[20])] {
        let got = query(&stack, &["clockings", "--date", &day]).await;
        assert!(!got.is_empty(), "{day} has records");
        assert_eq!(got, wanted(&stack, "clockings", false, |r| date(r) == day), "day {day}");
    }
    let (from, to) = ((today - chrono::Days::new(70)).to_string(), (today - chrono::Days::new(2)).to_string());
    let in_range = |r: &Value| date(r) >= from && date(r) <= to;
    let range = query(&stack, &["clockings", "--from", &from, "--to", &to]).await;
    assert_eq!(range, wanted(&stack, "clockings", false, in_range));
    assert!(range.iter().any(|r| r["id"] == moved["id"] && r["person"]["id"] == 4242), "the moved record moved");
    let first = query(&stack, &["clockings", "--from", &from, "--to", &to, "--limit", "5"]).await;
    assert_eq!(first, range[..5.min(range.len())]);
    let p = person(&live[0]);
    let theirs = query(&stack, &["clockings", "--person", &p, "--from", &from, "--to", &to]).await;
    assert_eq!(theirs, wanted(&stack, "clockings", false, |r| person(r) == p && in_range(r)));

    // The soft-deleted record has left the live records; --include-deleted shows it, by its day.
    let gone = &records[1];
    let its_day = query(&stack, &["clockings", "--date", &date(gone)]).await;
    assert!(its_day.iter().all(|r| r["id"] != gone["id"]));
    let with_tombstones = query(&stack, &["clockings", "--date", &date(gone), "--include-deleted"]).await;
    assert_eq!(with_tombstones, wanted(&stack, "clockings", true, |r| date(r) == date(gone)));
    assert!(with_tombstones.iter().any(|r| r["id"] == gone["id"] && r["deleted"] == true));

    // A reference collection lists whole, by id.
    let shifts = query(&stack, &["shift-definitions"]).await;
    assert_eq!(shifts, wanted(&stack, "shift-definitions", false, |_| true));
    assert_eq!(shifts.len(), 6);

    // Text: a table of the records and their count.
    let (code, text, _) = run(command(&stack.receiver, &["query", "clockings", "--date", &date(&live[4])])).await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("date") && lines[0].contains("changeVersion"), "{text}");
    let count = wanted(&stack, "clockings", false, |r| date(r) == date(&live[4])).len();
    assert_eq!(lines.last().unwrap(), &format!("{count} record{}", if count == 1 { "" } else { "s" }));
}

#[tokio::test(flavor = "multi_thread")]
async fn query_refuses_filters_that_cannot_apply_with_exit_code_1() {
    let f = ReceiverFixture::new(KEY).await;
    for (args, message) in [
        (&["query", "people", "--person", "7"][..], "people records carry no person.id"),
        (&["query", "shift-definitions", "--date", "2026-11-03"], "shift-definitions is reference data without a date"),
        (&["query", "clockings"], "clockings is read by date or by person"),
        (&["query", "clockings", "--from", "2026-11-03", "--to", "2026-11-01"], "ends (2026-11-01) before it starts"),
        (&["query", "no-such-thing"], "no-such-thing"),
        (&["query", "clockings", "--date", "3 November"], "3 November"),
    ] {
        let (code, out, stderr) = run(command(&f, args)).await;
        assert_eq!(code, 1, "{args:?}: {out}{stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(out, "", "{args:?}");
    }
}

/// The documented operator policy (docs/operator-policy.json) for an enforcing moto: the
/// bucket's ARN filled in, every other resource `*` (moto checks DynamoDB, Secrets Manager and
/// Lambda by action only), Lambda's action under moto's name for it (`lambda:Invoke`).
fn operator_policy(bucket: &str, drop: Option<&str>) -> Value {
    let text = std::fs::read_to_string(harness::workspace_root().join("docs/operator-policy.json")).unwrap();
    let mut policy: Value = serde_json::from_str(&text).expect("docs/operator-policy.json is JSON");
    for statement in policy["Statement"].as_array_mut().unwrap() {
        let resources: Vec<Value> = match &statement["Resource"] {
            Value::Array(list) => list.clone(),
            one => vec![one.clone()],
        };
        let resources: Vec<Value> = resources
            .iter()
            .map(|r| {
                let r = r.as_str().unwrap();
                Value::from(if r.contains("${QuarantineBucketArn}") {
                    r.replace("${QuarantineBucketArn}", &format!("arn:aws:s3:::{bucket}"))
                } else {
                    "*".to_owned()
                })
            })
            .collect();
        statement["Resource"] = Value::from(resources);
        let actions: Vec<Value> = statement["Action"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a.as_str() != drop)
            .map(|a| Value::from(if a == "lambda:InvokeFunction" { "lambda:Invoke" } else { a.as_str().unwrap() }))
            .collect();
        statement["Action"] = Value::from(actions);
    }
    let kept: Vec<Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"].as_array().is_some_and(|a| !a.is_empty()))
        .cloned()
        .collect();
    policy["Statement"] = Value::from(kept);
    policy
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_operator_policy_is_enough_for_every_command_but_sync() {
    // A moto of its own that enforces IAM; the set-up is done before it does.
    let moto = harness::Moto::start();
    let mut f = ReceiverFixture::on(&moto.endpoint(), KEY).await;
    let bucket = harness::unique("quarantine");
    harness::create_bucket(&f.setup, &bucket).await;
    f.bucket = Some(bucket.clone());
    subscription(&f, Collection::Clockings, WebhookStatus::Enabled, 300).await;
    let body = r#"{"id":42,"changeVersion":"0000090200004BD0000A","date":"2026-12-01"}"#;
    assert_eq!(f.send(signed("clockings", body, KEY)).await.0, 200);
    let key = "clockings/2026/12/01/090000.000Z-a.json";
    put_kept(
        &f,
        key,
        r#"{"id":43,"changeVersion":"0000090200004BD0000A","date":"2026-12-01"}"#,
        "dynamodb_validation",
        &[("source", "webhook"), ("signature", "verified")],
    )
    .await;
    let bus = harness::feed::create_bus(&f.setup).await;
    // doctor and webhooks: the credentials secret, a tenant with our clockings webhook.
    let simulator = harness::simulator::Simulator::start(SimulatorConfig::default()).await;
    let credentials_secret = harness::unique("protime-credentials");
    harness::put_secret(&f.setup, &credentials_secret, &simulator.credentials_json()).await;
    let destination_base = "https://api.example.com";
    create_webhook_in(&simulator, &format!("{destination_base}/webhooks/clockings"), "clockings").await;
    let operator = moto.iam_user("operator", &operator_policy(&bucket, None)).await;
    let no_list = moto.iam_user("operator-no-list", &operator_policy(&bucket, Some("s3:ListBucket"))).await;
    moto.enforce_iam().await;

    let as_user = |credentials: &aws_sdk_dynamodb::config::Credentials, args: &[&str]| {
        let mut command = bare_command_on(&moto.endpoint());
        command
            .args(["--table", &f.table, "--keys-secret", &f.keys_secret, "--bucket", &bucket])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key());
        let output = command.output().expect("run protime-webhooks");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let (code, stdout) = result(output);
        (code, stdout, stderr)
    };
    let dir = std::env::temp_dir().join(harness::unique("cli-operator"));
    std::fs::create_dir_all(&dir).unwrap();
    let body_file = dir.join("body.json");
    std::fs::write(&body_file, body).unwrap();
    let signature = protime_webhooks::signing::signature::authorization_header(
        &protime_webhooks::signing::signature::SigningKey::new(KEY),
        body.as_bytes(),
    );
    let commands: Vec<Vec<&str>> = vec![
        vec!["status", "--json"],
        vec!["get", "clockings", "42", "--json"],
        vec!["query", "clockings", "--date", "2026-12-01", "--json"],
        vec!["verify", "clockings", "--body", body_file.to_str().unwrap(), "--signature", &signature],
        vec!["quarantine", "list", "--json"],
        vec!["quarantine", "show", key],
        vec!["quarantine", "replay", "--all", "--json"],
        vec!["migrate-indexes", "--json"],
        vec!["apply-field-policy", "--json"],
        vec!["republish", "clockings", "--id", "42", "--event-bus", &bus, "--json"],
    ];
    for args in &commands {
        let (code, stdout, stderr) = as_user(&operator, args);
        assert_eq!(code, 0, "{args:?} as the operator: {stdout}{stderr}");
        if args[0] == "republish" {
            assert_eq!(json(&stdout)["published"], 1, "{stdout}");
        }
        if args[..2] == ["quarantine", "replay"] {
            assert_eq!(json(&stdout)["objects"][0]["outcome"], "replayed", "{stdout}");
        }
    }
    let (code, stdout, _) = as_user(&operator, &["get", "clockings", "43", "--json"]);
    assert_eq!(code, 0, "the replay wrote through the operator's PutItem: {stdout}");
    for args in [vec!["doctor", "--json"], vec!["webhooks", "list", "--json"]] {
        let mut command = bare_command_on(&moto.endpoint());
        command
            .args(["--keys-secret", &f.keys_secret, "--credentials-secret", &credentials_secret])
            .args(["--destination-base-url", destination_base])
            .args(&args)
            .env("COLLECTIONS", "clockings")
            .env("PROTIME_API_BASE_URL", simulator.api_base_url())
            .env("PROTIME_TOKEN_URL", simulator.token_url())
            .env("AWS_ACCESS_KEY_ID", operator.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", operator.secret_access_key());
        let (code, stdout, stderr) = run(command).await;
        assert_eq!(code, 0, "{args:?} as the operator: {stdout}{stderr}");
    }
    // Enforcement is on: without s3:ListBucket the quarantine cannot be listed.
    let (code, _, stderr) = as_user(&no_list, &["quarantine", "list"]);
    assert_eq!(code, 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_reports_the_drift_a_dry_run_leaves_and_the_real_pass_repairs_and_status_shows_it() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let seeded = stack.simulator.seed("clockings", 8);
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);
    // Deleted in Protime with no webhook delivery and no delta round since.
    stack.simulator.delete_quietly("clockings", seeded[2]["id"].clone());
    let gone = seeded[2]["id"].to_string();
    let lambda = LambdaServer::start(&stack, "syncer", &[]).await;

    let (code, text, stderr) = run(sync_command(&stack, &lambda, &["reconcile", "clockings", "--dry-run"])).await;
    assert_eq!(code, 0, "{text}{stderr}");
    assert_eq!(
        lambda.payloads(),
        [serde_json::json!({"collections": ["clockings"], "reconcile": true, "dryRun": true})]
    );
    assert!(text.contains("clockings: dry run: drift missing 0 behind 0 swept 1"), "{text}");
    assert!(text.contains(&format!("  swept: {gone}")), "the sample id: {text}");
    let still = stack.receiver.item(&format!("clockings#{gone}")).await.unwrap();
    assert_eq!(still["deleted"], aws_sdk_dynamodb::types::AttributeValue::Bool(false), "a dry run writes nothing");

    let (code, out, _) = run(sync_command(&stack, &lambda, &["reconcile", "clockings", "--wait", "--json"])).await;
    assert_eq!(code, 0, "{out}");
    let report = json(&out);
    // A real reconciliation follows the delta first, as every run does: the Delete arrives that
    // way, and the pass then finds the copy equal to Protime.
    let c = &report["collections"][0];
    assert_eq!(c["records"]["deleted"], 1, "{out}");
    assert_eq!(c["drift"], serde_json::json!({"missing": 0, "behind": 0, "swept": 0}), "{out}");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 7);

    let (code, out) = cli(&stack.receiver, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let status = json(&out);
    let sync = &row(&status, "clockings")["sync"];
    assert_eq!(sync["drift"], serde_json::json!({"missing": 0, "behind": 0, "swept": 0}));
    assert!(sync["verifiedAt"].is_string() && sync["reconciling"] == false, "{sync}");
    let (_, text) = cli(&stack.receiver, &["status"]);
    assert!(text.lines().any(|l| l.starts_with("clockings") && l.contains("0/0/0")), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_over_the_limit_is_held_shown_by_status_and_let_through_with_max_sweep() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 8);
    assert!(stack.renew().await.healthy);
    assert!(stack.sync(&[]).await.healthy);
    let today = stack.simulator.now().format("%Y-%m-%d").to_string();
    for id in [900001, 900002] {
        let stray = serde_json::json!({"id": id, "changeVersion": "1", "date": today, "person": {"id": 1}});
        stack.put_record("clockings", stray).await;
    }
    let lambda = LambdaServer::start(&stack, "syncer", &[("SWEEP_LIMIT", "1")]).await;

    let (code, text, stderr) = run(sync_command(&stack, &lambda, &["reconcile", "clockings"])).await;
    assert_eq!(code, 2, "a held sweep needs attention: {text}{stderr}");
    assert!(text.contains("clockings: sweep held: it would tombstone 2 records (limit 1)"), "{text}");
    assert!(text.contains("protime-webhooks reconcile clockings --max-sweep 2"), "{text}");
    let (code, text) = cli(&stack.receiver, &["status"]);
    assert_ne!(code, 0, "{text}");
    assert!(text.lines().any(|l| l.starts_with("clockings") && l.contains("sweep held")), "{text}");

    let (code, text, stderr) =
        run(sync_command(&stack, &lambda, &["reconcile", "clockings", "--max-sweep", "2"])).await;
    assert_eq!(code, 0, "{text}{stderr}");
    assert_eq!(
        lambda.payloads().last(),
        Some(&serde_json::json!({"collections": ["clockings"], "reconcile": true, "dryRun": false, "maxSweep": 2}))
    );
    assert!(text.contains("clockings: full pass complete: drift missing 0 behind 0 swept 2"), "{text}");
    assert_eq!(stack.assert_table_matches_simulator("clockings").await, 8);
    let (code, out) = cli(&stack.receiver, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert!(row(&json(&out), "clockings")["sync"]["sweepHeld"].is_null(), "{out}");
}

// ---- republish ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn republish_puts_what_the_publisher_put_again_with_the_same_sequence_by_id_or_since_a_time() {
    let f = ReceiverFixture::new(KEY).await;
    let moto = harness::shared_moto().endpoint();
    let version = |n: u32| format!("0000090200004BD{n:05X}");
    let send = |body: String| f.send(signed("clockings", &body, KEY));
    for (id, n) in [(1, 1), (2, 1), (1, 2)] {
        let body = format!(r#"{{"id":{id},"changeVersion":"{}","date":"2026-12-01","hours":{n}}}"#, version(n));
        assert_eq!(send(body).await.0, 200);
    }
    let delete = format!(r#"{{"changeType":"Delete","data":{{"id":2,"changeVersion":"{}"}}}}"#, version(2));
    assert_eq!(send(delete).await.0, 200);
    // What the publisher put on the bus from the stream.
    let mut feed = Feed::start(&moto, &f.setup, &f.table).await;
    let config = protime_webhooks::config::PublisherConfig {
        event_bus_name: feed.bus.clone(),
        publish_unchanged: false,
        metrics: protime_webhooks::observability::metrics::Metrics::new("Test"),
    };
    let publisher = protime_webhooks::publisher::Publisher {
        bus: protime_webhooks::publisher::bus::EventBridgeBus::from_sdk(&f.config, &feed.bus),
        config,
        retry: Default::default(),
    };
    feed.pump(&publisher, 100).await;
    let published = feed.received().await;
    assert_eq!(published.len(), 4);
    let last_of = |id: u64| published.iter().rev().find(|e| e["detail"]["id"] == id).cloned().unwrap();

    let republish = |args: &[&str]| {
        let mut command = command(&f, &["republish", "clockings", "--event-bus", &feed.bus]);
        command.args(args);
        run(command)
    };
    let (code, out, err) = republish(&["--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        json(&out),
        serde_json::json!({"collection": "clockings", "records": 2, "published": 2, "complete": true})
    );
    let mut again = feed.received().await;
    again.sort_by_key(|e| e["detail"]["id"].as_u64());
    // The records' last events again: the same detail-type and detail, but for the version
    // before, which the table does not keep.
    for (event, id) in again.iter().zip([1, 2]) {
        let mut expected = last_of(id);
        expected["detail"]["previousChangeVersion"] = Value::Null;
        assert_eq!((&event["detail-type"], &event["detail"]), (&expected["detail-type"], &expected["detail"]));
    }
    assert_eq!(again[1]["detail-type"], "Protime Record Deleted", "a tombstone is a deletion");

    let (code, out, _) = republish(&["--id", "1"]).await;
    assert_eq!((code, out.trim()), (0, "1 of 1 clockings records republished"));
    assert_eq!(feed.received().await.len(), 1);
    // Since a time: only what was written at or after it.
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let body = format!(r#"{{"id":3,"changeVersion":"{}","date":"2026-12-02"}}"#, version(1));
    assert_eq!(send(body).await.0, 200);
    let (code, out, _) = republish(&["--since", &since, "--json"]).await;
    assert_eq!((code, json(&out)["published"].clone()), (0, serde_json::json!(1)), "{out}");
    let events = feed.received().await;
    assert_eq!((events.len(), events[0]["detail"]["id"].clone()), (1, serde_json::json!(3)));

    let (code, _, err) = republish(&["--id", "99"]).await;
    assert_eq!((code, err.trim()), (1, "protime-webhooks: no record clockings#99"));
    let (code, _, err) = run(command(&f, &["republish", "clockings"])).await;
    assert_eq!((code, err.trim()), (1, "protime-webhooks: no change bus (a stack deployed with ChangeFeed=false has none): pass --event-bus or set EVENT_BUS_NAME"));
}

/// The CLI with the Protime settings the stack's renewer has, as the functions' variables
/// (and the local stack's `make cli`) give them.
fn protime_command(stack: &Stack, args: &[&str]) -> Command {
    let c = &stack.renewer_config;
    let collections: Vec<&str> = c.collections.iter().map(|c| c.as_str()).collect();
    let mut command = bare_command();
    command
        .args(["--keys-secret", &stack.receiver.keys_secret])
        .args(args)
        .env("PROTIME_CREDENTIALS_SECRET", &stack.credentials_secret)
        .env("DESTINATION_BASE_URL", &c.destination_base_url)
        .env("COLLECTIONS", collections.join(","))
        .env("PROTIME_API_BASE_URL", c.protime_api_base_url.as_deref().unwrap())
        .env("PROTIME_TOKEN_URL", c.protime_token_url.as_deref().unwrap());
    for name in ["RENEWER_FUNCTION", "EXTERNAL_REFERENCES", "RENEW_BEFORE_HOURS"] {
        command.env_remove(name);
    }
    command
}

/// A policy that hashes needs the field hash key the renewer's first run generates: doctor
/// says whether it is there, and what to do when it is not.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_checks_the_field_hash_key_a_hashing_policy_needs() {
    let stack = Stack::start(&["clockings"], SimulatorConfig::default()).await;
    let policy = "people.email=hash";
    let doctor = || {
        let mut command = protime_command(&stack, &["doctor"]);
        command.env("FIELD_POLICY", policy);
        command
    };
    let (code, text, _) = run(doctor()).await;
    assert_eq!(code, 2, "{text}");
    let (line, remedy) = line_of(&text, "field-policy");
    assert!(line.starts_with("action") && line.contains("fieldHashKey"), "{text}");
    assert!(remedy.starts_with("→ invoke the renewer once"), "{text}");
    assert!(stack.renew().await.healthy, "the renewer's run generates the key");
    let (_, text, _) = run(doctor()).await;
    let (line, _) = line_of(&text, "field-policy");
    assert!(line.starts_with("ok") && line.contains("the field hash key is in the signing-keys secret"), "{text}");
    assert!(
        !text.contains(
            harness::signing_keys(&stack.receiver.setup, &stack.receiver.keys_secret).await.unwrap()["fieldHashKey"]
                .as_str()
                .unwrap()
        ),
        "the key is never printed"
    );
}

/// Every check of a doctor report by name: (status, detail).
fn checks(report: &Value) -> Vec<(String, String, String)> {
    let checks = report["checks"].as_array().expect("checks");
    checks
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_else(|| panic!("{k} in {c}")).to_owned();
            (text("name"), text("status"), text("detail"))
        })
        .collect()
}

fn check<'a>(all: &'a [(String, String, String)], name: &str) -> (&'a str, &'a str) {
    let found = all.iter().find(|c| c.0 == name).unwrap_or_else(|| panic!("no check {name}: {all:?}"));
    (found.1.as_str(), found.2.as_str())
}

fn doctor_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "YYYY-MM-DDThh:mm:ssZ"),
        (r"\d{4}-\d\d-\d\d", "YYYY-MM-DD"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
        (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "WEBHOOK-ID"),
        (r"protime-credentials-\d+-\d+", "protime-credentials-UNIQUE"),
        (r"test-\d+-\d+/signing-keys", "test-UNIQUE/signing-keys"),
        (r"\(\d+d\d\dh left\)", "(Nd left)"),
        // The seeded records' dates are random: some may fall on the day listed.
        (r"read: \d+ records?", "read: N records"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_passes_on_a_good_configuration_with_every_line_ok() {
    let stack = Stack::start(&["clockings", "people"], SimulatorConfig::default()).await;
    stack.simulator.seed("clockings", 4);
    stack.simulator.seed("people", 4);
    assert!(stack.renew().await.healthy);
    let before = stack.simulator.seen().len();

    let (code, out, stderr) = run(protime_command(&stack, &["doctor", "--json"])).await;
    assert_eq!(code, 0, "{out}{stderr}");
    let report = json(&out);
    assert_eq!(report["healthy"], true);
    let all = checks(&report);
    let names: Vec<&str> = all.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "destination",
            "field-policy",
            "credentials",
            "token",
            "scopes",
            "list:clockings",
            "list:people",
            "webhooks",
            "webhook:clockings",
            "key:clockings",
            "webhook:people",
            "key:people"
        ]
    );
    // Every line ok; the local receiver's plain HTTP destination is the one warning.
    for (name, status, detail) in &all {
        let expected = if name == "destination" { "warn" } else { "ok" };
        assert_eq!(status, expected, "{name}: {detail}");
    }
    assert!(check(&all, "destination").1.contains("plain HTTP on this machine"));
    assert_eq!(check(&all, "scopes").1, "all 4 granted (webhooks read and write, each collection's read)");
    assert!(check(&all, "list:clockings").1.contains("(filter date ge '"), "{all:?}");
    assert!(check(&all, "webhooks").1.starts_with("2 in the tenant, 2 ours"), "{all:?}");
    for c in report["checks"].as_array().unwrap() {
        assert_eq!(
            keys(c).contains(&"remedy".to_owned()),
            c["status"] == "warn",
            "a remedy only where one is due: {c}"
        );
    }

    // Read-only: a token, one page of each collection and the webhook list; nothing else.
    let requests: Vec<(String, String)> = stack.simulator.seen()[before..]
        .iter()
        .map(|s| (s.method.clone(), s.path.replace(harness::simulator::API_PREFIX, "")))
        .collect();
    assert!(
        requests.iter().all(|(method, path)| (method == "POST" && path == "/token")
            || (method == "GET" && ["/clockings", "/people", "/webhooks"].contains(&path.as_str()))),
        "{requests:?}"
    );
    assert_eq!(requests.iter().filter(|(m, _)| m == "GET").count(), 3, "{requests:?}");
    // Never a delta request: Protime allows one active delta per collection, the syncer's.
    let queries: Vec<String> = stack.simulator.seen()[before..].iter().map(|s| s.query.clone()).collect();
    assert!(queries.iter().all(|q| !q.split('&').any(|p| p == "delta" || p.starts_with("delta="))), "{queries:?}");

    // No key, no token, no client secret in what it prints.
    let (code, text, stderr) = run(protime_command(&stack, &["doctor"])).await;
    assert_eq!(code, 0, "{text}{stderr}");
    for secret in stack.simulator.issued_tokens().iter().chain([&stack.simulator.config().client_secret]) {
        assert!(!text.contains(secret.as_str()) && !out.contains(secret.as_str()), "a token or secret printed");
    }
    for collection in ["clockings", "people"] {
        let key = stack.stored_key(collection).await.expect("a stored key");
        assert!(!text.contains(&key) && !out.contains(&key), "the {collection} key printed");
    }
    insta::with_settings!({ filters => doctor_filters() }, {
        insta::assert_snapshot!("doctor_healthy", text);
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_exits_2_naming_what_to_do_on_a_bad_configuration() {
    let stack = Stack::start(&["clockings", "people"], SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);

    // A 403 on one collection's list: its scope named.
    stack.simulator.inject_on("/clockings", Fault::Status { status: 403, retry_after_secs: None });
    let (code, out, stderr) = run(protime_command(&stack, &["doctor", "--json"])).await;
    assert_eq!(code, 2, "{out}{stderr}");
    let report = json(&out);
    assert_eq!(report["healthy"], false);
    let all = checks(&report);
    let (status, detail) = check(&all, "list:clockings");
    assert_eq!(status, "action");
    assert!(detail.contains("connector-protimeapi-clockings.read"), "{detail}");
    let remedy =
        report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "list:clockings").unwrap()["remedy"].clone();
    assert_eq!(
        remedy,
        "grant connector-protimeapi-clockings.read to the API client in myProtime, then run doctor again"
    );
    assert_eq!(check(&all, "list:people").0, "ok");

    // A Disabled webhook, and an Enabled one whose key is gone.
    stack.simulator.disable("people");
    let clockings_key = stack.receiver.keys_secret.clone();
    let mut keys = harness::signing_keys(&stack.receiver.setup, &clockings_key).await.unwrap();
    keys.as_object_mut().unwrap().remove("clockings");
    harness::put_secret(&stack.receiver.setup, &clockings_key, &keys.to_string()).await;
    let (code, text, _) = run(protime_command(&stack, &["doctor"])).await;
    assert_eq!(code, 2, "{text}");
    let (people, remedy) = line_of(&text, "webhook:people");
    assert!(people.starts_with("action") && people.contains("is Disabled"), "{text}");
    assert!(remedy.starts_with("→ invoke the renewer"), "{text}");
    let (key, remedy) = line_of(&text, "key:clockings");
    assert!(key.starts_with("action") && key.contains(&format!("none in {clockings_key}")), "{text}");
    assert!(remedy.contains("webhooks delete clockings"), "{text}");
    assert!(text.ends_with("not healthy: 8 ok, 1 warn, 2 action\n"), "{text}");

    // A wrong client secret: the credentials named, the secret never printed.
    let wrong = stack.simulator.credentials_json().replace("sim-client-secret", "not-the-secret");
    harness::put_secret(&stack.receiver.setup, &stack.credentials_secret, &wrong).await;
    let (code, text, _) = run(protime_command(&stack, &["doctor"])).await;
    assert_eq!(code, 2, "{text}");
    let (token, remedy) = line_of(&text, "token");
    assert!(token.starts_with("action") && token.contains("refused the client credentials (401"), "{text}");
    assert!(remedy.contains(&format!("clientSecret, tenant and environment in {}", stack.credentials_secret)));
    assert!(!text.contains("not-the-secret"), "{text}");
    assert!(line_of(&text, "list:clockings").0.starts_with("skipped"), "{text}");

    // No credentials secret at all: action, not an error.
    let mut command = protime_command(&stack, &["doctor", "--json"]);
    command.env("PROTIME_CREDENTIALS_SECRET", "no-such-secret");
    let (code, out, _) = run(command).await;
    assert_eq!(code, 2, "{out}");
    let all = checks(&json(&out));
    assert_eq!(
        check(&all, "credentials"),
        ("action", "the Protime credentials secret no-such-secret does not exist or has no value")
    );

    // The secret as the stack created it: not filled in yet, and what to do.
    stack.unconfigure().await;
    let (code, out, _) = run(protime_command(&stack, &["doctor", "--json"])).await;
    assert_eq!(code, 2, "{out}");
    let all = checks(&json(&out));
    let (status, detail) = check(&all, "credentials");
    assert_eq!(status, "action");
    assert!(detail.contains("is not filled in yet"), "{detail}");
    harness::put_secret(&stack.receiver.setup, &stack.credentials_secret, &stack.simulator.credentials_json()).await;

    // Protime cannot be reached: the check could not be made, exit 1.
    let mut command = protime_command(&stack, &["doctor"]);
    command.env("PROTIME_TOKEN_URL", "http://127.0.0.1:9/tenants/sim/connect/token");
    let (code, text, stderr) = run(command).await;
    assert_eq!(code, 1, "{text}");
    assert!(line_of(&text, "token").0.starts_with("error"), "{text}");
    assert_eq!(stderr, "protime-webhooks: doctor could not make 1 check (status error above)\n");
}

/// A check's line of doctor's text and the remedy under it.
fn line_of(text: &str, name: &str) -> (String, String) {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("{name}: {text}"));
    let next = lines.get(at + 1).copied().unwrap_or_default();
    let remedy = if next.trim_start().starts_with('→') { next.trim().to_owned() } else { String::new() };
    (lines[at].to_owned(), remedy)
}

/// A webhook created through Protime's API as another integration would (any destination).
async fn foreign_webhook(stack: &Stack, destination: &str, collection: &str) -> String {
    create_webhook_in(&stack.simulator, destination, collection).await
}

async fn create_webhook_in(simulator: &harness::simulator::Simulator, destination: &str, collection: &str) -> String {
    let credentials = protime_webhooks::protime::ProtimeCredentials::from_json(&simulator.credentials_json()).unwrap();
    let mut options = protime_webhooks::protime::client::ClientOptions::new(
        protime_webhooks::protime::client::scopes_for([collection]),
        "Someone Else",
    );
    options.api_base_url = Some(simulator.api_base_url());
    options.token_url = Some(simulator.token_url());
    let client = protime_webhooks::protime::ProtimeClient::new(credentials, options).unwrap();
    client.create_webhook(destination, collection, "").await.expect("create").id
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_delete_removes_ours_only_and_list_marks_them() {
    let stack = Stack::start(&["clockings", "breaks"], SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);
    let base = stack.renewer_config.destination_base_url.clone();
    let foreign = foreign_webhook(&stack, "https://elsewhere.example.com/webhooks/clockings", "clockings").await;
    // Ours by destination, though people is not configured (a leftover).
    let leftover = foreign_webhook(&stack, &format!("{base}/webhooks/people"), "people").await;
    // At our destination but for another collection's path: not ours.
    let crossed = foreign_webhook(&stack, &format!("{base}/webhooks/clockings"), "breaks").await;
    stack.simulator.inject_raw_webhook(serde_json::json!({"id": "raw-1", "status": "Enabled"}));

    let (code, out, stderr) = run(protime_command(&stack, &["webhooks", "list", "--json"])).await;
    assert_eq!(code, 0, "{out}{stderr}");
    let report = json(&out);
    assert_eq!(keys(&report), ["count", "webhooks"]);
    assert_eq!(report["count"], 6);
    let listed = report["webhooks"].as_array().unwrap();
    for item in listed {
        assert_eq!(keys(item), ["collection", "destinationUrl", "id", "ours", "status", "validUntil"], "{item}");
    }
    let ours =
        |id: &str| listed.iter().find(|w| w["id"] == id).unwrap_or_else(|| panic!("{id}: {out}"))["ours"].clone();
    let live = |collection: &str| stack.simulator.webhook(collection).unwrap().id;
    assert_eq!(ours(&live("clockings")), true);
    assert_eq!(ours(&live("breaks")), true);
    assert_eq!(ours(&leftover), true);
    assert_eq!(ours(&foreign), false);
    assert_eq!(ours(&crossed), false);
    let raw = listed.iter().find(|w| w["id"] == "raw-1").unwrap();
    assert_eq!(
        (raw["ours"].clone(), raw["collection"].clone(), raw["validUntil"].clone()),
        (Value::Bool(false), Value::Null, Value::Null)
    );
    let (code, text, _) = run(protime_command(&stack, &["webhooks", "list"])).await;
    assert_eq!(code, 0);
    assert!(text.starts_with("ID "), "{text}");
    assert!(text.ends_with(&format!("6 webhooks, 3 ours (at {base}/webhooks/<collection>)\n")), "{text}");

    // One collection: only ours of it.
    let breaks = live("breaks");
    let (code, text, _) = run(protime_command(&stack, &["webhooks", "delete", "breaks"])).await;
    assert_eq!((code, text.as_str()), (0, format!("deleted breaks webhook {breaks} (Enabled)\n").as_str()));
    assert!(stack.simulator.webhook("breaks").is_some_and(|w| w.id == crossed), "the crossed one stays");

    // A delete Protime refuses: exit 2, the webhook stays.
    stack.simulator.inject_on("/webhooks/", Fault::Status { status: 400, retry_after_secs: None });
    let clockings = live("clockings");
    let (code, out, _) = run(protime_command(&stack, &["webhooks", "delete", "clockings", "people", "--json"])).await;
    assert_eq!(code, 2, "{out}");
    let report = json(&out);
    assert_eq!(report["failed"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(report["deleted"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(report["none"], serde_json::json!([]));
    let alive = |id: &str| stack.simulator.webhooks().iter().any(|w| w.id == id && !w.deleted);
    assert_eq!(alive(&clockings) as u8 + alive(&leftover) as u8, 1, "one deleted, one refused");

    // --all: every one of ours, none of the others.
    let (code, text, stderr) = run(protime_command(&stack, &["webhooks", "delete", "--all"])).await;
    assert_eq!(code, 0, "{text}{stderr}");
    assert!(text.starts_with("deleted "), "{text}");
    let mut left: Vec<String> = stack.simulator.webhooks().into_iter().filter(|w| !w.deleted).map(|w| w.id).collect();
    left.sort();
    let mut expected = vec![foreign.clone(), crossed.clone()];
    expected.sort();
    assert_eq!(left, expected);
    let (code, text, _) = run(protime_command(&stack, &["webhooks", "delete", "--all"])).await;
    assert_eq!((code, text), (0, format!("no webhook of ours (at {base}/webhooks/<collection>)\n")));
    let (code, text, _) = run(protime_command(&stack, &["webhooks", "delete", "people"])).await;
    assert_eq!((code, text.as_str()), (0, "no webhook of ours for people\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_commands_name_what_is_missing() {
    let mut command = bare_command();
    command.args(["webhooks", "list"]);
    for name in ["PROTIME_CREDENTIALS_SECRET", "DESTINATION_BASE_URL", "RENEWER_FUNCTION"] {
        command.env_remove(name);
    }
    let (code, _, stderr) = run(command).await;
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "protime-webhooks: no Protime credentials secret (or pass --stack): pass --credentials-secret or set \
         PROTIME_CREDENTIALS_SECRET\n"
    );
    let mut command = bare_command();
    command.args(["webhooks", "delete"]);
    let (code, _, stderr) = run(command).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("--all"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_the_missing_scope_whether_protime_refuses_the_token_or_issues_it_without() {
    let clockings_read = "connector-protimeapi-clockings.read";
    let all_but_clockings = || {
        let scopes = protime_webhooks::protime::client::scopes_for(["clockings", "people"]);
        Some(scopes.into_iter().filter(|s| s != clockings_read).collect::<Vec<_>>())
    };

    // Protime issues the token without the scope (ScopeRefusal::Subset) and answers 403.
    let stack = Stack::start(&["clockings", "people"], SimulatorConfig::default()).await;
    assert!(stack.renew().await.healthy);
    stack.simulator.grant_scopes(all_but_clockings());
    let (code, out, stderr) = run(protime_command(&stack, &["doctor", "--json"])).await;
    assert_eq!(code, 2, "{out}{stderr}");
    let all = checks(&json(&out));
    assert_eq!(check(&all, "token").0, "ok");
    assert_eq!(check(&all, "scopes"), ("action", "missing: connector-protimeapi-clockings.read"));
    assert_eq!(
        check(&all, "list:clockings"),
        ("action", "not read: the token lacks connector-protimeapi-clockings.read")
    );
    for name in ["list:people", "webhooks", "webhook:clockings", "key:clockings", "webhook:people", "key:people"] {
        assert_eq!(check(&all, name).0, "ok", "{name}: {all:?}");
    }
    let (code, text, _) = run(protime_command(&stack, &["doctor"])).await;
    assert_eq!(code, 2);
    let (line, remedy) = line_of(&text, "scopes");
    assert!(line.starts_with("action") && line.ends_with("missing: connector-protimeapi-clockings.read"), "{text}");
    assert_eq!(remedy, "→ grant them to the API client in myProtime, then run doctor again");
    // Granted again: healthy.
    stack.simulator.grant_scopes(None);
    assert_eq!(run(protime_command(&stack, &["doctor"])).await.0, 0);

    // Protime refuses the token for the whole set (ScopeRefusal::Strict): the other checks go on
    // with the scopes it grants.
    let strict = SimulatorConfig { scope_refusal: ScopeRefusal::Strict, ..SimulatorConfig::default() };
    let stack = Stack::start(&["clockings", "people"], strict).await;
    assert!(stack.renew().await.healthy);
    stack.simulator.grant_scopes(all_but_clockings());
    let (code, out, stderr) = run(protime_command(&stack, &["doctor", "--json"])).await;
    assert_eq!(code, 2, "{out}{stderr}");
    let all = checks(&json(&out));
    let (status, detail) = check(&all, "token");
    assert_eq!(status, "action");
    assert!(detail.starts_with("the token endpoint refused the scopes as a set"), "{detail}");
    assert_eq!(check(&all, "scopes"), ("action", "missing: connector-protimeapi-clockings.read"));
    assert_eq!(check(&all, "list:clockings").0, "action");
    for name in ["list:people", "webhooks", "webhook:clockings", "key:clockings", "webhook:people", "key:people"] {
        assert_eq!(check(&all, name).0, "ok", "{name}: {all:?}");
    }

    // Every scope refused, so Protime names them all: each is asked for alone, none is granted,
    // and what needs a token is skipped.
    stack.simulator.grant_scopes(Some(Vec::new()));
    let tokens_before = stack.simulator.seen().iter().filter(|s| s.path == "/token").count();
    let (code, out, _) = run(protime_command(&stack, &["doctor", "--json"])).await;
    assert_eq!(code, 2, "{out}");
    let all = checks(&json(&out));
    assert!(check(&all, "token").1.ends_with("each was asked for alone to find the missing ones"), "{all:?}");
    let (status, detail) = check(&all, "scopes");
    assert_eq!(status, "action");
    assert_eq!(detail.matches("connector-protimeapi-").count(), 4, "{detail}");
    assert_eq!((check(&all, "list:people").0, check(&all, "webhooks").0), ("skipped", "skipped"));
    let tokens = stack.simulator.seen().iter().filter(|s| s.path == "/token").count() - tokens_before;
    assert_eq!(tokens, 1 + 4, "the set, then each scope alone");
}
