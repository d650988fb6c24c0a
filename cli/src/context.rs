//! The AWS clients and the resource names a command needs, and what can go wrong finding them.

use crate::Global;
use aws_config::{Region, SdkConfig};
use protime_webhooks::receiver::signing_keys::SecretsManagerKeySource;

/// Why a command could not run. Never holds a key, a signature or a body.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}: pass --{1} or set {2}")]
    Missing(&'static str, &'static str, &'static str),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Aws(String),
}

pub struct Context {
    pub global: Global,
    pub sdk: SdkConfig,
}

impl Context {
    pub async fn new(global: &Global) -> Self {
        let mut loader = protime_webhooks::aws::config_loader();
        if let Some(region) = &global.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &global.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &global.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        Context { global: global.clone(), sdk: loader.load().await }
    }

    pub fn table(&self) -> Result<&str, CliError> {
        self.global.table.as_deref().ok_or(CliError::Missing("no record table", "table", "TABLE_NAME"))
    }

    pub fn bucket(&self) -> Result<&str, CliError> {
        self.global.bucket.as_deref().ok_or(CliError::Missing("no quarantine bucket", "bucket", "QUARANTINE_BUCKET"))
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        protime_webhooks::records::quarantine::S3Quarantine::client(&self.sdk)
    }

    pub fn keys(&self) -> SecretsManagerKeySource {
        SecretsManagerKeySource::new(aws_sdk_secretsmanager::Client::new(&self.sdk), &self.global.key_prefix)
    }
}

/// An SDK error as one line that names the service's answer.
pub fn aws_error<E: std::error::Error + 'static>(what: &str, error: E) -> CliError {
    CliError::Aws(format!("{what}: {}", aws_sdk_s3::error::DisplayErrorContext(error)))
}
