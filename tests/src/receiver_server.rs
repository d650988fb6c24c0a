//! The real receiver handler behind a real HTTP server on 127.0.0.1.

use lambda_http::Body;
use std::sync::atomic::Ordering;

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
        let (addr, server) = crate::serve_on_loopback(app, 0).await;
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
