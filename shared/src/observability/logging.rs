//! Log setup shared by every function, following Lambda's advanced logging controls.
//!
//! - `AWS_LAMBDA_LOG_FORMAT=JSON` (what `template.yaml` sets) gives one JSON object per line;
//!   anything else gives tracing's plain text format.
//! - `AWS_LAMBDA_LOG_LEVEL` (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`) wins over `RUST_LOG`;
//!   `RUST_LOG` takes a level or per-target directives (`info,protime_webhooks=debug`); the default is
//!   `INFO`. A value that cannot be read falls back to `INFO` and logs a warning saying so.
//!
//! This is what `lambda_runtime`'s `init_default_subscriber` does, without its `EnvFilter`: that
//! filter's span-field matching pulls in a regex engine (about 230 KiB of the receiver's binary)
//! that directives like the ones above never need. Timestamps are left to CloudWatch.

use std::str::FromStr;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber, writing to stdout. [`crate::invocation::startup::run`] calls it once.
pub fn init() {
    let (filter, problem) =
        log_filter(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(), std::env::var("RUST_LOG").ok().as_deref());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer().with_target(false).without_time();
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if json { registry.with(fmt.json()).try_init() } else { registry.with(fmt).try_init() };
    if installed.is_err() {
        eprintln!("logging: a global subscriber was already installed; keeping it");
    }
    if let Some(problem) = problem {
        tracing::warn!("{problem}; logging at INFO");
    }
}

/// The filter for the given `AWS_LAMBDA_LOG_LEVEL` and `RUST_LOG` values, and what was wrong with
/// them if they could not be used.
pub fn log_filter(lambda_level: Option<&str>, rust_log: Option<&str>) -> (Targets, Option<String>) {
    let info = Targets::new().with_default(LevelFilter::INFO);
    if let Some(level) = lambda_level.map(str::trim).filter(|level| !level.is_empty()) {
        // FATAL is Lambda's name for the most severe level; tracing's is ERROR.
        let level = if level.eq_ignore_ascii_case("fatal") { "error" } else { level };
        return match LevelFilter::from_str(level) {
            Ok(level) => (Targets::new().with_default(level), None),
            Err(_) => (info, Some(format!("AWS_LAMBDA_LOG_LEVEL {level:?} is not a log level"))),
        };
    }
    match rust_log.map(str::trim).filter(|directives| !directives.is_empty()) {
        None => (info, None),
        Some(directives) => match Targets::from_str(directives) {
            Ok(targets) => (targets, None),
            Err(_) => (info, Some(format!("RUST_LOG {directives:?} is not a list of log directives"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn enabled(filter: &Targets, target: &str, level: Level) -> bool {
        filter.would_enable(target, &level)
    }

    #[test]
    fn the_default_is_info() {
        let (filter, problem) = log_filter(None, None);
        assert!(problem.is_none());
        assert!(enabled(&filter, "protime_webhooks::receiver", Level::INFO));
        assert!(!enabled(&filter, "protime_webhooks::receiver", Level::DEBUG));
        let (filter, _) = log_filter(Some(""), Some("  "));
        assert!(enabled(&filter, "lambda_runtime", Level::INFO));
        assert!(!enabled(&filter, "lambda_runtime", Level::DEBUG));
    }

    #[test]
    fn the_lambda_level_wins_over_rust_log_in_any_case() {
        let (filter, problem) = log_filter(Some("WARN"), Some("trace"));
        assert!(problem.is_none());
        assert!(enabled(&filter, "anything", Level::WARN));
        assert!(!enabled(&filter, "anything", Level::INFO));
        let (filter, _) = log_filter(Some("debug"), None);
        assert!(enabled(&filter, "anything", Level::DEBUG));
        assert!(!enabled(&filter, "anything", Level::TRACE));
    }

    #[test]
    fn fatal_means_errors_only() {
        let (filter, problem) = log_filter(Some("FATAL"), None);
        assert!(problem.is_none());
        assert!(enabled(&filter, "anything", Level::ERROR));
        assert!(!enabled(&filter, "anything", Level::WARN));
    }

    #[test]
    fn rust_log_takes_per_target_directives() {
        let (filter, problem) = log_filter(None, Some("warn,protime_webhooks=debug"));
        assert!(problem.is_none());
        assert!(enabled(&filter, "protime_webhooks::renewer", Level::DEBUG));
        assert!(!enabled(&filter, "protime_webhooks::renewer", Level::TRACE));
        assert!(enabled(&filter, "aws_smithy_runtime", Level::WARN));
        assert!(!enabled(&filter, "aws_smithy_runtime", Level::INFO));
        let (filter, _) = log_filter(None, Some("DEBUG"));
        assert!(enabled(&filter, "anything", Level::DEBUG));
    }

    #[test]
    fn unreadable_values_fall_back_to_info_and_say_so() {
        let (filter, problem) = log_filter(Some("loud"), None);
        assert!(problem.unwrap().contains("AWS_LAMBDA_LOG_LEVEL"));
        assert!(enabled(&filter, "anything", Level::INFO));
        assert!(!enabled(&filter, "anything", Level::DEBUG));
        let (filter, problem) = log_filter(None, Some("protime_webhooks=[span]=debug"));
        assert!(problem.unwrap().contains("RUST_LOG"));
        assert!(enabled(&filter, "anything", Level::INFO));
    }
}
