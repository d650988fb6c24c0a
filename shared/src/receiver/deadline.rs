//! The invocation's time budget: when the writes must be done by, so that a request that cannot
//! finish is answered 503 (and retried) before Lambda ends the function.

use crate::receiver::error::ReceiveError;
use lambda_http::{Request, RequestExt};

/// Time kept back from the invocation's deadline to answer 503 before Lambda ends the function.
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_millis(1500);

/// When the writes must be done by: the invocation's deadline less [`DEADLINE_MARGIN`]. None
/// outside Lambda (no context), or when the deadline is not a time still ahead: Lambda ends an
/// invocation at its deadline, so a past one is an emulator's placeholder (`cargo lambda watch`
/// sends the timeout's length, 600000), not a deadline.
pub(super) fn invocation_deadline(request: &Request) -> Option<tokio::time::Instant> {
    let deadline_ms = request.lambda_context_ref()?.deadline;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64;
    let left = std::time::Duration::from_millis(deadline_ms.checked_sub(now_ms).filter(|ms| *ms > 0)?);
    Some(tokio::time::Instant::now() + left.saturating_sub(DEADLINE_MARGIN))
}

/// `work`, unless `deadline` passes first (then 503 `out_of_time`: nothing is acknowledged, and
/// whatever was written is safe to retry).
pub(super) async fn before<T>(
    deadline: Option<tokio::time::Instant>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, ReceiveError> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, work).await.map_err(|_| ReceiveError::OutOfTime),
        None => Ok(work.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::fixtures::*;
    use std::time::SystemTime;

    #[tokio::test]
    async fn a_batch_that_cannot_finish_before_the_invocation_deadline_is_503() {
        let r = receiver();
        r.store.delays.lock().unwrap().insert("2".into(), 200);
        let body = r#"[{"id":1,"changeVersion":"1"},{"id":2,"changeVersion":"1"}]"#;
        let mut context = lambda_http::Context::default();
        let now_ms = SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        context.deadline = now_ms + 1600; // 100 ms left once the margin is kept back
        let (status, answer_body) = answer(&r, signed("/webhooks/clockings", body).with_lambda_context(context)).await;
        assert_eq!((status, answer_body["error"]["code"].as_str()), (503, Some("out_of_time")));
        // A deadline that is not ahead (an emulator's placeholder) sets no limit.
        let mut context = lambda_http::Context::default();
        context.deadline = 600_000;
        let (status, answer_body) = answer(&r, signed("/webhooks/clockings", body).with_lambda_context(context)).await;
        assert_eq!(status, 200, "{answer_body}");
        // With time enough, the same batch is stored again (the retries are duplicates).
        let mut context = lambda_http::Context::default();
        context.deadline = now_ms + 30_000;
        let (status, answer_body) = answer(&r, signed("/webhooks/clockings", body).with_lambda_context(context)).await;
        assert_eq!(status, 200, "{answer_body}");
        assert_eq!(answer_body["results"][1]["outcome"], "duplicate");
    }
}
