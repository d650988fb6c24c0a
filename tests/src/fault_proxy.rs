//! An HTTP proxy in front of moto that injects AWS faults (throttling, slowness, an outage).

use std::time::Duration;

/// What the fault proxy does to the requests it forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyMode {
    Pass,
    /// Answer the next N DynamoDB PutItem calls with a throttling error (u32::MAX: all of them).
    ThrottlePutItem(u32),
    /// Forward every request only after this delay (the upstream still receives it).
    Delay(Duration),
    /// Answer every DynamoDB PutItem whose request body contains this text with a throttling
    /// error (e.g. `"clockings#`: one collection's record writes, not its sync state).
    ThrottlePutItemMatching(String),
    /// Let this many more DynamoDB PutItem calls through, then answer every DynamoDB call with
    /// 500: from that write on, the caller can write nothing (as if its process were killed).
    DynamoDbDiesAfterPutItems(u32),
    /// Answer Secrets Manager calls with 503; let DynamoDB through.
    SecretsManagerDown,
    /// Let `pass` more EventBridge PutEvents calls through, then answer the next `fail` with 500
    /// (the SDK's own retries are calls too), then let every call through again.
    PutEventsFailing {
        pass: u32,
        fail: u32,
    },
}

/// One request the proxy forwarded: its operation (`x-amz-target`, e.g. `DynamoDB_20120810.PutItem`,
/// or `s3 <METHOD>`) and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub operation: String,
    pub body: Vec<u8>,
}

/// An HTTP proxy in front of moto that injects AWS faults and records every request.
pub struct FaultProxy {
    pub addr: std::net::SocketAddr,
    upstream: String,
    mode: std::sync::Arc<std::sync::Mutex<ProxyMode>>,
    calls: std::sync::Arc<std::sync::Mutex<Vec<Call>>>,
    server: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: String) -> FaultProxy {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::response::IntoResponse;

        type Calls = std::sync::Arc<std::sync::Mutex<Vec<Call>>>;
        type Shared = (String, std::sync::Arc<std::sync::Mutex<ProxyMode>>, reqwest::Client, Calls);
        async fn forward(
            State((upstream, mode, client, calls)): State<Shared>,
            method: axum::http::Method,
            uri: axum::http::Uri,
            headers: axum::http::HeaderMap,
            body: Bytes,
        ) -> axum::response::Response {
            let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let operation = if target.is_empty() { format!("s3 {method}") } else { target.clone() };
            calls.lock().unwrap().push(Call { operation, body: body.to_vec() });
            let throttled = || {
                let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#;
                (axum::http::StatusCode::BAD_REQUEST, [("content-type", "application/x-amz-json-1.0")], body)
                    .into_response()
            };
            let delay = {
                let mut mode = mode.lock().unwrap();
                match &mut *mode {
                    ProxyMode::ThrottlePutItem(n) if *n > 0 && target.ends_with(".PutItem") => {
                        *n = n.saturating_sub(u32::from(*n != u32::MAX));
                        return throttled();
                    }
                    ProxyMode::ThrottlePutItemMatching(text)
                        if target.ends_with(".PutItem")
                            && !text.is_empty()
                            && body.windows(text.len()).any(|w| w == text.as_bytes()) =>
                    {
                        return throttled();
                    }
                    ProxyMode::DynamoDbDiesAfterPutItems(n) if target.starts_with("DynamoDB_") => {
                        if *n == 0 {
                            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected: the caller is dead"}"#;
                            return (
                                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                                [("content-type", "application/x-amz-json-1.0")],
                                body,
                            )
                                .into_response();
                        }
                        if target.ends_with(".PutItem") {
                            *n -= 1;
                        }
                        None
                    }
                    ProxyMode::SecretsManagerDown if target.starts_with("secretsmanager.") => {
                        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
                    }
                    ProxyMode::PutEventsFailing { pass, fail } if target == "AWSEvents.PutEvents" => {
                        if *pass > 0 {
                            *pass -= 1;
                        } else if *fail > 0 {
                            *fail -= 1;
                            let body = r#"{"__type":"InternalException","message":"injected: the bus is down"}"#;
                            return (
                                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                                [("content-type", "application/x-amz-json-1.1")],
                                body,
                            )
                                .into_response();
                        }
                        None
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
        let calls: Calls = Default::default();
        let state: Shared = (upstream.clone(), mode.clone(), reqwest::Client::new(), calls.clone());
        let app = axum::Router::new().fallback(forward).with_state(state);
        let (addr, server) = crate::serve_on_loopback(app, 0).await;
        FaultProxy { addr, upstream, mode, calls, server }
    }

    /// The emulator behind the proxy.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, mode: ProxyMode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The requests forwarded since the last call of this (which forgets them).
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    /// The mode now (a counting mode shows what is left of its counts).
    pub fn mode(&self) -> ProxyMode {
        self.mode.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}
