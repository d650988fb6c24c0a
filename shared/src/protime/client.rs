//! The HTTP client for Protime's API.
//!
//! Tokens are cached until shortly before they expire (Protime rate-limits token requests); a
//! 401 fetches one new token and repeats the call once. 429 (honouring `Retry-After`), 5xx and
//! transport failures are retried with exponential backoff and full jitter, bounded both in
//! attempts and in total time: the policy's `max_elapsed`, and a caller's deadline
//! ([`within_deadline`]). A `Retry-After` longer than the time left is not waited for.
//!
//! Protime's answers in Protime's terms ([`ProtimeError`]): a 403 (and a second 401 saying
//! "insufficient scope") names the scope the request needed ([`required_scope`]); a 400 with
//! `validationErrors` is [`ProtimeError::Validation`]; the token endpoint's OAuth2 errors
//! (`invalid_scope`, `invalid_client`) say which scope or which setting to fix.

use super::answer::{
    api_error, forbidden, refused_token, retry_after, retryable, scrub, shorten, token_error, transport,
};
use super::credentials::ProtimeCredentials;
use super::error::ProtimeError;
use super::model::{parse_created, CreatedWebhook, Webhook, WireWebhook};
use super::page::Page;
use rand::Rng;
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::future::Future;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A token is replaced this long before Protime says it expires.
const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// A token's lifetime when the token answer has no `expires_in` (a fallback only: Protime's
/// answer carries it, and whatever it says is what counts).
const FALLBACK_TOKEN_LIFETIME: Duration = Duration::from_secs(1800);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `call` (one or more Protime calls) with a deadline: no retry starts, and no
/// `Retry-After` is waited for, that would end after it. A `Retry-After` beyond it fails the
/// call at once with [`ProtimeError::RetryAfterTooLong`]. The retry policy's `max_elapsed`
/// still applies; the earlier of the two wins.
pub async fn within_deadline<F: Future>(deadline: Instant, call: F) -> F::Output {
    DEADLINE.scope(deadline, call).await
}

/// The scope a request needs, from its method and its path relative to the API base (leading
/// `/` and query optional): `connector-protimeapi-webhooks.read` to read `/webhooks…`,
/// `connector-protimeapi-webhooks.write` to change them, `connector-protimeapi-<collection>.read`
/// for `/<collection>` lists and `/delta/<collection>` links. `None` for a path naming none.
pub fn required_scope(method: &str, path: &str) -> Option<String> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let first = segments.next()?;
    let collection = match first {
        "webhooks" => {
            let access = if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD") {
                "read"
            } else {
                "write"
            };
            return Some(format!("connector-protimeapi-webhooks.{access}"));
        }
        "delta" => segments.next()?,
        collection => collection,
    };
    let plausible = collection.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    plausible.then(|| format!("connector-protimeapi-{collection}.read"))
}

/// How often and how long a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts after this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a random delay up to the exponential bound for this attempt (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        let bound = self.base_delay.saturating_mul(1 << attempt.min(16)).min(self.max_delay);
        rand::rng().random_range(Duration::ZERO..=bound)
    }
}

/// Settings of a client beyond the credentials.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Overrides the API base derived from the credentials (a local simulator).
    pub api_base_url: Option<String>,
    /// Overrides the token URL derived from the credentials.
    pub token_url: Option<String>,
    pub scopes: Vec<String>,
    /// `ServiceName/Version (Company)`.
    pub user_agent: String,
    pub retry: RetryPolicy,
    pub request_timeout: Duration,
}

impl ClientOptions {
    pub fn new(scopes: Vec<String>, company: &str) -> Self {
        ClientOptions {
            api_base_url: None,
            token_url: None,
            scopes,
            user_agent: format!("protime-webhooks/{} ({company})", env!("CARGO_PKG_VERSION")),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(20),
        }
    }
}

/// Where a function's client settings come from: its scopes, the `(Company)` of its User-Agent,
/// and the overrides of the API and token URLs (a local simulator).
#[derive(Debug, Clone, Copy)]
pub struct FunctionClient<'a> {
    pub company: &'a str,
    pub api_base_url: Option<&'a str>,
    pub token_url: Option<&'a str>,
}

impl ClientOptions {
    /// The settings of a scheduled function's client (the renewer, the syncer): the scopes it
    /// needs, and retries and `Retry-After` waits bounded by the invocation's deadline
    /// ([`within_deadline`]) rather than the default policy's minute.
    pub fn for_function(scopes: Vec<String>, function: FunctionClient<'_>) -> Self {
        let mut options = ClientOptions::new(scopes, function.company);
        options.retry.max_elapsed = Duration::from_secs(900);
        options.api_base_url = function.api_base_url.map(str::to_owned);
        options.token_url = function.token_url.map(str::to_owned);
        options
    }
}

/// The scopes for managing webhooks and reading the given collections for re-sync.
pub fn scopes_for<'a>(collections: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut scopes =
        vec!["connector-protimeapi-webhooks.read".to_owned(), "connector-protimeapi-webhooks.write".to_owned()];
    scopes.extend(collections.into_iter().map(|c| format!("connector-protimeapi-{c}.read")));
    scopes
}

struct CachedToken {
    value: SecretString,
    expires_at: Instant,
    /// The scopes the token grants (the answer's `scope`; the scopes asked for when it has none).
    scopes: Vec<String>,
    /// A request was refused for a scope this token lacks (403): it serves the rest of the run,
    /// but a later run gets a new token, which carries a scope granted since.
    lacked_scope: bool,
}

pub struct ProtimeClient {
    http: reqwest::Client,
    api_base: Url,
    token_url: String,
    credentials: ProtimeCredentials,
    scope: String,
    retry: RetryPolicy,
    token: Mutex<Option<CachedToken>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct WebhookList {
    value: Vec<serde_json::Value>,
}

/// One item of the webhook list. Another integration's webhook, or one still `Uninitialized`,
/// may lack fields ours always have: it is skipped and logged, and never fails the run.
fn readable_webhook(item: serde_json::Value) -> Option<Webhook> {
    let id = item.get("id").map(|id| id.to_string()).unwrap_or_default();
    match serde_json::from_value::<WireWebhook>(item) {
        Ok(wire) => Some(wire.into()),
        Err(e) => {
            tracing::warn!(webhook_id = %id, error = %e, "skipping a webhook Protime listed without the fields we read");
            None
        }
    }
}

/// An answer that was not retried away.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl ProtimeClient {
    pub fn new(credentials: ProtimeCredentials, options: ClientOptions) -> Result<Self, ProtimeError> {
        let http = reqwest::Client::builder()
            .user_agent(&options.user_agent)
            .timeout(options.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ProtimeError::Transport(e.to_string()))?;
        let base = options.api_base_url.clone().unwrap_or_else(|| credentials.api_base_url());
        let api_base = Url::parse(base.trim_end_matches('/'))
            .map_err(|e| ProtimeError::InvalidSettings(format!("API base URL {base:?}: {e}")))?;
        Ok(ProtimeClient {
            http,
            api_base,
            token_url: options.token_url.clone().unwrap_or_else(|| credentials.token_url()),
            credentials,
            scope: options.scopes.join(" "),
            retry: options.retry,
            token: Mutex::new(None),
        })
    }

    /// `GET /webhooks[?filter=…]`
    pub async fn list_webhooks(&self, filter: Option<&str>) -> Result<Vec<Webhook>, ProtimeError> {
        let mut url = self.url("webhooks");
        if let Some(f) = filter {
            url.query_pairs_mut().append_pair("filter", f);
        }
        let answer = self.expect_success(self.call(Method::GET, url, None).await?)?;
        let list: WebhookList = serde_json::from_slice(&answer.body)
            .map_err(|e| ProtimeError::InvalidResponse(format!("webhook list: {e}")))?;
        Ok(list.value.into_iter().filter_map(readable_webhook).collect())
    }

    /// `GET /webhooks/{id}`; `None` if Protime does not know it.
    pub async fn get_webhook(&self, id: &str) -> Result<Option<Webhook>, ProtimeError> {
        let answer = self.call(Method::GET, self.url(&format!("webhooks/{id}")), None).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let answer = self.expect_success(answer)?;
        let wire: WireWebhook =
            serde_json::from_slice(&answer.body).map_err(|e| ProtimeError::InvalidResponse(format!("webhook: {e}")))?;
        Ok(Some(wire.into()))
    }

    /// `POST /webhooks[?externalReferences=…]`: creates the subscription, or re-enables and
    /// renews the existing one with the same destination and collection. Returns the new key.
    pub async fn create_webhook(
        &self,
        destination_url: &str,
        collection: &str,
        external_references: &str,
    ) -> Result<CreatedWebhook, ProtimeError> {
        let mut url = self.url("webhooks");
        if !external_references.is_empty() {
            url.query_pairs_mut().append_pair("externalReferences", external_references);
        }
        let body = serde_json::json!({ "destinationUrl": destination_url, "collectionName": collection });
        let answer = self.expect_success(self.call(Method::POST, url, Some(&body)).await?)?;
        // The last path segment of the Location URL (absolute or relative; no query, no fragment).
        let location_id = answer
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| self.api_base.join(l).ok())
            .and_then(|url| url.path_segments()?.rev().find(|s| !s.is_empty()).map(str::to_owned));
        parse_created(&answer.body, location_id.as_deref()).map_err(|e| ProtimeError::InvalidResponse(e.to_string()))
    }

    /// `DELETE /webhooks/{id}` (a soft delete). Already gone counts as deleted.
    pub async fn delete_webhook(&self, id: &str) -> Result<(), ProtimeError> {
        let answer = self.call(Method::DELETE, self.url(&format!("webhooks/{id}")), None).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        self.expect_success(answer).map(|_| ())
    }

    /// The first page's URL of a collection list (`delta`: a delta initial request).
    pub fn list_url(&self, collection: &str, filter: Option<&str>, delta: bool) -> String {
        self.list_url_with_references(collection, filter, delta, "")
    }

    /// The same, asking for the external references a subscription carries (Protime's syntax,
    /// e.g. `(people,@badge-number)`), so listed records look like the webhook's events.
    pub fn list_url_with_references(
        &self,
        collection: &str,
        filter: Option<&str>,
        delta: bool,
        external_references: &str,
    ) -> String {
        let mut url = self.url(collection);
        if let Some(f) = filter {
            url.query_pairs_mut().append_pair("filter", f);
        }
        if !external_references.is_empty() {
            url.query_pairs_mut().append_pair("externalReferences", external_references);
        }
        if delta {
            url.query_pairs_mut().append_key_only("delta");
        }
        url.into()
    }

    /// Fetches one page of a list or delta answer. `link` is a URL from [`Self::list_url`] or
    /// a `nextLink`/`deltaLink` as Protime returned it (relative links are resolved here).
    pub async fn fetch_page(&self, link: &str) -> Result<Page, ProtimeError> {
        let url = self.resolve(link)?;
        let answer = self.call(Method::GET, url, None).await?;
        match answer.status {
            StatusCode::GONE => return Err(ProtimeError::DeltaGone),
            StatusCode::CONFLICT => return Err(ProtimeError::DeltaConflict),
            _ => {}
        }
        let answer = self.expect_success(answer)?;
        // Not read here: a spent deltaLink's answer is kept before anything else is done with it,
        // even one whose envelope cannot be read.
        Ok(Page::new(answer.body))
    }

    /// Resolves a link: absolute, origin-relative (`/…`) or relative to the API base. Only links
    /// to the API base's own origin are followed: the bearer token never goes to another host.
    /// Errors name the link's path only (a delta token is in its query).
    pub fn resolve(&self, link: &str) -> Result<Url, ProtimeError> {
        let parsed = if link.starts_with("http://") || link.starts_with("https://") {
            Url::parse(link)
        } else if link.starts_with('/') {
            self.api_base.join(link)
        } else {
            Url::parse(&format!("{}/{link}", self.api_base.as_str().trim_end_matches('/')))
        };
        let url = parsed.map_err(|e| ProtimeError::InvalidResponse(format!("an unreadable link: {e}")))?;
        if url.origin() != self.api_base.origin() {
            return Err(ProtimeError::InvalidResponse(format!(
                "a link to another origin ({}), not followed",
                url.host_str().unwrap_or("no host")
            )));
        }
        Ok(url)
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.api_base.clone();
        url.set_path(&format!("{}/{path}", self.api_base.path().trim_end_matches('/')));
        url
    }

    fn expect_success(&self, answer: Answer) -> Result<Answer, ProtimeError> {
        if answer.status.is_success() {
            Ok(answer)
        } else {
            Err(api_error(answer.status, &answer.body))
        }
    }

    /// One API call with the token, the 401 refresh and the retry policy applied. Returns the
    /// final answer, successful or not, unless retries ran out. A 401 after a new token, a 403
    /// and a 304 are errors here: no caller has a use for them.
    async fn call(&self, method: Method, url: Url, body: Option<&serde_json::Value>) -> Result<Answer, ProtimeError> {
        let started = Instant::now();
        let relative = url.path().strip_prefix(self.api_base.path()).unwrap_or(url.path());
        let scope = required_scope(method.as_str(), relative);
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token(started).await?;
            let mut request = self.http.request(method.clone(), url.clone()).bearer_auth(token.expose_secret());
            if let Some(b) = body {
                request = request.json(b);
            }
            let failure = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match read_body(response).await {
                        Ok(_) if status == StatusCode::UNAUTHORIZED && !refreshed => {
                            // The token was revoked or expired early: one new token, one more try.
                            tracing::info!(path = url.path(), "Protime answered 401; fetching a new token");
                            refreshed = true;
                            attempt -= 1;
                            self.drop_token(&token).await;
                            continue;
                        }
                        Ok(body) if status == StatusCode::UNAUTHORIZED => {
                            // Refused twice: the token is not kept, so the next call (or the
                            // next run's connect) starts from the credentials again.
                            self.drop_token(&token).await;
                            return Err(refused_token(&headers, &body, scope.as_deref()));
                        }
                        Ok(body) if status == StatusCode::FORBIDDEN => {
                            if let Some(cached) = self.token.lock().await.as_mut() {
                                cached.lacked_scope = true;
                            }
                            return Err(forbidden(&body, scope));
                        }
                        Ok(_) if status == StatusCode::NOT_MODIFIED => {
                            return Err(ProtimeError::InvalidResponse(
                                "304 Not Modified, which only answers an If-None-Match this client never sends".into(),
                            ))
                        }
                        Ok(body) if retryable(status) => {
                            let wait = retry_after(&headers);
                            (api_error(status, &body), wait)
                        }
                        Ok(body) => return Ok(Answer { status, headers, body }),
                        Err(e) => (transport(e), None),
                    }
                }
                Err(e) => (transport(e), None),
            };
            self.pause_or_give_up(attempt, started, failure).await?;
        }
    }

    /// How long a call that started at `started` may still take: the retry policy's
    /// `max_elapsed`, or less if a [`within_deadline`] deadline comes first.
    fn time_left(&self, started: Instant) -> Duration {
        let policy = self.retry.max_elapsed.saturating_sub(started.elapsed());
        match DEADLINE.try_with(|deadline| deadline.saturating_duration_since(Instant::now())) {
            Ok(until_deadline) => policy.min(until_deadline),
            Err(_) => policy,
        }
    }

    /// Sleeps before the next attempt, or returns the error if the policy is exhausted. A
    /// `Retry-After` is honoured as asked, but only when the wait fits in the time left: a longer
    /// one gives up at once ([`ProtimeError::RetryAfterTooLong`]).
    async fn pause_or_give_up(
        &self,
        attempt: u32,
        started: Instant,
        (error, retry_after): (ProtimeError, Option<Duration>),
    ) -> Result<(), ProtimeError> {
        let left = self.time_left(started);
        if let Some(wait) = retry_after.filter(|wait| *wait > left) {
            let (status, message) = match &error {
                ProtimeError::Api { status, message, .. } => (*status, message.clone()),
                _ => (0, String::new()),
            };
            return Err(ProtimeError::RetryAfterTooLong {
                status,
                message: shorten(&message),
                retry_after_secs: wait.as_secs(),
                left_secs: left.as_secs(),
            });
        }
        let delay = retry_after.unwrap_or_else(|| self.retry.backoff(attempt));
        if attempt >= self.retry.max_attempts || delay > left {
            return Err(ProtimeError::RetriesExhausted { attempts: attempt, last: Box::new(error) });
        }
        tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying a Protime call");
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// The scopes the current token grants (fetching one if none is cached).
    pub async fn granted_scopes(&self) -> Result<Vec<String>, ProtimeError> {
        self.token(Instant::now()).await?;
        Ok(self.token.lock().await.as_ref().map(|t| t.scopes.clone()).unwrap_or_default())
    }

    /// The scopes this client asks for.
    pub fn requested_scopes(&self) -> Vec<String> {
        self.scope.split_whitespace().map(str::to_owned).collect()
    }

    /// Whether a token is cached and still within its reuse time: a session holding one can be
    /// reused without reading the credentials again. False after the token was refused (401), or
    /// lacked a scope a request needed (403).
    pub async fn has_fresh_token(&self) -> bool {
        self.token.lock().await.as_ref().is_some_and(|t| Instant::now() < t.expires_at && !t.lacked_scope)
    }

    /// Drops the cached token: the next call fetches a new one (a new run after
    /// [`Self::has_fresh_token`] said no).
    pub async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// Drops the cached token if it is still `refused`: a token another call fetched meanwhile
    /// (collections are synced concurrently on one client) is kept.
    async fn drop_token(&self, refused: &SecretString) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value.expose_secret() == refused.expose_secret()) {
            *cached = None;
        }
    }

    /// Caches a token that stays fresh for `fresh_for` (unit tests without a token endpoint).
    #[cfg(test)]
    pub(crate) async fn cache_token_for_tests(&self, fresh_for: Duration) {
        *self.token.lock().await = Some(CachedToken {
            value: SecretString::from("test-token".to_owned()),
            expires_at: Instant::now() + fresh_for,
            scopes: self.requested_scopes(),
            lacked_scope: false,
        });
    }

    /// A cached token, or a new one if none is cached or it is about to expire. `started`: when
    /// the call it is for started (its retries share the call's time).
    async fn token(&self, started: Instant) -> Result<SecretString, ProtimeError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.expires_at) {
            return Ok(token.value.clone());
        }
        let fresh = self.fetch_token(started).await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    async fn fetch_token(&self, started: Instant) -> Result<CachedToken, ProtimeError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", self.credentials.client_id.as_str()),
                ("client_secret", self.credentials.client_secret()),
                ("scope", self.scope.as_str()),
            ];
            let failure = match self.http.post(&self.token_url).form(&form).send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(body) if status.is_success() => {
                            // The body holds the token: errors describe it without quoting it.
                            let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
                                ProtimeError::InvalidResponse("the token answer has no access_token".into())
                            })?;
                            let lifetime =
                                answer.expires_in.map(Duration::from_secs).unwrap_or(FALLBACK_TOKEN_LIFETIME);
                            tracing::info!(expires_in_s = lifetime.as_secs(), "fetched a Protime access token");
                            let granted = answer.scope.as_deref().unwrap_or(&self.scope);
                            return Ok(CachedToken {
                                value: SecretString::from(answer.access_token),
                                expires_at: Instant::now()
                                    .checked_add(reuse_for(lifetime))
                                    .unwrap_or_else(|| Instant::now() + MAX_TOKEN_REUSE),
                                scopes: granted.split_whitespace().map(str::to_owned).collect(),
                                lacked_scope: false,
                            });
                        }
                        Ok(body) if retryable(status) => (api_error(status, &body), retry_after(&headers)),
                        Ok(body) => {
                            let error = token_error(status, &body, &self.requested_scopes());
                            return Err(scrub(error, self.credentials.client_secret()));
                        }
                        Err(e) => (transport(e), None),
                    }
                }
                Err(e) => (transport(e), None),
            };
            self.pause_or_give_up(attempt, started, failure).await?;
        }
    }
}

impl super::api::WebhookApi for ProtimeClient {
    async fn list_webhooks(&self) -> Result<Vec<Webhook>, ProtimeError> {
        ProtimeClient::list_webhooks(self, None).await
    }

    async fn create_webhook(
        &self,
        destination_url: &str,
        collection: crate::Collection,
        external_references: &str,
    ) -> Result<CreatedWebhook, ProtimeError> {
        ProtimeClient::create_webhook(self, destination_url, collection.as_str(), external_references).await
    }

    async fn delete_webhook(&self, id: &str) -> Result<(), ProtimeError> {
        ProtimeClient::delete_webhook(self, id).await
    }
}

impl super::api::RecordPages for ProtimeClient {
    fn list_url(
        &self,
        collection: crate::Collection,
        filter: Option<&str>,
        delta: bool,
        external_references: &str,
    ) -> String {
        self.list_url_with_references(collection.as_str(), filter, delta, external_references)
    }

    async fn fetch_page(&self, link: &str) -> Result<Page, ProtimeError> {
        ProtimeClient::fetch_page(self, link).await
    }
}

/// Reads a body into one buffer of the length the answer announces, chunk by chunk as it
/// arrives: a page of tens of MB is in memory once, not as its chunks and then their copy.
async fn read_body(mut response: reqwest::Response) -> Result<bytes::Bytes, reqwest::Error> {
    /// What is reserved up front at most, whatever the answer announces.
    const MAX_RESERVED: u64 = 256 * 1024 * 1024;
    let announced = response.content_length().unwrap_or(0).min(MAX_RESERVED);
    let mut body = Vec::with_capacity(announced as usize);
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(bytes::Bytes::from(body))
}

/// How long a token is reused: until [`TOKEN_EXPIRY_MARGIN`] before it expires, and at least half
/// its life, so even a token that lives under a minute is not fetched again for every call.
/// Never longer than [`MAX_TOKEN_REUSE`], whatever `expires_in` says.
fn reuse_for(lifetime: Duration) -> Duration {
    lifetime.saturating_sub(TOKEN_EXPIRY_MARGIN).max(lifetime / 2).min(MAX_TOKEN_REUSE)
}

/// The longest a token is reused, however long Protime says it lives (a day: a garbage
/// `expires_in` cannot overflow the clock or keep a token for ever).
const MAX_TOKEN_REUSE: Duration = Duration::from_secs(24 * 3600);

#[cfg(test)]
mod tests;
