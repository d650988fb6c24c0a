//! The client credentials secret: `{"tenant","environment","clientId","clientSecret"}`.

use super::api::{Connect, ConnectError};
use super::client::{ClientOptions, ProtimeClient};
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::fmt;

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtimeCredentials {
    pub tenant: String,
    /// e.g. `myprotime.eu` or `myprotimesandbox.eu`.
    pub environment: String,
    pub client_id: String,
    client_secret: SecretString,
}

impl ProtimeCredentials {
    pub fn new(tenant: &str, environment: &str, client_id: &str, client_secret: &str) -> Self {
        ProtimeCredentials {
            tenant: tenant.into(),
            environment: environment.into(),
            client_id: client_id.into(),
            client_secret: SecretString::from(client_secret.to_owned()),
        }
    }

    /// Parses the secret's JSON; the error never quotes the input.
    pub fn from_json(json: &str) -> Result<Self, CredentialsError> {
        serde_json::from_str(json).map_err(|e| CredentialsError { line: e.line(), column: e.column() })
    }

    pub fn client_secret(&self) -> &str {
        self.client_secret.expose_secret()
    }

    /// `https://<tenant>.<environment>/connector/protimeapi/api/v1`
    pub fn api_base_url(&self) -> String {
        format!("https://{}.{}/connector/protimeapi/api/v1", self.tenant, self.environment)
    }

    /// `https://authentication.<environment>/tenants/<tenant>/connect/token`
    pub fn token_url(&self) -> String {
        format!("https://authentication.{}/tenants/{}/connect/token", self.environment, self.tenant)
    }
}

/// The credentials secret is not the JSON it must be. Says where, never what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the credentials secret must be JSON {{\"tenant\",\"environment\",\"clientId\",\"clientSecret\"}} (line {line}, column {column})")]
pub struct CredentialsError {
    pub line: usize,
    pub column: usize,
}

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

impl fmt::Debug for ProtimeCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtimeCredentials")
            .field("tenant", &self.tenant)
            .field("environment", &self.environment)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_derived_from_tenant_and_environment() {
        let c = ProtimeCredentials::from_json(
            r#"{"tenant":"acme","environment":"myprotime.eu","clientId":"id","clientSecret":"s3cr3t"}"#,
        )
        .unwrap();
        assert_eq!(c.api_base_url(), "https://acme.myprotime.eu/connector/protimeapi/api/v1");
        assert_eq!(c.token_url(), "https://authentication.myprotime.eu/tenants/acme/connect/token");
        assert_eq!(c.client_secret(), "s3cr3t");
    }

    #[test]
    fn debug_and_parse_errors_never_show_the_secret() {
        let c = ProtimeCredentials::new("t", "e", "id", "s3cr3t");
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let err = ProtimeCredentials::from_json(r#"{"clientSecret":"s3cr3t"}"#).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
}
