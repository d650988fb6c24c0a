//! `doctor`: a read-only check of the tenant and the deployment's side of it, one line per
//! check, each failing one with what to do. It reads only: a token, one list page per
//! collection (never a `?delta` request: Protime allows one active delta per collection, and the
//! syncer's is live), the webhook list, and the signing keys (never printed).

use super::webhooks::{self, read_credentials, scopes, TenantWebhook};
use crate::context::{CliError, Context, SettingsLookup};
use crate::output;
use crate::Health;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use protime_webhooks::config::{default_filter, RenewerConfig, SyncerConfig};
use protime_webhooks::protime::{ProtimeClient, ProtimeCredentials, ProtimeError};
use protime_webhooks::renewer::plan::destination_url;
use protime_webhooks::signing::keys::{read_collection_keys, CollectionKeys, SecretsManagerKeySource};
use protime_webhooks::sync::plan::CollectionPlan;
use protime_webhooks::Collection;
use serde_json::json;

const WEBHOOKS_READ: &str = "connector-protimeapi-webhooks.read";

#[derive(clap::Args)]
pub struct Args {}

/// A check's outcome. `ok` and `warn` are healthy; `action` needs the operator; `error`: the
/// check could not be made; `skipped`: it needs one that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Action,
    Error,
    Skipped,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Action => "action",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Check {
    name: String,
    status: Status,
    detail: String,
    remedy: Option<String>,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, name: impl Into<String>, status: Status, detail: impl Into<String>, remedy: Option<String>) {
        // Protime's words may quote a link with a token in it.
        let detail = output::redact(&detail.into());
        self.checks.push(Check { name: name.into(), status, detail, remedy });
    }

    fn ok(&mut self, name: impl Into<String>, detail: impl Into<String>) {
        self.add(name, Status::Ok, detail, None);
    }

    /// Lines for the checks that cannot be made, but for those already reported.
    fn skip(&mut self, names: impl IntoIterator<Item = String>, why: &str) {
        for name in names {
            if self.checks.iter().any(|c| c.name == name) {
                continue;
            }
            self.add(name, Status::Skipped, why, None);
        }
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}

pub async fn run(context: &Context, _args: Args) -> Result<Health, CliError> {
    let lookup = context.settings_lookup().await?;
    let settings = lookup.renewer()?;
    let bar = output::progress(context.global.json, None, "checking the tenant");
    let mut report = Report::default();
    check_destination(&settings.destination_base_url, &mut report);
    check_field_policy(context, &settings, &mut report).await;
    check_protime(context, &lookup, &settings, &mut report).await;
    bar.finish_and_clear();
    print(context, &report);
    let (actions, errors) = (report.count(Status::Action), report.count(Status::Error));
    if errors > 0 {
        return Err(CliError::Incomplete(format!(
            "doctor could not make {errors} check{} (status error above){}",
            plural(errors),
            if actions > 0 { format!("; {actions} need action") } else { String::new() }
        )));
    }
    Ok(if actions == 0 { Health::Healthy } else { Health::Unhealthy })
}

/// Protime delivers to HTTPS destinations; plain HTTP is the local stack's, on this machine.
fn check_destination(base: &str, report: &mut Report) {
    let name = "destination";
    let host = base.split_once("://").map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or_default());
    if base.starts_with("https://") {
        report.ok(name, format!("{base} is HTTPS"));
    } else if matches!(host, Some("127.0.0.1" | "localhost")) || base.starts_with("http://[::1]") {
        report.add(
            name,
            Status::Warn,
            format!(
                "{base} is plain HTTP on this machine: the local stack's simulator delivers to it, Protime would not"
            ),
            Some("deploy with an HTTPS DESTINATION_BASE_URL (the stack's API URL by default)".into()),
        );
    } else {
        report.add(
            name,
            Status::Action,
            format!("{base} is not HTTPS: Protime delivers only to HTTPS destinations"),
            Some("set the stack's DestinationBaseUrl to an https:// URL (or leave it empty for the API's URL)".into()),
        );
    }
}

/// The field policy the functions run with, and, when it hashes, the key every function reads
/// at start (the renewer's first run generates it).
async fn check_field_policy(context: &Context, settings: &RenewerConfig, report: &mut Report) {
    let (name, policy) = ("field-policy", settings.data.fields.to_setting());
    if !settings.data.fields.hashes() {
        return report.ok(name, format!("{policy} (nothing hashed)"));
    }
    match context.keys().field_hash_key().await {
        Ok(_) => report.ok(name, format!("{policy}: the field hash key is in the signing-keys secret")),
        Err(e) => report.add(
            name,
            Status::Action,
            format!("{policy}: {e}"),
            Some("invoke the renewer once (its run generates the key), then the functions start".into()),
        ),
    }
}

/// The Protime side, each step needing the one before: the credentials, a token with its
/// scopes, a list page of each collection, then the webhooks and their keys.
async fn check_protime(context: &Context, lookup: &SettingsLookup, settings: &RenewerConfig, report: &mut Report) {
    let collections = &settings.collections;
    let after_token = || {
        let lists = collections.iter().map(|c| format!("list:{c}"));
        ["scopes".to_owned()].into_iter().chain(lists).chain(["webhooks".to_owned()])
    };
    let Some(credentials) = check_credentials(context, &settings.protime_credentials_secret, report).await else {
        report.skip(["token".to_owned()].into_iter().chain(after_token()), "needs the credentials");
        return;
    };

    let needed = scopes(collections);
    let Some(client) = token_and_scopes(settings, &credentials, &needed, report).await else {
        report.skip(after_token(), "needs a token");
        return;
    };
    let granted = match client.granted_scopes().await {
        Ok(granted) => granted,
        Err(e) => {
            report.add("token", Status::Error, format!("the token could not be fetched again: {e}"), None);
            return;
        }
    };

    let syncer = lookup.syncer().ok();
    let today = Utc::now().date_naive();
    let reader = ListReader { client: &client, settings, syncer: syncer.as_ref(), today, granted: &granted };
    for &collection in collections {
        check_list(&reader, collection, report).await;
    }
    check_webhooks(context, settings, &client, &granted, report).await;
}

/// The `credentials` line: the secret read, or what to put in it.
async fn check_credentials(context: &Context, secret: &str, report: &mut Report) -> Option<ProtimeCredentials> {
    match read_credentials(context, secret).await {
        Ok(credentials) => {
            report.ok(
                "credentials",
                format!(
                    "{secret}: tenant {}, environment {}, client {}",
                    credentials.tenant, credentials.environment, credentials.client_id
                ),
            );
            Some(credentials)
        }
        Err(problem) => {
            let (status, remedy) = if problem.fixable {
                (
                    Status::Action,
                    format!("put {{\"tenant\",\"environment\",\"clientId\",\"clientSecret\"}} in {secret}"),
                )
            } else {
                (Status::Error, "check the AWS credentials, region and access to the secret, then run again".into())
            };
            report.add("credentials", status, problem.message, Some(remedy));
            None
        }
    }
}

/// The `webhooks` line (the tenant's webhooks, listed), then each collection's `webhook:` and
/// `key:` lines, and a line for each webhook of ours whose collection is not configured.
async fn check_webhooks(
    context: &Context,
    settings: &RenewerConfig,
    client: &ProtimeClient,
    granted: &[String],
    report: &mut Report,
) {
    if !granted.iter().any(|s| s == WEBHOOKS_READ) {
        report.add(
            "webhooks",
            Status::Action,
            format!("not read: the token lacks {WEBHOOKS_READ}"),
            grant(WEBHOOKS_READ),
        );
        return;
    }
    let listed = match webhooks::list(client).await {
        Ok(listed) => listed,
        Err(e) => {
            let (status, detail, remedy) = classify(&e, WEBHOOKS_READ);
            report.add("webhooks", status, format!("GET /webhooks: {detail}"), remedy);
            return;
        }
    };
    let base = &settings.destination_base_url;
    let ours = listed.iter().filter(|w| w.ours(base).is_some()).count();
    report.ok("webhooks", format!("{} in the tenant, {ours} ours (at {base}/webhooks/<collection>)", listed.len()));
    let keys = settings.signing_keys.source(context.secrets());
    for &collection in &settings.collections {
        if let Some(enabled) = check_webhook(settings, collection, &listed, Utc::now(), report) {
            check_key(&keys, collection, &enabled, report).await;
        }
    }
    check_strays(settings, &listed, report);
}

/// A `webhook:<collection>` warning for each webhook of ours whose collection is not in
/// COLLECTIONS: Protime delivers its events, nothing renews it.
fn check_strays(settings: &RenewerConfig, listed: &[TenantWebhook], report: &mut Report) {
    let base = &settings.destination_base_url;
    for stray in listed.iter().filter_map(|w| w.ours(base)).filter(|c| !settings.collections.contains(c)) {
        report.add(
            format!("webhook:{stray}"),
            Status::Warn,
            format!("ours, but {stray} is not in COLLECTIONS: Protime delivers its events, nothing renews it"),
            Some(format!("protime-webhooks webhooks delete {stray} (or set the renewer's DELETE_STRAY_WEBHOOKS=true)")),
        );
    }
}

/// The `token` and `scopes` lines. Returns a client to go on with: one for every scope needed,
/// or, when the token endpoint refuses them as a set, one for those it grants alone.
async fn token_and_scopes(
    settings: &RenewerConfig,
    credentials: &ProtimeCredentials,
    needed: &[String],
    report: &mut Report,
) -> Option<ProtimeClient> {
    let client = match webhooks::client(settings, credentials.clone(), needed.to_vec()) {
        Ok(client) => client,
        Err(e) => {
            report.add("token", Status::Action, e.to_string(), Some("check PROTIME_API_BASE_URL".into()));
            return None;
        }
    };
    match client.granted_scopes().await {
        Ok(granted) => {
            report.ok("token", format!("fetched ({} scopes asked for)", needed.len()));
            scopes_line(needed, &granted, &[], report);
            Some(client)
        }
        Err(e) if refused_as_set(&e) => refused_as_a_set(settings, credentials, needed, &e, report).await,
        Err(ProtimeError::Auth { status, message }) => {
            report.add(
                "token",
                Status::Action,
                format!("the token endpoint refused the client credentials ({status}: {message})"),
                Some(format!(
                    "check clientId, clientSecret, tenant and environment in {}",
                    settings.protime_credentials_secret
                )),
            );
            None
        }
        Err(e) => {
            report.add(
                "token",
                Status::Error,
                format!("no token: {e}"),
                Some("check the network and PROTIME_TOKEN_URL, then run again".into()),
            );
            None
        }
    }
}

/// The token endpoint refused the scopes as a set: the `token` line says so, the `scopes` line
/// names the missing ones. Protime may name them; when it names them all (or none), each is
/// asked for alone to find which. Returns a client for the scopes granted, if any.
async fn refused_as_a_set(
    settings: &RenewerConfig,
    credentials: &ProtimeCredentials,
    needed: &[String],
    refusal: &ProtimeError,
    report: &mut Report,
) -> Option<ProtimeClient> {
    let named = match refusal {
        ProtimeError::ScopeRefused { scopes } if !scopes.is_empty() && scopes.len() < needed.len() => {
            Some(scopes.clone())
        }
        _ => None,
    };
    let how =
        if named.is_some() { "it named the missing ones" } else { "each was asked for alone to find the missing ones" };
    report.add(
        "token",
        Status::Action,
        format!("the token endpoint refused the scopes as a set; {how}"),
        Some("grant the scopes the next line names".into()),
    );
    let (granted, unknown) = match named {
        Some(refused) => (needed.iter().filter(|s| !refused.contains(s)).cloned().collect(), Vec::new()),
        None => probe_each(settings, credentials, needed).await,
    };
    scopes_line(needed, &granted, &unknown, report);
    if granted.is_empty() {
        return None;
    }
    webhooks::client(settings, credentials.clone(), granted).ok()
}

/// OAuth2's `invalid_scope` from the token endpoint.
fn refused_as_set(error: &ProtimeError) -> bool {
    match error {
        ProtimeError::ScopeRefused { .. } => true,
        ProtimeError::Auth { status: 400, message } => message.contains("invalid_scope"),
        _ => false,
    }
}

/// Asks for a token per scope: (the scopes granted, those that could not be asked about).
async fn probe_each(
    settings: &RenewerConfig,
    credentials: &ProtimeCredentials,
    needed: &[String],
) -> (Vec<String>, Vec<String>) {
    let (mut granted, mut unknown) = (Vec::new(), Vec::new());
    for scope in needed {
        let Ok(client) = webhooks::client(settings, credentials.clone(), vec![scope.clone()]) else {
            unknown.push(scope.clone());
            continue;
        };
        match client.granted_scopes().await {
            Ok(answer) if answer.contains(scope) => granted.push(scope.clone()),
            Ok(_) => {}
            Err(e) if refused_as_set(&e) => {}
            Err(_) => unknown.push(scope.clone()),
        }
    }
    (granted, unknown)
}

fn scopes_line(needed: &[String], granted: &[String], unknown: &[String], report: &mut Report) {
    let missing: Vec<&str> =
        needed.iter().filter(|s| !granted.contains(s) && !unknown.contains(s)).map(String::as_str).collect();
    if !missing.is_empty() {
        report.add(
            "scopes",
            Status::Action,
            format!("missing: {}", missing.join(", ")),
            Some("grant them to the API client in myProtime, then run doctor again".into()),
        );
    } else if !unknown.is_empty() {
        report.add(
            "scopes",
            Status::Error,
            format!("could not ask for: {}", unknown.join(", ")),
            Some("run again".into()),
        );
    } else {
        report.ok("scopes", format!("all {} granted (webhooks read and write, each collection's read)", needed.len()));
    }
}

/// What the list checks read with: the client, the functions' settings, the day listed and
/// the scopes the token grants.
struct ListReader<'a> {
    client: &'a ProtimeClient,
    settings: &'a RenewerConfig,
    syncer: Option<&'a SyncerConfig>,
    today: NaiveDate,
    granted: &'a [String],
}

/// One list page of `collection`, filtered as the syncer filters it, for today.
async fn check_list(reader: &ListReader<'_>, collection: Collection, report: &mut Report) {
    let ListReader { client, settings, syncer, today, granted } = *reader;
    let name = format!("list:{collection}");
    let scope = format!("connector-protimeapi-{collection}.read");
    if !granted.contains(&scope) {
        report.add(name, Status::Action, format!("not read: the token lacks {scope}"), grant(&scope));
        return;
    }
    let filter = list_filter(syncer, collection, today);
    let link =
        client.list_url_with_references(collection.as_str(), filter.as_deref(), false, &settings.external_references);
    let shown = filter.as_deref().map(|f| format!(" (filter {f})")).unwrap_or_default();
    match client.fetch_page(&link).await.and_then(|page| page.envelope().map(|e| e.records.len())) {
        Ok(n) => report.ok(name, format!("read: {n} record{} on the first page{shown}", plural(n))),
        Err(e) => {
            let (status, detail, remedy) = classify(&e, &scope);
            report.add(name, status, format!("GET /{collection}{shown}: {detail}"), remedy);
        }
    }
}

/// The syncer's filter of the collection (its `SYNC_FILTER_<COLLECTION>` or the built-in one)
/// for today alone: one day keeps the page small.
fn list_filter(syncer: Option<&SyncerConfig>, collection: Collection, today: NaiveDate) -> Option<String> {
    let plan = match syncer {
        Some(config) => config.plan(collection),
        None => CollectionPlan { filter_template: default_filter(collection).map(str::to_owned) },
    };
    plan.filter(today, Some(today))
}

/// What a failed request means for the operator: a scope, a refused request, or no answer.
fn classify(error: &ProtimeError, scope: &str) -> (Status, String, Option<String>) {
    match error {
        ProtimeError::MissingScope { status, scope } => {
            (Status::Action, format!("Protime answered {status}: the API client lacks {scope}"), grant(scope))
        }
        // 403 (and 401 after a fresh token) with a valid token: the scope.
        ProtimeError::Api { status: 401 | 403, .. } => {
            (Status::Action, format!("{error}: the token lacks {scope} (or the API client its rights)"), grant(scope))
        }
        ProtimeError::Validation { .. } | ProtimeError::Api { status: 400..=499, .. } => (
            Status::Action,
            error.to_string(),
            Some("check the collection's filter (SYNC_FILTER_<COLLECTION>) and EXTERNAL_REFERENCES".into()),
        ),
        other => (Status::Error, other.to_string(), Some("run again; if it persists, check Protime's status".into())),
    }
}

fn grant(scope: &str) -> Option<String> {
    Some(format!("grant {scope} to the API client in myProtime, then run doctor again"))
}

/// The `webhook:<collection>` line. Returns ours if it is Enabled (its key is checked next).
fn check_webhook(
    settings: &RenewerConfig,
    collection: Collection,
    listed: &[TenantWebhook],
    now: DateTime<Utc>,
    report: &mut Report,
) -> Option<TenantWebhook> {
    let name = format!("webhook:{collection}");
    let destination = destination_url(&settings.destination_base_url, collection);
    let mut ours: Vec<&TenantWebhook> =
        listed.iter().filter(|w| w.ours(&settings.destination_base_url) == Some(collection)).collect();
    ours.sort_by_key(|w| (w.enabled(), w.valid_until));
    let renewer = "invoke the renewer (the stack's RenewerFunctionName)";
    let Some(best) = ours.pop() else {
        report.add(
            name,
            Status::Action,
            format!("none at {destination}"),
            Some(format!("{renewer}: it creates it; its report says why if it cannot")),
        );
        return None;
    };
    let id = best.id.as_deref().unwrap_or("-");
    let until = valid_until(best);
    let leftovers = leftovers(ours.len());
    if !best.enabled() {
        let status = best.status.as_deref().unwrap_or("no status");
        report.add(
            name,
            Status::Action,
            format!("{id} is {status} (validUntil {until}): Protime delivers nothing{leftovers}"),
            Some(format!("{renewer}: it re-syncs the gap and re-enables it with a new key")),
        );
        return None;
    }
    let left = best.valid_until.map(|t| t - now);
    match left {
        Some(left) if left < settings.renew_before => report.add(
            name,
            Status::Action,
            format!(
                "{id} Enabled, expires in {} ({until}): the renewer renews {} h ahead{leftovers}",
                output::duration(left.num_seconds()),
                settings.renew_before.num_hours()
            ),
            Some(format!("{renewer}, and check its schedule and errors (protime-webhooks status)")),
        ),
        Some(left) => report
            .ok(name, format!("{id} Enabled until {until} ({} left){leftovers}", output::duration(left.num_seconds()))),
        None => {
            report.add(name, Status::Warn, format!("{id} Enabled, validUntil unreadable ({until}){leftovers}"), None)
        }
    }
    Some(best.clone())
}

/// A webhook's validUntil: RFC 3339 when it reads, else as Protime gave it.
fn valid_until(webhook: &TenantWebhook) -> String {
    webhook
        .valid_until
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .or(webhook.valid_until_text.clone())
        .unwrap_or_else(|| "no validUntil".into())
}

/// `, and 2 Disabled leftovers (the renewer deletes them)`: the other webhooks of ours for the
/// collection (none: nothing).
fn leftovers(count: usize) -> String {
    if count == 0 {
        String::new()
    } else {
        format!(", and {count} Disabled leftover{} (the renewer deletes them)", plural(count))
    }
}

/// The `key:<collection>` line: the key is read, never shown.
async fn check_key(
    keys: &SecretsManagerKeySource,
    collection: Collection,
    webhook: &TenantWebhook,
    report: &mut Report,
) {
    let name = format!("key:{collection}");
    let secret = keys.secret_id();
    match read_collection_keys(keys, collection).await {
        Ok(CollectionKeys { current: Some(version), legacy, .. }) => {
            let stored = DateTime::<Utc>::from(version.created).to_rfc3339_opts(SecondsFormat::Secs, true);
            let place = match (legacy, keys.legacy_secret_id(collection)) {
                (true, Some(old)) => {
                    format!("{old}, where release 0.1 kept it (the renewer's next run moves it into {secret})")
                }
                _ => secret.to_owned(),
            };
            report.ok(name, format!("present in {place} (stored {stored})"));
        }
        Ok(CollectionKeys { current: None, .. }) => report.add(
            name,
            Status::Action,
            format!(
                "none in {secret}: the receiver answers 401 to every event of webhook {}",
                webhook.id.as_deref().unwrap_or("-")
            ),
            Some(format!(
                "check the signing-keys secret is the functions' (--stack reads it); if the key is gone, \
                 `protime-webhooks webhooks delete {collection}` and invoke the renewer: it creates the webhook anew \
                 and stores its key"
            )),
        ),
        Err(e) => {
            report.add(name, Status::Error, e.to_string(), Some("check access to the secret, then run again".into()))
        }
    }
}

fn print(context: &Context, report: &Report) {
    let healthy = report.count(Status::Action) == 0 && report.count(Status::Error) == 0;
    if context.global.json {
        let checks: Vec<_> = report
            .checks
            .iter()
            .map(|c| {
                let mut check = json!({ "name": c.name, "status": c.status.as_str(), "detail": c.detail });
                if let Some(remedy) = &c.remedy {
                    check["remedy"] = json!(remedy);
                }
                check
            })
            .collect();
        output::json(&json!({ "checks": checks, "healthy": healthy }));
        return;
    }
    let width = report.checks.iter().map(|c| c.name.chars().count()).max().unwrap_or(0);
    for check in &report.checks {
        let line = format!("{:<7} {:<width$}  {}", check.status.as_str(), check.name, check.detail);
        let bad = matches!(check.status, Status::Action | Status::Error);
        println!("{}", if bad { output::alarm(&line) } else { line });
        if let Some(remedy) = check.remedy.as_ref().filter(|_| check.status != Status::Ok) {
            println!("{:<7} {:<width$}  → {remedy}", "", "");
        }
    }
    let counts: Vec<String> = [Status::Ok, Status::Warn, Status::Action, Status::Error, Status::Skipped]
        .iter()
        .map(|&s| (s, report.count(s)))
        .filter(|&(_, n)| n > 0)
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    let verdict = if healthy { "healthy" } else { "not healthy" };
    println!("{verdict}: {}", counts.join(", "));
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(base: &str) -> Vec<Status> {
        let mut report = Report::default();
        check_destination(base, &mut report);
        report.checks.iter().map(|c| c.status).collect()
    }

    #[test]
    fn the_destination_must_be_https_except_on_this_machine() {
        assert_eq!(statuses("https://abc.execute-api.eu-west-1.amazonaws.com"), [Status::Ok]);
        assert_eq!(statuses("http://127.0.0.1:9000/lambda-url/receiver"), [Status::Warn]);
        assert_eq!(statuses("http://localhost:9000"), [Status::Warn]);
        assert_eq!(statuses("http://api.example.com"), [Status::Action]);
        assert_eq!(statuses("http://127.0.0.1.example.com"), [Status::Action]);
    }

    #[test]
    fn the_list_filter_is_the_syncers_for_today_alone() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let filter = |c| list_filter(None, c, today);
        assert_eq!(filter(Collection::Clockings).as_deref(), Some("date ge '2026-12-07' and date le '2026-12-07'"));
        assert_eq!(filter(Collection::Breaks).as_deref(), Some("date ge '2026-12-07'"));
        assert_eq!(filter(Collection::People), None);
    }

    #[test]
    fn a_refused_request_names_the_scope_it_needs() {
        let forbidden =
            ProtimeError::Api { status: 403, code: "Forbidden".into(), message: String::new(), reasons: vec![] };
        let (status, detail, remedy) = classify(&forbidden, "connector-protimeapi-clockings.read");
        assert_eq!(status, Status::Action);
        assert!(detail.contains("connector-protimeapi-clockings.read"), "{detail}");
        assert!(remedy.unwrap().contains("grant connector-protimeapi-clockings.read"));
        let named = ProtimeError::MissingScope { status: 403, scope: "connector-protimeapi-people.read".into() };
        assert!(classify(&named, "x").1.contains("connector-protimeapi-people.read"));
        let (status, ..) = classify(&ProtimeError::Transport("timed out".into()), "x");
        assert_eq!(status, Status::Error);
        assert!(refused_as_set(&ProtimeError::ScopeRefused { scopes: vec![] }));
        assert!(!refused_as_set(&ProtimeError::Auth { status: 401, message: "invalid_client".into() }));
        assert!(!refused_as_set(&ProtimeError::Auth { status: 400, message: "invalid_client; check clientId".into() }));
    }

    #[test]
    fn the_missing_scopes_are_named_in_the_order_asked() {
        let needed = scopes(&[Collection::Clockings, Collection::People]);
        let mut report = Report::default();
        scopes_line(&needed, &needed[..2], &[], &mut report);
        assert_eq!(report.checks[0].status, Status::Action);
        assert_eq!(
            report.checks[0].detail,
            "missing: connector-protimeapi-clockings.read, connector-protimeapi-people.read"
        );
    }
}
