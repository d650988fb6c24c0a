//! The token endpoint and the webhooks API.

use super::faults::intercept;
use super::*;

#[derive(Deserialize)]
pub(super) struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

/// Scopes the simulated client may ask for.
fn allowed_scope(scope: &str) -> bool {
    scope == "connector-protimeapi-webhooks.read"
        || scope == "connector-protimeapi-webhooks.write"
        || scope
            .strip_prefix("connector-protimeapi-")
            .and_then(|s| s.strip_suffix(".read"))
            .is_some_and(|c| c.parse::<Collection>().is_ok())
}

pub(super) async fn token(
    State(shared): State<Shared>,
    Path(tenant): Path<String>,
    Form(form): Form<TokenForm>,
) -> Response {
    if let Some(r) = intercept(&shared, "token", "/token").await {
        return r;
    }
    let config = &shared.config;
    if tenant != config.tenant || form.grant_type.as_deref() != Some("client_credentials") {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "unsupported_grant_type"}))).into_response();
    }
    if form.client_id.as_deref() != Some(config.client_id.as_str())
        || form.client_secret.as_deref() != Some(config.client_secret.as_str())
    {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    }
    let asked: Vec<String> = form.scope.unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    if asked.is_empty() || !asked.iter().all(|s| allowed_scope(s)) {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_scope"}))).into_response();
    }
    let mut sim = shared.lock();
    // Scopes asked for but not granted to the API client: refused outright (Strict), or left
    // out of the token, which says what it grants in `scope` (Subset).
    let (scopes, refused): (Vec<String>, Vec<String>) =
        asked.into_iter().partition(|s| sim.granted_scopes.as_ref().is_none_or(|granted| granted.contains(s)));
    if !refused.is_empty() && (config.scope_refusal == ScopeRefusal::Strict || scopes.is_empty()) {
        let description = format!("The client is not allowed the scopes: {}", refused.join(" "));
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_scope", "error_description": description})))
            .into_response();
    }
    let token = random_hex(24);
    let expires = sim.now() + config.token_lifetime;
    sim.tokens.insert(token.clone(), (expires, scopes.clone()));
    sim.issued.push(token.clone());
    Json(json!({
        "access_token": token,
        "expires_in": config.token_lifetime.num_seconds(),
        "token_type": "Bearer",
        "scope": scopes.join(" "),
    }))
    .into_response()
}

/// Checks the bearer token and scope of an API request; `Err` is the answer to send.
pub(super) async fn authorize(shared: &Shared, path: &str, headers: &HeaderMap, scope: &str) -> Result<(), Response> {
    if let Some(r) = intercept(shared, "api", path).await {
        return Err(r);
    }
    if headers.get("user-agent").is_none() {
        return Err(error(StatusCode::BAD_REQUEST, "MissingUserAgent", "A User-Agent header is required"));
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let sim = shared.lock();
    match sim.tokens.get(token) {
        Some((expires, _)) if *expires <= sim.now() => {
            Err(error(StatusCode::UNAUTHORIZED, "Unauthorized", "The access token has expired"))
        }
        Some((_, scopes)) if scopes.iter().any(|s| s == scope) => Ok(()),
        // A valid token without the scope: 403 (Protime's Responses reference).
        Some(_) => Err(error(StatusCode::FORBIDDEN, "Forbidden", &format!("The access token lacks the scope {scope}"))),
        None => Err(error(StatusCode::UNAUTHORIZED, "Unauthorized", "Missing or invalid access token")),
    }
}

fn webhook_json(w: &SimWebhook) -> Value {
    json!({
        "id": w.id,
        "validUntil": time(w.valid_until),
        "status": if w.enabled { "Enabled" } else { "Disabled" },
        "destinationUrl": w.destination_url,
        "collectionName": w.collection,
    })
}

/// `<field> eq '<value>'`, the filter form the webhooks list accepts.
fn parse_eq(filter: &str) -> Option<(&str, &str)> {
    let (field, value) = filter.split_once(" eq ")?;
    Some((field.trim(), value.trim().strip_prefix('\'')?.strip_suffix('\'')?))
}

pub(super) async fn list_webhooks(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) =
        authorize(&shared, &format!("{API_PREFIX}/webhooks"), &headers, "connector-protimeapi-webhooks.read").await
    {
        return r;
    }
    let filter = match q.get("filter").map(|f| parse_eq(f)) {
        None => None,
        Some(Some((field @ ("status" | "collectionName"), value))) => Some((field.to_owned(), value.to_owned())),
        Some(_) => return error(StatusCode::BAD_REQUEST, "InvalidFilter", "Unsupported filter"),
    };
    let mut sim = shared.lock();
    sim.expire();
    let value: Vec<Value> = sim
        .webhooks
        .iter()
        .filter(|w| !w.deleted)
        .map(webhook_json)
        .filter(|w| filter.as_ref().is_none_or(|(field, value)| w[field.as_str()] == value.as_str()))
        .chain(sim.raw_webhooks.iter().cloned())
        .collect();
    Json(json!({ "value": value })).into_response()
}

pub(super) async fn get_webhook(State(shared): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) =
        authorize(&shared, &format!("{API_PREFIX}/webhooks/{id}"), &headers, "connector-protimeapi-webhooks.read").await
    {
        return r;
    }
    let mut sim = shared.lock();
    sim.expire();
    match sim.webhooks.iter().find(|w| w.id == id && !w.deleted) {
        Some(w) => Json(webhook_json(w)).into_response(),
        None => error(StatusCode::NOT_FOUND, "NotFound", "No such webhook"),
    }
}

pub(super) async fn delete_webhook(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) =
        authorize(&shared, &format!("{API_PREFIX}/webhooks/{id}"), &headers, "connector-protimeapi-webhooks.write")
            .await
    {
        return r;
    }
    let mut sim = shared.lock();
    match sim.webhooks.iter_mut().find(|w| w.id == id && !w.deleted) {
        Some(w) => {
            w.deleted = true;
            w.enabled = false;
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "NotFound", "No such webhook"),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateBody {
    destination_url: Option<String>,
    collection_name: Option<String>,
}

pub(super) async fn create_webhook(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Option<Json<CreateBody>>,
) -> Response {
    if let Err(r) =
        authorize(&shared, &format!("{API_PREFIX}/webhooks"), &headers, "connector-protimeapi-webhooks.write").await
    {
        return r;
    }
    let Some(Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "InvalidBody", "Body must be JSON {destinationUrl, collectionName}");
    };
    // Model validation: a 400 with `validationErrors` and no `{"error":…}` wrapper.
    let destination = body.destination_url.unwrap_or_default();
    let collection = body.collection_name.unwrap_or_default();
    let mut invalid = Vec::new();
    if !(destination.starts_with("https://") || destination.starts_with("http://")) || destination.contains(' ') {
        invalid.push(json!({"propertyName": "destinationUrl", "message": "The destination URL is not a valid URL"}));
    }
    if collection.parse::<Collection>().is_err() {
        invalid.push(json!({"propertyName": "collectionName", "message": "Unknown collection name"}));
    }
    if !invalid.is_empty() {
        return (StatusCode::BAD_REQUEST, Json(json!({ "validationErrors": invalid }))).into_response();
    }
    let references = q.get("externalReferences").cloned().unwrap_or_default();
    let config = shared.config.clone();
    let mut sim = shared.lock();
    let now = sim.now();
    let key = random_hex(32);
    let existing =
        sim.webhooks.iter_mut().find(|w| !w.deleted && w.destination_url == destination && w.collection == collection);
    let (status, webhook) = match existing {
        // Same destination and collection: re-enabled and renewed, never duplicated.
        Some(w) => {
            w.key = key;
            w.enabled = true;
            w.valid_until = now + config.webhook_validity;
            (StatusCode::OK, w.clone())
        }
        None => {
            let w = SimWebhook {
                id: format!("{}-{}-{}-{}", random_hex(4), random_hex(2), random_hex(2), random_hex(6)),
                collection,
                destination_url: destination,
                external_references: references,
                key,
                valid_until: now + config.webhook_validity,
                enabled: true,
                deleted: false,
            };
            sim.webhooks.push(w.clone());
            (StatusCode::CREATED, w)
        }
    };
    let mut answer = webhook_json(&webhook);
    answer[config.key_field.as_str()] = json!(webhook.key);
    let location = format!("{API_PREFIX}/webhooks/{}", webhook.id);
    (status, [("Location", location)], Json(answer)).into_response()
}
