//! `sync COLLECTION… [--from DATE] [--reinitialize] [--wait]`: asks the deployed syncer for a run
//! (or a manual backfill) with Lambda Invoke and prints its report.
//!
//! The payload is the syncer's manual request, `{"collections":[…],"reinitialize":bool,
//! "from":"YYYY-MM-DD"}`. With `--wait`, while a collection ends `partial` (page budget or
//! deadline) or `busy` (another invocation holds its lease), the syncer is invoked again for a
//! normal run of the same collections, until every one has ended otherwise.
//!
//! Lambda refuses an invoke with `TooManyRequestsException` when the function is at its reserved
//! concurrency — in AWS, while the scheduled run is going. That is the same as every collection
//! busy: the report shows them `busy` (`"throttled": true`), and `--wait` waits for the run.

mod print;
mod report;

use crate::context::{aws_error, CliError, Context};
use crate::output;
use crate::Health;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_lambda::types::ThrottleReason;
use chrono::NaiveDate;
use print::{print_report, print_totals};
use protime_webhooks::sync::{Outcome, SyncRequest};
use protime_webhooks::Collection;
use report::{add, needs_attention, pending, progress_of, throttled, totals_json, CollectionRun, Report, Total};
use serde_json::{json, Value};

/// The pause of `--wait` when every collection still to do is busy.
const BUSY_PAUSE_SECONDS: u64 = 30;

#[derive(clap::Args)]
pub struct Args {
    /// The collections to sync (configured in the syncer's COLLECTIONS); commas or spaces.
    #[arg(required = true, num_args = 1.., value_delimiter = ',')]
    collections: Vec<Collection>,
    /// Start the collections' initial load again (a manual backfill); unchanged records are
    /// skipped.
    #[arg(long)]
    reinitialize: bool,
    /// The backfill's start date (YYYY-MM-DD) instead of the syncer's SYNC_FROM.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "reinitialize")]
    from: Option<NaiveDate>,
    /// Invoke again (a normal run) while any collection ends partial or busy, then print the
    /// last report and the records of all runs.
    #[arg(long)]
    wait: bool,
    /// Seconds between invocations with --wait (at least 30 while every collection left is
    /// busy: another invocation holds it).
    #[arg(long, default_value_t = 2, value_name = "SECONDS")]
    pause_seconds: u64,
    /// With --wait: give up after this many invocations (exit 2 if a collection is still partial
    /// or busy).
    #[arg(long, value_name = "N", requires = "wait")]
    max_runs: Option<u32>,
}

/// What to invoke the syncer with: the first request, the request of every run `--wait` adds,
/// and when to stop.
pub struct Invocation {
    pub collections: Vec<String>,
    pub first: SyncRequest,
    pub again: SyncRequest,
    pub wait: bool,
    pub pause_seconds: u64,
    pub max_runs: Option<u32>,
}

impl Args {
    fn invocation(&self) -> Invocation {
        let names: Vec<String> = self.collections.iter().map(|c| c.as_str().to_owned()).collect();
        Invocation {
            first: request(&names, self.reinitialize, self.from),
            // A backfill is asked for once; the runs after it are normal runs.
            again: request(&names, false, None),
            collections: names,
            wait: self.wait,
            pause_seconds: self.pause_seconds,
            max_runs: self.max_runs,
        }
    }
}

/// What the syncer answered.
enum Answer {
    Report(Value, Report),
    /// `TooManyRequestsException`: the function is at its reserved concurrency (another
    /// invocation is running); nothing ran.
    Throttled,
    /// `X-Amz-Function-Error` (the payload is `{"errorType","errorMessage"}`).
    Failed(String, Value),
}

pub async fn run(context: &Context, args: Args) -> Result<Health, CliError> {
    run_invocation(context, args.invocation()).await
}

/// Invokes the syncer as `invocation` says and prints the last report (with each collection's
/// drift when a full pass completed) and, with `--wait`, the totals.
pub async fn run_invocation(context: &Context, args: Invocation) -> Result<Health, CliError> {
    let function = context.syncer_function()?.to_owned();
    let json_out = context.global.json;
    let bar = output::progress(json_out, None, &format!("invoking {function}"));
    let runs = invoke_until_done(&context.lambda(), &function, &args, &bar).await;
    bar.finish_and_clear();
    let Runs { raw, report, runs, totals } = match runs {
        Ok(runs) => runs,
        Err(Stop::Failed(kind, mut error)) => return Err(function_failed(&function, &kind, &mut error, json_out)),
        Err(Stop::Error(e)) => return Err(e),
    };
    if let Some(why) = &report.not_configured {
        // Nothing ran: the stack is deployed, but the credentials secret still holds placeholders.
        if json_out {
            output::json(&raw);
        }
        eprintln!("protime-webhooks: nothing synced: {}", output::redact(why));
        return Ok(Health::Unhealthy);
    }
    let failed: Vec<&CollectionRun> = report.collections.iter().filter(|c| needs_attention(c)).collect();
    let unfinished = args.wait && !pending(&report).is_empty();
    if json_out {
        let mut out = raw;
        output::redact_json(&mut out);
        if args.wait {
            if let Value::Object(map) = &mut out {
                map.insert("runs".into(), json!(runs));
                map.insert("totals".into(), totals_json(&totals));
            }
        }
        output::json(&out);
    } else {
        print_report(&report, args.wait);
        if args.wait {
            print_totals(&totals, runs);
        }
    }
    if unfinished {
        eprintln!("protime-webhooks: gave up after {runs} runs: {} not done yet", pending(&report).join(", "));
    }
    Ok(if failed.is_empty() && !unfinished { Health::Healthy } else { Health::Unhealthy })
}

/// What the invocations of one `sync` gave: the last report (as returned, and as read), how many
/// runs it took and the pages and records of all of them.
struct Runs {
    raw: Value,
    report: Report,
    runs: u32,
    totals: Vec<Total>,
}

/// Why the invocations stopped before a report.
enum Stop {
    /// The function failed: its error type and payload.
    Failed(String, Value),
    Error(CliError),
}

/// Invokes the syncer once, or with `--wait` again (a normal run) while a collection is partial
/// or busy, pausing between runs.
async fn invoke_until_done(
    client: &aws_sdk_lambda::Client,
    function: &str,
    args: &Invocation,
    bar: &indicatif::ProgressBar,
) -> Result<Runs, Stop> {
    let names: Vec<&str> = args.collections.iter().map(String::as_str).collect();
    let mut payload = args.first.clone();
    let mut runs = 0u32;
    let mut totals: Vec<Total> = Vec::new();
    loop {
        runs += 1;
        bar.set_message(format!("run {runs}: waiting for {function}"));
        let (raw, report) = match invoke(client, function, &payload).await.map_err(Stop::Error)? {
            Answer::Report(raw, report) => (raw, report),
            Answer::Throttled => throttled(&names),
            Answer::Failed(kind, error) => return Err(Stop::Failed(kind, error)),
        };
        add(&mut totals, &report);
        let again = pending(&report);
        if !args.wait || again.is_empty() || args.max_runs.is_some_and(|max| runs >= max) {
            return Ok(Runs { raw, report, runs, totals });
        }
        // Only busy collections: another invocation (the schedule) holds them until it ends;
        // asking every few seconds would only add invocations.
        let only_busy = report
            .collections
            .iter()
            .filter(|c| again.contains(&c.collection))
            .all(|c| c.outcome.known() == Some(Outcome::Busy));
        let pause = if only_busy { args.pause_seconds.max(BUSY_PAUSE_SECONDS) } else { args.pause_seconds };
        bar.set_message(format!(
            "run {runs}: {} not done yet ({}); again in {pause}s",
            again.join(", "),
            progress_of(&totals),
        ));
        tokio::time::sleep(std::time::Duration::from_secs(pause)).await;
        // A throttled invoke never ran: until one has, the request (a backfill) is asked again.
        if !report.throttled {
            payload = args.again.clone();
        }
    }
}

/// The syncer's manual request (`from` only when given).
fn request(collections: &[String], reinitialize: bool, from: Option<NaiveDate>) -> SyncRequest {
    SyncRequest { collections: Some(collections.to_vec()), reinitialize, from, ..SyncRequest::default() }
}

/// One synchronous invoke (RequestResponse) with `payload`.
async fn invoke(client: &aws_sdk_lambda::Client, function: &str, payload: &SyncRequest) -> Result<Answer, CliError> {
    let payload = serde_json::to_vec(payload).expect("a sync request serializes");
    let sent = client
        .invoke()
        .function_name(function)
        .invocation_type(InvocationType::RequestResponse)
        .payload(Blob::new(payload))
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(SdkError::ServiceError(service)) if matches!(service.err(), InvokeError::TooManyRequestsException(_)) => {
            let InvokeError::TooManyRequestsException(throttled) = service.err() else { unreachable!("matched above") };
            // At the function's reserved concurrency: the scheduled run holds it, the same as
            // busy. Anything else (the account's limit, a rate) is an error to read.
            if throttled.reason() == Some(&ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded) {
                return Ok(Answer::Throttled);
            }
            let reason = throttled.reason().map(|r| r.as_str().to_owned()).unwrap_or_else(|| "no reason given".into());
            return Err(CliError::Aws(format!(
                "invoking the syncer function {function}: TooManyRequestsException ({reason}): Lambda refused the \
                 invoke; try again later"
            )));
        }
        Err(SdkError::ServiceError(service)) => {
            let body = service.raw().body().bytes().and_then(|b| serde_json::from_slice::<Value>(b).ok());
            // `cargo lambda watch` answers a failed invocation 500 with the function's error as
            // the body, where Lambda answers 200 with `X-Amz-Function-Error`.
            if let Some(error) = body.as_ref().filter(|b| b.get("errorMessage").is_some()) {
                return Ok(Answer::Failed("Unhandled".into(), error.clone()));
            }
            let status = service.raw().status().as_u16();
            let error = service.err();
            let code = error.code().map(str::to_owned).unwrap_or_else(|| format!("HTTP {status}"));
            let message = error.message().map(str::to_owned).or_else(|| {
                let body = body?;
                ["message", "Message", "detail", "title"].iter().find_map(|k| body.get(*k)?.as_str().map(str::to_owned))
            });
            let message = message.map(|m| format!(": {}", output::redact(&m))).unwrap_or_default();
            return Err(CliError::Aws(format!("invoking the syncer function {function}: {code}{message}")));
        }
        Err(other) => return Err(aws_error(&format!("invoking the syncer function {function}"), other)),
    };
    let bytes = answer.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default();
    let body: Value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    if let Some(kind) = answer.function_error() {
        return Ok(Answer::Failed(kind.to_owned(), body));
    }
    let report = serde_json::from_value::<Report>(body.clone()).map_err(|e| {
        CliError::Aws(format!("the syncer function {function} answered something that is not a sync report: {e}"))
    })?;
    Ok(Answer::Report(body, report))
}

/// The error of a failed invocation: its type (when it is a name) and message, redacted; also
/// as JSON on standard output in `--json` mode.
fn function_failed(function: &str, kind: &str, error: &mut Value, json_out: bool) -> CliError {
    output::redact_json(error);
    if json_out {
        output::json(&json!({ "functionError": kind, "error": error }));
    }
    let message = match error.get("errorMessage").and_then(Value::as_str) {
        Some(message) => message.to_owned(),
        None => error.as_str().map(str::to_owned).unwrap_or_else(|| error.to_string()),
    };
    // A handler returning a boxed error reports its Rust type name: no help to anyone.
    let error_type = error
        .get("errorType")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_'));
    let named = error_type.map(|t| format!("{t}: ")).unwrap_or_default();
    let hint = if message.starts_with("collections in error") {
        " (`protime-webhooks status` shows each collection's sync error)"
    } else {
        ""
    };
    CliError::Function(format!("the syncer function {function} failed: {named}{message}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::operation::invoke::InvokeOutput;
    use aws_sdk_lambda::types::error::TooManyRequestsException;
    use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule, RuleMode};

    fn client(rules: &[&Rule]) -> aws_sdk_lambda::Client {
        let interceptor =
            rules.iter().fold(MockResponseInterceptor::new().rule_mode(RuleMode::Sequential), |i, r| i.with_rule(r));
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_lambda::config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_lambda::config::Credentials::new("id", "secret", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
            .interceptor(interceptor)
            .build();
        aws_sdk_lambda::Client::from_conf(config)
    }

    fn args(wait: bool, reinitialize: bool) -> Args {
        Args {
            collections: vec![Collection::Clockings],
            reinitialize,
            from: None,
            wait,
            pause_seconds: 0,
            max_runs: None,
        }
    }

    fn too_many_requests() -> Rule {
        mock!(aws_sdk_lambda::Client::invoke).then_error(|| {
            InvokeError::TooManyRequestsException(
                TooManyRequestsException::builder()
                    .message("Rate Exceeded.")
                    .reason(aws_sdk_lambda::types::ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded)
                    .build(),
            )
        })
    }

    /// A syncer run that answers `done` for clockings, asked with `reinitialize`.
    fn done(reinitialize: bool) -> Rule {
        mock!(aws_sdk_lambda::Client::invoke)
            .match_requests(move |r| {
                let payload: Value = serde_json::from_slice(r.payload().unwrap().as_ref()).unwrap();
                payload == json!({ "collections": ["clockings"], "reinitialize": reinitialize })
            })
            .then_output(|| {
                let report = json!({ "collections": [
                    { "collection": "clockings", "outcome": "done", "pages": 3, "records": { "stored": 7 } }
                ]});
                InvokeOutput::builder().status_code(200).payload(Blob::new(report.to_string())).build()
            })
    }

    #[tokio::test]
    async fn an_invoke_refused_at_the_reserved_concurrency_is_every_collection_busy() {
        let refused = too_many_requests();
        let runs = invoke_until_done(
            &client(&[&refused]),
            "syncer",
            &args(false, false).invocation(),
            &indicatif::ProgressBar::hidden(),
        )
        .await
        .unwrap_or_else(|_| panic!("a throttled invoke is a report, not an error"));
        assert_eq!(runs.runs, 1);
        assert!(runs.report.throttled);
        assert_eq!(pending(&runs.report), vec!["clockings".to_owned()]);
        assert_eq!(runs.raw["collections"][0]["outcome"], "busy");
        assert_eq!(runs.raw["throttled"], true);
        assert_eq!(refused.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_throttle_for_another_reason_than_the_reserved_concurrency_is_an_error() {
        let account = mock!(aws_sdk_lambda::Client::invoke).then_error(|| {
            InvokeError::TooManyRequestsException(
                TooManyRequestsException::builder()
                    .message("Rate Exceeded.")
                    .reason(ThrottleReason::ConcurrentInvocationLimitExceeded)
                    .build(),
            )
        });
        let stopped = invoke_until_done(
            &client(&[&account]),
            "syncer",
            &args(true, false).invocation(),
            &indicatif::ProgressBar::hidden(),
        )
        .await;
        match stopped {
            Err(Stop::Error(CliError::Aws(message))) => {
                assert!(message.contains("ConcurrentInvocationLimitExceeded"), "{message}")
            }
            _ => panic!("an account-level throttle is not a busy syncer"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn wait_waits_out_a_throttled_invoke_and_asks_for_the_backfill_again() {
        let (first, second, third) = (too_many_requests(), too_many_requests(), done(true));
        let started = tokio::time::Instant::now();
        let runs = invoke_until_done(
            &client(&[&first, &second, &third]),
            "syncer",
            &args(true, true).invocation(),
            &indicatif::ProgressBar::hidden(),
        )
        .await
        .unwrap_or_else(|_| panic!("the third invoke runs"));
        assert_eq!(runs.runs, 3);
        assert!(!runs.report.throttled);
        assert_eq!(runs.report.collections[0].outcome, "done");
        assert_eq!(runs.totals[0].records.stored, 7);
        assert_eq!((first.num_calls(), second.num_calls(), third.num_calls()), (1, 1, 1));
        let waited = started.elapsed().as_secs();
        assert!(waited >= 2 * BUSY_PAUSE_SECONDS, "a busy function is asked at most every 30 s, waited {waited} s");
    }
}
