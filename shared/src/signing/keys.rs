//! Webhook signing keys from Secrets Manager, cached across invocations (read only: the
//! renewer writes new keys through [`crate::signing::writer`]).
//!
//! The renewer replaces a collection's key the moment Protime issues a new one, so a warm
//! receiver must notice within seconds: a signature that does not match triggers one reload of
//! the secret (at most once per collection per `reload_min_interval`, so a flood of forged
//! requests cannot hammer Secrets Manager). Reloads are single-flight: concurrent requests of
//! one instance wait for the one read in progress and use its result. A failed read is
//! remembered for [`FAILURE_BACKOFF`], so an outage costs no call per request. Events signed
//! just before a renewal may arrive just after it, so the `AWSPREVIOUS` key is honoured for
//! `previous_grace` after the rotation; a failed read of it never fails the current key's load.

use crate::collection::Collection;
use crate::invocation::lock;
use crate::signing::signature::{self, Signature, SignatureError, SigningKey};
use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// The Secrets Manager staging label of a key version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStage {
    Current,
    Previous,
}

impl KeyStage {
    pub fn label(self) -> &'static str {
        match self {
            KeyStage::Current => "AWSCURRENT",
            KeyStage::Previous => "AWSPREVIOUS",
        }
    }
}

/// One version of a collection's key and when it was stored (the rotation time).
#[derive(Debug, Clone)]
pub struct KeyVersion {
    pub key: SigningKey,
    pub created: SystemTime,
}

/// Reading or writing a key failed for a reason other than "there is none". Names the secret,
/// never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySourceError {
    #[error("signing keys are unavailable: reading {secret}: {message}")]
    Read { secret: String, message: String },
    #[error("signing key secret {secret} ({stage}) holds no SecretString")]
    NotAString { secret: String, stage: &'static str },
    #[error("could not store the signing key in {secret}: {message}")]
    Write { secret: String, message: String },
    #[error("signing keys are unavailable: the last read failed {0:?} ago and is not retried yet")]
    BackingOff(Duration),
}

/// How long a failed read of a collection's keys is remembered before the next read is tried.
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(2);

/// Where keys are read from.
pub trait KeySource: Send + Sync {
    /// The key at `stage`, or `None` if the secret or that stage does not exist.
    fn fetch(
        &self,
        collection: Collection,
        stage: KeyStage,
    ) -> impl Future<Output = Result<Option<KeyVersion>, KeySourceError>> + Send;
}

/// Reads `<prefix><collection>` from Secrets Manager with an explicit `VersionStage`.
#[derive(Debug, Clone)]
pub struct SecretsManagerKeySource {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
}

impl SecretsManagerKeySource {
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: impl Into<String>) -> Self {
        SecretsManagerKeySource { client, prefix: prefix.into() }
    }

    pub fn secret_id(&self, collection: Collection) -> String {
        format!("{}{}", self.prefix, collection.as_str())
    }

    /// The client, for the renewer's key writer ([`crate::signing::writer`]).
    pub(crate) fn client(&self) -> &aws_sdk_secretsmanager::Client {
        &self.client
    }
}

impl KeySource for SecretsManagerKeySource {
    async fn fetch(&self, collection: Collection, stage: KeyStage) -> Result<Option<KeyVersion>, KeySourceError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(self.secret_id(collection))
            .version_stage(stage.label())
            .send()
            .await;
        match result {
            Ok(out) => {
                let Some(key) = out.secret_string() else {
                    return Err(KeySourceError::NotAString {
                        secret: self.secret_id(collection),
                        stage: stage.label(),
                    });
                };
                let created =
                    out.created_date().and_then(|d| SystemTime::try_from(*d).ok()).unwrap_or(SystemTime::UNIX_EPOCH);
                Ok(Some(KeyVersion { key: SigningKey::new(key), created }))
            }
            Err(SdkError::ServiceError(e)) if matches!(e.err(), GetSecretValueError::ResourceNotFoundException(_)) => {
                Ok(None)
            }
            // The error text names the secret and the failure, never its value.
            Err(e) => Err(KeySourceError::Read {
                secret: self.secret_id(collection),
                message: DisplayErrorContext(e).to_string(),
            }),
        }
    }
}

/// How long keys are trusted and how often they may be re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCacheConfig {
    /// Keys are re-read after this long even if every signature matched.
    pub ttl: Duration,
    /// At most one reload per collection in this interval is triggered by a mismatch.
    pub reload_min_interval: Duration,
    /// The previous key is accepted for this long after the current one was stored (0: never).
    pub previous_grace: Duration,
}

impl Default for KeyCacheConfig {
    fn default() -> Self {
        KeyCacheConfig {
            ttl: Duration::from_secs(300),
            reload_min_interval: Duration::from_secs(5),
            previous_grace: Duration::from_secs(600),
        }
    }
}

/// Which key accepted a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptedKey {
    Current,
    Previous,
}

impl AcceptedKey {
    /// `current` or `previous`, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            AcceptedKey::Current => "current",
            AcceptedKey::Previous => "previous",
        }
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("no signing key is stored for this collection")]
    NoKey,
    #[error(transparent)]
    Unavailable(#[from] KeySourceError),
}

impl VerifyError {
    /// A stable, low-cardinality name for metrics and log fields.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::Signature(e) => e.reason(),
            VerifyError::NoKey => "no_key",
            VerifyError::Unavailable(_) => "key_unavailable",
        }
    }
}

#[derive(Debug)]
struct KeySet {
    current: Option<KeyVersion>,
    previous: Option<KeyVersion>,
}

impl KeySet {
    fn check(&self, body: &[u8], sig: &Signature, grace: Duration) -> Result<AcceptedKey, VerifyError> {
        let current = self.current.as_ref().ok_or(VerifyError::NoKey)?;
        if signature::verify(&current.key, body, sig).is_ok() {
            return Ok(AcceptedKey::Current);
        }
        let rotated_ago = SystemTime::now().duration_since(current.created).unwrap_or_default();
        if let Some(previous) = self.previous.as_ref().filter(|_| rotated_ago < grace) {
            if signature::verify(&previous.key, body, sig).is_ok() {
                return Ok(AcceptedKey::Previous);
            }
        }
        Err(SignatureError::Mismatch.into())
    }
}

struct Entry {
    keys: Arc<KeySet>,
    loaded_at: Instant,
    last_forced_reload: Option<Instant>,
}

/// The cache in front of a [`KeySource`]; one per process, shared by all invocations.
pub struct SigningKeys<S> {
    source: S,
    config: KeyCacheConfig,
    entries: Mutex<HashMap<Collection, Entry>>,
    /// One gate per collection: whoever holds it reads the source; the others wait and reuse.
    gates: Mutex<HashMap<Collection, Arc<tokio::sync::Mutex<()>>>>,
    /// When a read of a collection's keys last failed.
    failed_at: Mutex<HashMap<Collection, Instant>>,
}

impl<S: KeySource> SigningKeys<S> {
    pub fn new(source: S, config: KeyCacheConfig) -> Self {
        SigningKeys {
            source,
            config,
            entries: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
            failed_at: Mutex::new(HashMap::new()),
        }
    }

    /// The source keys are read from.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Verifies `sig` over `body` with the collection's key, reloading once on a mismatch.
    pub async fn verify(
        &self,
        collection: Collection,
        body: &[u8],
        sig: &Signature,
    ) -> Result<AcceptedKey, VerifyError> {
        let asked_at = Instant::now();
        let keys = self.keys(collection).await?;
        match keys.check(body, sig, self.config.previous_grace) {
            Ok(accepted) => Ok(accepted),
            Err(mismatch @ (VerifyError::Signature(_) | VerifyError::NoKey)) => {
                match self.reload_after_mismatch(collection, asked_at).await? {
                    Some(fresh) => fresh.check(body, sig, self.config.previous_grace),
                    None => Err(mismatch),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Keys read after `asked_at`: another request's reload if one finished meanwhile, else a
    /// reload of our own if the interval allows one (`None` if not).
    async fn reload_after_mismatch(
        &self,
        collection: Collection,
        asked_at: Instant,
    ) -> Result<Option<Arc<KeySet>>, KeySourceError> {
        let gate = self.gate(collection);
        let _reading = gate.lock().await;
        if let Some(fresh) = self.cached_since(collection, asked_at) {
            return Ok(Some(fresh));
        }
        let Some(before) = self.claim_reload(collection) else {
            return Ok(None);
        };
        tracing::info!(collection = %collection, "signature did not match the cached key; reloading it");
        match self.load(collection).await {
            Ok(keys) => Ok(Some(keys)),
            Err(e) => {
                // Nothing was read: the slot is not used up, so the next mismatch is answered
                // 503 while the source is down (Protime retries), not 401.
                if let Some(entry) = self.lock().get_mut(&collection) {
                    entry.last_forced_reload = before;
                }
                Err(e)
            }
        }
    }

    /// Cached keys, or freshly loaded ones once the TTL has passed. If Secrets Manager fails,
    /// keys already cached keep working: an outage must not reject correctly signed events.
    async fn keys(&self, collection: Collection) -> Result<Arc<KeySet>, VerifyError> {
        if let Some(keys) = self.cached_within_ttl(collection) {
            return Ok(keys);
        }
        let gate = self.gate(collection);
        let _reading = gate.lock().await;
        // Whoever held the gate before us may have loaded them.
        if let Some(keys) = self.cached_within_ttl(collection) {
            return Ok(keys);
        }
        let stale = self.lock().get(&collection).map(|e| e.keys.clone());
        match (self.load(collection).await, stale) {
            (Ok(keys), _) => Ok(keys),
            (Err(e), Some(stale)) => {
                tracing::warn!(collection = %collection, error = %e, "could not refresh signing keys; using the cached ones");
                Ok(stale)
            }
            (Err(e), None) => Err(e.into()),
        }
    }

    fn cached_within_ttl(&self, collection: Collection) -> Option<Arc<KeySet>> {
        let entries = self.lock();
        entries.get(&collection).filter(|e| e.loaded_at.elapsed() < self.config.ttl).map(|e| e.keys.clone())
    }

    fn cached_since(&self, collection: Collection, since: Instant) -> Option<Arc<KeySet>> {
        self.lock().get(&collection).filter(|e| e.loaded_at > since).map(|e| e.keys.clone())
    }

    /// Reads the keys (the caller holds the collection's gate), unless a read failed within
    /// [`FAILURE_BACKOFF`].
    async fn load(&self, collection: Collection) -> Result<Arc<KeySet>, KeySourceError> {
        if let Some(failed) = lock(&self.failed_at).get(&collection).map(|at| at.elapsed()) {
            if failed < FAILURE_BACKOFF {
                return Err(KeySourceError::BackingOff(failed));
            }
        }
        let current = match self.source.fetch(collection, KeyStage::Current).await {
            Ok(current) => current,
            Err(e) => {
                lock(&self.failed_at).insert(collection, Instant::now());
                return Err(e);
            }
        };
        lock(&self.failed_at).remove(&collection);
        // The previous key only matters within the grace window after the current one was stored.
        let in_grace = current.as_ref().is_some_and(|c| {
            !self.config.previous_grace.is_zero()
                && SystemTime::now().duration_since(c.created).unwrap_or_default() < self.config.previous_grace
        });
        let previous = if in_grace {
            // Without it only events signed before the rotation are refused; the current key
            // must not be lost with it.
            self.source.fetch(collection, KeyStage::Previous).await.unwrap_or_else(|e| {
                tracing::warn!(collection = %collection, error = %e, "could not read the previous signing key");
                None
            })
        } else {
            None
        };
        let keys = Arc::new(KeySet { current, previous });
        let mut entries = self.lock();
        let last_forced_reload = entries.get(&collection).and_then(|e| e.last_forced_reload);
        entries.insert(collection, Entry { keys: keys.clone(), loaded_at: Instant::now(), last_forced_reload });
        Ok(keys)
    }

    /// Claims the collection's reload slot if the last forced reload is old enough; returns what
    /// the slot held before (to give it back if the reload reads nothing), or `None` if refused.
    fn claim_reload(&self, collection: Collection) -> Option<Option<Instant>> {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(&collection) else {
            return Some(None);
        };
        let before = entry.last_forced_reload;
        let allowed = before.is_none_or(|at| at.elapsed() >= self.config.reload_min_interval);
        allowed.then(|| {
            entry.last_forced_reload = Some(Instant::now());
            before
        })
    }

    fn gate(&self, collection: Collection) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.gates).entry(collection).or_default().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Collection, Entry>> {
        lock(&self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::signature::{authorization_header, parse_authorization};
    use crate::testing::MemoryKeySource;
    use std::sync::atomic::Ordering;

    const C: Collection = Collection::Clockings;
    const BODY: &[u8] = br#"{"id":1,"changeVersion":"1"}"#;

    fn signed_with(key: &str) -> Signature {
        let header = authorization_header(&SigningKey::new(key), BODY);
        parse_authorization(Some(header.as_bytes())).unwrap()
    }

    fn ago(secs: u64) -> SystemTime {
        SystemTime::now() - Duration::from_secs(secs)
    }

    fn cache(source: MemoryKeySource, config: KeyCacheConfig) -> SigningKeys<MemoryKeySource> {
        SigningKeys::new(source, config)
    }

    fn fetches(keys: &SigningKeys<MemoryKeySource>) -> usize {
        keys.source.fetches.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_cached_until_the_ttl_passes() {
        let source = MemoryKeySource::default();
        source.rotate(C, "k1", ago(3600));
        let keys = cache(source, KeyCacheConfig::default());
        for _ in 0..5 {
            assert_eq!(keys.verify(C, BODY, &signed_with("k1")).await, Ok(AcceptedKey::Current));
        }
        assert_eq!(fetches(&keys), 1, "one read of AWSCURRENT; no AWSPREVIOUS outside the grace window");
        tokio::time::advance(Duration::from_secs(301)).await;
        keys.verify(C, BODY, &signed_with("k1")).await.unwrap();
        assert_eq!(fetches(&keys), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotated_key_is_picked_up_on_the_first_mismatch() {
        let keys = cache(MemoryKeySource::default(), KeyCacheConfig::default());
        keys.source.rotate(C, "old", ago(3600));
        keys.verify(C, BODY, &signed_with("old")).await.unwrap();
        keys.source.rotate(C, "new", SystemTime::now());
        assert_eq!(keys.verify(C, BODY, &signed_with("new")).await, Ok(AcceptedKey::Current));
        // Within the grace window an event signed with the old key is still accepted.
        assert_eq!(keys.verify(C, BODY, &signed_with("old")).await, Ok(AcceptedKey::Previous));
    }

    #[tokio::test(start_paused = true)]
    async fn the_previous_key_is_refused_after_the_grace_window() {
        let keys = cache(MemoryKeySource::default(), KeyCacheConfig::default());
        keys.source.rotate(C, "old", ago(7200));
        keys.source.rotate(C, "new", ago(601));
        assert_eq!(keys.verify(C, BODY, &signed_with("old")).await, Err(SignatureError::Mismatch.into()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_grace_window_refuses_the_previous_key_at_once() {
        let config = KeyCacheConfig { previous_grace: Duration::ZERO, ..Default::default() };
        let keys = cache(MemoryKeySource::default(), config);
        keys.source.rotate(C, "old", ago(10));
        keys.source.rotate(C, "new", SystemTime::now());
        assert_eq!(keys.verify(C, BODY, &signed_with("old")).await, Err(SignatureError::Mismatch.into()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_bad_signatures_reloads_at_most_once_per_interval() {
        let keys = cache(MemoryKeySource::default(), KeyCacheConfig::default());
        keys.source.rotate(C, "k", ago(3600));
        for _ in 0..100 {
            assert!(keys.verify(C, BODY, &signed_with("forged")).await.is_err());
        }
        assert_eq!(fetches(&keys), 2, "the initial load and one forced reload");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(keys.verify(C, BODY, &signed_with("forged")).await.is_err());
        assert_eq!(fetches(&keys), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_secret_is_no_key() {
        let keys = cache(MemoryKeySource::default(), KeyCacheConfig::default());
        assert_eq!(keys.verify(C, BODY, &signed_with("k")).await, Err(VerifyError::NoKey));
        assert_eq!(VerifyError::NoKey.reason(), "no_key");
    }

    #[tokio::test(start_paused = true)]
    async fn cached_keys_keep_working_while_the_source_is_down() {
        let keys = cache(MemoryKeySource::default(), KeyCacheConfig::default());
        keys.source.rotate(C, "k", ago(3600));
        keys.verify(C, BODY, &signed_with("k")).await.unwrap();
        keys.source.fail.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(keys.verify(C, BODY, &signed_with("k")).await, Ok(AcceptedKey::Current));
        // A mismatch cannot be confirmed while the source is down: unavailable, not 401.
        assert!(matches!(keys.verify(C, BODY, &signed_with("other")).await, Err(VerifyError::Unavailable(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn no_cached_key_and_source_down_is_unavailable() {
        let keys = cache(MemoryKeySource::default(), KeyCacheConfig::default());
        keys.source.fail.store(true, Ordering::SeqCst);
        let err = keys.verify(C, BODY, &signed_with("k")).await.unwrap_err();
        assert_eq!(err.reason(), "key_unavailable");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_mismatches_share_one_reload() {
        let keys = Arc::new(cache(MemoryKeySource::default(), KeyCacheConfig::default()));
        keys.source.rotate(C, "old", ago(3600));
        keys.verify(C, BODY, &signed_with("old")).await.unwrap();
        keys.source.rotate(C, "new", SystemTime::now());
        keys.source.delay.store(50, Ordering::SeqCst);
        let before = fetches(&keys);
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let keys = keys.clone();
                tokio::spawn(async move { keys.verify(C, BODY, &signed_with("new")).await })
            })
            .collect();
        for task in waiting {
            assert_eq!(task.await.unwrap(), Ok(AcceptedKey::Current));
        }
        // One reload: AWSCURRENT, then AWSPREVIOUS (inside the grace window).
        assert_eq!(fetches(&keys) - before, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_is_not_retried_on_every_request() {
        let keys = cache(MemoryKeySource::default(), KeyCacheConfig::default());
        keys.source.rotate(C, "k", ago(3600));
        keys.source.fail.store(true, Ordering::SeqCst);
        for _ in 0..20 {
            let err = keys.verify(C, BODY, &signed_with("k")).await.unwrap_err();
            assert!(matches!(err, VerifyError::Unavailable(_)), "{err:?}");
        }
        assert_eq!(fetches(&keys), 1, "one failed read, then the back-off");
        tokio::time::advance(FAILURE_BACKOFF).await;
        keys.source.fail.store(false, Ordering::SeqCst);
        assert_eq!(keys.verify(C, BODY, &signed_with("k")).await, Ok(AcceptedKey::Current));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_of_the_previous_key_keeps_the_current_one() {
        let keys = cache(MemoryKeySource::default(), KeyCacheConfig::default());
        keys.source.rotate(C, "old", ago(60));
        keys.source.rotate(C, "new", ago(10));
        keys.source.fail_previous.store(true, Ordering::SeqCst);
        assert_eq!(keys.verify(C, BODY, &signed_with("new")).await, Ok(AcceptedKey::Current));
        assert_eq!(keys.verify(C, BODY, &signed_with("old")).await, Err(SignatureError::Mismatch.into()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_that_read_nothing_does_not_use_up_the_slot() {
        let keys = cache(MemoryKeySource::default(), KeyCacheConfig::default());
        keys.source.rotate(C, "old", ago(3600));
        keys.verify(C, BODY, &signed_with("old")).await.unwrap();
        keys.source.rotate(C, "new", SystemTime::now());
        keys.source.fail.store(true, Ordering::SeqCst);
        // Secrets Manager is down while the key rotates: 503 (retried), never 401.
        let err = keys.verify(C, BODY, &signed_with("new")).await.unwrap_err();
        assert!(matches!(err, VerifyError::Unavailable(_)), "{err:?}");
        let err = keys.verify(C, BODY, &signed_with("new")).await.unwrap_err();
        assert!(matches!(err, VerifyError::Unavailable(_)), "within the back-off: {err:?}");
        tokio::time::advance(FAILURE_BACKOFF).await;
        keys.source.fail.store(false, Ordering::SeqCst);
        assert_eq!(keys.verify(C, BODY, &signed_with("new")).await, Ok(AcceptedKey::Current));
    }
}
