//! Webhook signing keys, cached across invocations (read only: the renewer writes new keys
//! through [`crate::signing::writer`]).
//!
//! Every collection's key is in one secret ([`crate::signing::document`]), so one read serves
//! every collection. The renewer replaces a collection's key the moment Protime issues a new
//! one, so a warm receiver must notice within seconds: a signature that does not match triggers
//! one reload of the secret (at most one per `reload_min_interval`, so a flood of forged
//! requests cannot hammer Secrets Manager). Reloads are single-flight: concurrent requests of
//! one instance wait for the one read in progress and use its result. A failed read is
//! remembered for [`FAILURE_BACKOFF`], so an outage costs no call per request. Events signed
//! just before a renewal may arrive just after it, so a collection's previous key (its
//! `previousKey`, or its key in the secret's `AWSPREVIOUS` version) is honoured for
//! `previous_grace` after the rotation; a failed read of `AWSPREVIOUS` never fails the current
//! keys' load. A collection the secret has no entry for is looked up where release 0.1 kept
//! it, one secret per collection, when the deployment names that place
//! ([`KeySource::fetch_legacy`]), so an upgrade refuses no event.

use crate::collection::Collection;
use crate::invocation::lock;
use crate::signing::document::{DocumentError, KeyDocument};
use crate::signing::signature::{self, Signature, SignatureError, SigningKey};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

pub use crate::signing::source::SecretsManagerKeySource;

/// The Secrets Manager staging label of a secret version.
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

/// One version of the signing-keys secret: its name, its document and when it was written.
#[derive(Debug, Clone)]
pub struct SecretVersion {
    pub secret: String,
    pub document: KeyDocument,
    pub created: SystemTime,
}

impl SecretVersion {
    /// The collection's current key, dated by its `rotatedAt` (else by this version).
    pub fn key(&self, collection: Collection) -> Result<Option<(KeyVersion, Option<SigningKey>)>, KeySourceError> {
        let stored = self.document.get(collection).map_err(|e| self.malformed(e))?;
        Ok(stored.map(|s| (KeyVersion { key: s.key, created: s.rotated_at.unwrap_or(self.created) }, s.previous)))
    }

    fn malformed(&self, error: DocumentError) -> KeySourceError {
        KeySourceError::Malformed { secret: self.secret.clone(), message: error.to_string() }
    }
}

/// Reading or writing a key failed for a reason other than "there is none". Names the secret,
/// never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySourceError {
    #[error("signing keys are unavailable: reading {secret}: {message}")]
    Read { secret: String, message: String },
    #[error("signing key secret {secret} ({stage}) holds no SecretString")]
    NotAString { secret: String, stage: &'static str },
    #[error("signing key secret {secret} cannot be read: {message}")]
    Malformed { secret: String, message: String },
    #[error("could not store the signing key in {secret}: {message}")]
    Write { secret: String, message: String },
    #[error("signing keys are unavailable: the last read failed {0:?} ago and is not retried yet")]
    BackingOff(Duration),
}

/// How long a failed read of the keys is remembered before the next read is tried.
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(2);

/// Where keys are read from.
pub trait KeySource: Send + Sync {
    /// The signing-keys secret at `stage`, or `None` if the secret or that stage does not exist.
    fn fetch(&self, stage: KeyStage) -> impl Future<Output = Result<Option<SecretVersion>, KeySourceError>> + Send;

    /// The collection's key at `stage` where release 0.1 kept it (one secret per collection),
    /// or `None` if it is not there or the deployment names no such place.
    fn fetch_legacy(
        &self,
        collection: Collection,
        stage: KeyStage,
    ) -> impl Future<Output = Result<Option<KeyVersion>, KeySourceError>> + Send;
}

/// How long keys are trusted and how often they may be re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCacheConfig {
    /// Keys are re-read after this long even if every signature matched.
    pub ttl: Duration,
    /// At most one reload in this interval is triggered by a mismatch.
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

/// One collection's keys: the current one and, within the grace, the one before it.
#[derive(Debug)]
struct KeySet {
    current: Option<KeyVersion>,
    previous: Option<SigningKey>,
}

impl KeySet {
    fn check(&self, body: &[u8], sig: &Signature, grace: Duration) -> Result<AcceptedKey, VerifyError> {
        let current = self.current.as_ref().ok_or(VerifyError::NoKey)?;
        if signature::verify(&current.key, body, sig).is_ok() {
            return Ok(AcceptedKey::Current);
        }
        if let Some(previous) = self.previous.as_ref().filter(|_| within(grace, current.created)) {
            if signature::verify(previous, body, sig).is_ok() {
                return Ok(AcceptedKey::Previous);
            }
        }
        Err(SignatureError::Mismatch.into())
    }
}

fn within(grace: Duration, since: SystemTime) -> bool {
    !grace.is_zero() && SystemTime::now().duration_since(since).unwrap_or_default() < grace
}

/// The secret as last read: its current version and, when a key is within its grace and the
/// document does not carry the previous one, its previous version.
struct Loaded {
    current: Option<SecretVersion>,
    previous: Option<SecretVersion>,
    at: Instant,
}

impl Loaded {
    /// The collection's keys, `None` if the secret has no entry for it.
    fn keys(&self, collection: Collection) -> Result<Option<KeySet>, KeySourceError> {
        let Some(version) = &self.current else { return Ok(None) };
        let Some((current, previous)) = version.key(collection)? else { return Ok(None) };
        let previous = previous.or_else(|| self.previous_version_key(collection)).filter(|p| *p != current.key);
        Ok(Some(KeySet { current: Some(current), previous }))
    }

    fn previous_version_key(&self, collection: Collection) -> Option<SigningKey> {
        self.previous.as_ref()?.key(collection).ok().flatten().map(|(version, _)| version.key)
    }
}

/// A collection's keys as one read of the source finds them, for tools (the CLI's `verify`,
/// `send` and `doctor`): the receiver's cache reads through [`SigningKeys`].
#[derive(Debug, Clone)]
pub struct CollectionKeys {
    pub current: Option<KeyVersion>,
    /// The key before it, whatever the grace.
    pub previous: Option<SigningKey>,
    /// Found where release 0.1 kept it, not in the signing-keys secret.
    pub legacy: bool,
}

/// Reads the collection's keys: the secret's current and previous versions, else release
/// 0.1's place.
pub async fn read_collection_keys<S: KeySource>(
    source: &S,
    collection: Collection,
) -> Result<CollectionKeys, KeySourceError> {
    let current = source.fetch(KeyStage::Current).await?;
    let previous = source.fetch(KeyStage::Previous).await.ok().flatten();
    let loaded = Loaded { current, previous, at: Instant::now() };
    if let Some(KeySet { current, previous }) = loaded.keys(collection)? {
        return Ok(CollectionKeys { current, previous, legacy: false });
    }
    let current = source.fetch_legacy(collection, KeyStage::Current).await?;
    let previous = source.fetch_legacy(collection, KeyStage::Previous).await?.map(|v| v.key);
    Ok(CollectionKeys { legacy: current.is_some(), current, previous })
}

/// Whether a key of `version` is within the grace and only `AWSPREVIOUS` can tell its
/// predecessor.
fn needs_previous_version(version: &SecretVersion, grace: Duration) -> bool {
    version.document.collections().any(
        |collection| matches!(version.key(collection), Ok(Some((current, None))) if within(grace, current.created)),
    )
}

#[derive(Default)]
struct CacheState {
    loaded: Option<Arc<Loaded>>,
    /// Collections' keys read from release 0.1's place since the secret was last read.
    legacy: HashMap<Collection, Arc<KeySet>>,
    last_forced_reload: Option<Instant>,
    failed_at: Option<Instant>,
}

/// The cache in front of a [`KeySource`]; one per process, shared by all invocations.
pub struct SigningKeys<S> {
    source: S,
    config: KeyCacheConfig,
    state: Mutex<CacheState>,
    /// Whoever holds it reads the source; the others wait and reuse what was read.
    gate: tokio::sync::Mutex<()>,
}

impl<S: KeySource> SigningKeys<S> {
    pub fn new(source: S, config: KeyCacheConfig) -> Self {
        SigningKeys { source, config, state: Mutex::default(), gate: tokio::sync::Mutex::new(()) }
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
        let loaded = self.loaded().await?;
        let keys = self.keys_in(&loaded, collection).await?;
        match keys.check(body, sig, self.config.previous_grace) {
            Ok(accepted) => Ok(accepted),
            Err(mismatch @ (VerifyError::Signature(_) | VerifyError::NoKey)) => {
                match self.reload_after_mismatch(asked_at).await? {
                    Some(fresh) => self.keys_in(&fresh, collection).await?.check(body, sig, self.config.previous_grace),
                    None => Err(mismatch),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The collection's keys in what was read, else where release 0.1 kept them (read once
    /// per load of the secret).
    async fn keys_in(&self, loaded: &Loaded, collection: Collection) -> Result<Arc<KeySet>, KeySourceError> {
        if let Some(keys) = loaded.keys(collection)? {
            return Ok(Arc::new(keys));
        }
        if let Some(keys) = self.legacy_cached(collection) {
            return Ok(keys);
        }
        let _reading = self.gate.lock().await;
        if let Some(keys) = self.legacy_cached(collection) {
            return Ok(keys);
        }
        let current = self.source.fetch_legacy(collection, KeyStage::Current).await?;
        let in_grace = current.as_ref().is_some_and(|c| within(self.config.previous_grace, c.created));
        let previous = match in_grace {
            true => self.source.fetch_legacy(collection, KeyStage::Previous).await.ok().flatten().map(|v| v.key),
            false => None,
        };
        let keys = Arc::new(KeySet { current, previous });
        lock(&self.state).legacy.insert(collection, keys.clone());
        Ok(keys)
    }

    fn legacy_cached(&self, collection: Collection) -> Option<Arc<KeySet>> {
        lock(&self.state).legacy.get(&collection).cloned()
    }

    /// Keys read after `asked_at`: another request's reload if one finished meanwhile, else a
    /// reload of our own if the interval allows one (`None` if not).
    async fn reload_after_mismatch(&self, asked_at: Instant) -> Result<Option<Arc<Loaded>>, KeySourceError> {
        let _reading = self.gate.lock().await;
        if let Some(fresh) = self.cached(|loaded| loaded.at > asked_at) {
            return Ok(Some(fresh));
        }
        let Some(before) = self.claim_reload() else {
            return Ok(None);
        };
        tracing::info!("a signature did not match the cached keys; reloading them");
        match self.load().await {
            Ok(loaded) => Ok(Some(loaded)),
            Err(e) => {
                // Nothing was read: the slot is not used up, so the next mismatch is answered
                // 503 while the source is down (Protime retries), not 401.
                lock(&self.state).last_forced_reload = before;
                Err(e)
            }
        }
    }

    /// Cached keys, or freshly loaded ones once the TTL has passed. If Secrets Manager fails,
    /// keys already cached keep working: an outage must not reject correctly signed events.
    async fn loaded(&self) -> Result<Arc<Loaded>, VerifyError> {
        let ttl = self.config.ttl;
        if let Some(loaded) = self.cached(|loaded| loaded.at.elapsed() < ttl) {
            return Ok(loaded);
        }
        let _reading = self.gate.lock().await;
        // Whoever held the gate before us may have loaded them.
        if let Some(loaded) = self.cached(|loaded| loaded.at.elapsed() < ttl) {
            return Ok(loaded);
        }
        match (self.load().await, self.cached(|_| true)) {
            (Ok(loaded), _) => Ok(loaded),
            (Err(e), Some(stale)) => {
                tracing::warn!(error = %e, "could not refresh the signing keys; using the cached ones");
                Ok(stale)
            }
            (Err(e), None) => Err(e.into()),
        }
    }

    fn cached(&self, fresh: impl Fn(&Loaded) -> bool) -> Option<Arc<Loaded>> {
        lock(&self.state).loaded.clone().filter(|loaded| fresh(loaded))
    }

    /// Reads the secret (the caller holds the gate), unless a read failed within
    /// [`FAILURE_BACKOFF`].
    async fn load(&self) -> Result<Arc<Loaded>, KeySourceError> {
        if let Some(failed) = lock(&self.state).failed_at.map(|at| at.elapsed()) {
            if failed < FAILURE_BACKOFF {
                return Err(KeySourceError::BackingOff(failed));
            }
        }
        let current = self.source.fetch(KeyStage::Current).await;
        lock(&self.state).failed_at = current.is_err().then(Instant::now);
        let current = current?;
        let previous = match &current {
            Some(version) if needs_previous_version(version, self.config.previous_grace) => {
                // Without it only events signed before a rotation are refused; the current keys
                // must not be lost with it.
                self.source.fetch(KeyStage::Previous).await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not read the previous version of the signing keys");
                    None
                })
            }
            _ => None,
        };
        let loaded = Arc::new(Loaded { current, previous, at: Instant::now() });
        let mut state = lock(&self.state);
        state.loaded = Some(loaded.clone());
        state.legacy.clear();
        Ok(loaded)
    }

    /// Claims the reload slot if the last forced reload is old enough; returns what the slot
    /// held before (to give it back if the reload reads nothing), or `None` if refused.
    fn claim_reload(&self) -> Option<Option<Instant>> {
        let mut state = lock(&self.state);
        let before = state.last_forced_reload;
        let allowed = before.is_none_or(|at| at.elapsed() >= self.config.reload_min_interval);
        allowed.then(|| {
            state.last_forced_reload = Some(Instant::now());
            before
        })
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
