//! A collection's delta round or load as a list of pages ([`DeltaPages`]), followed through the
//! page loop of `pages.rs`; and the catch-up before anything new starts: a kept page applied, a
//! live deltaLink followed to its end before a load.

use super::kept::PageKeep;
use super::pages::{Applied, Followed, PageLimit, PageList, Reading};
use super::plan::{self, AfterPage};
use super::report::{CollectionReport, Outcome};
use super::request::SyncRequest;
use super::run::Lane;
use super::state::{Phase, SeenSlot, SyncState, SyncStateStore};
use super::stop::{Halt, Stop};
use crate::protime::RecordPages;
use crate::records::quarantine::Quarantine;
use crate::records::set_aside::SetAsideMarks;
use crate::records::{RecordStore, Source, StoredHeads};
use chrono::{DateTime, Utc};

/// The delta round, or the load, a collection's cursor points into. Its pages are spent once
/// fetched, so each is kept before it is applied. A load's pages (plain records) are a full pass:
/// only what is new or newer is written, and what they hold is saved; a delta's changes are
/// written as they come.
pub(super) struct DeltaPages;

impl PageList for DeltaPages {
    fn reading(&self, state: &SyncState) -> Reading {
        let plain = state.phase == Some(Phase::Initial);
        Reading {
            spent: true,
            source: Source::Delta,
            skip_unchanged: plain,
            pass: plain.then_some(SeenSlot::Load),
            dry_run: false,
        }
    }

    fn link<A: RecordPages>(&self, state: &SyncState, _api: &A) -> Result<String, Stop> {
        state.cursor.clone().ok_or_else(|| Stop::Failed("no page to follow".into()))
    }

    fn advance(&mut self, state: &mut SyncState, page: Applied, now: DateTime<Utc>) -> AfterPage {
        state.page_applied(page.counts, page.next_link, page.delta_link, now)
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
        Ok(self.follow_list(&mut DeltaPages, state, report).await? == Followed::End)
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
            let one = PageLimit { max: Some(1), from: report.pages };
            let ended = Lane { page_limit: one, ..*self }.follow(state, report).await?;
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
                state.delta_expired(self.budget.now());
                Ok(None)
            }
            Err(stop) => Err(Halt::from(stop)),
        }
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
