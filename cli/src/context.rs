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

/// Every object in the quarantine bucket under `prefix` (all pages), with the time it was kept.
pub async fn quarantined_under(context: &Context, prefix: &str) -> Result<Vec<Kept>, CliError> {
    let mut pages = context.s3().list_objects_v2().bucket(context.bucket()?).prefix(prefix).into_paginator().send();
    let mut objects = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("listing the quarantine", e))?;
        objects.extend(page.contents().iter().map(|o| Kept {
            key: o.key().unwrap_or_default().to_owned(),
            size: o.size(),
            kept_at: o.last_modified().and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0)),
        }));
    }
    Ok(objects)
}

/// One quarantined object as the listing shows it.
pub struct Kept {
    pub key: String,
    pub size: Option<i64>,
    pub kept_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An SDK error as one line that names the service's answer.
pub fn aws_error<E: std::error::Error + 'static>(what: &str, error: E) -> CliError {
    CliError::Aws(format!("{what}: {}", aws_sdk_s3::error::DisplayErrorContext(error)))
}
