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
}

/// Records the request and applies an injected fault, if one is queued for `target`.
pub(super) async fn intercept(
    shared: &Shared,
    target: &'static str,
    method: &str,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    let fault = shared.lock().faults.get_mut(target).and_then(|q| q.pop_front());
    let user_agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let record = |status: u16| {
        shared.lock().seen.push(Seen {
            method: method.into(),
            path: path.into(),
            user_agent: user_agent.clone(),
            status,
        })
    };
    match fault {
        Some(Fault::Status { status, retry_after_secs }) => {
            record(status);
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = error(code, "Injected", "injected fault");
            if let Some(secs) = retry_after_secs {
                response.headers_mut().insert("Retry-After", secs.to_string().parse().unwrap());
            }
            Some(response)
        }
        Some(Fault::Delay(by)) => {
            tokio::time::sleep(by).await;
            record(0);
            None
        }
        Some(Fault::ExpireTokens) => {
            shared.lock().tokens.clear();
            record(200);
            None
        }
        Some(Fault::Pass) | None => {
            record(200);
            None
        }
    }
}
