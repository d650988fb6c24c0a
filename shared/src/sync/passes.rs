//! Full passes: the sweep at a load's end, a reconciliation beside the delta, and the history
//! before a rolling window; a page of theirs that cannot be fetched or read is set aside.

use super::kept::PageKeep;
use super::pages::{Applied, Followed, PageList, Reading};
use super::plan::{self, AfterPage, CollectionPlan};
use super::report::{CollectionReport, SweepVerdict};
use super::request::SyncRequest;
use super::run::{Lane, Syncer};
use super::settings::SweepSettings;
use super::state::{Failing, FullPass, HeldSweep, SeenSlot};
use super::state::{Phase, SyncState, SyncStateError, SyncStateStore};
use super::stop::Stop;
use super::sweep::{LiveRecords, SeenIds, SweepScope, SweepStep, Swept, Window};
use crate::collection::Collection;
use crate::invocation::Budget;
use crate::protime::{Connect, RecordPages};
use crate::records::quarantine::Quarantine;
use crate::records::set_aside::SetAsideMarks;
use crate::records::{RecordStore, Source, StoredHeads};
use chrono::{DateTime, NaiveDate, Utc};

impl<
        P: Connect,
        R: RecordStore + StoredHeads + SetAsideMarks + LiveRecords,
        S: SyncStateStore,
        Q: Quarantine + PageKeep,
    > Syncer<P, R, S, Q>
{
    /// After the collection's delta round or load ended: sweeps a load
    /// whose pages are all applied (not in a dry run: it would write), works on a reconciliation
    /// (asked for, due, or under way), then on the history before a rolling window. Each has a
    /// page budget of its own, and neither the reconciliation nor the history holds up the
    /// other or the delta: a page of theirs that cannot be read or fetched is set aside and
    /// retried on a back-off. `Ok(false)`: the deadline or a page budget stopped something; it
    /// goes on next run.
    pub(super) async fn after_main(
        &self,
        lane: &Lane<'_, P::Api, R, S, Q>,
        state: &mut SyncState,
        request: &SyncRequest,
        report: &mut CollectionReport,
    ) -> Result<bool, Stop> {
        let (collection, sweep) = (lane.collection, self.config.sweep());
        if !request.dry_run
            && state.pass.as_ref().is_some_and(|p| p.sweeping.is_some())
            && !finish_pass(lane, state, SeenSlot::Load, report, sweep).await?
        {
            return Ok(false);
        }
        if state.phase != Some(Phase::Incremental) {
            if request.reconcile {
                tracing::info!(collection = %collection, "the load under way is itself a full pass: no reconciliation started");
            }
            return Ok(true);
        }
        let reconciled = self.reconcile(lane, state, request, report).await?;
        let listed = request.dry_run || self.list_history(lane, state, report).await?;
        Ok(reconciled && listed)
    }

    /// Starts a reconciliation (asked for in this request, handed over by the renewer, or due)
    /// and follows its pages, then sweeps. `Ok(false)`: stopped by the deadline or its page
    /// budget (a page set aside is reported and waits for its back-off).
    async fn reconcile(
        &self,
        lane: &Lane<'_, P::Api, R, S, Q>,
        state: &mut SyncState,
        request: &SyncRequest,
        report: &mut CollectionReport,
    ) -> Result<bool, Stop> {
        self.start_reconcile(lane, state, request);
        let Some(reconcile) = state.reconcile.as_mut() else { return Ok(true) };
        if request.reconcile {
            // An operator's word goes now, back-off or not.
            reconcile.operator_asked(request.max_sweep);
        }
        if !Failing::may_retry(reconcile.failing.as_ref(), lane.budget.now()) {
            return Ok(true);
        }
        match lane.own_pages(report).follow_list(&mut Reconciliation, state, report).await? {
            Followed::End => finish_pass(lane, state, SeenSlot::Reconcile, report, self.config.sweep()).await,
            Followed::Stopped => Ok(false),
            Followed::SetAside => Ok(true),
        }
    }

    /// Starts a reconciliation when one is asked for (in this request, or by the renewer after a
    /// recovery it could not catch up on) and none of that kind is under way, or when one is due.
    fn start_reconcile(&self, lane: &Lane<'_, P::Api, R, S, Q>, state: &mut SyncState, request: &SyncRequest) {
        let Lane { api, collection, budget, .. } = *lane;
        let handed_over = state.full_pass_requested_at.is_some() && !request.dry_run;
        let dry_run = request.reconcile && request.dry_run;
        let asked =
            (request.reconcile || handed_over) && state.reconcile.as_ref().is_none_or(|r| r.pass.dry_run != dry_run);
        let due = state.reconcile.is_none()
            && !request.dry_run
            && plan::reconcile_due(state, collection, self.config.reconcile_interval, budget.now());
        if asked || due {
            let link = api.list_url(collection, state.filter.as_deref(), false, self.config.external_references.trim());
            tracing::info!(collection = %collection, dry_run, asked, handed_over, "starting a reconciliation");
            let mut pass = FullPass::new(budget.now(), false, dry_run);
            pass.started_now();
            state.reconcile_started(link, pass);
        }
    }

    /// Lists a rolling window's history (the days from the floor up to the window's start) once,
    /// range by range, with its own cursor beside the delta; never swept (no full pass sees
    /// it again). A range that cannot be read or fetched is set aside and retried on a back-off.
    /// `Ok(false)`: the deadline or the page budget stopped it (a range set aside is reported and
    /// waits for its back-off).
    async fn list_history(
        &self,
        lane: &Lane<'_, P::Api, R, S, Q>,
        state: &mut SyncState,
        report: &mut CollectionReport,
    ) -> Result<bool, Stop> {
        let plan = self.config.plan(lane.collection);
        let mut history = HistoryPages {
            collection: lane.collection,
            plan: &plan,
            default_from: self.config.sync_from.unwrap_or_else(|| plan::default_from(lane.budget.now())),
            external_references: self.config.external_references.trim(),
            range: None,
        };
        match lane.own_pages(report).follow_list(&mut history, state, report).await? {
            Followed::End | Followed::SetAside => Ok(true),
            Followed::Stopped => Ok(false),
        }
    }
}

/// A reconciliation as a list of pages: the collection's window listed with a cursor of its own
/// beside the delta; its pages are a full pass (compare only in a dry run), and one that cannot
/// be fetched or read is set aside on the reconciliation's back-off.
struct Reconciliation;

impl PageList for Reconciliation {
    fn reading(&self, state: &SyncState) -> Reading {
        Reading {
            spent: false,
            source: Source::Resync,
            skip_unchanged: true,
            pass: Some(SeenSlot::Reconcile),
            dry_run: state.reconcile.as_ref().is_some_and(|r| r.pass.dry_run),
        }
    }

    /// Until its last page is applied (then it sweeps).
    fn goes_on(&mut self, state: &mut SyncState) -> bool {
        state.reconcile.as_ref().is_some_and(|r| r.cursor.is_some() && r.pass.sweeping.is_none())
    }

    fn failing<'s>(&self, state: &'s mut SyncState) -> Option<&'s mut Option<Failing>> {
        state.reconcile.as_mut().map(|r| &mut r.failing)
    }

    fn link<A: RecordPages>(&self, state: &SyncState, _api: &A) -> Result<String, Stop> {
        state.reconcile.as_ref().and_then(|r| r.cursor.clone()).ok_or_else(|| Stop::Failed("no page to follow".into()))
    }

    fn advance(&mut self, state: &mut SyncState, page: Applied, _now: DateTime<Utc>) -> AfterPage {
        if let Some(reconcile) = state.reconcile.as_mut() {
            reconcile.page_applied(page.next_link);
        }
        AfterPage::More
    }
}

/// The history before a rolling window as a list of pages: range by range
/// ([`plan::history_range`]), each listed with the history's own cursor; never a full pass, and a
/// range that cannot be fetched or read is set aside on the history's back-off.
struct HistoryPages<'p> {
    collection: Collection,
    plan: &'p CollectionPlan,
    default_from: NaiveDate,
    external_references: &'p str,
    /// The range being listed, `[first, last]`.
    range: Option<(NaiveDate, NaiveDate)>,
}

impl PageList for HistoryPages<'_> {
    fn reading(&self, _state: &SyncState) -> Reading {
        Reading { spent: false, source: Source::Resync, skip_unchanged: true, pass: None, dry_run: false }
    }

    /// While a range up to the window's start is left to list.
    fn goes_on(&mut self, state: &mut SyncState) -> bool {
        self.range = plan::history_range(state, self.plan, self.default_from);
        self.range.is_some() && state.history.is_some()
    }

    fn failing<'s>(&self, state: &'s mut SyncState) -> Option<&'s mut Option<Failing>> {
        state.history.as_mut().map(|h| &mut h.failing)
    }

    /// The history's cursor, or the first page of the range.
    fn link<A: RecordPages>(&self, state: &SyncState, api: &A) -> Result<String, Stop> {
        if let Some(link) = state.history.as_ref().and_then(|h| h.cursor.clone()) {
            return Ok(link);
        }
        let Some((first, last)) = self.range else { return Err(Stop::Failed("no page to follow".into())) };
        let filter = self.plan.filter(first, Some(last));
        tracing::info!(collection = %self.collection, filter = ?filter, "listing the history before the window");
        Ok(api.list_url(self.collection, filter.as_deref(), false, self.external_references))
    }

    fn advance(&mut self, state: &mut SyncState, page: Applied, _now: DateTime<Utc>) -> AfterPage {
        if let (Some(history), Some((_, last))) = (state.history.as_mut(), self.range) {
            history.page_applied(last, page.next_link);
        }
        AfterPage::More
    }
}

/// Completes a full pass whose pages are all applied: sweeps the collection's live records in
/// the pass's window that it did not see (see [`super::sweep`]) — first counting them, then,
/// within the pass's limit, tombstoning them — then records `verifiedAt` and the drift (a dry
/// run only reports it) and forgets the pass. A count over the limit (or a pass that returned
/// an unreadable id, with anything to sweep) tombstones nothing: the sweep is held for an
/// operator. `Ok(false)`: the deadline came first; the sweep resumes next run.
pub(super) async fn finish_pass<A, R: LiveRecords, S: SyncStateStore, Q>(
    lane: &Lane<'_, A, R, S, Q>,
    state: &mut SyncState,
    slot: SeenSlot,
    report: &mut CollectionReport,
    sweep: SweepSettings,
) -> Result<bool, Stop> {
    let Lane { records, collection, budget, .. } = *lane;
    let (pass, filter) = match slot {
        SeenSlot::Load => (state.pass.clone(), state.filter.clone()),
        SeenSlot::Reconcile => match &state.reconcile {
            Some(r) => (Some(r.pass.clone()), r.filter.clone()),
            None => (None, None),
        },
    };
    let Some(mut pass) = pass else { return Ok(true) };
    if pass.sweeping.is_none() {
        return Ok(true);
    }
    let today = budget.now().date_naive();
    let limit = pass.max_sweep.unwrap_or(sweep.limit);
    let mut held = None;
    match Window::of_filter(filter.as_deref()).and_then(|w| Some((w, w.live_reads(collection, today, sweep.indexes)?)))
    {
        None => {
            tracing::warn!(collection = %collection, filter = ?filter, "the pass's filter is not a date range: nothing is swept");
        }
        Some((window, reads)) => {
            let seen = seen_by(lane, state, slot, pass.chunks).await?;
            let scope =
                SweepScope { collection, reads: &reads, seen: &seen, window: &window, started: pass.started_at };
            let stepped = sweep_steps(records, &scope, &mut pass, limit, budget).await;
            if !matches!(stepped, Ok(true)) {
                // Where the sweep stands (and what it tombstoned) is saved, stopped or failed.
                state.sweep_paused(slot, pass);
                lane.checkpoint(state).await?;
                return stepped.map(|_| false);
            }
            held = held_sweep(&pass, &scope, limit, budget.now());
        }
    }
    report.sweep = Some(if held.is_some() { SweepVerdict::Held } else { SweepVerdict::Done });
    state.pass_finished(slot, &pass, held, budget.now());
    log_pass(collection, &pass, state);
    let chunks = pass.chunks;
    report.drift = Some(pass.drift);
    lane.checkpoint(state).await?;
    if let Err(e) = lane.states.discard_seen(collection, slot, chunks).await {
        tracing::warn!(collection = %collection, error = %e, "cannot discard the ids a pass saw (a new pass overwrites them)");
    }
    Ok(true)
}

/// The ids a pass saw, read back. Ids that cannot be read drop the pass: it cannot be proven
/// (the next full pass sweeps).
async fn seen_by<A, R, S: SyncStateStore, Q>(
    lane: &Lane<'_, A, R, S, Q>,
    state: &mut SyncState,
    slot: SeenSlot,
    chunks: u32,
) -> Result<SeenIds, Stop> {
    match lane.states.load_seen(lane.collection, slot, chunks).await {
        Ok(seen) => Ok(seen),
        Err(SyncStateError::Unreadable(e)) => {
            state.pass_dropped(slot);
            Err(Stop::Failed(format!("the ids the pass saw cannot be read ({e}); nothing swept")))
        }
        Err(e) => Err(e.into()),
    }
}

fn log_pass(collection: Collection, pass: &FullPass, state: &SyncState) {
    tracing::info!(
        collection = %collection,
        missing = pass.drift.missing,
        behind = pass.drift.behind,
        swept = pass.drift.swept,
        would_sweep = pass.gone,
        held = state.sweep_held.is_some(),
        dry_run = pass.dry_run,
        baseline = pass.drift.baseline,
        "full pass complete"
    );
}

/// Runs a pass's sweep from where it stands: the count, then (when there is something to
/// tombstone, within the limit, and it is no dry run) the tombstones. `Ok(false)`: the deadline
/// came first (`pass.sweeping` says where it resumes).
pub(super) async fn sweep_steps<L: LiveRecords>(
    store: &L,
    scope: &SweepScope<'_>,
    pass: &mut FullPass,
    limit: u64,
    budget: &Budget,
) -> Result<bool, Stop> {
    loop {
        let first = pass.sweeping.unwrap_or(0);
        let step = match pass.tombstoning {
            true => SweepStep::Tombstone { at_most: limit.saturating_sub(pass.drift.swept) },
            false => SweepStep::Count,
        };
        let found = |n: u64, ids: &[String]| match step {
            SweepStep::Count => pass.gone_counted(n, ids),
            SweepStep::Tombstone { .. } => pass.tombstoned(ids),
        };
        let swept = scope
            .sweep(store, first, step, found, || budget.may_start_page())
            .await
            .map_err(|e| Stop::Failed(format!("sweeping (resumed next run): {e}")))?;
        match swept {
            Swept::Stopped(next) => {
                pass.sweep_stopped(next);
                return Ok(false);
            }
            Swept::OverLimit => {
                // More is gone than was counted: held, at more than the limit.
                pass.sweep_over_limit(limit);
                return Ok(true);
            }
            Swept::Done if pass.tombstoning => return Ok(true),
            Swept::Done => {}
        }
        if pass.dry_run {
            // What a real pass would tombstone, reported as swept.
            pass.dry_run_counted();
            return Ok(true);
        }
        if pass.gone == 0 || held_sweep(pass, scope, limit, budget.now()).is_some() {
            return Ok(true);
        }
        pass.tombstoning_started();
    }
}

/// The held sweep of a counted pass: more to tombstone than `limit`, or anything to tombstone
/// while the pass saw no record at all (an empty answer) or returned a record whose id cannot
/// be read. `None`: the sweep may go ahead.
pub(super) fn held_sweep(pass: &FullPass, scope: &SweepScope<'_>, limit: u64, now: DateTime<Utc>) -> Option<HeldSweep> {
    let counted = !pass.tombstoning && !pass.dry_run;
    // An operator's --max-sweep, given after checking the samples, answers every doubt.
    let unsure = pass.unreadable_ids > 0 || scope.seen.is_empty();
    let doubtful = pass.gone > limit || (pass.max_sweep.is_none() && unsure);
    (counted && pass.gone > 0 && doubtful).then(|| HeldSweep {
        at: now,
        would_sweep: pass.gone,
        limit,
        unreadable_ids: pass.unreadable_ids,
        sample_ids: pass.gone_samples.clone(),
    })
}
