//! The start-up the four function binaries (receiver, renewer, syncer, publisher) share.

use std::future::Future;

/// Starts a function binary: reads the CA bundle file only ([`crate::aws::read_ca_bundle_file_only`]),
/// starts the async runtime, installs logging ([`crate::observability::logging::init`]), then runs `serve`, the
/// function's own init and its Lambda runtime loop.
///
/// # Safety
///
/// It sets an environment variable before it starts the runtime, so no other thread may exist
/// yet: call it from `main`, as its first and only thing.
pub unsafe fn run(serve: impl Future<Output = Result<(), lambda_http::Error>>) -> Result<(), lambda_http::Error> {
    crate::aws::read_ca_bundle_file_only();
    // One request at a time is what the runtime loop does and what a value of 1 asks for (it is
    // what `cargo lambda watch` sets); only a larger value deserves the runtime's warning that
    // managed concurrency is not used.
    if std::env::var("AWS_LAMBDA_MAX_CONCURRENCY").is_ok_and(|v| v.trim() == "1") {
        // SAFETY: no other thread exists yet (see the function's contract).
        unsafe { std::env::remove_var("AWS_LAMBDA_MAX_CONCURRENCY") };
    }
    // One thread: an instance handles one invocation at a time, and Lambda gives small functions
    // a fraction of a vCPU, so a multi-thread runtime only adds wake-ups and hand-offs between
    // workers (measured: `make bench-cpu`; docs/decisions/0008-a-current-thread-runtime.md). Concurrent writes of a batch
    // still overlap: they are I/O on one thread.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        crate::observability::logging::init();
        serve.await
    })
}
