//! Webhook signing keys: one concern with three users. The receiver verifies with them, the
//! renewer stores each new one the moment Protime issues it, the CLI checks signatures with them.
//!
//! - [`signature`]: the `Authorization` header, [`SigningKey`] and HMAC verification (pure: no
//!   AWS, no HTTP client).
//! - [`document`]: the signing-keys secret's SecretString, every collection's key in one JSON object.
//! - [`keys`]: the cached keys behind [`keys::KeySource`]; [`source`]: the Secrets Manager
//!   reader (`GetSecretValue`).
//! - [`writer`]: storing a new key, behind [`writer::KeyWriter`] (`GetSecretValue`, `PutSecretValue`;
//!   `DeleteSecret` for what release 0.1 left).
//!
//! Uses `collection`, `invocation` (the poison-tolerant lock of the key cache) and the AWS SDK
//! only; every other folder may use it.

pub mod document;
pub mod keys;
pub mod signature;
pub mod source;
pub mod writer;

pub use signature::{Signature, SignatureError, SigningKey};
