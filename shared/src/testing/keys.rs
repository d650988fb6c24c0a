//! The signing-keys secret in memory, for the receiver's and the renewer's unit tests.

use super::Journal;
use crate::collection::Collection;
use crate::invocation::lock;
use crate::signing::document::KeyDocument;
use crate::signing::keys::{KeySource, KeySourceError, KeyStage, KeyVersion, SecretVersion};
use crate::signing::signature::SigningKey;
use crate::signing::writer::KeyWriter;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

/// (AWSCURRENT, AWSPREVIOUS)
type Versions<T> = (Option<T>, Option<T>);

/// The signing-keys secret held in memory, as Secrets Manager stages its versions, and release
/// 0.1's per-collection secrets (`legacy`); counts reads of the secret, can be made to fail
/// (every read, or reads of AWSPREVIOUS only) or to take `delay` milliseconds.
#[derive(Default)]
pub struct MemoryKeySource {
    pub versions: Mutex<Versions<SecretVersion>>,
    pub legacy: Mutex<HashMap<Collection, Versions<KeyVersion>>>,
    pub fetches: AtomicUsize,
    pub fail: AtomicBool,
    pub fail_previous: AtomicBool,
    pub delay: AtomicU64,
    pub journal: Journal,
}

impl MemoryKeySource {
    /// Writes a new version in which the collection's key is `key`, rotated at `created`, as a
    /// tool would write it (no `previousKey`: the previous key is only in AWSPREVIOUS).
    pub fn rotate(&self, collection: Collection, key: &str, created: SystemTime) {
        let mut document: serde_json::Value = serde_json::from_str(&self.document().render()).expect("rendered JSON");
        let rotated_at = chrono::DateTime::<chrono::Utc>::from(created).to_rfc3339();
        document[collection.as_str()] = serde_json::json!({"key": key, "rotatedAt": rotated_at});
        self.put(KeyDocument::parse(&document.to_string()).expect("an object"), created);
    }

    /// Stores a key where release 0.1 kept it (the old one becomes its AWSPREVIOUS).
    pub fn rotate_legacy(&self, collection: Collection, key: &str, created: SystemTime) {
        let mut legacy = lock(&self.legacy);
        let slot = legacy.entry(collection).or_default();
        slot.1 = slot.0.take();
        slot.0 = Some(KeyVersion { key: SigningKey::new(key), created });
    }

    /// The current key of a collection, exposed for assertions.
    pub fn current(&self, collection: Collection) -> Option<String> {
        self.document().get(collection).ok().flatten().map(|stored| stored.key.expose().to_owned())
    }

    fn document(&self) -> KeyDocument {
        lock(&self.versions).0.as_ref().map(|v| v.document.clone()).unwrap_or_default()
    }

    fn put(&self, document: KeyDocument, created: SystemTime) {
        let mut versions = lock(&self.versions);
        let version = SecretVersion { secret: "memory".into(), document, created };
        versions.1 = versions.0.replace(version);
    }

    async fn read_delay(&self) {
        let delay = self.delay.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
    }
}

impl KeySource for MemoryKeySource {
    async fn fetch(&self, stage: KeyStage) -> Result<Option<SecretVersion>, KeySourceError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.read_delay().await;
        let fail_previous = stage == KeyStage::Previous && self.fail_previous.load(Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) || fail_previous {
            return Err(KeySourceError::Read { secret: "memory".into(), message: "injected failure".into() });
        }
        let versions = lock(&self.versions);
        Ok(match stage {
            KeyStage::Current => versions.0.clone(),
            KeyStage::Previous => versions.1.clone(),
        })
    }

    async fn fetch_legacy(
        &self,
        collection: Collection,
        stage: KeyStage,
    ) -> Result<Option<KeyVersion>, KeySourceError> {
        let legacy = lock(&self.legacy);
        let slot = legacy.get(&collection);
        Ok(match stage {
            KeyStage::Current => slot.and_then(|s| s.0.clone()),
            KeyStage::Previous => slot.and_then(|s| s.1.clone()),
        })
    }
}

impl KeyWriter for MemoryKeySource {
    async fn store(&self, collection: Collection, key: &SigningKey) -> Result<(), KeySourceError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(KeySourceError::Write { secret: collection.to_string(), message: "injected failure".into() });
        }
        self.journal.record(format!("keys store {collection}"));
        let now = SystemTime::now();
        self.put(self.document().with_key(collection, key, now), now);
        Ok(())
    }

    /// Moves a key the document lacks (the old secret stays: deleting it is the Secrets
    /// Manager writer's, tested against moto).
    async fn carry_over(&self, collections: &[Collection], now: SystemTime) -> Result<Vec<Collection>, KeySourceError> {
        let mut document = self.document();
        let mut moved = Vec::new();
        for &collection in collections {
            let legacy = lock(&self.legacy).get(&collection).and_then(|s| s.0.clone());
            if let (Ok(None), Some(legacy)) = (document.get(collection), legacy) {
                document = document.with_key(collection, &legacy.key, now);
                moved.push(collection);
            }
        }
        if !moved.is_empty() {
            self.put(document, now);
        }
        Ok(moved)
    }

    async fn ensure_hash_key(&self) -> Result<bool, KeySourceError> {
        let document = self.document();
        if document.field_hash_key().is_some() {
            return Ok(false);
        }
        self.put(document.with_hash_key(&"k".repeat(64)), SystemTime::now());
        Ok(true)
    }
}
