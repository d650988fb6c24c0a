//! What the renewer and the syncer need of Protime, as traits: [`ProtimeClient`](super::ProtimeClient) is the HTTP
//! implementation, and `crate::testing::FakeProtime` an in-memory one for unit tests.

use super::error::ProtimeError;
use super::model::{CreatedWebhook, Webhook};
use super::page::Page;
use crate::collection::Collection;
use std::future::Future;
use std::sync::Arc;

/// The webhook endpoints.
pub trait WebhookApi: Send + Sync {
    /// `GET /webhooks`: every webhook of the tenant.
    fn list_webhooks(&self) -> impl Future<Output = Result<Vec<Webhook>, ProtimeError>> + Send;

    /// `POST /webhooks`: creates the subscription, or re-enables and renews the one with the same
    /// destination and collection. The answer holds the new key.
    fn create_webhook(
        &self,
        destination_url: &str,
        collection: Collection,
        external_references: &str,
    ) -> impl Future<Output = Result<CreatedWebhook, ProtimeError>> + Send;

    /// `DELETE /webhooks/{id}`; already gone counts as deleted.
    fn delete_webhook(&self, id: &str) -> impl Future<Output = Result<(), ProtimeError>> + Send;
}

/// A collection's records, page by page.
pub trait RecordPages: Send + Sync {
    /// The first page's link of a collection list (`delta`: a delta initial request), asking for
    /// `external_references` (Protime's syntax; empty: none) as the subscription does.
    fn list_url(&self, collection: Collection, filter: Option<&str>, delta: bool, external_references: &str) -> String;

    /// One page: `link` is from [`Self::list_url`] or a `nextLink`/`deltaLink` Protime returned.
    fn fetch_page(&self, link: &str) -> impl Future<Output = Result<Page, ProtimeError>> + Send;
}

/// Opens a session with Protime for one run (reading the credentials as it does so, so that
/// rotated credentials are picked up without a redeploy).
pub trait Connect: Send + Sync {
    type Api: WebhookApi + RecordPages;
    fn connect(&self) -> impl Future<Output = Result<Self::Api, ConnectError>> + Send;
}

/// A session could not be opened. Never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("reading the Protime credentials secret {secret}: {message}")]
    SecretUnavailable { secret: String, message: String },
    #[error("the Protime credentials secret {secret} is invalid: {message}")]
    InvalidCredentials { secret: String, message: String },
    /// The secret still holds the template's placeholders: the stack is deployed but not
    /// configured yet. Scheduled runs report it once (`CredentialsNotConfigured`) and end.
    #[error(
        "the Protime credentials secret {secret} is not filled in yet (it holds REPLACE_ME or an empty field): put \
         the tenant, environment, clientId and clientSecret in it (docs/deploying.md, First deployment)"
    )]
    NotConfigured { secret: String },
    #[error(transparent)]
    Client(#[from] ProtimeError),
}

impl<T: WebhookApi> WebhookApi for Arc<T> {
    fn list_webhooks(&self) -> impl Future<Output = Result<Vec<Webhook>, ProtimeError>> + Send {
        (**self).list_webhooks()
    }

    fn create_webhook(
        &self,
        destination_url: &str,
        collection: Collection,
        external_references: &str,
    ) -> impl Future<Output = Result<CreatedWebhook, ProtimeError>> + Send {
        (**self).create_webhook(destination_url, collection, external_references)
    }

    fn delete_webhook(&self, id: &str) -> impl Future<Output = Result<(), ProtimeError>> + Send {
        (**self).delete_webhook(id)
    }
}

impl<T: RecordPages> RecordPages for Arc<T> {
    fn list_url(&self, collection: Collection, filter: Option<&str>, delta: bool, external_references: &str) -> String {
        (**self).list_url(collection, filter, delta, external_references)
    }

    fn fetch_page(&self, link: &str) -> impl Future<Output = Result<Page, ProtimeError>> + Send {
        (**self).fetch_page(link)
    }
}
