//! Protime's API: OAuth2 client credentials, webhooks, and collection list/delta endpoints.
//!
//! From the bottom up (each file uses only those above it in this list):
//!
//! - [`error`]: [`ProtimeError`], what went wrong talking to Protime (never a token or secret).
//! - [`model`]: webhooks as Protime reports them, and the create answer (pure).
//! - [`page`]: a page kept as Protime sent it, read through its envelope (pure).
//! - [`credentials`]: the client credentials and the JSON of the secret they are read from (pure).
//! - [`answer`]: Protime's answers read in its terms: error bodies, bare `validationErrors`,
//!   OAuth2 errors, the scope a refusal is about, `Retry-After` (pure).
//! - [`api`]: the traits the renewer and the syncer use ([`WebhookApi`], [`RecordPages`],
//!   [`Connect`]).
//! - [`client`]: the HTTP implementation of those traits: tokens, one retry policy, links.
//! - [`connect`]: [`Connect`] through the credentials secret in Secrets Manager.
//!
//! Uses `records::json` for pages, `signing` for the key a created webhook carries, `redact` on
//! Protime's messages, and `collection`; nothing of the receiver, the renewer or the syncer.

pub mod answer;
pub mod api;
pub mod client;
pub mod connect;
pub mod credentials;
pub mod error;
pub mod model;
pub mod page;

pub use api::{Connect, ConnectError, RecordPages, WebhookApi};
pub use client::{ProtimeClient, RetryPolicy};
pub use connect::CredentialsFromSecret;
pub use credentials::ProtimeCredentials;
pub use error::ProtimeError;
pub use model::{CreatedWebhook, Webhook, WebhookStatus};
pub use page::{Envelope, LinksFollowed, Page, ReadPage};
