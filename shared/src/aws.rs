//! The AWS SDK configuration shared by all clients, built once per cold start.
//!
//! `aws_config` honours `AWS_ENDPOINT_URL` (and the per-service variants), so the same
//! binaries run against AWS or a local emulator.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use std::time::Duration;

/// Timeouts are short so that a slow or unreachable service answers 503 well within the
/// function's timeout, and Protime retries, instead of the invocation timing out.
pub async fn sdk_config() -> SdkConfig {
    config_loader().load().await
}

/// The loader with our timeouts and retries, for callers that add an endpoint or credentials.
pub fn config_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
}
