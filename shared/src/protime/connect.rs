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
/// token is due, was refused, or lacked a scope a request needed, the secret is read again, the
/// run starts with a new token, and a new client is built only if the credentials changed, so
/// rotated credentials and newly granted scopes are used without a redeploy.
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
        let credentials = ProtimeCredentials::from_json(json)
            .map_err(|e| ConnectError::InvalidCredentials { secret: secret.clone(), message: e.to_string() })?;
        if credentials.is_placeholder() {
            return Err(ConnectError::NotConfigured { secret: secret.clone() });
        }
        Ok(credentials)
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
            // Due, refused or short of a scope: this run starts with a new token.
            kept.client.forget_token().await;
            return Ok(kept.client.clone());
        }
        let client = Arc::new(ProtimeClient::new(credentials.clone(), self.options.clone())?);
        *session = Some(Session { credentials, client: client.clone() });
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
    use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule};
    use std::time::Duration;

    /// A Secrets Manager whose credentials secret holds whatever `current` holds at each read.
    fn secrets(current: Arc<std::sync::Mutex<String>>) -> (aws_sdk_secretsmanager::Client, Rule) {
        let rule = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .sequence()
            .output(move || {
                let json = current.lock().map(|c| c.clone()).unwrap_or_default();
                GetSecretValueOutput::builder().secret_string(json).build()
            })
            .repeatedly()
            .build();
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_secretsmanager::config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new("id", "secret", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(MockResponseInterceptor::new().with_rule(&rule))
            .build();
        (aws_sdk_secretsmanager::Client::from_conf(config), rule)
    }

    fn credentials(secret: &str) -> String {
        serde_json::json!({"tenant": "acme", "environment": "myprotime.eu", "clientId": "id", "clientSecret": secret})
            .to_string()
    }

    #[tokio::test]
    async fn a_warm_run_reuses_the_client_while_its_token_is_fresh_and_rotated_credentials_make_a_new_one() {
        let current = Arc::new(std::sync::Mutex::new(credentials("one")));
        let (client, reads) = secrets(current.clone());
        let protime = CredentialsFromSecret::new(client, "creds", ClientOptions::new(vec!["s".into()], "Acme"));

        let first = protime.connect().await.unwrap();
        assert_eq!(reads.num_calls(), 1);
        // No token yet (none fetched): the secret is read again, and the same credentials keep the client.
        let second = protime.connect().await.unwrap();
        assert_eq!(reads.num_calls(), 2);
        assert!(Arc::ptr_eq(&first, &second));

        // A fresh token: the next run reuses the client without reading the secret.
        first.cache_token_for_tests(Duration::from_secs(600)).await;
        *current.lock().unwrap() = credentials("two");
        let third = protime.connect().await.unwrap();
        assert_eq!(reads.num_calls(), 2, "no read while the token is fresh");
        assert!(Arc::ptr_eq(&first, &third));

        // Due: the secret is read again, and rotated credentials make a new client.
        first.cache_token_for_tests(Duration::ZERO).await;
        let fourth = protime.connect().await.unwrap();
        assert_eq!(reads.num_calls(), 3);
        assert!(!Arc::ptr_eq(&first, &fourth));
        assert!(!format!("{protime:?}").contains("two"), "Debug shows no credentials");
    }

    #[tokio::test]
    async fn an_unreadable_secret_is_a_connect_error_without_its_content() {
        let current = Arc::new(std::sync::Mutex::new(r#"{"clientSecret":"s3cr3t"}"#.to_owned()));
        let (client, _) = secrets(current);
        let protime = CredentialsFromSecret::new(client, "creds", ClientOptions::new(vec!["s".into()], "Acme"));
        let err = protime.connect().await.map(|_| ()).unwrap_err();
        assert!(matches!(err, ConnectError::InvalidCredentials { .. }), "{err}");
        assert!(!err.to_string().contains("s3cr3t"));
    }

    #[tokio::test]
    async fn the_templates_placeholder_secret_is_not_configured_and_filling_it_in_connects() {
        let placeholder = r#"{"tenant":"REPLACE_ME","environment":"myprotime.eu","clientId":"REPLACE_ME","clientSecret":"REPLACE_ME"}"#;
        let current = Arc::new(std::sync::Mutex::new(placeholder.to_owned()));
        let (client, _) = secrets(current.clone());
        let protime = CredentialsFromSecret::new(client, "creds", ClientOptions::new(vec!["s".into()], "Acme"));
        let err = protime.connect().await.map(|_| ()).unwrap_err();
        assert_eq!(err, ConnectError::NotConfigured { secret: "creds".into() });
        *current.lock().unwrap() = credentials("s3cr3t");
        assert!(protime.connect().await.is_ok(), "read again at the next run");
    }
}
