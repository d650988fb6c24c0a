//! `webhooks list` and `webhooks delete`: the tenant's webhooks as Protime reports them, ours
//! (by destination and collection) marked, and ours deleted before a teardown.
//!
//! Also what `doctor` shares: the credentials read from their secret, a Protime client with the
//! renewer's settings, and the tenant's webhook list read item by item (another integration's
//! webhook may lack fields ours always have: it is listed with what it has).

use crate::context::{aws_error, CliError, Context};
use crate::output;
use crate::Health;
use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use chrono::{DateTime, SecondsFormat, Utc};
use protime_webhooks::config::RenewerConfig;
use protime_webhooks::protime::client::{ClientOptions, RetryPolicy};
use protime_webhooks::protime::{LinksFollowed, ProtimeClient, ProtimeCredentials, ProtimeError};
use protime_webhooks::renewer::plan::destination_url;
use protime_webhooks::Collection;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Every webhook of the tenant: id, collection, status, validUntil and destination, ours
    /// (at <DESTINATION_BASE_URL>/webhooks/<collection>) marked. `--json`:
    /// `{"webhooks":[{"id","collection","status","validUntil","destinationUrl","ours"}],"count"}`
    /// (a field Protime left out is null).
    List,
    /// Delete our webhooks of these collections (or `--all` of ours), matched by destination
    /// and collection: another destination's webhook is never touched. Run it right before
    /// `sam delete` (the renewer re-creates them on its next run). `--json`:
    /// `{"deleted":[{"id","collection","status","destinationUrl"}],"failed":[{"id","collection","error"}],
    /// "none":[collection…]}`. Exit 2 if one could not be deleted.
    Delete(DeleteArgs),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["collections", "all"])))]
pub struct DeleteArgs {
    /// Collections whose webhook of ours to delete.
    #[arg(value_delimiter = ',')]
    collections: Vec<Collection>,
    /// Every webhook of ours, whatever its collection (configured or not).
    #[arg(long)]
    all: bool,
}

pub async fn run(context: &Context, command: Command) -> Result<Health, CliError> {
    let settings = context.settings_lookup().await?.renewer()?;
    let credentials = read_credentials(context, &settings.protime_credentials_secret)
        .await
        .map_err(|problem| CliError::Input(problem.message))?;
    // Managing webhooks needs no collection's data scope.
    let client = client(&settings, credentials, scopes(&[]))?;
    let webhooks = list(&client).await.map_err(|e| CliError::Input(format!("listing the webhooks: {e}")))?;
    match command {
        Command::List => {
            print_list(context, &settings, &webhooks);
            Ok(Health::Healthy)
        }
        Command::Delete(args) => delete(context, &settings, &client, &webhooks, args).await,
    }
}

/// One webhook as `GET /webhooks` listed it; what it left out is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantWebhook {
    pub id: Option<String>,
    pub collection: Option<String>,
    pub status: Option<String>,
    /// As Protime wrote it, and read (`None` when unreadable).
    pub valid_until_text: Option<String>,
    pub valid_until: Option<DateTime<Utc>>,
    pub destination_url: Option<String>,
}

impl TenantWebhook {
    /// Reads what it can of one item of the list.
    pub fn read(item: &Value) -> TenantWebhook {
        let text = |name: &str| match item.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let valid_until_text = text("validUntil");
        let valid_until = valid_until_text
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        TenantWebhook {
            id: text("id"),
            collection: text("collectionName"),
            status: text("status"),
            valid_until_text,
            valid_until,
            destination_url: text("destinationUrl"),
        }
    }

    /// The collection it is ours for: at `<base>/webhooks/<collection>`, for that collection.
    pub fn ours(&self, destination_base: &str) -> Option<Collection> {
        let collection: Collection = self.collection.as_deref()?.parse().ok()?;
        let destination = self.destination_url.as_deref()?.trim_end_matches('/');
        (destination == destination_url(destination_base, collection)).then_some(collection)
    }

    pub fn enabled(&self) -> bool {
        self.status.as_deref() == Some("Enabled")
    }

    fn json(&self, destination_base: &str) -> Value {
        json!({
            "id": self.id,
            "collection": self.collection,
            "status": self.status,
            "validUntil": self.valid_until.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)).or(self.valid_until_text.clone()),
            "destinationUrl": self.destination_url.as_deref().map(output::redact),
            "ours": self.ours(destination_base).is_some(),
        })
    }
}

/// `GET /webhooks`, every page, every item read as far as it can be.
pub async fn list(client: &ProtimeClient) -> Result<Vec<TenantWebhook>, ProtimeError> {
    /// More pages than any tenant has webhooks for (18 collections, a few destinations).
    const MAX_PAGES: usize = 100;
    let mut link = client.list_url("webhooks", None, false);
    let mut followed = LinksFollowed::default();
    let mut webhooks = Vec::new();
    for _ in 0..MAX_PAGES {
        followed.first_time(&link)?;
        let page = client.fetch_page(&link).await?;
        let envelope = page.envelope()?;
        for raw in &envelope.records {
            match serde_json::from_str::<Value>(raw.get()) {
                Ok(item) => webhooks.push(TenantWebhook::read(&item)),
                Err(_) => webhooks.push(TenantWebhook::read(&Value::Null)),
            }
        }
        match envelope.next_link {
            Some(next) => link = next,
            None => return Ok(webhooks),
        }
    }
    Err(ProtimeError::InvalidResponse(format!("the webhook list ran over {MAX_PAGES} pages")))
}

/// The scopes to manage webhooks and read `collections`.
pub fn scopes(collections: &[Collection]) -> Vec<String> {
    protime_webhooks::protime::client::scopes_for(collections.iter().map(|c| c.as_str()))
}

/// A Protime client with the renewer's URLs and User-Agent, asking for `scopes`; it retries
/// less than the functions do (someone is waiting).
pub fn client(
    settings: &RenewerConfig,
    credentials: ProtimeCredentials,
    scopes: Vec<String>,
) -> Result<ProtimeClient, CliError> {
    ProtimeClient::new(credentials, options(settings, scopes)).map_err(|e| CliError::Input(e.to_string()))
}

fn options(settings: &RenewerConfig, scopes: Vec<String>) -> ClientOptions {
    let mut options = protime_webhooks::renewer::client_options(settings);
    options.scopes = scopes;
    options.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(5),
        max_elapsed: Duration::from_secs(20),
    };
    options
}

/// Why the credentials secret cannot be used. Never quotes its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsProblem {
    /// Something the operator can fix (absent, empty, not the JSON it must be), or else an
    /// error reading it (access, network).
    pub fixable: bool,
    pub message: String,
}

/// The client credentials from their secret (`AWSCURRENT`).
pub async fn read_credentials(context: &Context, secret: &str) -> Result<ProtimeCredentials, CredentialsProblem> {
    let answer = context.secrets().get_secret_value().secret_id(secret).version_stage("AWSCURRENT").send().await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(SdkError::ServiceError(e)) if matches!(e.err(), GetSecretValueError::ResourceNotFoundException(_)) => {
            return Err(CredentialsProblem {
                fixable: true,
                message: format!("the Protime credentials secret {secret} does not exist or has no value"),
            })
        }
        Err(e) => {
            return Err(CredentialsProblem {
                fixable: false,
                message: aws_error(&format!("reading the Protime credentials secret {secret}"), e).to_string(),
            })
        }
    };
    let Some(json) = answer.secret_string() else {
        return Err(CredentialsProblem {
            fixable: true,
            message: format!("the Protime credentials secret {secret} holds no SecretString"),
        });
    };
    let credentials = ProtimeCredentials::from_json(json).map_err(|e| CredentialsProblem {
        fixable: true,
        message: format!("the Protime credentials secret {secret} is invalid: {e}"),
    })?;
    if credentials.is_placeholder() {
        // As the functions read it: a stack deployed, not configured yet.
        let why = protime_webhooks::protime::ConnectError::NotConfigured { secret: secret.to_owned() };
        return Err(CredentialsProblem { fixable: true, message: why.to_string() });
    }
    Ok(credentials)
}

fn print_list(context: &Context, settings: &RenewerConfig, webhooks: &[TenantWebhook]) {
    let base = &settings.destination_base_url;
    if context.global.json {
        let items: Vec<Value> = webhooks.iter().map(|w| w.json(base)).collect();
        output::json(&json!({ "webhooks": items, "count": webhooks.len() }));
        return;
    }
    if webhooks.is_empty() {
        println!("the tenant has no webhooks");
        return;
    }
    let dash = || "-".to_owned();
    let rows: Vec<Vec<String>> = webhooks
        .iter()
        .map(|w| {
            vec![
                w.id.clone().unwrap_or_else(dash),
                w.collection.clone().unwrap_or_else(dash),
                w.status.clone().unwrap_or_else(dash),
                w.valid_until
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                    .or(w.valid_until_text.clone())
                    .unwrap_or_else(dash),
                if w.ours(base).is_some() { "yes".to_owned() } else { "no".to_owned() },
                w.destination_url.as_deref().map(output::redact).unwrap_or_else(dash),
            ]
        })
        .collect();
    let unhealthy: Vec<bool> = webhooks.iter().map(|w| w.ours(base).is_some() && !w.enabled()).collect();
    output::table(&["ID", "COLLECTION", "STATUS", "VALID UNTIL", "OURS", "DESTINATION"], &rows, &unhealthy);
    let ours = webhooks.iter().filter(|w| w.ours(base).is_some()).count();
    println!("{} webhooks, {ours} ours (at {base}/webhooks/<collection>)", webhooks.len());
}

async fn delete(
    context: &Context,
    settings: &RenewerConfig,
    client: &ProtimeClient,
    webhooks: &[TenantWebhook],
    args: DeleteArgs,
) -> Result<Health, CliError> {
    let base = &settings.destination_base_url;
    let wanted = |c: Collection| args.all || args.collections.contains(&c);
    let targets: Vec<(Collection, &TenantWebhook)> =
        webhooks.iter().filter_map(|w| w.ours(base).filter(|&c| wanted(c)).map(|c| (c, w))).collect();
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for (collection, webhook) in &targets {
        let result = match webhook.id.as_deref() {
            Some(id) => client.delete_webhook(id).await.map_err(|e| output::redact(&e.to_string())),
            None => Err("Protime listed it without an id".to_owned()),
        };
        match result {
            Ok(()) => deleted.push((*collection, *webhook)),
            Err(error) => failed.push((*collection, *webhook, error)),
        }
    }
    let none: Vec<Collection> =
        args.collections.iter().copied().filter(|c| !targets.iter().any(|(t, _)| t == c)).collect();
    if context.global.json {
        output::json(&json!({
            "deleted": deleted.iter().map(|(c, w)| json!({
                "id": w.id, "collection": c.as_str(), "status": w.status,
                "destinationUrl": w.destination_url.as_deref().map(output::redact),
            })).collect::<Vec<_>>(),
            "failed": failed.iter().map(|(c, w, e)| json!({"id": w.id, "collection": c.as_str(), "error": e})).collect::<Vec<_>>(),
            "none": none.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        }));
    } else {
        for (collection, webhook) in &deleted {
            let status = webhook.status.as_deref().unwrap_or("no status");
            println!("deleted {collection} webhook {} ({status})", webhook.id.as_deref().unwrap_or("-"));
        }
        for (collection, webhook, error) in &failed {
            let line =
                format!("could not delete {collection} webhook {}: {error}", webhook.id.as_deref().unwrap_or("-"));
            println!("{}", output::alarm(&line));
        }
        for collection in &none {
            println!("no webhook of ours for {collection}");
        }
        if targets.is_empty() && args.all {
            println!("no webhook of ours (at {base}/webhooks/<collection>)");
        }
    }
    Ok(if failed.is_empty() { Health::Healthy } else { Health::Unhealthy })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_is_ours_by_destination_and_collection() {
        let item = |collection: &str, destination: &str| {
            TenantWebhook::read(&json!({"id": 7, "collectionName": collection, "destinationUrl": destination,
                "status": "Enabled", "validUntil": "2026-01-31T12:00:00+01:00"}))
        };
        let base = "https://api.example.com";
        assert_eq!(
            item("clockings", "https://api.example.com/webhooks/clockings").ours(base),
            Some(Collection::Clockings)
        );
        assert_eq!(
            item("clockings", "https://api.example.com/webhooks/clockings/").ours(base),
            Some(Collection::Clockings)
        );
        assert_eq!(item("clockings", "https://other.example.com/webhooks/clockings").ours(base), None);
        assert_eq!(item("breaks", "https://api.example.com/webhooks/clockings").ours(base), None);
        assert_eq!(item("timesheets", "https://api.example.com/webhooks/timesheets").ours(base), None);
        let read = item("clockings", "x");
        assert_eq!(read.id.as_deref(), Some("7"));
        assert_eq!(read.valid_until.map(|t| t.to_rfc3339()), Some("2026-01-31T11:00:00+00:00".to_owned()));
    }

    #[test]
    fn an_item_without_our_fields_is_read_as_far_as_it_goes() {
        let read = TenantWebhook::read(&json!({"id": "x1", "validUntil": "soon", "destinationUrl": null}));
        assert_eq!((read.id.as_deref(), read.collection.as_deref(), read.valid_until), (Some("x1"), None, None));
        assert_eq!(read.valid_until_text.as_deref(), Some("soon"));
        assert_eq!(read.ours("https://api.example.com"), None);
        assert_eq!(TenantWebhook::read(&json!([1, 2])).id, None);
    }
}
