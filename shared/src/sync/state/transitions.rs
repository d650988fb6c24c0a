//! Every change of a collection's sync state, each a method named after what happened. The state
//! is one item of optional fields side by side (why: `docs/decisions/0016-the-sync-states-shape.md`);
//! the run changes them only through the methods here, so reading this file is reading every way
//! the item can change, and a new transition goes here too. When a transition happens is decided
//! elsewhere: by the pure rules of `sync/plan.rs` ([`super::super::plan::start`],
//! [`super::super::plan::reconcile_due`], …) and by the run that carries them out (`run.rs`,
//! `delta.rs`, `pages.rs`, `passes.rs`, `handoff.rs`), which calls these instead of assigning
//! fields.
//!
//! - The copy (its load, then its delta): [`SyncState::load_begun`], [`SyncState::reload_asked`],
//!   [`SyncState::page_kept`], [`SyncState::kept_page_dropped`], [`SyncState::page_applied`],
//!   [`SyncState::delta_expired`].
//! - A full pass (the load's, a reconciliation's): [`FullPass::started_now`],
//!   [`FullPass::page_seen`], [`FullPass::sweep_started`], the sweep's steps
//!   ([`FullPass::gone_counted`], [`FullPass::tombstoning_started`], [`FullPass::tombstoned`],
//!   [`FullPass::sweep_stopped`], [`FullPass::sweep_over_limit`], [`FullPass::dry_run_counted`]),
//!   then in the state [`SyncState::sweep_paused`], [`SyncState::pass_dropped`],
//!   [`SyncState::pass_finished`]; and the renewer's [`SyncState::full_pass_requested`].
//! - A reconciliation: [`SyncState::reconcile_started`], [`Reconcile::operator_asked`],
//!   [`Reconcile::page_applied`]; the history: [`SyncState::history_started`],
//!   [`History::page_applied`]; a page of either set aside: [`Failing::page_set_aside`].
//! - The run: [`SyncState::run_succeeded`], [`SyncState::run_failed`],
//!   [`SyncState::lease_renewed`], [`SyncState::lease_released`].

use super::super::apply::RecordCounts;
use super::super::kept::KeptPage;
use super::super::plan::{AfterPage, CollectionPlan};
use super::super::sweep::{Drift, DriftKind, PassTally, SAMPLES};
use super::{Failing, FullPass, HeldSweep, History, Phase, Reconcile, SeenSlot, SyncMode, SyncState};
use chrono::{DateTime, Duration, NaiveDate, Utc};

/// The copy: its load, then its delta.
impl SyncState {
    /// A load of `[from, to]` began at `first_link`, with the plan's filter for that window: an
    /// initial load with fresh counters, and a full pass (what it sees is recorded; it ends with
    /// a sweep). A load that replaces a complete copy (a rolling window moving ahead, or a
    /// collection an earlier release listed) keeps the copy's completion time: the copy stays
    /// complete meanwhile.
    pub fn load_begun(
        &mut self,
        plan: &CollectionPlan,
        (from, to): (NaiveDate, Option<NaiveDate>),
        first_link: String,
        now: DateTime<Utc>,
    ) {
        // A rolling window loaded again further ahead: the copy stays complete meanwhile (the
        // days it had are still followed by webhooks), so it is not waiting for a baseline.
        let moving = plan.windowed()
            && self.phase == Some(Phase::Incremental)
            && self.mode == Some(SyncMode::Delta)
            && self.filter_template == plan.filter_template;
        // A collection an earlier release listed, its last list pass complete: the copy it holds
        // is whole; the delta's load replaces it record by record.
        let was_listed = self.phase == Some(Phase::Incremental) && self.mode == Some(SyncMode::List);
        if !moving && !was_listed {
            self.initial_completed_at = None;
        }
        // Every load is a full pass: what it sees is recorded, and it ends with a sweep.
        self.pass = Some(FullPass::new(now, self.verified_at.is_none(), false));
        self.phase = Some(Phase::Initial);
        self.pages = 0;
        self.records = RecordCounts::default();
        self.started_at = Some(now);
        self.mode = Some(SyncMode::Delta);
        self.filter = plan.filter(from, to);
        self.filter_template = plan.filter_template.clone();
        self.from = Some(from);
        self.to = to;
        self.cursor = Some(first_link);
        self.cursor_at = Some(now);
    }

    /// A manual backfill asked for the collection's load again: it is forgotten (a rolling
    /// window's history too), so the next [`super::super::plan::start`] begins a new one, from
    /// `from` if given (and from then on), else from the configured start.
    pub fn reload_asked(&mut self, from: Option<NaiveDate>) {
        self.phase = None;
        self.cursor = None;
        self.requested_from = from;
        // A rolling window's history is listed again too, from the new start.
        self.history = None;
    }

    /// A fetched page was kept: the state points at it (the cursor still names the link it came
    /// from) until it is applied.
    pub fn page_kept(&mut self, kept: KeptPage) {
        self.kept = Some(kept);
    }

    /// The kept page will not be applied (gone for good, quarantined, or dropped): its link is
    /// fetched again. Returns it, for its object to be discarded.
    pub fn kept_page_dropped(&mut self) -> Option<KeptPage> {
        self.kept.take()
    }

    /// A page of the load or the delta round was applied, every record of it stored: the cursor
    /// moves past it (only here), to the `next_link`, else to the new `delta_link` (the round or
    /// load is complete; a load's end also completes the copy and starts its pass's sweep). A
    /// delta's last page without a deltaLink sends the collection back to a load.
    pub fn page_applied(
        &mut self,
        counts: RecordCounts,
        next_link: Option<String>,
        delta_link: Option<String>,
        now: DateTime<Utc>,
    ) -> AfterPage {
        let loading = self.phase == Some(Phase::Initial);
        self.pages += 1;
        self.records += counts;
        self.cursor_at = Some(now);
        self.kept = None;
        if let Some(next) = next_link {
            self.cursor = Some(next);
            return AfterPage::More;
        }
        let Some(link) = delta_link else {
            self.phase = Some(Phase::Initial);
            self.cursor = None;
            return AfterPage::NoDeltaLink;
        };
        self.cursor = Some(link);
        if self.phase != Some(Phase::Incremental) {
            self.phase = Some(Phase::Incremental);
            self.initial_completed_at = Some(now);
        }
        self.last_synced_at = Some(now);
        if loading {
            if let Some(pass) = self.pass.as_mut() {
                pass.sweep_started();
            }
        }
        AfterPage::Done
    }

    /// The deltaLink expired (410 Gone): the collection goes back to an initial load.
    pub fn delta_expired(&mut self, now: DateTime<Utc>) {
        self.phase = Some(Phase::Initial);
        self.cursor = None;
        self.delta_expired_at = Some(now);
    }
}

/// Full passes, as the state holds them: the load's, and a reconciliation's.
impl SyncState {
    /// The sweep of the pass in `slot` stopped (the deadline) or failed: the pass is kept as it
    /// stands (where the sweep resumes, what it tombstoned).
    pub fn sweep_paused(&mut self, slot: SeenSlot, pass: FullPass) {
        self.put_pass(slot, Some(pass));
    }

    /// The ids the pass in `slot` saw cannot be read: it cannot be proven and is forgotten (a
    /// reconciliation with it); the next full pass sweeps.
    pub fn pass_dropped(&mut self, slot: SeenSlot) {
        self.put_pass(slot, None);
    }

    /// The pass in `slot` completed, its sweep done or `held`: a real pass records what it found
    /// (`verifiedAt` and the drift unless its sweep is held; the held sweep either way) and
    /// answers a full pass the renewer asked for; a dry run only reports. The pass is forgotten
    /// (a reconciliation with it).
    pub fn pass_finished(&mut self, slot: SeenSlot, pass: &FullPass, held: Option<HeldSweep>, now: DateTime<Utc>) {
        if !pass.dry_run {
            self.full_pass_requested_at = None;
            if held.is_none() {
                self.verified_at = Some(now);
                self.drift = Some(Drift { samples: None, ..pass.drift.clone() });
            }
            self.sweep_held = held;
        }
        self.put_pass(slot, None);
    }

    /// The renewer recovered a subscription without catching up through the delta: the syncer's
    /// next run gives the collection a full pass with sweep.
    pub fn full_pass_requested(&mut self, now: DateTime<Utc>) {
        self.full_pass_requested_at = Some(now);
    }

    /// A reconciliation began at `first_link`, listing with the collection's current filter.
    pub fn reconcile_started(&mut self, first_link: String, pass: FullPass) {
        let filter = self.filter.clone();
        self.reconcile = Some(Reconcile { pass, filter, cursor: Some(first_link), pages: 0, failing: None });
    }

    /// The history before a rolling window is listed (again) from `floor`: nothing of it listed
    /// yet.
    pub fn history_started(&mut self, floor: NaiveDate) -> &mut History {
        self.history.insert(History {
            from: floor,
            until: floor,
            range_to: None,
            cursor: None,
            pages: 0,
            failing: None,
        })
    }

    /// Puts the pass of `slot` in the state as it now stands; `None` forgets it (a
    /// reconciliation with it).
    fn put_pass(&mut self, slot: SeenSlot, pass: Option<FullPass>) {
        match slot {
            SeenSlot::Load => self.pass = pass,
            SeenSlot::Reconcile => match (pass, self.reconcile.as_mut()) {
                (Some(pass), Some(r)) => r.pass = pass,
                _ => self.reconcile = None,
            },
        }
    }
}

/// The run: its outcome on the collection, and the lease.
impl SyncState {
    /// A run ended on this collection without an error.
    pub fn run_succeeded(&mut self) {
        self.last_error = None;
        self.error_runs = 0;
    }

    /// A run ended on this collection with an error (kept for operators and the alarm).
    pub fn run_failed(&mut self, error: String, now: DateTime<Utc>) {
        self.last_error = Some(error);
        self.last_error_at = Some(now);
        self.error_runs += 1;
    }

    /// The lease is renewed until `until` (at each checkpoint: the invocation's deadline).
    pub fn lease_renewed(&mut self, until: DateTime<Utc>) {
        self.lease_until = Some(until.timestamp_millis());
    }

    /// The lease is given up: the collection is free for the next invocation.
    pub fn lease_released(&mut self) {
        self.lease_owner = None;
        self.lease_until = None;
    }
}

/// A full pass in progress.
impl FullPass {
    /// The pass starts now on the wall clock every writer stamps `receivedAt` with (the run's
    /// clock may be a test's): what is written from here on is never swept by it.
    pub fn started_now(&mut self) {
        self.started_at = Utc::now();
    }

    /// A page of the pass was applied: `chunks` more chunks of the ids it saw were saved, and what
    /// it found is counted.
    pub fn page_seen(&mut self, chunks: u32, tally: &PassTally) {
        self.chunks += chunks;
        self.drift.absorb(&tally.drift);
        self.unreadable_ids += tally.unreadable_ids;
    }

    /// Its last page was applied: the sweep starts, counting, at the first index read.
    pub fn sweep_started(&mut self) {
        self.sweeping = Some(0);
    }

    /// The sweep's count found `n` more records gone (`ids`: samples of them).
    pub fn gone_counted(&mut self, n: u64, ids: &[String]) {
        self.gone += n;
        let room = SAMPLES.saturating_sub(self.gone_samples.len());
        self.gone_samples.extend(ids.iter().take(room).cloned());
    }

    /// The count is done and within the limit: the sweep tombstones, from the first index read.
    pub fn tombstoning_started(&mut self) {
        self.tombstoning = true;
        self.sweeping = Some(0);
    }

    /// The sweep tombstoned these records.
    pub fn tombstoned(&mut self, ids: &[String]) {
        ids.iter().for_each(|id| self.drift.add(DriftKind::Swept, id));
    }

    /// The deadline stopped the sweep in index read `at`: it resumes there next run.
    pub fn sweep_stopped(&mut self, at: usize) {
        self.sweeping = Some(at);
    }

    /// The tombstones reached `limit` with more gone than was counted: the sweep is held, at more
    /// than the limit.
    pub fn sweep_over_limit(&mut self, limit: u64) {
        self.tombstoning = false;
        self.gone = self.gone.max(limit.saturating_add(1));
    }

    /// A dry run's count is done: what a real pass would tombstone is reported as swept.
    pub fn dry_run_counted(&mut self) {
        self.drift.swept += self.gone;
        if let Some(samples) = self.drift.samples.as_mut() {
            samples.swept = self.gone_samples.clone();
        }
    }
}

impl Reconcile {
    /// An operator asked for the reconciliation under way: it goes now, back-off or not, with the
    /// operator's `--max-sweep` if given.
    pub fn operator_asked(&mut self, max_sweep: Option<u64>) {
        self.failing = None;
        if max_sweep.is_some() {
            self.pass.max_sweep = max_sweep;
        }
    }

    /// A page was applied: the cursor moves to `next_link`; after the last page the sweep starts.
    pub fn page_applied(&mut self, next_link: Option<String>) {
        self.pages += 1;
        self.failing = None;
        self.cursor = next_link;
        if self.cursor.is_none() {
            self.pass.sweep_started();
        }
    }
}

impl History {
    /// A page of the range `[.., last]` was applied: the cursor moves to `next_link`, or the
    /// range is done and the history reaches the day after `last`.
    pub fn page_applied(&mut self, last: NaiveDate, next_link: Option<String>) {
        self.pages += 1;
        self.failing = None;
        match next_link {
            Some(next) => {
                self.range_to = Some(last);
                self.cursor = Some(next);
            }
            None => {
                self.until = last + Duration::days(1);
                self.range_to = None;
                self.cursor = None;
            }
        }
    }
}

impl Failing {
    /// A page of a list (a reconciliation, the history) was set aside: one more failed attempt,
    /// retried after the back-off of [`Failing::after`].
    pub fn page_set_aside(failing: &mut Option<Failing>, error: String, now: DateTime<Utc>) {
        *failing = Some(Failing::after(failing.as_ref(), error, now));
    }
}
