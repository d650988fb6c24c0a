//! Storing the key Protime issues at a renewal, the moment it is issued: the old key stops
//! matching then. Only the renewer writes keys, one run at a time (its lease); the receiver
//! reads them ([`crate::signing::keys`]).
//!
//! Every collection's key is in one secret, so a write reads the secret, changes one
//! collection's entry and puts the whole document back (PutSecretValue: the version before
//! becomes `AWSPREVIOUS`). Writes of one process are serialized, so two cannot lose each
//! other's key.

use crate::collection::Collection;
use crate::signing::document::KeyDocument;
use crate::signing::keys::{KeySourceError, KeyStage, SecretVersion};
use crate::signing::signature::SigningKey;
use crate::signing::source::SecretsManagerKeySource;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
use std::future::Future;
use std::sync::LazyLock;
use std::time::SystemTime;

/// Stores new keys in the signing-keys secret.
pub trait KeyWriter: Send + Sync {
    /// Makes `key` the collection's key; the one it replaces stays its previous key.
    fn store(
        &self,
        collection: Collection,
        key: &SigningKey,
    ) -> impl Future<Output = Result<(), KeySourceError>> + Send;

    /// Moves into the secret the keys of `collections` that it lacks and release 0.1 kept in
    /// one secret per collection (returned), and schedules the deletion of such an old secret
    /// once the signing-keys secret has held the collection's key for [`LEGACY_KEPT_FOR`]
    /// (`now`: the run's clock), so no warm receiver still reads it. Nothing to do when the
    /// deployment names no such place.
    fn carry_over(
        &self,
        collections: &[Collection],
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<Collection>, KeySourceError>> + Send;

    /// Generates the field hash key ([`crate::records::policy::HASH_KEY_MEMBER`]: 64 random
    /// letters and digits) when the secret has none; `true` when it did. Once one was seen, the
    /// writer does not read the secret for it again.
    fn ensure_hash_key(&self) -> impl Future<Output = Result<bool, KeySourceError>> + Send;
}

/// A new field hash key: 64 letters and digits from the thread's cryptographically secure
/// generator (seeded by the operating system).
fn new_hash_key() -> String {
    use rand::Rng;
    rand::rng().sample_iter(&rand::distr::Alphanumeric).take(64).map(char::from).collect()
}

/// How long a release 0.1 secret is kept after its key is in the signing-keys secret: longer
/// than a receiver caches the secret (`SIGNING_KEY_CACHE_TTL_SECONDS`, 300 s by default).
pub const LEGACY_KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// How long a release 0.1 secret stays recoverable after its key was carried over.
pub const LEGACY_RECOVERY_DAYS: i64 = 7;

/// One writer at a time per process: a write is a read, a change and a put.
static WRITING: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

impl KeyWriter for SecretsManagerKeySource {
    async fn store(&self, collection: Collection, key: &SigningKey) -> Result<(), KeySourceError> {
        let _writing = WRITING.lock().await;
        let document = self.writable().await?;
        self.put(&document.with_key(collection, key, SystemTime::now())).await
    }

    async fn carry_over(&self, collections: &[Collection], now: SystemTime) -> Result<Vec<Collection>, KeySourceError> {
        if !self.has_legacy_place() {
            return Ok(Vec::new());
        }
        let _writing = WRITING.lock().await;
        let mut document = self.writable().await?;
        let mut moved = Vec::new();
        for &collection in collections {
            let Some(id) = self.legacy_secret_id(collection) else { continue };
            let stored = document.get(collection);
            if stored == Ok(None) {
                if let Some(read) = self.read(&id, KeyStage::Current, true).await? {
                    document = document.with_key(collection, &SigningKey::new(read.text), now);
                    moved.push(collection);
                }
            } else if matches!(&stored, Ok(Some(s)) if held_long_enough(s.rotated_at, now))
                && self.read(&id, KeyStage::Current, true).await?.is_some()
            {
                self.delete_legacy(collection).await;
            }
        }
        if !moved.is_empty() {
            self.put(&document).await?;
        }
        Ok(moved)
    }

    async fn ensure_hash_key(&self) -> Result<bool, KeySourceError> {
        use std::sync::atomic::Ordering;
        if self.hash_key_seen.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let _writing = WRITING.lock().await;
        let document = self.writable().await?;
        let generated = document.field_hash_key().is_none();
        if generated {
            self.put(&document.with_hash_key(&new_hash_key())).await?;
        }
        self.hash_key_seen.store(true, Ordering::Relaxed);
        Ok(generated)
    }
}

/// Whether a key stored at `rotated_at` has been in the secret for [`LEGACY_KEPT_FOR`] at `now`
/// (a key without the time is not: only the renewer's writes carry it).
fn held_long_enough(rotated_at: Option<SystemTime>, now: SystemTime) -> bool {
    rotated_at.and_then(|at| now.duration_since(at).ok()).is_some_and(|held| held >= LEGACY_KEPT_FOR)
}

impl SecretsManagerKeySource {
    /// The current document, empty if the secret holds none yet. A secret that cannot be read
    /// is not written over: the other collections' keys would be lost.
    async fn writable(&self) -> Result<KeyDocument, KeySourceError> {
        match self.document(KeyStage::Current).await {
            Ok(version) => Ok(version.map(|SecretVersion { document, .. }| document).unwrap_or_default()),
            Err(e) => Err(KeySourceError::Write { secret: self.secret_id().to_owned(), message: e.to_string() }),
        }
    }

    /// PutSecretValue. Transient failures are retried by the SDK's own retry policy
    /// ([`crate::aws::config_loader`]); no loop is stacked on top of it.
    async fn put(&self, document: &KeyDocument) -> Result<(), KeySourceError> {
        let put =
            self.client().put_secret_value().secret_id(self.secret_id()).secret_string(document.render()).send().await;
        put.map(|_| ()).map_err(|e| {
            let message = match &e {
                SdkError::ServiceError(s) if s.err().is_resource_not_found_exception() => {
                    "it does not exist (the stack creates it; `make run` creates the local one)".to_owned()
                }
                _ => DisplayErrorContext(e).to_string(),
            };
            KeySourceError::Write { secret: self.secret_id().to_owned(), message }
        })
    }

    /// Schedules the deletion of the collection's release 0.1 secret, recoverable for
    /// [`LEGACY_RECOVERY_DAYS`]. A failure is logged: the key is already carried over.
    async fn delete_legacy(&self, collection: Collection) {
        let Some(id) = self.legacy_secret_id(collection) else { return };
        let deleted =
            self.client().delete_secret().secret_id(&id).recovery_window_in_days(LEGACY_RECOVERY_DAYS).send().await;
        match deleted {
            Ok(_) => {
                tracing::info!(collection = %collection, secret = %id, "carried the signing key over; its old secret is scheduled for deletion")
            }
            Err(e) => {
                tracing::warn!(collection = %collection, secret = %id, error = %DisplayErrorContext(e), "carried the signing key over; could not schedule its old secret's deletion")
            }
        }
    }
}
