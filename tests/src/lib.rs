//! Test harness: a real moto server on a free loopback port, AWS clients pointed at it, and
//! helpers to create the table and secrets the functions expect and to send signed requests.

pub mod simulator;

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use lambda_http::{Body, Request};
use protime_webhooks::signature::{authorization_header, SigningKey};
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
        let mut child = Command::new(python())
            .arg(workspace_root().join("scripts/moto_server.py"))
            .arg(port.to_string())
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

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// SDK configuration for the emulator at `endpoint`, with the production timeouts and retries.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    protime_webhooks::aws::config_loader()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

/// A unique suffix so tests sharing one emulator never share a table or secret.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

/// Creates the record table with the key schema the store writes.
pub async fn create_table(config: &SdkConfig, name: &str) {
    aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .send()
        .await
        .expect("create table");
}

/// Stores `value` as the secret's new AWSCURRENT version, creating the secret if needed.
pub async fn put_secret(config: &SdkConfig, id: &str, value: &str) {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let put = client.put_secret_value().secret_id(id).secret_string(value).send().await;
    if put.is_err() {
        client.create_secret().name(id).secret_string(value).send().await.expect("create secret");
    }
}

/// Every item in the table.
pub async fn scan(config: &SdkConfig, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    let client = aws_sdk_dynamodb::Client::new(config);
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client.scan().table_name(table).set_exclusive_start_key(start).send().await.expect("scan");
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

/// The string attribute `name` of an item.
pub fn s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_else(|| panic!("{name} is not a string"))
}

/// One emulator shared by the tests of a test binary; each test gets its own table and
/// secret prefix. It exits when the test process does (its stdin closes).
pub fn shared_moto() -> &'static Moto {
    static MOTO: std::sync::OnceLock<Moto> = std::sync::OnceLock::new();
    MOTO.get_or_init(Moto::start)
}

/// A receiver wired to its own table and secrets in an emulator.
pub struct ReceiverFixture {
    pub config: SdkConfig,
    pub table: String,
    pub prefix: String,
    pub receiver: protime_webhooks::receiver::AwsReceiver,
}

impl ReceiverFixture {
    /// A fresh table and a `clockings` key `key`, in the shared emulator.
    pub async fn new(key: &str) -> Self {
        Self::on(&shared_moto().endpoint(), key).await
    }

    /// The same, against the emulator at `endpoint`.
    pub async fn on(endpoint: &str, key: &str) -> Self {
        let config = sdk_config(endpoint).await;
        let table = unique("records");
        let prefix = format!("{}/signing-key/", unique("test"));
        create_table(&config, &table).await;
        put_secret(&config, &format!("{prefix}clockings"), key).await;
        let receiver_config = protime_webhooks::config::ReceiverConfig {
            table_name: table.clone(),
            signing_key_secret_prefix: prefix.clone(),
            key_cache: Default::default(),
            max_body_bytes: protime_webhooks::config::DEFAULT_MAX_BODY_BYTES,
        };
        let receiver = protime_webhooks::receiver::AwsReceiver::from_config(&receiver_config, &config);
        ReceiverFixture { config, table, prefix, receiver }
    }

    /// Sends a request through the real handler.
    pub async fn send(&self, request: Request) -> (u16, serde_json::Value) {
        parse_response(self.receiver.handle(request).await)
    }

    pub async fn item(&self, pk: &str) -> Option<HashMap<String, AttributeValue>> {
        get_item(&self.config, &self.table, pk).await
    }

    pub async fn items(&self) -> Vec<HashMap<String, AttributeValue>> {
        scan(&self.config, &self.table).await
    }
}

/// The real receiver handler behind a real HTTP server on 127.0.0.1, as API Gateway would
/// invoke it; `set_down(true)` makes it unreachable-like (503 without reaching the handler).
pub struct ReceiverServer {
    pub addr: std::net::SocketAddr,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    server: tokio::task::JoinHandle<()>,
}

impl ReceiverServer {
    pub async fn start(receiver: std::sync::Arc<protime_webhooks::receiver::AwsReceiver>) -> ReceiverServer {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::response::IntoResponse;

        type Shared =
            (std::sync::Arc<protime_webhooks::receiver::AwsReceiver>, std::sync::Arc<std::sync::atomic::AtomicBool>);
        async fn forward(
            State((receiver, down)): State<Shared>,
            method: axum::http::Method,
            uri: axum::http::Uri,
            headers: axum::http::HeaderMap,
            body: Bytes,
        ) -> axum::response::Response {
            if down.load(Ordering::SeqCst) {
                return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
            }
            let mut request = lambda_http::http::Request::builder().method(method).uri(uri);
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            let request = request.body(Body::Binary(body.to_vec())).expect("request");
            let response = receiver.handle(request).await;
            let (parts, body) = response.into_parts();
            (parts.status, parts.headers, body.as_ref().to_vec()).into_response()
        }

        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let app = axum::Router::new().fallback(forward).with_state((receiver, down.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ReceiverServer { addr, down, server }
    }

    /// What DESTINATION_BASE_URL would be.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

impl Drop for ReceiverServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Moto, the simulator, a warm receiver behind HTTP, and a renewer, all wired together.
pub struct Stack {
    pub receiver: ReceiverFixture,
    pub server: ReceiverServer,
    pub simulator: simulator::Simulator,
    pub renewer_config: protime_webhooks::config::RenewerConfig,
    pub credentials_secret: String,
}

impl Stack {
    pub async fn start(collections: &[&str], simulator: simulator::SimulatorConfig) -> Stack {
        let receiver = ReceiverFixture::new("unused-initial-key").await;
        let server = ReceiverServer::start(std::sync::Arc::new(protime_webhooks::receiver::AwsReceiver::from_config(
            &protime_webhooks::config::ReceiverConfig {
                table_name: receiver.table.clone(),
                signing_key_secret_prefix: receiver.prefix.clone(),
                key_cache: Default::default(),
                max_body_bytes: protime_webhooks::config::DEFAULT_MAX_BODY_BYTES,
            },
            &receiver.config,
        )))
        .await;
        let simulator = simulator::Simulator::start(simulator).await;
        let credentials_secret = unique("protime-credentials");
        put_secret(&receiver.config, &credentials_secret, &simulator.credentials_json()).await;
        let vars: HashMap<&str, String> = HashMap::from([
            ("TABLE_NAME", receiver.table.clone()),
            ("SIGNING_KEY_SECRET_PREFIX", receiver.prefix.clone()),
            ("PROTIME_CREDENTIALS_SECRET", credentials_secret.clone()),
            ("DESTINATION_BASE_URL", server.base_url()),
            ("COLLECTIONS", collections.join(",")),
            ("PROTIME_API_BASE_URL", simulator.api_base_url()),
            ("PROTIME_TOKEN_URL", simulator.token_url()),
            ("PROTIME_USER_AGENT_COMPANY", "Test Company".into()),
        ]);
        let renewer_config =
            protime_webhooks::config::RenewerConfig::from_lookup(|k| vars.get(k).cloned()).expect("renewer config");
        Stack { receiver, server, simulator, renewer_config, credentials_secret }
    }

    /// A renewer (as the Lambda builds it) with short retry delays for tests.
    pub fn renewer(&self) -> protime_webhooks::renewer::Renewer {
        let mut renewer =
            protime_webhooks::renewer::Renewer::from_config(self.renewer_config.clone(), &self.receiver.config);
        fast_retries(&mut renewer.client_options);
        renewer
    }

    /// One renewer run at the simulator's current time.
    pub async fn renew(&self) -> protime_webhooks::renewer::RunReport {
        self.renewer().run(self.simulator.now()).await.expect("renewer run")
    }

    /// The key stored in Secrets Manager (AWSCURRENT) for a collection.
    pub async fn stored_key(&self, collection: &str) -> Option<String> {
        aws_sdk_secretsmanager::Client::new(&self.receiver.config)
            .get_secret_value()
            .secret_id(format!("{}{collection}", self.receiver.prefix))
            .version_stage("AWSCURRENT")
            .send()
            .await
            .ok()
            .and_then(|s| s.secret_string)
    }
}

/// Retry delays short enough for tests, still bounded.
pub fn fast_retries(options: &mut protime_webhooks::protime::client::ClientOptions) {
    options.retry = protime_webhooks::protime::RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(20),
    };
    options.request_timeout = Duration::from_secs(2);
}

/// What the fault proxy does to the requests it forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyMode {
    Pass,
    /// Answer the next N DynamoDB PutItem calls with a throttling error (u32::MAX: all of them).
    ThrottlePutItem(u32),
    /// Forward every request only after this delay (the upstream still receives it).
    Delay(Duration),
    /// Answer Secrets Manager calls with 503; let DynamoDB through.
    SecretsManagerDown,
}

/// An HTTP proxy in front of moto that injects AWS faults.
pub struct FaultProxy {
    pub addr: std::net::SocketAddr,
    mode: std::sync::Arc<std::sync::Mutex<ProxyMode>>,
    server: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: String) -> FaultProxy {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::response::IntoResponse;

        type Shared = (String, std::sync::Arc<std::sync::Mutex<ProxyMode>>, reqwest::Client);
        async fn forward(
            State((upstream, mode, client)): State<Shared>,
            method: axum::http::Method,
            uri: axum::http::Uri,
            headers: axum::http::HeaderMap,
            body: Bytes,
        ) -> axum::response::Response {
            let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let delay = {
                let mut mode = mode.lock().unwrap();
                match &mut *mode {
                    ProxyMode::ThrottlePutItem(n) if *n > 0 && target.ends_with(".PutItem") => {
                        *n = n.saturating_sub(u32::from(*n != u32::MAX));
                        let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#;
                        return (
                            axum::http::StatusCode::BAD_REQUEST,
                            [("content-type", "application/x-amz-json-1.0")],
                            body,
                        )
                            .into_response();
                    }
                    ProxyMode::SecretsManagerDown if target.starts_with("secretsmanager.") => {
                        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
                    }
                    ProxyMode::Delay(d) => Some(*d),
                    _ => None,
                }
            };
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            let url = format!("{upstream}{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
            let mut request = client.request(method, url).body(body.to_vec());
            for (name, value) in &headers {
                if name != "host" && name != "content-length" {
                    request = request.header(name, value);
                }
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body = response.bytes().await.unwrap_or_default();
                    let mut out = (status, body.to_vec()).into_response();
                    for (name, value) in &headers {
                        if name != "content-length" && name != "transfer-encoding" {
                            out.headers_mut().insert(name, value.clone());
                        }
                    }
                    out
                }
                Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
            }
        }

        let mode = std::sync::Arc::new(std::sync::Mutex::new(ProxyMode::Pass));
        let state: Shared = (upstream, mode.clone(), reqwest::Client::new());
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy { addr, mode, server }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, mode: ProxyMode) {
        *self.mode.lock().unwrap() = mode;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}
