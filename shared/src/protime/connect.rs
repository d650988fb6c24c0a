//! Opening a Protime session with the client credentials read from Secrets Manager.

use super::api::{Connect, ConnectError};
use super::client::{ClientOptions, ProtimeClient};
use super::credentials::ProtimeCredentials;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use std::fmt;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Opens a [`ProtimeClient`] with the credentials read from Secrets Manager, and keeps it across
/// the runs of a warm function: while its token is still valid, [`Connect::connect`] hands out
/// the same client without reading the secret (Protime rate-limits token requests). Once the
/// token is due, or was refused, the secret is read again and a new client is built only if the
/// credentials changed, so rotated credentials are used without a redeploy.
#[derive(Clone)]
pub struct CredentialsFromSecret {
    secrets: aws_sdk_secretsmanager::Client,
    secret_id: String,
    /// Client settings beyond the credentials (public so tests can shorten the retries; read
    /// when a client is built).
    pub options: ClientOptions,
    /// The client of the last run and the credentials it was built with (shared by clones).
    session: Arc<Mutex<Option<Session>>>,
}

struct Session {
    credentials: ProtimeCredentials,
    client: Arc<ProtimeClient>,
}

impl fmt::Debug for CredentialsFromSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsFromSecret")
            .field("secret_id", &self.secret_id)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl CredentialsFromSecret {
    pub fn new(secrets: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>, options: ClientOptions) -> Self {
        CredentialsFromSecret { secrets, secret_id: secret_id.into(), options, session: Arc::default() }
    }

    async fn read_credentials(&self) -> Result<ProtimeCredentials, ConnectError> {
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
        ProtimeCredentials::from_json(json)
            .map_err(|e| ConnectError::InvalidCredentials { secret: secret.clone(), message: e.to_string() })
    }
}

impl Connect for CredentialsFromSecret {
    type Api = Arc<ProtimeClient>;

    async fn connect(&self) -> Result<Arc<ProtimeClient>, ConnectError> {
        let mut session = self.session.lock().await;
        if let Some(kept) = session.as_ref() {
            if kept.client.has_fresh_token().await {
                return Ok(kept.client.clone());
            }
        }
        let credentials = self.read_credentials().await?;
        if let Some(kept) = session.as_ref().filter(|kept| kept.credentials == credentials) {
            return Ok(kept.client.clone());
        }
        let client = Arc::new(ProtimeClient::new(credentials.clone(), self.options.clone())?);
        *session = Some(Session { credentials, client: client.clone() });
        Ok(client)
    }
}
