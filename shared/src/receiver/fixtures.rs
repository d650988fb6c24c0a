//! Test fixtures for the receiver's tests: a receiver over in-memory keys and store (with or
//! without a quarantine), signed and unsigned requests, and what a request answered and left.

use crate::collection::Collection;
use crate::receiver::handler::Receiver;
use crate::records::quarantine::Quarantine;
use crate::signing::keys::{KeyCacheConfig, SigningKeys};
use crate::signing::signature::{authorization_header, SigningKey};
use crate::testing::{MemoryKeySource, MemoryQuarantine, MemoryRecordStore};
use lambda_http::http::header;
use lambda_http::{Body, Request};
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

pub(super) const KEY: &str = "test-key";

/// A receiver without a quarantine.
pub(super) fn receiver() -> Receiver<MemoryKeySource, MemoryRecordStore, MemoryQuarantine> {
    receiver_keeping(None)
}

fn receiver_keeping(
    quarantine: Option<MemoryQuarantine>,
) -> Receiver<MemoryKeySource, MemoryRecordStore, MemoryQuarantine> {
    let source = MemoryKeySource::default();
    source.rotate(Collection::Clockings, KEY, SystemTime::now() - Duration::from_secs(3600));
    Receiver::new(SigningKeys::new(source, KeyCacheConfig::default()), MemoryRecordStore::default(), quarantine, 4096)
}

pub(super) fn request(path: &str, body: &[u8], authorization: Option<String>) -> Request {
    let mut builder = lambda_http::http::Request::builder().method("POST").uri(path);
    if let Some(a) = authorization {
        builder = builder.header("Authorization", a);
    }
    builder.body(Body::Binary(body.to_vec())).unwrap()
}

pub(super) fn signed(path: &str, body: &str) -> Request {
    request(path, body.as_bytes(), Some(authorization_header(&SigningKey::new(KEY), body.as_bytes())))
}

pub(super) async fn answer<Q: Quarantine>(
    r: &Receiver<MemoryKeySource, MemoryRecordStore, Q>,
    req: Request,
) -> (u16, serde_json::Value) {
    let response = r.handle(req).await;
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    (response.status().as_u16(), body)
}

pub(super) fn stored<Q>(r: &Receiver<MemoryKeySource, MemoryRecordStore, Q>) -> usize {
    r.store.items.lock().unwrap().len()
}

pub(super) fn quarantining() -> Receiver<MemoryKeySource, MemoryRecordStore, MemoryQuarantine> {
    receiver_keeping(Some(MemoryQuarantine::default()))
}

pub(super) fn kept(r: &Receiver<MemoryKeySource, MemoryRecordStore, MemoryQuarantine>) -> Vec<(String, String)> {
    let q = r.quarantine.as_ref().unwrap();
    q.bodies().into_iter().map(|(reason, bytes)| (reason, String::from_utf8(bytes).unwrap())).collect()
}

impl<Q> Receiver<MemoryKeySource, MemoryRecordStore, Q> {
    pub(super) fn keys_source(&self) -> &MemoryKeySource {
        self.keys.source()
    }
    pub(super) fn keys_fetches(&self) -> usize {
        self.keys.source().fetches.load(Ordering::SeqCst)
    }
}
