//! Capturing the functions' log lines as they are written when deployed.

use harness::Captured;

/// A runtime of its own whose every thread (and the calling one, while the guard lives) logs
/// through `directives` as the functions log when deployed (JSON, no target, no time) into the
/// returned capture: the other tests of the binary run beside it, and neither their logs nor
/// this capture reach one another.
pub(crate) fn runtime(directives: &str) -> (tokio::runtime::Runtime, Captured, tracing::dispatcher::DefaultGuard) {
    use tracing_subscriber::layer::SubscriberExt;
    let captured = Captured::default();
    let writer = captured.clone();
    let (filter, problem) = protime_webhooks::observability::logging::log_filter(None, Some(directives));
    assert!(problem.is_none(), "{problem:?}");
    let layer = tracing_subscriber::fmt::layer().with_target(false).without_time().json();
    let dispatch: tracing::Dispatch =
        tracing_subscriber::registry().with(filter).with(layer.with_writer(move || writer.clone())).into();
    let on_threads = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&on_threads)))
        .build()
        .expect("a runtime");
    (runtime, captured, tracing::dispatcher::set_default(&dispatch))
}
