//! Injected faults, and the record of every request the simulator answered.

use super::*;

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    Token,
    Api,
}

/// What the next matching request gets instead of its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Status {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    /// Answer only after this long (longer than the client's timeout: a timeout).
    Delay(std::time::Duration),
    /// Let this request through untouched (to aim the next fault at a later request).
    Pass,
    /// Every access token lapses just before this request is checked.
    ExpireTokens,
    /// This status and exact body (e.g. a 200 with an empty page where records are due).
    Body {
        status: u16,
        body: String,
    },
    /// Protime's error body with these words (which may quote a link, its token with it).
    Error {
        status: u16,
        message: String,
        reasons: Vec<String>,
    },
    /// A model-validation error: `400 {"validationErrors":[…these messages…]}`, without
    /// Protime's `{"error":…}` wrapper.
    Validation {
        messages: Vec<String>,
    },
}

/// Protime's error code for an injected status.
fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Gone",
        414 => "UriTooLong",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "Injected",
    }
}

/// Applies an injected fault, if one is queued for this request: for `api`, first one aimed
/// at the path ([`Simulator::inject_on`]), then the `api` queue; for `token`, the token queue.
pub(super) async fn intercept(shared: &Shared, target: &'static str, path: &str) -> Option<Response> {
    if let Some(response) = under_maintenance(shared) {
        return Some(response);
    }
    let fault = {
        let mut sim = shared.lock();
        let rest = path.strip_prefix(API_PREFIX).unwrap_or(path);
        let aimed = if target == "api" {
            sim.path_faults.iter().position(|(prefix, _)| rest.starts_with(prefix.as_str()))
        } else {
            None
        };
        match aimed {
            Some(i) => Some(sim.path_faults.remove(i).1),
            None => sim.faults.get_mut(target).and_then(|q| q.pop_front()),
        }
    };
    match fault {
        Some(Fault::Status { status, retry_after_secs }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = error(code, code_for(code), "injected fault");
            if let Some(secs) = retry_after_secs {
                response.headers_mut().insert("Retry-After", secs.into());
            }
            Some(response)
        }
        Some(Fault::Error { status, message, reasons }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            let body = serde_json::json!({"error": {"code": code_for(code), "message": message, "reasons": reasons}});
            Some((code, axum::Json(body)).into_response())
        }
        Some(Fault::Validation { messages }) => Some(
            (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({ "validationErrors": messages }))).into_response(),
        ),
        Some(Fault::Body { status, body }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            Some((code, [("content-type", "application/json")], body).into_response())
        }
        Some(Fault::Delay(by)) => {
            tokio::time::sleep(by).await;
            None
        }
        Some(Fault::ExpireTokens) => {
            shared.lock().tokens.clear();
            None
        }
        Some(Fault::Pass) | None => None,
    }
}

/// During a maintenance window ([`Simulator::maintenance`]): 503 with `Retry-After` and
/// Protime's error body. The window ends by itself once the simulator's clock passes it.
fn under_maintenance(shared: &Shared) -> Option<Response> {
    let mut sim = shared.lock();
    let (until, retry_after_secs) = sim.maintenance?;
    if sim.now() >= until {
        sim.maintenance = None;
        return None;
    }
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "maintenance");
    response.headers_mut().insert("Retry-After", retry_after_secs.into());
    Some(response)
}

/// Middleware on Protime's endpoints: records every request (the token endpoint as `/token`)
/// with the status it was answered.
pub(super) async fn record(
    State(shared): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path();
    let query = request.uri().query().unwrap_or("").to_owned();
    let path = if path.ends_with("/connect/token") { "/token".to_owned() } else { path.to_owned() };
    let user_agent = request.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let response = next.run(request).await;
    shared.lock().seen.push(Seen { method, path, query, user_agent, status: response.status().as_u16() });
    response
}
