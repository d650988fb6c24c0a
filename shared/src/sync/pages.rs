//! Following a collection's pages: fetch within the deadline, keep, apply, move the cursor,
//! checkpoint; the catch-up of a kept page or a live deltaLink before anything new starts; and
//! why following stopped ([`Stop`], [`Halt`]).

use super::apply::{apply_pass_records, apply_records, Destination};
use super::kept::{self, KeepError, PageKeep};
use super::passes::set_aside_page;
use super::plan::{self, AfterPage};
use super::report::{CollectionReport, Outcome};
use super::request::SyncRequest;
use super::run::Lane;
use super::state::{save_page_seen, FullPass, SeenSlot};
use super::state::{Phase, SyncState, SyncStateError, SyncStateStore};
use super::sweep::PassTally;
use crate::invocation::Budget;
use crate::protime::client::within_deadline;
use crate::protime::LinksFollowed;
use crate::protime::{Page, ProtimeError, RecordPages};
use crate::records::quarantine::Quarantine;
use crate::records::set_aside::SetAsideMarks;
use crate::records::{RecordStore, Source, StoreError, StoredHeads};
use chrono::Utc;
use std::time::Duration;

/// Whether another page may start: `used` pages of the activity's budget (the delta round or
/// load, a reconciliation, the history: each has its own) leave room, and the deadline leaves
/// time for one.
pub(super) fn may_start_page(max_pages: Option<u64>, used: u64, budget: &Budget) -> bool {
    max_pages.is_none_or(|max| used < max) && budget.may_start_page()
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

impl<A: RecordPages, R: RecordStore + StoredHeads + SetAsideMarks, S: SyncStateStore, Q: Quarantine + PageKeep>
    Lane<'_, A, R, S, Q>
{
    /// Follows the cursor page by page; `Ok(true)` when the round or pass ended, `Ok(false)` when
    /// the page budget or the deadline stopped it. Each fetched page is kept (and the state points
    /// at it) before any of its records is written; a page already kept is applied before anything
    /// is fetched. The cursor moves (and is checkpointed) only after every record of its page has
    /// its verdict.
    pub(super) async fn follow(&self, state: &mut SyncState, report: &mut CollectionReport) -> Result<bool, Stop> {
        let mut followed = LinksFollowed::default();
        loop {
            if !may_start_page(self.max_pages, report.pages, self.budget) {
                return Ok(false);
            }
            let page = match self.next_page(state, &mut followed, report).await? {
                NextPage::Page(page) => page,
                NextPage::Again => continue,
                NextPage::Stopped => return Ok(false),
            };
            match self.apply_page(state, page, report).await? {
                AfterPage::More => continue,
                AfterPage::Done => return Ok(true),
                AfterPage::NoDeltaLink => {
                    return Err(Stop::Failed("the delta's last page carried no deltaLink; the load starts over".into()))
                }
            }
        }
    }

    /// The page kept by an earlier run, or the cursor's page fetched and kept.
    async fn next_page(
        &self,
        state: &mut SyncState,
        followed: &mut LinksFollowed,
        report: &mut CollectionReport,
    ) -> Result<NextPage, Stop> {
        let collection = self.collection;
        if let Some(kept) = &state.kept {
            tracing::info!(collection = %collection, kept = ?kept, "applying the page kept by an earlier run");
            return match kept::load(self.quarantine, kept).await {
                Ok(page) => Ok(NextPage::Page(page)),
                Err(KeepError::Unavailable(e)) => {
                    Err(Stop::Failed(format!("reading the kept page (read again next run): {e}")))
                }
                Err(e) => {
                    // Gone for good (expired, or its bucket no longer configured): its link is
                    // fetched again (a spent deltaLink answers 410 and the collection reloads).
                    tracing::error!(collection = %collection, error = %e, "the kept page is gone; fetching its link again");
                    state.kept = None;
                    Ok(NextPage::Again)
                }
            };
        }
        let Some(link) = state.cursor.clone() else {
            return Err(Stop::Failed("no page to follow".into()));
        };
        followed.first_time(&link)?;
        let Some(page) = fetch(self.api, &link, self.budget, report).await? else { return Ok(NextPage::Stopped) };
        self.keep_page(state, &page).await?;
        Ok(NextPage::Page(page))
    }

    /// Applies a page's records and moves the cursor past it (checkpointed); a kept object of it is
    /// discarded once applied. A page that cannot be read is set aside.
    async fn apply_page(
        &self,
        state: &mut SyncState,
        page: Page,
        report: &mut CollectionReport,
    ) -> Result<AfterPage, Stop> {
        let Lane { records, states, quarantine, collection, budget, .. } = *self;
        // Plain records (an initial load): write only what is new or newer. A delta's changes
        // are written as they come.
        let plain = state.phase == Some(Phase::Initial);
        let source = Source::Delta;
        let envelope = match page.envelope() {
            Ok(envelope) => envelope,
            Err(e) => return Err(set_aside_page(self, state, report, &page, e).await),
        };
        let to = Destination { store: records, quarantine, collection, source };
        let counts = match state.pass.as_mut().filter(|_| plain) {
            // A page of a full pass: what it holds is saved before the cursor moves past it.
            Some(pass) => {
                let mut tally = PassTally::new(false);
                let counts = apply_pass_records(to, &envelope.records, &mut tally).await?;
                let seen = std::mem::take(&mut tally.seen);
                pass.chunks += save_page_seen(states, collection, SeenSlot::Load, pass.chunks, seen).await?;
                pass.add_page(&tally);
                counts
            }
            None => apply_records(to, &envelope.records, plain).await?,
        };
        report.pages += 1;
        report.records += counts;
        let discard = state.kept.as_ref().and_then(|k| k.object.clone());
        let (next_link, delta_link) = (envelope.next_link, envelope.delta_link);
        drop(page);
        let after = plan::after_page(state, counts, next_link, delta_link, budget.now());
        if after == AfterPage::Done && plain {
            if let Some(pass) = state.pass.as_mut() {
                pass.sweeping = Some(0);
            }
        }
        self.checkpoint(state).await?;
        if let (Some(key), Some(store)) = (discard, quarantine) {
            // Best effort: an object left behind expires by the bucket's lifecycle rule.
            if let Err(e) = store.discard_page(&key).await {
                tracing::warn!(collection = %collection, key, error = %e, "cannot discard an applied kept page");
            }
        }
        Ok(after)
    }

    /// Before anything new starts on a collection: a kept page is applied; with a load about to
    /// start (`reloading`), a live deltaLink is followed to its end — once more after a kept page
    /// that ended a round, so the changes since it are not lost either.
    pub(super) async fn catch_up(
        &self,
        state: &mut SyncState,
        report: &mut CollectionReport,
        reloading: bool,
    ) -> Result<CatchUp, Stop> {
        if state.kept.is_some() && !plan::live_delta(state) {
            // A page of a load: applied alone.
            let ended = Lane { max_pages: Some(report.pages + 1), ..*self }.follow(state, report).await?;
            return Ok(if ended || state.kept.is_none() { CatchUp::Applied } else { CatchUp::Stopped });
        }
        let from_kept = state.kept.is_some();
        if !self.follow(state, report).await? {
            return Ok(CatchUp::Stopped);
        }
        if from_kept && reloading && plan::live_delta(state) && !self.follow(state, report).await? {
            return Ok(CatchUp::Stopped);
        }
        Ok(CatchUp::Round)
    }

    /// Keeps a fetched page and checkpoints the state pointing at it, before any record is written.
    /// A page that can be kept nowhere is applied anyway (it was fetched; dropping it would lose it
    /// for certain), and the log says so.
    pub(super) async fn keep_page(&self, state: &mut SyncState, page: &crate::protime::Page) -> Result<(), Stop> {
        match kept::keep(self.quarantine, self.collection, page, self.budget.now()).await {
            Ok(kept) => {
                state.kept = Some(kept);
                self.checkpoint(state).await?;
            }
            Err(e) => {
                tracing::warn!(collection = %self.collection, bytes = page.body.len(), error = %e, "the page cannot be kept; applying it unkept");
            }
        }
        Ok(())
    }

    /// Applies a kept page, or follows a live deltaLink to its end before a load (see
    /// [`catch_up`]). `Some`: the collection's part of the run ends there with that outcome.
    pub(super) async fn catch_up_first(
        &self,
        state: &mut SyncState,
        request: &SyncRequest,
        report: &mut CollectionReport,
        reloading: bool,
    ) -> Result<Option<Outcome>, Halt> {
        match self.catch_up(state, report, reloading).await {
            Ok(CatchUp::Round) if !reloading => Ok(Some(Outcome::Complete)),
            Ok(CatchUp::Round | CatchUp::Applied) => Ok(None),
            Ok(CatchUp::Stopped) if request.reinitialize => {
                let message = "the deadline or page budget came before the deltaLink was followed to its end: not \
                               reinitialized, try again";
                Err(Halt::Failed(Outcome::Error, message.to_owned()))
            }
            Ok(CatchUp::Stopped) => Ok(Some(Outcome::Partial)),
            // The deltaLink expired: nothing to catch up on; the load goes on.
            Err(Stop::Gone) => {
                tracing::warn!(collection = %self.collection, "the deltaLink expired (410); starting the initial load again");
                report.delta_expired = true;
                plan::delta_expired(state, self.budget.now());
                Ok(None)
            }
            Err(stop) => Err(Halt::from(stop)),
        }
    }
}

/// Where the next page comes from.
enum NextPage {
    Page(Page),
    /// The kept page is gone for good: its link is fetched instead.
    Again,
    /// The deadline came first (or Protime asked to wait past it).
    Stopped,
}

/// A pass's start, as the sweep compares it with `receivedAt`: the wall clock every writer
/// stamps its writes with (the run's clock may be a test's).
pub(super) fn written_since_now(pass: Option<&mut FullPass>) {
    if let Some(pass) = pass {
        pass.started_at = Utc::now();
    }
}

/// What catching up did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CatchUp {
    /// A delta round was followed to its end (a kept page of it first, if there was one).
    Round,
    /// A kept page of a load was applied; the pass goes on (or is replaced).
    Applied,
    /// The page budget or the deadline came first.
    Stopped,
}

/// Why following a collection's pages stopped early.
#[derive(Debug)]
pub(super) enum Stop {
    Gone,
    Conflict,
    Failed(String),
    LeaseLost,
}

impl Stop {
    /// How a collection's part of a run ends on this stop (a 410 and a lost lease are handled
    /// before this).
    fn outcome(self) -> (Outcome, String) {
        match self {
            Stop::Conflict => (Outcome::Conflict, "Protime answered 409: another delta request is in progress".into()),
            Stop::Gone => (Outcome::Error, "Protime answered 410 Gone".into()),
            Stop::Failed(message) => (Outcome::Error, message),
            Stop::LeaseLost => (Outcome::Error, SyncStateError::LeaseLost.to_string()),
        }
    }
}

impl From<ProtimeError> for Stop {
    fn from(e: ProtimeError) -> Self {
        match e {
            ProtimeError::DeltaGone => Stop::Gone,
            ProtimeError::DeltaConflict => Stop::Conflict,
            other => Stop::Failed(format!("fetching a page: {other}")),
        }
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Failed(format!("writing records: {e}"))
    }
}

impl From<SyncStateError> for Stop {
    fn from(e: SyncStateError) -> Self {
        match e {
            SyncStateError::LeaseLost => Stop::LeaseLost,
            other => Stop::Failed(format!("saving the checkpoint: {other}")),
        }
    }
}

/// Why a collection's part of a run ended before its end: an outcome with its message, or the
/// lease lost to another invocation (its state is then left alone).
pub(super) enum Halt {
    Failed(Outcome, String),
    LeaseLost,
}

impl From<Stop> for Halt {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::LeaseLost => Halt::LeaseLost,
            other => {
                let (outcome, message) = other.outcome();
                Halt::Failed(outcome, message)
            }
        }
    }
}
