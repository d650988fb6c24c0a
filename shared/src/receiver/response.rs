//! The answer to a request, as JSON: a refusal's status and `{"error":{"code","message"}}`, or
//! an acknowledged request's 200 with one result per event (202 for a body quarantined whole).

use crate::receiver::error::ReceiveError;
use crate::receiver::outcome::{EventOutcome, Received};
use crate::records::event::ChangeType;
use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

impl ReceiveError {
    /// The refusal: its status, with `{"error":{"code","message"}}` (and `Allow: POST` when
    /// the method was wrong).
    pub(super) fn into_response(self) -> Response<Body> {
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        let mut response = json_response(self.status(), &body);
        if matches!(self, ReceiveError::MethodNotAllowed) {
            response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        }
        response
    }
}

impl Received {
    /// 202 when the whole body was quarantined, else 200.
    pub fn status(&self) -> StatusCode {
        if self.whole_body_quarantined {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        }
    }

    /// `{"quarantined":{"key","reason"}}` for a whole body, else one result per event in the
    /// body's order.
    pub(super) fn into_response(self) -> Response<Body> {
        if let (true, Some(EventOutcome::Quarantined { key, reason })) =
            (self.whole_body_quarantined, self.outcomes.first().map(|o| &o.outcome))
        {
            return json_response(StatusCode::ACCEPTED, &json!({"quarantined": {"key": key, "reason": reason}}));
        }
        let results: Vec<_> = self
            .outcomes
            .iter()
            .map(|o| {
                let mut result = json!({
                    "id": o.id,
                    "changeVersion": o.change_version,
                    "changeType": o.change_type.map(ChangeType::as_str),
                    "outcome": o.outcome.as_str(),
                });
                if let EventOutcome::Quarantined { key, reason } = &o.outcome {
                    result["reason"] = json!(reason);
                    result["key"] = json!(key);
                }
                result
            })
            .collect();
        json_response(StatusCode::OK, &json!({ "results": results }))
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}
