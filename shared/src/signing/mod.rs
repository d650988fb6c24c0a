//! Webhook signing keys: one concern with three users. The receiver verifies with them, the
//! renewer stores each new one the moment Protime issues it, the CLI checks signatures with them.
//!
//! - [`signature`]: the `Authorization` header, [`SigningKey`] and HMAC verification (pure: no
//!   AWS, no HTTP client).
//! - [`keys`]: the cached per-collection keys behind [`keys::KeySource`], with the Secrets Manager
//!   reader (`GetSecretValue`).
//! - [`writer`]: storing a new key, behind [`writer::KeyWriter`] (`PutSecretValue`, `CreateSecret`).
//!
//! Uses `collection`, `invocation` (the poison-tolerant lock of the key cache) and the AWS SDK
//! only; every other folder may use it.

pub mod keys;
pub mod signature;
pub mod writer;

pub use signature::{Signature, SignatureError, SigningKey};
