//! Capturing the functions' log lines as they are written when deployed.
//!
//! One global subscriber serves the whole test binary: it formats a line as the functions do
//! (JSON, no target, no time) only on a thread that captures, by that capture's directives, and
//! into that capture. Its filter is asked at every event and never lets a call site be cached as
//! disabled, so a test that hits a call site first, without capturing, cannot hide its lines
//! from a test that captures them (as scoped dispatchers could, their interest being cached per
//! call site).

use harness::Captured;
use std::cell::RefCell;
use tracing::subscriber::Interest;
use tracing::Metadata;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt};

thread_local! {
    /// Where this thread's lines go, and which: set on a capturing runtime's threads.
    static ROUTE: RefCell<Option<(Captured, Targets)>> = const { RefCell::new(None) };
}

/// The writer of the current thread's capture; nowhere on any other thread.
struct ThisThreadsCapture;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThisThreadsCapture {
    type Writer = Box<dyn std::io::Write>;

    fn make_writer(&'a self) -> Self::Writer {
        let captured = ROUTE.with(|route| route.borrow().as_ref().map(|(captured, _)| captured.clone()));
        match captured {
            Some(captured) => Box::new(captured),
            None => Box::new(std::io::sink()),
        }
    }
}

/// Enabled on a capturing thread, by its directives; decided at every event.
struct ThisThreadsDirectives;

impl<S> Filter<S> for ThisThreadsDirectives {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        ROUTE.with(|route| route.borrow().as_ref().is_some_and(|(_, t)| t.would_enable(meta.target(), meta.level())))
    }

    fn callsite_enabled(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
}

fn install_once() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let layer = tracing_subscriber::fmt::layer()
            .with_target(false)
            .without_time()
            .json()
            .with_writer(ThisThreadsCapture)
            .with_filter(ThisThreadsDirectives);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("the test binary's one subscriber");
        tracing::callsite::rebuild_interest_cache();
    });
}

/// Captures on the calling thread while it lives.
pub(crate) struct OnThisThread;

impl Drop for OnThisThread {
    fn drop(&mut self) {
        ROUTE.with(|route| *route.borrow_mut() = None);
    }
}

/// A runtime of its own whose every thread (and the calling one, while the guard lives) logs
/// through `directives` as the functions log when deployed into the returned capture: the
/// other tests of the binary run beside it, and neither their lines nor this capture reach one
/// another.
pub(crate) fn runtime(directives: &str) -> (tokio::runtime::Runtime, Captured, OnThisThread) {
    install_once();
    let (filter, problem) = protime_webhooks::observability::logging::log_filter(None, Some(directives));
    assert!(problem.is_none(), "{problem:?}");
    let captured = Captured::default();
    let route = (captured.clone(), filter);
    let on_threads = route.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || ROUTE.with(|r| *r.borrow_mut() = Some(on_threads.clone())))
        .build()
        .expect("a runtime");
    ROUTE.with(|r| *r.borrow_mut() = Some(route));
    (runtime, captured, OnThisThread)
}
