//! The cursor, phase and lease rules of a sync, as pure functions over [`SyncState`]: where a
//! run starts, which range of the history comes next, when a reconciliation is due, whether a
//! lease is free. The run only carries them out; how the state changes when it does (a load
//! begun, a page applied, a 410, …) is the state's own transitions (`sync/state/transitions.rs`).
//! Imports no AWS or HTTP code.

use super::state::{Phase, SyncMode, SyncState};
use crate::collection::Collection;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

/// What one collection is synced with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionPlan {
    /// A filter template with `{from}` and, for a rolling window, `{to}` (YYYY-MM-DD); `None`:
    /// unfiltered.
    pub filter_template: Option<String>,
}

/// A rolling window reaches this many days back from the day it is loaded…
pub const WINDOW_BEHIND_DAYS: i64 = 243;
/// …and this many days ahead (243 + 122 = 365: inside Protime's one-year range).
pub const WINDOW_AHEAD_DAYS: i64 = 122;
/// A window with fewer days than this left ahead of today is loaded again, further ahead.
pub const WINDOW_MIN_AHEAD_DAYS: i64 = 92;
/// The history before a window is listed in ranges of at most this many days.
pub const HISTORY_RANGE_DAYS: i64 = 365;

impl CollectionPlan {
    /// The filter for a load of `[from, to]` (`to` is used by a template with `{to}`).
    pub fn filter(&self, from: NaiveDate, to: Option<NaiveDate>) -> Option<String> {
        let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
        self.filter_template.as_ref().map(|t| {
            let with_from = t.replace("{from}", &day(from));
            match to {
                Some(to) => with_from.replace("{to}", &day(to)),
                None => with_from,
            }
        })
    }

    /// Whether the collection is copied through a rolling window: its template bounds both
    /// ends (`{to}`), as Protime requires of clockings, assignments and paid-presences.
    pub fn windowed(&self) -> bool {
        self.filter_template.as_deref().is_some_and(|t| t.contains("{to}"))
    }

    /// The span a load starting `today` covers: `[floor, open end)`, or for a rolling window
    /// `[max(floor, today − 243 d), today + 122 d]`, a year at most, and never before 1
    /// January of the previous year (Protime's earliest delta start).
    pub fn window(&self, floor: NaiveDate, today: NaiveDate) -> (NaiveDate, Option<NaiveDate>) {
        if !self.windowed() {
            return (floor, None);
        }
        let to = today + Duration::days(WINDOW_AHEAD_DAYS);
        let from = floor.max(today - Duration::days(WINDOW_BEHIND_DAYS)).min(to);
        (from, Some(to))
    }
}

/// `SYNC_FROM` when unset: 1 January of the previous year (the earliest start Protime's
/// clockings and assignments deltas accept).
pub fn default_from(now: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(now.year() - 1, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// Where a run starts on a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Follow the state's cursor (the run's first page).
    Follow,
    /// Begin a new load of `[from, to]`: the caller builds the first page's link (a delta
    /// initial request) from the filter, then records the load with
    /// [`SyncState::load_begun`] (which records the same filter).
    Begin { filter: Option<String>, from: NaiveDate, to: Option<NaiveDate>, why: &'static str },
}

/// Decides where this run starts. A new load starts from the date a backfill asked for, else
/// `default_from` (`SYNC_FROM`, or 1 January of the previous year, as of now): a load that
/// starts again on its own (after a 410) moves forward with the calendar. A rolling window
/// with fewer than [`WINDOW_MIN_AHEAD_DAYS`] left ahead is loaded again further ahead (once no
/// sweep is pending; the page loop follows the old deltaLink to its end first).
pub fn start(state: &SyncState, plan: &CollectionPlan, default_from: NaiveDate, now: DateTime<Utc>) -> Start {
    let floor = state.requested_from.unwrap_or(default_from);
    let today = now.date_naive();
    let begin = |why| {
        let (from, to) = plan.window(floor, today);
        Start::Begin { filter: plan.filter(from, to), from, to, why }
    };
    let window_ends_soon = plan.windowed()
        && state.pass.is_none()
        && state.to.is_none_or(|to| to - today < Duration::days(WINDOW_MIN_AHEAD_DAYS));
    match (state.phase, &state.cursor) {
        (None, _) => begin("no load has started"),
        // A collection listed by an earlier release (`people`, before it was read through its
        // delta) begins its delta.
        _ if state.mode != Some(SyncMode::Delta) => begin("the collection now follows a delta"),
        _ if state.filter_template != plan.filter_template => begin("the collection's filter changed"),
        (Some(Phase::Incremental), _) if window_ends_soon => begin("the window moves ahead"),
        (Some(_), Some(_)) => Start::Follow,
        (Some(Phase::Initial), None) => begin("the load starts over"),
        (Some(Phase::Incremental), None) => begin("no deltaLink is stored"),
    }
}

/// The next range of a rolling window's history to list, `[first, last]` (at most
/// [`HISTORY_RANGE_DAYS`] days), resuming the one under way; `None` when the history from the
/// floor (`SYNC_FROM`, or a backfill's date) up to the window's start is listed. A floor
/// earlier than what was listed starts the history again from it
/// ([`SyncState::history_started`]).
pub fn history_range(
    state: &mut SyncState,
    plan: &CollectionPlan,
    default_from: NaiveDate,
) -> Option<(NaiveDate, NaiveDate)> {
    if !plan.windowed() || state.phase != Some(Phase::Incremental) {
        return None;
    }
    let floor = state.requested_from.unwrap_or(default_from);
    let goal = state.from?;
    let history = match state.history.as_mut() {
        Some(h) if h.from <= floor => h,
        _ => state.history_started(floor),
    };
    if let Some(last) = history.range_to {
        return Some((history.until, last));
    }
    (history.until < goal).then(|| {
        let last = (history.until + Duration::days(HISTORY_RANGE_DAYS - 1)).min(goal - Duration::days(1));
        (history.until, last)
    })
}

/// Whether the collection holds a deltaLink that has not expired as far as is known: a load
/// that starts now must follow it to its end first, or the changes since the last round
/// (deletions included) are never seen.
pub fn live_delta(state: &SyncState) -> bool {
    state.mode == Some(SyncMode::Delta) && state.phase == Some(Phase::Incremental) && state.cursor.is_some()
}

/// What a page did to the round ([`SyncState::page_applied`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterPage {
    /// More pages follow (the cursor is the nextLink).
    More,
    /// The round or load is complete (the cursor is the new deltaLink).
    Done,
    /// The last page of a delta carried no deltaLink: the load must start over.
    NoDeltaLink,
}

/// Seconds since the copy was last complete (the end of the last delta round). `None` before
/// the first complete round.
pub fn lag_seconds(state: &SyncState, now: DateTime<Utc>) -> Option<i64> {
    let last = state.last_synced_at?;
    Some((now - last).num_seconds().max(0))
}

/// Whether a scheduled reconciliation of `collection` is due: once per `interval`, each
/// collection at its own offset into it (its place among the 18, times interval / 18), so that
/// not every collection reconciles in the same run. Due when the collection was last verified
/// (or, never verified, its load completed) before the latest such moment. Never while its load
/// or a pass is under way, while a held sweep waits for an operator, nor with an interval of 0.
pub fn reconcile_due(state: &SyncState, collection: Collection, interval: Duration, now: DateTime<Utc>) -> bool {
    let period = interval.num_seconds();
    let waiting = state.reconcile.is_some() || state.pass.is_some() || state.sweep_held.is_some();
    if period <= 0 || state.phase != Some(Phase::Incremental) || waiting {
        return false;
    }
    let Some(last) = state.verified_at.or(state.initial_completed_at) else { return false };
    let place = Collection::ALL.iter().position(|c| *c == collection).unwrap_or(0) as i64;
    let offset = period * place / Collection::ALL.len() as i64;
    let moment = (now.timestamp() - offset).div_euclid(period) * period + offset;
    last.timestamp() < moment
}

/// Whether a lease read from the table is free for `owner` at `now` (the rule the store's
/// condition expresses; used by the in-memory store).
pub fn lease_free(state: &SyncState, owner: &str, now: DateTime<Utc>) -> bool {
    match (&state.lease_owner, state.lease_until) {
        (_, None) => true,
        (Some(o), _) if o == owner => true,
        (_, Some(until)) => until < now.timestamp_millis(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::apply::RecordCounts;
    use crate::sync::state::FullPass;
    use chrono::TimeZone;

    #[test]
    fn reconciliations_come_due_once_an_interval_each_collection_at_its_own_offset() {
        let week = Duration::hours(168);
        let verified = |at: DateTime<Utc>| SyncState {
            phase: Some(Phase::Incremental),
            mode: Some(SyncMode::Delta),
            verified_at: Some(at),
            ..SyncState::default()
        };
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        // Every collection verified at the same moment: over the next two weeks, each comes due
        // exactly once in the first interval, and the moments are spread over it.
        let mut due_at = Vec::new();
        for collection in Collection::ALL {
            let state = verified(start);
            let first = (1..=168 * 4)
                .map(|quarter| start + Duration::minutes(15 * quarter))
                .find(|now| reconcile_due(&state, *collection, week, *now))
                .expect("due within the interval");
            assert!(first - start <= week, "{collection}: {first}");
            due_at.push(first);
            // Verified then, it is not due again until a full interval later.
            let again = verified(first);
            assert!(!reconcile_due(&again, *collection, week, first + week - Duration::minutes(15)));
            assert!(reconcile_due(&again, *collection, week, first + week + Duration::minutes(15)));
        }
        due_at.sort();
        due_at.dedup();
        assert!(due_at.len() >= 17, "staggered: {due_at:?}");
        assert!(!reconcile_due(&verified(start), Collection::Clockings, Duration::zero(), start + week * 3), "0: off");
        let loading = SyncState { phase: Some(Phase::Initial), ..verified(start) };
        assert!(!reconcile_due(&loading, Collection::Clockings, week, start + week * 3));
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    fn delta() -> CollectionPlan {
        CollectionPlan { filter_template: Some("date ge '{from}'".into()) }
    }

    fn unfiltered() -> CollectionPlan {
        CollectionPlan { filter_template: None }
    }

    fn from() -> NaiveDate {
        default_from(now())
    }

    /// Begins as `start` says and returns the state.
    fn begun(plan: &CollectionPlan) -> SyncState {
        let mut state = SyncState::default();
        let Start::Begin { from, to, .. } = start(&state, plan, from(), now()) else { panic!("a new load") };
        state.load_begun(plan, (from, to), "/first".into(), now());
        state
    }

    #[test]
    fn the_default_start_is_the_first_of_january_of_the_previous_year() {
        assert_eq!(default_from(now()), NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
    }

    #[test]
    fn a_collection_without_state_begins_an_initial_load_with_its_filter() {
        let state = SyncState::default();
        let s = start(&state, &delta(), from(), now());
        assert_eq!(
            s,
            Start::Begin {
                filter: Some("date ge '2025-01-01'".into()),
                from: from(),
                to: None,
                why: "no load has started"
            }
        );
        let state = begun(&delta());
        assert_eq!((state.phase, state.cursor.as_deref()), (Some(Phase::Initial), Some("/first")));
        assert_eq!(start(&state, &delta(), from(), now()), Start::Follow);
    }

    #[test]
    fn the_cursor_follows_next_links_then_keeps_the_delta_link_and_the_load_completes() {
        let mut state = begun(&delta());
        let page = RecordCounts { fetched: 3, stored: 3, ..Default::default() };
        assert_eq!(state.page_applied(page, Some("/p2".into()), None, now()), AfterPage::More);
        assert_eq!((state.cursor.as_deref(), state.phase), (Some("/p2"), Some(Phase::Initial)));
        assert_eq!(state.page_applied(page, None, Some("/delta?t=1".into()), now()), AfterPage::Done);
        assert_eq!((state.cursor.as_deref(), state.phase), (Some("/delta?t=1"), Some(Phase::Incremental)));
        assert_eq!((state.pages, state.records.stored), (2, 6));
        assert_eq!(state.initial_completed_at, Some(now()));
        // Next run: follow the deltaLink; its answer's deltaLink replaces it.
        assert_eq!(start(&state, &delta(), from(), now()), Start::Follow);
        let later = now() + Duration::minutes(15);
        assert_eq!(
            state.page_applied(RecordCounts::default(), None, Some("/delta?t=2".into()), later),
            AfterPage::Done
        );
        assert_eq!(
            (state.cursor.as_deref(), state.initial_completed_at, state.last_synced_at),
            (Some("/delta?t=2"), Some(now()), Some(later))
        );
    }

    #[test]
    fn a_delta_without_a_delta_link_at_its_end_starts_over() {
        let mut state = begun(&delta());
        assert_eq!(state.page_applied(RecordCounts::default(), None, None, now()), AfterPage::NoDeltaLink);
        assert!(matches!(start(&state, &delta(), from(), now()), Start::Begin { why: "the load starts over", .. }));
    }

    #[test]
    fn an_expired_delta_goes_back_to_an_initial_load_and_reinitialize_uses_the_new_start() {
        let mut state = begun(&delta());
        state.page_applied(RecordCounts::default(), None, Some("/delta?t=1".into()), now());
        state.delta_expired(now());
        assert_eq!((state.phase, state.cursor.as_deref()), (Some(Phase::Initial), None));
        assert!(matches!(start(&state, &delta(), from(), now()), Start::Begin { .. }));
        let earlier = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        state.reload_asked(Some(earlier));
        assert_eq!(
            start(&state, &delta(), from(), now()),
            Start::Begin {
                filter: Some("date ge '2024-01-01'".into()),
                from: earlier,
                to: None,
                why: "no load has started"
            }
        );
    }

    #[test]
    fn a_load_that_starts_again_on_its_own_moves_its_start_forward_and_a_backfill_date_sticks() {
        let mut state = begun(&delta());
        state.page_applied(RecordCounts::default(), None, Some("/delta?t=1".into()), now());
        let next_year = now() + Duration::days(365);
        // A new year passing changes nothing while the deltaLink lives: the template is the same.
        assert_eq!(start(&state, &delta(), default_from(next_year), next_year), Start::Follow);
        state.delta_expired(next_year);
        let Start::Begin { from, filter, .. } = start(&state, &delta(), default_from(next_year), next_year) else {
            panic!("a new load")
        };
        assert_eq!((from, filter.as_deref()), (default_from(next_year), Some("date ge '2026-01-01'")));
        let asked = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        state.reload_asked(Some(asked));
        state.delta_expired(next_year);
        assert!(
            matches!(start(&state, &delta(), default_from(next_year), next_year), Start::Begin { from, .. } if from == asked)
        );
    }

    #[test]
    fn a_changed_filter_begins_a_new_load() {
        let mut state = begun(&delta());
        state.page_applied(RecordCounts::default(), None, Some("/delta?t=1".into()), now());
        let other = CollectionPlan { filter_template: Some("date ge '{from}' and kind eq 'InOut'".into()) };
        assert!(matches!(
            start(&state, &other, from(), now()),
            Start::Begin { why: "the collection's filter changed", .. }
        ));
    }

    #[test]
    fn a_collection_an_earlier_release_listed_begins_its_delta_and_its_copy_stays_complete() {
        // `people` as a release that listed it left it: a complete list pass, no cursor.
        let listed_at = now() - Duration::hours(3);
        let mut state = SyncState {
            mode: Some(SyncMode::List),
            phase: Some(Phase::Incremental),
            initial_completed_at: Some(listed_at - Duration::days(30)),
            last_synced_at: Some(listed_at),
            verified_at: Some(listed_at),
            ..SyncState::default()
        };
        let Start::Begin { filter, from, to, why } = start(&state, &unfiltered(), from(), now()) else {
            panic!("a delta load")
        };
        assert_eq!((why, filter.as_deref(), to), ("the collection now follows a delta", None, None));
        state.load_begun(&unfiltered(), (from, to), "/people?delta".into(), now());
        assert_eq!((state.mode, state.phase), (Some(SyncMode::Delta), Some(Phase::Initial)));
        assert_eq!(state.initial_completed_at, Some(listed_at - Duration::days(30)), "not waiting for a baseline");
        assert!(state.pass.is_some(), "the load is a full pass, swept at its end");
        assert_eq!(
            state.page_applied(RecordCounts::default(), None, Some("/delta/people?t=1".into()), now()),
            AfterPage::Done
        );
        assert_eq!((state.phase, state.cursor.as_deref()), (Some(Phase::Incremental), Some("/delta/people?t=1")));
        assert_eq!(lag_seconds(&state, now() + Duration::minutes(5)), Some(300));
    }

    fn windowed() -> CollectionPlan {
        CollectionPlan { filter_template: Some(crate::sync::settings::SYNC_WINDOW_FILTER.into()) }
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    /// A windowed collection whose load began at `at` and completed.
    fn loaded_window(at: DateTime<Utc>) -> SyncState {
        let mut state = SyncState::default();
        let Start::Begin { from, to, .. } = start(&state, &windowed(), from(), at) else { panic!("a load") };
        state.load_begun(&windowed(), (from, to), "/first".into(), at);
        state.page_applied(RecordCounts::default(), None, Some("/delta?t=1".into()), at);
        state.pass = None;
        state
    }

    #[test]
    fn a_windowed_collection_loads_a_year_at_most_from_243_days_back_to_122_ahead() {
        let Start::Begin { filter, from, to, .. } = start(&SyncState::default(), &windowed(), from(), now()) else {
            panic!("a load")
        };
        assert_eq!((from, to), (day("2026-03-28"), Some(day("2027-03-28"))));
        assert_eq!(filter.as_deref(), Some("date ge '2026-03-28' and date le '2027-03-28'"));
        assert!((to.unwrap() - from).num_days() <= 366 && from >= default_from(now()));
        // A later SYNC_FROM narrows it; an earlier one is the history's business.
        assert_eq!(windowed().window(day("2026-10-01"), now().date_naive()).0, day("2026-10-01"));
        assert_eq!(windowed().window(day("2020-01-01"), now().date_naive()).0, day("2026-03-28"));
        assert_eq!(delta().window(day("2025-01-01"), now().date_naive()), (day("2025-01-01"), None));
    }

    #[test]
    fn a_window_with_fewer_than_92_days_ahead_is_loaded_again_further_ahead_and_the_copy_stays_complete() {
        let mut state = loaded_window(now());
        let completed = state.initial_completed_at;
        // 2027-03-28 − 92 days = 2026-12-26: followed until then, moved from the next day on.
        let before = now() + Duration::days(30);
        assert_eq!(start(&state, &windowed(), default_from(before), before), Start::Follow);
        let after = now() + Duration::days(31);
        let Start::Begin { from, to, why, .. } = start(&state, &windowed(), default_from(after), after) else {
            panic!("moved")
        };
        assert_eq!(why, "the window moves ahead");
        assert_eq!((from, to), (day("2026-04-28"), Some(day("2027-04-28"))));
        // Not while a sweep is pending: the pass finishes over the window it saw.
        let sweeping = SyncState { pass: Some(FullPass::new(now(), false, false)), ..state.clone() };
        assert_eq!(start(&sweeping, &windowed(), default_from(after), after), Start::Follow);
        state.load_begun(&windowed(), (from, to), "/again".into(), after);
        assert_eq!((state.phase, state.to), (Some(Phase::Initial), to));
        assert_eq!(state.initial_completed_at, completed, "not waiting for a baseline");
        assert!(state.pass.is_some(), "the new load is a full pass of the new window");
    }

    #[test]
    fn the_history_before_the_window_is_listed_once_in_ranges_of_a_year_and_follows_the_window() {
        let mut state = loaded_window(now());
        let plan = windowed();
        let floor = from();
        assert_eq!(history_range(&mut state, &plan, floor), Some((day("2025-01-01"), day("2025-12-31"))));
        let h = state.history.as_mut().unwrap();
        h.page_applied(day("2025-12-31"), Some("/p2".into()));
        assert_eq!(history_range(&mut state, &plan, floor), Some((day("2025-01-01"), day("2025-12-31"))), "resumed");
        state.history.as_mut().unwrap().page_applied(day("2025-12-31"), None);
        assert_eq!(history_range(&mut state, &plan, floor), Some((day("2026-01-01"), day("2026-03-27"))));
        state.history.as_mut().unwrap().page_applied(day("2026-03-27"), None);
        assert_eq!(history_range(&mut state, &plan, floor), None, "listed once");
        assert_eq!(state.history.as_ref().map(|h| (h.from, h.until, h.pages)), Some((floor, day("2026-03-28"), 3)));
        // A new year moves the default floor forward: nothing is listed again.
        assert_eq!(history_range(&mut state, &plan, day("2026-01-01")), None);
        // The window moved ahead: the days it left are listed.
        state.from = Some(day("2026-04-28"));
        assert_eq!(history_range(&mut state, &plan, floor), Some((day("2026-03-28"), day("2026-04-27"))));
        // A backfill from an earlier date lists the history again from it.
        state.requested_from = Some(day("2024-06-01"));
        assert_eq!(history_range(&mut state, &plan, floor), Some((day("2024-06-01"), day("2025-05-31"))));
        // Not before the load completed, nor for a collection without a rolling window.
        assert_eq!(history_range(&mut SyncState { phase: Some(Phase::Initial), ..state.clone() }, &plan, floor), None);
        assert_eq!(history_range(&mut state.clone(), &delta(), floor), None);
    }

    #[test]
    fn errors_count_runs_in_a_row_and_a_success_clears_them() {
        let mut state = SyncState::default();
        state.run_failed("409".into(), now());
        state.run_failed("409".into(), now());
        assert_eq!((state.error_runs, state.last_error.as_deref()), (2, Some("409")));
        state.run_succeeded();
        assert_eq!((state.error_runs, state.last_error), (0, None));
    }

    #[test]
    fn a_lease_is_free_when_absent_expired_or_already_ours() {
        let mut state = SyncState::default();
        assert!(lease_free(&state, "a", now()));
        state.lease_owner = Some("a".into());
        state.lease_until = Some((now() + Duration::minutes(5)).timestamp_millis());
        assert!(lease_free(&state, "a", now()));
        assert!(!lease_free(&state, "b", now()));
        assert!(lease_free(&state, "b", now() + Duration::minutes(6)));
    }
}
