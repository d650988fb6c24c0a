//! The time an invocation may use: its deadline, and the margin no page or call starts within;
//! and the leases a run holds: how long one lasts without a deadline, and whose it is.

use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::time::Instant;

/// How long a lease lasts when the invocation's deadline is unknown (the function's timeout);
/// it is extended at every checkpoint.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(900);

/// A lease owner unique to this run of `function` (`syncer-3f9a…`): what the sync and run
/// leases are held under, and what their conditional writes compare.
pub fn lease_owner(function: &str) -> String {
    format!("{function}-{:016x}", rand::random::<u64>())
}

/// Time left until an invocation's deadline; `None` when the runtime gave none in the future
/// (Lambda always does; `cargo lambda watch` sends one already past).
pub fn time_left(deadline: std::time::SystemTime) -> Option<Duration> {
    deadline.duration_since(std::time::SystemTime::now()).ok().filter(|left| !left.is_zero())
}

/// The time a run may use: no page starts once less than `margin` is left.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    started: Instant,
    base: DateTime<Utc>,
    time_left: Option<Duration>,
    margin: Duration,
}

impl Budget {
    /// `time_left`: until the invocation's deadline (`None`: unknown, e.g. a test).
    pub fn new(now: DateTime<Utc>, time_left: Option<Duration>, margin: Duration) -> Self {
        Budget { started: Instant::now(), base: now, time_left, margin }
    }

    /// The run's clock: its start time plus the time elapsed since.
    pub fn now(&self) -> DateTime<Utc> {
        self.base + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }

    /// Whether a page may start: more than the margin is left before the deadline.
    pub fn may_start_page(&self) -> bool {
        self.time_left.is_none_or(|left| self.started.elapsed() + self.margin < left)
    }

    /// How long a Protime request (its retries included) may take: the time left less half the
    /// margin, so the page it brings is still applied, checkpointed and reported in time.
    /// `None`: no deadline known.
    pub fn request_time(&self) -> Option<Duration> {
        self.time_left.map(|left| left.saturating_sub(self.started.elapsed() + self.margin / 2))
    }

    /// The invocation's deadline, when known.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.time_left.map(|left| self.base + chrono::Duration::from_std(left).unwrap_or_default())
    }

    /// Leases last until the invocation's deadline: a crashed run's lease frees itself then.
    /// Without a known deadline, [`DEFAULT_LEASE`] from now (extended at every checkpoint).
    pub(crate) fn lease_until(&self) -> DateTime<Utc> {
        match self.time_left {
            Some(left) => self.base + chrono::Duration::from_std(left).unwrap_or_default(),
            None => self.now() + chrono::Duration::from_std(DEFAULT_LEASE).unwrap_or_default(),
        }
    }
}
