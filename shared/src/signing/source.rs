//! The signing keys in Secrets Manager: the signing-keys secret (`SIGNING_KEYS_SECRET`), read
//! with an explicit `VersionStage`, and, while a deployment upgrades from release 0.1, the
//! per-collection secrets that release kept (`<SIGNING_KEY_SECRET_PREFIX><collection>`).

use crate::collection::Collection;
use crate::signing::document::KeyDocument;
use crate::signing::keys::{KeySource, KeySourceError, KeyStage, KeyVersion, SecretVersion};
use crate::signing::signature::SigningKey;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use std::time::SystemTime;

/// Reads (and, for the renewer, writes: [`crate::signing::writer`]) the signing-keys secret.
#[derive(Debug, Clone)]
pub struct SecretsManagerKeySource {
    client: aws_sdk_secretsmanager::Client,
    secret: String,
    legacy_prefix: Option<String>,
    /// Whether the field hash key was seen in the secret (it is never removed): the renewer's
    /// check reads the secret once per process.
    pub(crate) hash_key_seen: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// A secret version's SecretString and creation time. `Debug` is not derived: it holds keys.
pub(crate) struct Read {
    pub text: String,
    pub created: SystemTime,
}

impl SecretsManagerKeySource {
    /// The source of the secret named (or ARN) `secret`.
    pub fn new(client: aws_sdk_secretsmanager::Client, secret: impl Into<String>) -> Self {
        SecretsManagerKeySource {
            client,
            secret: secret.into(),
            legacy_prefix: None,
            hash_key_seen: Default::default(),
        }
    }

    /// Also looks a collection the secret lacks up in `<prefix><collection>`, where release
    /// 0.1 kept one secret per collection (`None`: nowhere).
    pub fn with_legacy_prefix(mut self, prefix: Option<String>) -> Self {
        self.legacy_prefix = prefix.filter(|p| !p.is_empty());
        self
    }

    /// The signing-keys secret's name or ARN.
    pub fn secret_id(&self) -> &str {
        &self.secret
    }

    /// Whether the deployment names where release 0.1 kept its keys.
    pub(crate) fn has_legacy_place(&self) -> bool {
        self.legacy_prefix.is_some()
    }

    /// Where release 0.1 kept the collection's key, if the deployment names the place.
    pub fn legacy_secret_id(&self, collection: Collection) -> Option<String> {
        self.legacy_prefix.as_ref().map(|prefix| format!("{prefix}{}", collection.as_str()))
    }

    pub(crate) fn client(&self) -> &aws_sdk_secretsmanager::Client {
        &self.client
    }

    /// GetSecretValue at `stage`: `None` if the secret or the stage does not exist (or, when
    /// `deleted_is_missing`, if the secret is scheduled for deletion).
    pub(crate) async fn read(
        &self,
        id: &str,
        stage: KeyStage,
        deleted_is_missing: bool,
    ) -> Result<Option<Read>, KeySourceError> {
        let result = self.client.get_secret_value().secret_id(id).version_stage(stage.label()).send().await;
        match result {
            Ok(out) => {
                let Some(text) = out.secret_string() else {
                    return Err(KeySourceError::NotAString { secret: id.to_owned(), stage: stage.label() });
                };
                let created =
                    out.created_date().and_then(|d| SystemTime::try_from(*d).ok()).unwrap_or(SystemTime::UNIX_EPOCH);
                Ok(Some(Read { text: text.to_owned(), created }))
            }
            Err(SdkError::ServiceError(e)) if matches!(e.err(), GetSecretValueError::ResourceNotFoundException(_)) => {
                Ok(None)
            }
            Err(SdkError::ServiceError(e))
                if deleted_is_missing && matches!(e.err(), GetSecretValueError::InvalidRequestException(_)) =>
            {
                Ok(None)
            }
            // The error text names the secret and the failure, never its value.
            Err(e) => Err(KeySourceError::Read { secret: id.to_owned(), message: DisplayErrorContext(e).to_string() }),
        }
    }

    /// The signing-keys secret's document at `stage`.
    pub(crate) async fn document(&self, stage: KeyStage) -> Result<Option<SecretVersion>, KeySourceError> {
        let Some(read) = self.read(&self.secret, stage, false).await? else { return Ok(None) };
        let document = KeyDocument::parse(&read.text)
            .map_err(|e| KeySourceError::Malformed { secret: self.secret.clone(), message: e.to_string() })?;
        Ok(Some(SecretVersion { secret: self.secret.clone(), document, created: read.created }))
    }
}

impl SecretsManagerKeySource {
    /// The field hash key in the secret's current version; the error says what is missing.
    pub async fn field_hash_key(&self) -> Result<crate::records::policy::HashKey, String> {
        let version = self.document(KeyStage::Current).await.map_err(|e| e.to_string())?;
        let version = version.ok_or_else(|| format!("the signing-keys secret {} does not exist", self.secret))?;
        version.document.field_hash_key().ok_or_else(|| {
            format!(
                "the signing-keys secret {} has no \"{}\" of at least {} characters yet: the renewer generates it on its first run (invoke it once)",
                self.secret,
                crate::records::policy::HASH_KEY_MEMBER,
                crate::records::policy::MIN_HASH_KEY_BYTES
            )
        })
    }
}

impl KeySource for SecretsManagerKeySource {
    async fn fetch(&self, stage: KeyStage) -> Result<Option<SecretVersion>, KeySourceError> {
        self.document(stage).await
    }

    async fn fetch_legacy(
        &self,
        collection: Collection,
        stage: KeyStage,
    ) -> Result<Option<KeyVersion>, KeySourceError> {
        let Some(id) = self.legacy_secret_id(collection) else { return Ok(None) };
        // The renewer schedules its deletion once the key is carried over.
        let read = self.read(&id, stage, true).await?;
        Ok(read.map(|read| KeyVersion { key: SigningKey::new(read.text), created: read.created }))
    }
}
