//! The client credentials secret: `{"tenant","environment","clientId","clientSecret"}`.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::fmt;

/// What the template's credentials secret holds in each field until the operator fills it in.
pub const PLACEHOLDER: &str = "REPLACE_ME";

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

    /// Not filled in yet: the tenant, the client id or the client secret is still the template's
    /// [`PLACEHOLDER`] (or empty). Such a stack has nothing to ask Protime yet.
    pub fn is_placeholder(&self) -> bool {
        [self.tenant.as_str(), self.client_id.as_str(), self.client_secret()]
            .iter()
            .any(|field| field.trim().is_empty() || *field == PLACEHOLDER)
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

/// Equal when every field is, the client secret included (compared, never shown): a rotated
/// secret makes a new client.
impl PartialEq for ProtimeCredentials {
    fn eq(&self, other: &Self) -> bool {
        self.tenant == other.tenant
            && self.environment == other.environment
            && self.client_id == other.client_id
            && self.client_secret.expose_secret() == other.client_secret.expose_secret()
    }
}

impl Eq for ProtimeCredentials {}

/// The credentials secret is not the JSON it must be. Says where, never what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the credentials secret must be JSON {{\"tenant\",\"environment\",\"clientId\",\"clientSecret\"}} (line {line}, column {column})")]
pub struct CredentialsError {
    pub line: usize,
    pub column: usize,
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
    fn the_templates_placeholders_or_an_empty_field_are_not_filled_in() {
        let filled = ProtimeCredentials::new("acme", "myprotime.eu", "id", "s3cr3t");
        assert!(!filled.is_placeholder());
        for (tenant, id, secret) in [
            (PLACEHOLDER, "id", "s"),
            ("acme", PLACEHOLDER, "s"),
            ("acme", "id", PLACEHOLDER),
            ("", "id", "s"),
            ("acme", "id", " "),
        ] {
            assert!(ProtimeCredentials::new(tenant, "myprotime.eu", id, secret).is_placeholder(), "{tenant} {id}");
        }
    }

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
