//! The page loop, written once for every list of pages a collection follows — its delta round
//! or load, a reconciliation, the history before a rolling window: may a page start, fetch it
//! (or take the page kept by an earlier run), read its envelope, apply its records, count them,
//! move the list's cursor, checkpoint.
//!
//! What differs between the lists is a [`PageList`]: where the list stands in the sync state and
//! how a page moves it (`delta.rs` for the delta, `passes.rs` for a reconciliation and the
//! history), and [`Reading`], data saying how its pages are read and written.

use super::apply::{apply_pass_records, apply_records, Destination, RecordCounts};
use super::kept::{self, KeepError, PageKeep};
use super::plan::AfterPage;
use super::report::CollectionReport;
use super::run::Lane;
use super::state::{save_page_seen, Failing, SeenSlot, SyncState, SyncStateStore};
use super::stop::Stop;
use super::sweep::PassTally;
use crate::collection::Collection;
use crate::invocation::Budget;
use crate::protime::client::within_deadline;
use crate::protime::{LinksFollowed, Page, ProtimeError, RecordPages};
use crate::records::quarantine::{Note, Quarantine};
use crate::records::set_aside::SetAsideMarks;
use crate::records::{RecordStore, Source, StoredHeads};
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use std::time::Duration;

/// One list of pages the loop follows: where it stands in the sync state, and how an applied page
/// moves it. A new kind of list is one more implementation of this, beside the delta's
/// (`delta.rs`), the reconciliation's and the history's (`passes.rs`).
pub(super) trait PageList {
    /// How its pages are read and written, as the state stands before the next page.
    fn reading(&self, state: &SyncState) -> Reading;

    /// Whether a page of it is left to read (`&mut`: the history picks its next range here). A
    /// delta round always has one: it ends on a page instead ([`AfterPage::Done`]).
    fn goes_on(&mut self, _state: &mut SyncState) -> bool {
        true
    }

    /// Where it keeps the back-off of a page set aside: a page of it that cannot be fetched or
    /// read is set aside there, and the list waits for the back-off before it tries again.
    /// `None`: such a page stops the collection's part of the run (the delta's pages).
    fn failing<'s>(&self, _state: &'s mut SyncState) -> Option<&'s mut Option<Failing>> {
        None
    }

    /// The next page's link.
    fn link<A: RecordPages>(&self, state: &SyncState, api: &A) -> Result<String, Stop>;

    /// Moves its cursor past an applied page (`now`: the run's clock).
    fn advance(&mut self, state: &mut SyncState, page: Applied, now: DateTime<Utc>) -> AfterPage;
}

/// How a list's pages are read and written: what differs between the lists, as data.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reading {
    /// Its pages are spent once fetched (a delta's: the same link again answers 410). Each
    /// fetched page is kept before any of its records is written, a page kept by an earlier run
    /// is applied before anything is fetched, and a page that cannot be fetched or read stops the
    /// collection's part of the run. Otherwise a page is fetched again until it is applied, and
    /// one that cannot be is set aside ([`PageList::failing`]).
    pub(super) spent: bool,
    /// The `source` the records are written (or quarantined) with.
    pub(super) source: Source,
    /// Write only records that are new or newer than the stored ones (list and load pages); a
    /// delta's changes are written as they come.
    pub(super) skip_unchanged: bool,
    /// The full pass the pages belong to: what each page saw is saved in this slot before the
    /// cursor moves past it, and counted on the pass.
    pub(super) pass: Option<SeenSlot>,
    /// Compare only: no record is written, and a page that cannot be read is not quarantined.
    pub(super) dry_run: bool,
}

/// A page applied, as its list's cursor moves past it.
pub(super) struct Applied {
    pub(super) counts: RecordCounts,
    pub(super) next_link: Option<String>,
    pub(super) delta_link: Option<String>,
}

/// The pages the activity at hand may apply: `max` (`None`: unlimited) counted from the report's
/// page `from` on. Each activity has its own: the delta round or load (the catch-up before it
/// included), a reconciliation, the history.
#[derive(Debug, Clone, Copy)]
pub(super) struct PageLimit {
    pub(super) max: Option<u64>,
    pub(super) from: u64,
}

impl PageLimit {
    /// Whether another page may start: the activity's pages leave room, and the deadline leaves
    /// time for one.
    fn allows(&self, report: &CollectionReport, budget: &Budget) -> bool {
        self.max.is_none_or(|max| report.pages - self.from < max) && budget.may_start_page()
    }
}

/// How following a list ended this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Followed {
    /// The list reached its end (a delta round or load: its last page).
    End,
    /// The page budget or the deadline came first (or Protime asked to wait past it).
    Stopped,
    /// A page was set aside, or waits for its back-off: nothing more this run can do.
    SetAside,
}

/// Where the next page comes from.
enum NextPage {
    Page(Page),
    /// The kept page is gone for good: its link is fetched instead.
    Again,
    /// The deadline came first (or Protime asked to wait past it).
    Stopped,
    /// It cannot be fetched: why (the list sets it aside).
    SetAside(String),
}

/// What applying a page did.
enum Moved {
    Cursor(AfterPage),
    /// It cannot be read: why (the list sets it aside).
    SetAside(String),
}

impl<A: RecordPages, R: RecordStore + StoredHeads + SetAsideMarks, S: SyncStateStore, Q: Quarantine + PageKeep>
    Lane<'_, A, R, S, Q>
{
    /// Follows `list` page by page until it ends, the page budget or the deadline stops it, or a
    /// page of it is set aside. The list's cursor moves (and is checkpointed) only after every
    /// record of its page has its verdict.
    pub(super) async fn follow_list<L: PageList>(
        &self,
        list: &mut L,
        state: &mut SyncState,
        report: &mut CollectionReport,
    ) -> Result<Followed, Stop> {
        let mut followed = LinksFollowed::default();
        loop {
            if !list.goes_on(state) {
                return Ok(Followed::End);
            }
            if !list.failing(state).is_none_or(|f| Failing::may_retry(f.as_ref(), self.budget.now())) {
                return Ok(Followed::SetAside);
            }
            if !self.page_limit.allows(report, self.budget) {
                return Ok(Followed::Stopped);
            }
            let reading = list.reading(state);
            let page = match self.next_page(&*list, reading, state, &mut followed, report).await? {
                NextPage::Page(page) => page,
                NextPage::Again => continue,
                NextPage::Stopped => return Ok(Followed::Stopped),
                NextPage::SetAside(error) => return self.set_aside(&*list, state, error, report).await,
            };
            match self.apply_page(list, reading, state, page, report).await? {
                Moved::Cursor(AfterPage::More) => continue,
                Moved::Cursor(AfterPage::Done) => return Ok(Followed::End),
                Moved::Cursor(AfterPage::NoDeltaLink) => {
                    return Err(Stop::Failed("the delta's last page carried no deltaLink; the load starts over".into()))
                }
                Moved::SetAside(error) => return self.set_aside(&*list, state, error, report).await,
            }
        }
    }

    /// The page kept by an earlier run (of a list whose pages are spent once fetched), or the
    /// list's next page fetched (and kept, if its pages are spent once fetched).
    async fn next_page<L: PageList>(
        &self,
        list: &L,
        reading: Reading,
        state: &mut SyncState,
        followed: &mut LinksFollowed,
        report: &mut CollectionReport,
    ) -> Result<NextPage, Stop> {
        if reading.spent && state.kept.is_some() {
            return self.kept_page(state).await;
        }
        let link = list.link(state, self.api)?;
        followed.first_time(&link)?;
        match fetch(self.api, &link, self.budget, report).await {
            Ok(None) => Ok(NextPage::Stopped),
            Ok(Some(page)) if reading.spent => {
                self.keep_page(state, &page).await?;
                Ok(NextPage::Page(page))
            }
            Ok(Some(page)) => Ok(NextPage::Page(page)),
            Err(e) if reading.spent => Err(e.into()),
            Err(e) => Ok(NextPage::SetAside(format!("fetching a page: {e}"))),
        }
    }

    /// The page an earlier run kept and did not apply.
    async fn kept_page(&self, state: &mut SyncState) -> Result<NextPage, Stop> {
        let Some(kept) = &state.kept else { return Ok(NextPage::Again) };
        let collection = self.collection;
        tracing::info!(collection = %collection, kept = ?kept, "applying the page kept by an earlier run");
        match kept::load(self.quarantine, kept).await {
            Ok(page) => Ok(NextPage::Page(page)),
            Err(KeepError::Unavailable(e)) => {
                Err(Stop::Failed(format!("reading the kept page (read again next run): {e}")))
            }
            Err(e) => {
                // Gone for good (expired, or its bucket no longer configured): its link is
                // fetched again (a spent deltaLink answers 410 and the collection reloads).
                tracing::error!(collection = %collection, error = %e, "the kept page is gone; fetching its link again");
                state.kept_page_dropped();
                Ok(NextPage::Again)
            }
        }
    }

    /// Applies a page's records, counts them and moves the list's cursor past the page
    /// (checkpointed); a kept object of it is discarded once applied. A page that cannot be read
    /// is quarantined: set aside, or (a page that is spent once fetched) it stops the run.
    async fn apply_page<L: PageList>(
        &self,
        list: &mut L,
        reading: Reading,
        state: &mut SyncState,
        page: Page,
        report: &mut CollectionReport,
    ) -> Result<Moved, Stop> {
        let envelope = match page.envelope() {
            Ok(envelope) => envelope,
            Err(e) if reading.spent => return Err(set_aside_page(self, state, report, &page, e).await),
            Err(e) => return Ok(Moved::SetAside(unreadable_list_page(self, reading, &page, e, report).await?)),
        };
        let counts = self.write_records(reading, state, &envelope.records).await?;
        report.pages += 1;
        report.records += counts;
        let discard = state.kept.as_ref().and_then(|k| k.object.clone()).filter(|_| reading.spent);
        let applied = Applied { counts, next_link: envelope.next_link, delta_link: envelope.delta_link };
        drop(page);
        let after = list.advance(state, applied, self.budget.now());
        self.checkpoint(state).await?;
        if let (Some(key), Some(store)) = (discard, self.quarantine) {
            // Best effort: an object left behind expires by the bucket's lifecycle rule.
            if let Err(e) = store.discard_page(&key).await {
                tracing::warn!(collection = %self.collection, key, error = %e, "cannot discard an applied kept page");
            }
        }
        Ok(Moved::Cursor(after))
    }

    /// Writes a page's records as `reading` says; a page of a full pass also saves what it saw
    /// (before the cursor moves past it) and counts it on the pass.
    async fn write_records(
        &self,
        reading: Reading,
        state: &mut SyncState,
        records: &[&RawValue],
    ) -> Result<RecordCounts, Stop> {
        let Lane { records: store, states, quarantine, collection, .. } = *self;
        let to = Destination { store, quarantine, collection, source: reading.source };
        let Some((slot, pass)) = reading.pass.and_then(|slot| Some((slot, state.pass_mut(slot)?))) else {
            return Ok(apply_records(to, records, reading.skip_unchanged).await?);
        };
        let mut tally = PassTally::new(reading.dry_run);
        let counts = apply_pass_records(to, records, &mut tally).await?;
        let seen = std::mem::take(&mut tally.seen);
        let saved = save_page_seen(states, collection, slot, pass.chunks, seen).await?;
        pass.page_seen(saved, &tally);
        Ok(counts)
    }

    /// Sets a page of `list` aside: its back-off, the run's count, and a checkpoint.
    async fn set_aside<L: PageList>(
        &self,
        list: &L,
        state: &mut SyncState,
        error: String,
        report: &mut CollectionReport,
    ) -> Result<Followed, Stop> {
        if let Some(failing) = list.failing(state) {
            back_off(failing, error, report, self.budget.now());
        }
        self.checkpoint(state).await?;
        Ok(Followed::SetAside)
    }

    /// Keeps a fetched page and checkpoints the state pointing at it, before any record is written.
    /// A page that can be kept nowhere is applied anyway (it was fetched; dropping it would lose it
    /// for certain), and the log says so.
    pub(super) async fn keep_page(&self, state: &mut SyncState, page: &crate::protime::Page) -> Result<(), Stop> {
        match kept::keep(self.quarantine, self.collection, page, self.budget.now(), self.inline_pages).await {
            Ok(kept) => {
                state.page_kept(kept);
                self.checkpoint(state).await?;
            }
            Err(e) => {
                tracing::warn!(collection = %self.collection, bytes = page.body.len(), error = %e, "the page cannot be kept; applying it unkept");
            }
        }
        Ok(())
    }
}

/// Fetches one page within [`Budget::request_time`] (its retries included): `Ok(None)` when the
/// deadline would come first; the same link is fetched next run. A `Retry-After` (429, a 503
/// during maintenance) is waited out when it ends before the deadline; one that would end after
/// it stops the collection's part of the run at once, like the deadline, with the sentence
/// saying so in the report's `waiting` ([`ProtimeError::RetryAfterTooLong`]).
pub(super) async fn fetch<A: RecordPages>(
    api: &A,
    link: &str,
    budget: &Budget,
    report: &mut CollectionReport,
) -> Result<Option<Page>, ProtimeError> {
    let answer = match budget.request_time() {
        None => api.fetch_page(link).await.map(Some),
        Some(time) => {
            let deadline = tokio::time::Instant::now() + time;
            within_deadline_or_none(time, within_deadline(deadline, api.fetch_page(link))).await
        }
    };
    match answer {
        Err(e @ ProtimeError::RetryAfterTooLong { .. }) => {
            tracing::warn!(collection = %report.collection, error = %e, "Protime asked to wait past the run's time");
            report.waiting = Some(e.to_string());
            Ok(None)
        }
        other => other,
    }
}

/// `call` bounded by `time`: `Ok(None)` when the time runs out first.
pub(super) async fn within_deadline_or_none(
    time: Duration,
    call: impl std::future::Future<Output = Result<Page, ProtimeError>>,
) -> Result<Option<Page>, ProtimeError> {
    match tokio::time::timeout(time, call).await {
        Ok(page) => page.map(Some),
        Err(_) => {
            tracing::warn!(
                waited_ms = time.as_millis() as u64,
                "a page request ran into the deadline; fetched again next run"
            );
            Ok(None)
        }
    }
}

/// Why a page of a list that must not hold anything else up cannot be read: its body is
/// quarantined (when a quarantine is configured and it is no dry run) and counted. Only an
/// unavailable quarantine stops the run.
async fn unreadable_list_page<A, R, S: SyncStateStore, Q: Quarantine>(
    lane: &Lane<'_, A, R, S, Q>,
    reading: Reading,
    page: &Page,
    error: ProtimeError,
    report: &mut CollectionReport,
) -> Result<String, Stop> {
    let Some(quarantine) = lane.quarantine.filter(|_| !reading.dry_run) else {
        return Ok(format!("{error}; not quarantined (no quarantine is configured, or a dry run)"));
    };
    let key = quarantine_page(quarantine, lane.collection, page, reading.source, report)
        .await
        .map_err(|e| Stop::Failed(format!("the quarantine: {e}")))?;
    Ok(format!("{error}; the page is quarantined as {key}"))
}

/// Keeps a page that cannot be read in the quarantine, whole, and counts it for the
/// `Quarantined` metric; the object's key.
pub(super) async fn quarantine_page<Q: Quarantine>(
    quarantine: &Q,
    collection: Collection,
    page: &Page,
    source: Source,
    report: &mut CollectionReport,
) -> Result<String, crate::records::quarantine::QuarantineError> {
    let note = Note { reason: UNREADABLE, source, record_id: None, change_type: None, change_version: None };
    let key = quarantine.keep(collection, &page.body, note).await?;
    report.records.quarantined_by.add(UNREADABLE, 1);
    Ok(key)
}

/// Records a list page set aside: the back-off of its list, and the run's count.
pub(super) fn back_off(
    failing: &mut Option<Failing>,
    error: String,
    report: &mut CollectionReport,
    now: DateTime<Utc>,
) {
    tracing::error!(collection = %report.collection, error = %error, "a page was set aside; retried on a back-off");
    Failing::page_set_aside(failing, error, now);
    report.pages_set_aside += 1;
}

/// The quarantine reason of a page that cannot be read.
pub(super) const UNREADABLE: &str = "unreadable_page";

/// A page spent once fetched whose envelope cannot be read (not JSON, no `value`): quarantined
/// whole, so the collection is not stuck on it; its link is fetched again next run. While the
/// quarantine cannot be written it stays kept and is read again next run.
pub(super) async fn set_aside_page<A, R, S, Q: Quarantine + PageKeep>(
    lane: &Lane<'_, A, R, S, Q>,
    state: &mut SyncState,
    report: &mut CollectionReport,
    page: &crate::protime::Page,
    error: ProtimeError,
) -> Stop {
    let collection = lane.collection;
    let Some(quarantine) = lane.quarantine else {
        state.kept_page_dropped();
        return Stop::Failed(format!(
            "{error}; no quarantine is configured: the page is dropped and its link fetched again next run"
        ));
    };
    match quarantine_page(quarantine, collection, page, Source::Delta, report).await {
        Ok(key) => {
            tracing::error!(collection = %collection, key, error = %error, "a page that cannot be read was quarantined");
            if let Some(object) = state.kept_page_dropped().and_then(|k| k.object) {
                if let Err(e) = quarantine.discard_page(&object).await {
                    tracing::warn!(collection = %collection, key = object, error = %e, "cannot discard a kept page");
                }
            }
            Stop::Failed(format!("{error}; the page is quarantined as {key} and its link fetched again next run"))
        }
        Err(e) => Stop::Failed(format!("{error}; the page stays kept and is read again next run ({e})")),
    }
}
