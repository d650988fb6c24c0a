//! The start-up both function binaries share.

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
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        crate::observability::logging::init();
        serve.await
    })
}
