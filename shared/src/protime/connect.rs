//! Opening a Protime session with the client credentials read from Secrets Manager.

use super::api::{Connect, ConnectError};
use super::client::{ClientOptions, ProtimeClient};
use super::credentials::ProtimeCredentials;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

/// Opens a [`ProtimeClient`] with the credentials read from Secrets Manager at each
/// [`Connect::connect`], so rotated client credentials are used without a redeploy.
#[derive(Debug, Clone)]
pub struct CredentialsFromSecret {
    secrets: aws_sdk_secretsmanager::Client,
    secret_id: String,
    /// Client settings beyond the credentials (public so tests can shorten the retries).
    pub options: ClientOptions,
}

impl CredentialsFromSecret {
    pub fn new(secrets: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>, options: ClientOptions) -> Self {
        CredentialsFromSecret { secrets, secret_id: secret_id.into(), options }
    }
}

impl Connect for CredentialsFromSecret {
    type Api = ProtimeClient;

    async fn connect(&self) -> Result<ProtimeClient, ConnectError> {
        let secret = &self.secret_id;
        let answer =
            self.secrets.get_secret_value().secret_id(secret).version_stage("AWSCURRENT").send().await.map_err(
                |e| ConnectError::SecretUnavailable {
                    secret: secret.clone(),
                    message: DisplayErrorContext(e).to_string(),
                },
            )?;
        let json = answer.secret_string().ok_or_else(|| ConnectError::InvalidCredentials {
            secret: secret.clone(),
            message: "it holds no SecretString".into(),
        })?;
        let credentials = ProtimeCredentials::from_json(json)
            .map_err(|e| ConnectError::InvalidCredentials { secret: secret.clone(), message: e.to_string() })?;
        Ok(ProtimeClient::new(credentials, self.options.clone())?)
    }
}
