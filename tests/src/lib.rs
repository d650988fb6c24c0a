//! Test harness: a real moto server on a free loopback port, AWS clients pointed at it, and
//! helpers to create the table and secrets the functions expect and to send signed requests.

pub mod fault_proxy;
pub mod feed;
pub mod receiver_server;
pub mod simulator;
pub mod stack;

pub use fault_proxy::{Call, FaultProxy, ProxyMode};
pub use receiver_server::ReceiverServer;
pub use stack::{fast_retries, Stack};

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use lambda_http::{Body, Request};
use protime_webhooks::signing::signature::{authorization_header, SigningKey};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The Python with moto installed: `$MOTO_PYTHON`, else the project's `.venv`.
pub fn python() -> PathBuf {
    let path =
        std::env::var_os("MOTO_PYTHON").map(PathBuf::from).unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    assert!(path.exists(), "{} not found: run `make setup` (or `make test`) to install moto", path.display());
    path
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A running moto server; stopped by PID when dropped.
pub struct Moto {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers.
    pub fn start() -> Moto {
        Moto::start_on(free_port())
    }

    /// Starts moto on `port` (used to restart an emulator at the same address).
    pub fn start_on(port: u16) -> Moto {
        // MOTO_SERVER_FLAGS: extra launcher options; `--concurrent` only to measure the lock's cost.
        let flags = std::env::var("MOTO_SERVER_FLAGS").unwrap_or_default();
        let mut child = Command::new(python())
            .arg(workspace_root().join("scripts/moto_server.py"))
            .arg(port.to_string())
            .args(flags.split_whitespace())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let stdin = child.stdin.take().expect("piped stdin");
        let mut ready = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut ready).expect("read moto's ready line");
        assert!(ready.contains("listening"), "moto did not start on port {port}: {ready:?}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not answer on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Moto { child, _stdin: stdin, port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server (by PID) and waits for it to exit.
    pub fn stop(mut self) -> u16 {
        self.kill();
        self.port
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Creates the IAM user `name` with `policy` (an IAM policy document) as its inline policy,
    /// and returns an access key of it. Call before [`Moto::enforce_iam`]: moto's IAM Query API
    /// is called unsigned, as moto allows while it does not enforce.
    pub async fn iam_user(&self, name: &str, policy: &serde_json::Value) -> Credentials {
        self.iam(&[("Action", "CreateUser"), ("UserName", name)]).await;
        let document = policy.to_string();
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", name),
            ("PolicyDocument", &document),
        ])
        .await;
        let answer = self.iam(&[("Action", "CreateAccessKey"), ("UserName", name)]).await;
        let field = |tag: &str| {
            let start = answer.find(&format!("<{tag}>")).map(|i| i + tag.len() + 2);
            let value = start.and_then(|i| answer[i..].find('<').map(|end| answer[i..i + end].to_owned()));
            value.unwrap_or_else(|| panic!("no {tag} in moto's CreateAccessKey answer: {answer}"))
        };
        Credentials::new(field("AccessKeyId"), field("SecretAccessKey"), None, None, "iam-user")
    }

    /// From now on moto checks every request against the IAM policies of the user whose access
    /// key signed it (the default test keys are refused): for S3 the action and the bucket or
    /// object ARN, for DynamoDB, Secrets Manager and Lambda the action only.
    pub async fn enforce_iam(&self) {
        let answer = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint()))
            .header("Content-Type", "application/json")
            .body("0")
            .send()
            .await
            .expect("moto's reset-auth");
        assert!(answer.status().is_success(), "reset-auth: {}", answer.status());
    }

    /// One IAM Query API call; its answer's XML.
    async fn iam(&self, params: &[(&str, &str)]) -> String {
        let mut body = String::from("Version=2010-05-08");
        for (name, value) in params {
            body.push_str(&format!("&{name}={}", form_encode(value)));
        }
        let (status, text) =
            unsigned_call(&self.endpoint(), "iam", &[("Content-Type", "application/x-www-form-urlencoded")], body)
                .await;
        assert!(status.is_success(), "IAM {params:?}: {status} {text}");
        text
    }
}

/// One request to the moto at `endpoint` for `service`, unsigned: moto routes by the service in
/// the credential scope and, while it does not enforce IAM, checks no signature. For the
/// services the workspace builds no SDK for (IAM, DynamoDB Streams, SQS). Answers the status
/// and the body.
pub async fn unsigned_call(
    endpoint: &str,
    service: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (reqwest::StatusCode, String) {
    let scope = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
    );
    let mut request = reqwest::Client::new().post(format!("{endpoint}/")).header("Authorization", scope);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answer = request.body(body).send().await.unwrap_or_else(|e| panic!("moto's {service} API: {e}"));
    let status = answer.status();
    (status, answer.text().await.unwrap_or_default())
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// SDK configuration for the emulator at `endpoint` as `credentials` (an IAM user of an
/// enforcing moto), with the production timeouts and retries.
pub async fn sdk_config_as(endpoint: &str, credentials: Credentials) -> SdkConfig {
    emulator_config_loader(endpoint).credentials_provider(credentials).load().await
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// SDK configuration for the emulator at `endpoint`, with the production timeouts and retries:
/// what the code under test uses.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    emulator_config_loader(endpoint).load().await
}

/// SDK configuration for setting up a test (tables, secrets, buckets): timeouts far above any
/// answer moto gives, so a set-up never depends on how warm or busy the machine is.
pub async fn setup_config(endpoint: &str) -> SdkConfig {
    emulator_config_loader(endpoint)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(60))
                .operation_timeout(Duration::from_secs(120))
                .build(),
        )
        .load()
        .await
}

fn emulator_config_loader(endpoint: &str) -> aws_config::ConfigLoader {
    protime_webhooks::aws::config_loader()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
}

/// A unique suffix so tests sharing one emulator never share a table or secret.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

/// Creates the record table with the key schema the store writes and the read indexes of
/// `contract::TABLE_INDEXES` (as template.yaml does); a table that already exists
/// is fine (a set-up retried after a lost answer meets the table its first attempt made).
/// Pass a [`setup_config`].
pub async fn create_table(config: &SdkConfig, name: &str) {
    create_table_with(config, name, protime_webhooks::records::index::ReadIndexes::ALL).await;
}

/// [`create_table`] with only the read indexes `indexes` names (the template's `ReadIndexes`).
pub async fn create_table_with(config: &SdkConfig, name: &str, indexes: protime_webhooks::records::index::ReadIndexes) {
    let string = |name: &str| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    let key =
        |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap();
    let mut attributes = vec![string(protime_webhooks::contract::TABLE_PARTITION_KEY)];
    let wanted = indexes;
    let mut indexes = Vec::new();
    for index in protime_webhooks::contract::TABLE_INDEXES.iter().filter(|i| wanted.has(i.name)) {
        for name in [index.partition_key, index.sort_key] {
            if !attributes.iter().any(|a| a.attribute_name() == name) {
                attributes.push(string(name));
            }
        }
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(protime_webhooks::contract::INDEX_PROJECTION))
            .build();
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(key(index.partition_key, KeyType::Hash))
                .key_schema(key(index.sort_key, KeyType::Range))
                .projection(projection)
                .build()
                .unwrap(),
        );
    }
    let created = aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .key_schema(key(protime_webhooks::contract::TABLE_PARTITION_KEY, KeyType::Hash))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        // As the template: the publisher's source.
        .stream_specification(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await;
    if let Err(error) = created {
        let exists = error.as_service_error().is_some_and(|e| e.is_resource_in_use_exception());
        assert!(exists, "create table {name}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&error));
    }
}

/// Stores `value` as the secret's new AWSCURRENT version, creating the secret if needed.
/// Pass a [`setup_config`].
/// The credentials secret's value as template.yaml creates it (a test holds the two equal).
pub const PLACEHOLDER_CREDENTIALS: &str =
    r#"{"tenant":"REPLACE_ME","environment":"myprotime.eu","clientId":"REPLACE_ME","clientSecret":"REPLACE_ME"}"#;

pub async fn put_secret(config: &SdkConfig, id: &str, value: &str) {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let created = client.create_secret().name(id).secret_string(value).send().await;
    let Err(error) = created else { return };
    let exists = error.as_service_error().is_some_and(|e| e.is_resource_exists_exception());
    assert!(exists, "create secret {id}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(&error));
    client.put_secret_value().secret_id(id).secret_string(value).send().await.expect("put secret value");
}

/// Makes `key` the collection's key in the signing-keys secret `secret` (created if need be),
/// as an operator's tool would write it: `{"<collection>": {"key": …}}`, every other member kept.
pub async fn put_signing_key(config: &SdkConfig, secret: &str, collection: &str, key: &str) {
    let mut document = signing_keys(config, secret).await.unwrap_or_else(|| serde_json::json!({}));
    document[collection] = serde_json::json!({ "key": key });
    put_secret(config, secret, &document.to_string()).await;
}

/// The signing-keys secret's document (AWSCURRENT), `None` if there is no such secret.
pub async fn signing_keys(config: &SdkConfig, secret: &str) -> Option<serde_json::Value> {
    let read = aws_sdk_secretsmanager::Client::new(config)
        .get_secret_value()
        .secret_id(secret)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .ok()?;
    serde_json::from_str(read.secret_string()?).ok()
}

/// Every item in the table.
pub async fn scan(config: &SdkConfig, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    scan_pages(config, table, None).await
}

/// Every item of one of the table's indexes (a Scan of the index: tests only).
pub async fn scan_index(config: &SdkConfig, table: &str, index: &str) -> Vec<HashMap<String, AttributeValue>> {
    scan_pages(config, table, Some(index)).await
}

/// Every item of the table, or of one of its indexes, through Scan and its pages.
async fn scan_pages(config: &SdkConfig, table: &str, index: Option<&str>) -> Vec<HashMap<String, AttributeValue>> {
    let client = aws_sdk_dynamodb::Client::new(config);
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_index_name(index.map(str::to_owned))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// One partition of an index, in sort key order, through Query and its pages.
pub async fn query_index(
    config: &SdkConfig,
    table: &str,
    index: &str,
    partition_key: (&str, &str),
) -> Vec<HashMap<String, AttributeValue>> {
    let client = aws_sdk_dynamodb::Client::new(config);
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .index_name(index)
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", partition_key.0)
            .expression_attribute_values(":p", AttributeValue::S(partition_key.1.into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("query index");
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// The item with partition key `pk`, if any.
pub async fn get_item(config: &SdkConfig, table: &str, pk: &str) -> Option<HashMap<String, AttributeValue>> {
    aws_sdk_dynamodb::Client::new(config)
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item
}

/// A request as API Gateway hands it to the function (body base64-decoded by the runtime).
pub fn request(collection: &str, body: &[u8], authorization: Option<&str>) -> Request {
    let mut builder = lambda_http::http::Request::builder().method("POST").uri(format!("/webhooks/{collection}"));
    if let Some(a) = authorization {
        builder = builder.header("Authorization", a);
    }
    builder.body(Body::Binary(body.to_vec())).expect("valid request")
}

/// A request signed with `key` the way Protime signs it.
pub fn signed(collection: &str, body: &str, key: &str) -> Request {
    let auth = authorization_header(&SigningKey::new(key), body.as_bytes());
    request(collection, body.as_bytes(), Some(&auth))
}

/// An answer's status and JSON body.
pub fn parse_response(response: lambda_http::Response<Body>) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let body = serde_json::from_slice(response.body().as_ref()).expect("JSON answer");
    (status, body)
}

/// A syncer report's entry for `collection` (panics when the run did not report it).
pub fn report_of<'a>(
    report: &'a protime_webhooks::sync::SyncReport,
    collection: &str,
) -> &'a protime_webhooks::sync::CollectionReport {
    report.collections.iter().find(|c| c.collection == collection).expect("collection reported")
}

/// The string attribute `name` of an item.
pub fn s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_else(|| panic!("{name} is not a string"))
}

/// Log output captured in memory: a `tracing_subscriber` writer (`with_writer(move || c.clone())`)
/// whose clones share one buffer.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// What was written since the last take, and forget it.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One emulator shared by the tests of a test binary; each test gets its own table and
/// signing-keys secret. It exits when the test process does (its stdin closes).
pub fn shared_moto() -> &'static Moto {
    static MOTO: std::sync::OnceLock<Moto> = std::sync::OnceLock::new();
    MOTO.get_or_init(Moto::start)
}

/// Creates an S3 bucket (the quarantine); one this test already owns is fine. Pass a [`setup_config`].
pub async fn create_bucket(config: &SdkConfig, name: &str) {
    let created =
        protime_webhooks::records::quarantine::S3Quarantine::client(config).create_bucket().bucket(name).send().await;
    if let Err(error) = created {
        let ours = error.as_service_error().is_some_and(|e| e.is_bucket_already_owned_by_you());
        assert!(ours, "create bucket {name}: {}", aws_sdk_s3::error::DisplayErrorContext(&error));
    }
}

/// Every object key in `bucket` (all pages). Pass a [`setup_config`] (or an unrestricted user's).
pub async fn quarantine_keys(config: &SdkConfig, bucket: &str) -> Vec<String> {
    let s3 = protime_webhooks::records::quarantine::S3Quarantine::client(config);
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        keys.extend(page.expect("list the bucket").contents().iter().filter_map(|o| o.key().map(str::to_owned)));
    }
    keys
}

/// A receiver wired to its own table and secrets (and quarantine bucket, if any) in an emulator.
pub struct ReceiverFixture {
    /// What the receiver's clients use: the production timeouts, maybe through a fault proxy.
    pub config: SdkConfig,
    /// Straight to the emulator with generous timeouts: for setting up and inspecting.
    pub setup: SdkConfig,
    pub table: String,
    /// The signing-keys secret.
    pub keys_secret: String,
    pub bucket: Option<String>,
    pub receiver: protime_webhooks::receiver::AwsReceiver,
}

impl ReceiverFixture {
    /// A fresh table and a `clockings` key `key`, in the shared emulator.
    pub async fn new(key: &str) -> Self {
        Self::on(&shared_moto().endpoint(), key).await
    }

    /// The same, against the emulator at `endpoint`.
    pub async fn on(endpoint: &str, key: &str) -> Self {
        Self::build(endpoint, endpoint, key, false).await
    }

    /// The same in the shared emulator, with the receiver (and `config`) talking to it through
    /// `proxy`. The set-up goes straight to the emulator: a fault meant for the code under test
    /// never meets the fixture's own requests.
    pub async fn behind(proxy: &FaultProxy, key: &str) -> Self {
        Self::build(proxy.upstream(), &proxy.endpoint(), key, false).await
    }

    /// A fresh table, key and quarantine bucket, in the shared emulator.
    pub async fn with_quarantine(key: &str) -> Self {
        let endpoint = shared_moto().endpoint();
        Self::build(&endpoint, &endpoint, key, true).await
    }

    /// Resources made at `emulator`, the receiver's clients pointed at `endpoint`.
    async fn build(emulator: &str, endpoint: &str, key: &str, quarantine: bool) -> Self {
        let setup = setup_config(emulator).await;
        let config = sdk_config(endpoint).await;
        let table = unique("records");
        let keys_secret = format!("{}/signing-keys", unique("test"));
        create_table(&setup, &table).await;
        put_signing_key(&setup, &keys_secret, "clockings", key).await;
        let mut receiver_config = protime_webhooks::config::ReceiverConfig::new(table.clone(), keys_secret.clone());
        let bucket = if quarantine { Some(unique("quarantine")) } else { None };
        if let Some(bucket) = &bucket {
            create_bucket(&setup, bucket).await;
            receiver_config.quarantine_bucket = Some(bucket.clone());
        }
        let receiver = protime_webhooks::receiver::AwsReceiver::from_config(&receiver_config, &config);
        ReceiverFixture { config, setup, table, keys_secret, bucket, receiver }
    }

    /// Every quarantined object: (key, bytes, metadata).
    pub async fn quarantined(&self) -> Vec<(String, Vec<u8>, HashMap<String, String>)> {
        let Some(bucket) = &self.bucket else { return Vec::new() };
        let s3 = protime_webhooks::records::quarantine::S3Quarantine::client(&self.setup);
        let listed = s3.list_objects_v2().bucket(bucket).send().await.expect("list quarantine");
        let mut objects = Vec::new();
        for object in listed.contents() {
            let key = object.key().unwrap_or_default().to_owned();
            let got = s3.get_object().bucket(bucket).key(&key).send().await.expect("get quarantined");
            let metadata = got.metadata().cloned().unwrap_or_default();
            let bytes = got.body.collect().await.expect("read quarantined").into_bytes().to_vec();
            objects.push((key, bytes, metadata));
        }
        objects
    }

    /// Sends a request through the real handler.
    pub async fn send(&self, request: Request) -> (u16, serde_json::Value) {
        parse_response(self.receiver.handle(request).await)
    }

    /// The stored item `pk`, read straight from the emulator.
    pub async fn item(&self, pk: &str) -> Option<HashMap<String, AttributeValue>> {
        get_item(&self.setup, &self.table, pk).await
    }

    /// Every stored item, read straight from the emulator.
    pub async fn items(&self) -> Vec<HashMap<String, AttributeValue>> {
        scan(&self.setup, &self.table).await
    }
}

/// Serves `app` on 127.0.0.1:`port` (0: a free port) in the background; the server stops
/// when the returned task is aborted.
pub async fn serve_on_loopback(app: axum::Router, port: u16) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, server)
}
