//! Storing the key Protime issues at a renewal, the moment it is issued: the old key stops
//! matching then. Only the renewer writes keys; the receiver reads them
//! ([`crate::signing::keys`]).

use crate::collection::Collection;
use crate::signing::keys::{KeySourceError, SecretsManagerKeySource};
use crate::signing::signature::SigningKey;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use std::future::Future;

/// Stores a new key as the secret's AWSCURRENT version (the old one becomes AWSPREVIOUS).
pub trait KeyWriter: Send + Sync {
    fn store(
        &self,
        collection: Collection,
        key: &SigningKey,
    ) -> impl Future<Output = Result<(), KeySourceError>> + Send;
}

impl KeyWriter for SecretsManagerKeySource {
    /// PutSecretValue, creating the secret on first use. Transient failures are retried by the
    /// SDK's own retry policy ([`crate::aws::config_loader`]); no loop is stacked on top of it.
    async fn store(&self, collection: Collection, key: &SigningKey) -> Result<(), KeySourceError> {
        let id = self.secret_id(collection);
        let put = self.client().put_secret_value().secret_id(&id).secret_string(key.expose()).send().await;
        let failure = match put {
            Ok(_) => return Ok(()),
            Err(SdkError::ServiceError(e)) if matches!(e.err(), PutSecretValueError::ResourceNotFoundException(_)) => {
                let created = self
                    .client()
                    .create_secret()
                    .name(&id)
                    .description(format!("Protime webhook signing key for {collection} (written by the renewer)"))
                    .secret_string(key.expose())
                    .send()
                    .await;
                match created {
                    Ok(_) => return Ok(()),
                    Err(e) => DisplayErrorContext(e).to_string(),
                }
            }
            Err(e) => DisplayErrorContext(e).to_string(),
        };
        Err(KeySourceError::Write { secret: id, message: failure })
    }
}
