//! A poison-tolerant lock for the in-process state the crate keeps behind `std::sync::Mutex`
//! (the signing-key cache, the in-memory fakes). A panic while one holder had it leaves data that
//! is still consistent for these uses (whole-value replacements), so the next holder goes on.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, taking it over from a holder that panicked.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
