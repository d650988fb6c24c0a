//! The AWS SDK configuration shared by all clients, built once per cold start.
//!
//! `aws_config` honours `AWS_ENDPOINT_URL` (and the per-service variants), so the same
//! binaries run against AWS or a local emulator.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use std::ffi::OsString;
use std::path::PathBuf;
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

/// Makes the TLS stack read the system's CA bundle file only, not also the certificate directory.
///
/// The SDK's HTTPS client (rustls-native-certs) loads the trust store once per process, when the
/// first client is built. Left to itself it reads the bundle file *and* every file in the
/// certificate directory, which holds the same roots again (Debian: one file per root; Amazon
/// Linux 2023: the bundle again plus its OpenSSL trust variant). Parsing them twice is most of a
/// cold start's own work (see docs/performance.md, "Where init goes"). This sets `SSL_CERT_FILE` to the bundle that
/// the same probe finds, so the roots are read once; it does nothing when `SSL_CERT_FILE` or
/// `SSL_CERT_DIR` is already set (an operator's choice wins) or when no bundle file exists.
///
/// # Safety
///
/// It sets an environment variable, so no other thread may exist yet: call it first thing in a
/// synchronous `main`, before the async runtime starts.
pub unsafe fn read_ca_bundle_file_only() {
    let pinned = ca_bundle_to_pin(
        std::env::var_os("SSL_CERT_FILE"),
        std::env::var_os("SSL_CERT_DIR"),
        openssl_probe::probe().cert_file,
    );
    if let Some(bundle) = pinned {
        std::env::set_var("SSL_CERT_FILE", bundle);
    }
}

/// The bundle to pin as `SSL_CERT_FILE`, given the current variables and the probed bundle.
pub fn ca_bundle_to_pin(
    cert_file: Option<OsString>,
    cert_dir: Option<OsString>,
    probed_bundle: Option<PathBuf>,
) -> Option<PathBuf> {
    let unset = |value: &Option<OsString>| value.as_ref().is_none_or(|value| value.is_empty());
    if unset(&cert_file) && unset(&cert_dir) {
        probed_bundle
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUNDLE: &str = "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem";

    #[test]
    fn the_probed_bundle_is_pinned_when_nothing_is_set() {
        assert_eq!(ca_bundle_to_pin(None, None, Some(BUNDLE.into())), Some(PathBuf::from(BUNDLE)));
        assert_eq!(
            ca_bundle_to_pin(Some("".into()), Some("".into()), Some(BUNDLE.into())),
            Some(PathBuf::from(BUNDLE))
        );
    }

    #[test]
    fn an_operators_choice_is_left_alone() {
        assert_eq!(ca_bundle_to_pin(Some("/opt/ca.pem".into()), None, Some(BUNDLE.into())), None);
        assert_eq!(ca_bundle_to_pin(None, Some("/opt/certs".into()), Some(BUNDLE.into())), None);
    }

    #[test]
    fn without_a_bundle_file_the_default_probe_stays() {
        assert_eq!(ca_bundle_to_pin(None, None, None), None);
    }
}
