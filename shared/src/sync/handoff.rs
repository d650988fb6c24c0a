//! The renewer's hand-off: one delta round for a collection whose webhook was Disabled, or a
//! full pass requested from the syncer when no round can cover the gap.

use super::apply::RecordCounts;
use super::kept::PageKeep;
use super::pages::PageLimit;
use super::plan::{self};
use super::report::{CollectionReport, Outcome};
use super::run::{release, Lane};
use super::state::{SyncStateError, SyncStateStore};
use super::stop::Stop;
use crate::collection::Collection;
use crate::invocation::Budget;
use crate::protime::RecordPages;
use crate::records::quarantine::Quarantine;
use crate::records::set_aside::SetAsideMarks;
use crate::records::{RecordStore, StoredHeads};

/// Pages one delta round of the renewer follows at most (a round is normally one page).
pub(super) const MAX_ROUND_PAGES: u64 = 1_000;

/// What a delta round of the renewer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaRound {
    /// The deltaLink was followed to its end: every change since the syncer's last round.
    CaughtUp,
    /// No live deltaLink to follow (no complete delta load yet, the syncer is working on the
    /// collection, the link expired or answered 409, or the round did not reach its end): the
    /// caller lists the gap instead.
    NotLive,
    /// Less than the budget's margin is left before the invocation's deadline: no page started.
    OutOfTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaRoundError {
    #[error(transparent)]
    State(#[from] SyncStateError),
    #[error("{0}")]
    Failed(String),
}

/// The stores a delta round writes through: the record table, the sync state (the lease and
/// checkpoints) and, when configured, the quarantine.
pub struct Stores<'a, R, S, Q> {
    pub records: &'a R,
    pub states: &'a S,
    pub quarantine: Option<&'a Q>,
    /// Whether a small page may be kept in the sync item (not when the field policy names the
    /// collection).
    pub inline_pages: bool,
}

/// One delta round for the renewer's recovery of a Disabled subscription: takes the
/// collection's lease, applies a page the syncer kept, follows the stored deltaLink to the end
/// (every change since, deletions included), checkpoints and releases. No page starts once less
/// than the budget's margin is left. What it applied (stored, quarantined, …) is added to
/// `counts` whatever the round's outcome, so a failed round's quarantines are still counted.
pub async fn delta_round<
    A: RecordPages,
    R: RecordStore + StoredHeads + SetAsideMarks,
    S: SyncStateStore,
    Q: Quarantine + PageKeep,
>(
    api: &A,
    stores: Stores<'_, R, S, Q>,
    collection: Collection,
    budget: &Budget,
    counts: &mut RecordCounts,
) -> Result<DeltaRound, DeltaRoundError> {
    let Stores { records, states, quarantine, inline_pages } = stores;
    if !budget.may_start_page() {
        return Ok(DeltaRound::OutOfTime);
    }
    let owner = crate::invocation::lease_owner("renewer");
    let Some(mut state) = states.acquire(collection, &owner, budget.now(), budget.lease_until()).await? else {
        return Ok(DeltaRound::NotLive);
    };
    // A live deltaLink is followed (a page kept by an earlier run first, then the round after
    // it); a page kept during an initial load is applied alone (the syncer goes on with the load).
    let live = plan::live_delta(&state);
    let from_kept = state.kept.is_some();
    let page_limit = PageLimit { max: Some(if live { MAX_ROUND_PAGES } else { 1 }), from: 0 };
    let lane = Lane { api, records, states, quarantine, owner: &owner, collection, budget, page_limit, inline_pages };
    let mut report = CollectionReport::new(collection, Outcome::Complete);
    let result = if live || from_kept {
        let mut followed = lane.follow(&mut state, &mut report).await;
        if live && from_kept && matches!(followed, Ok(true)) && plan::live_delta(&state) {
            followed = lane.follow(&mut state, &mut report).await;
        }
        *counts += report.records;
        match followed {
            Ok(true) if live => Ok(DeltaRound::CaughtUp),
            Ok(_) if !budget.may_start_page() => Ok(DeltaRound::OutOfTime),
            // A kept page of a load applied, or not at the end after MAX_ROUND_PAGES: what was
            // applied is stored; the gap is listed too.
            Ok(_) => Ok(DeltaRound::NotLive),
            // The state is left as it is: the syncer's next run meets the 410 itself, reports
            // and alarms on it, and loads the collection again.
            Err(Stop::Gone | Stop::Conflict) => Ok(DeltaRound::NotLive),
            Err(Stop::LeaseLost) => return Err(SyncStateError::LeaseLost.into()),
            Err(Stop::Failed(message)) => Err(DeltaRoundError::Failed(message)),
        }
    } else {
        Ok(DeltaRound::NotLive)
    };
    release(states, collection, &mut state, &owner).await?;
    result
}

/// Hands a collection's catch-up to the syncer (the renewer's recovery, when no delta round
/// covered the gap): marks it for a full pass with sweep on the syncer's next run. `false`: an
/// invocation of the syncer holds the collection right now (it is catching up already).
pub async fn request_full_pass<S: SyncStateStore>(
    states: &S,
    collection: Collection,
    budget: &Budget,
) -> Result<bool, SyncStateError> {
    let owner = crate::invocation::lease_owner("renewer");
    let Some(mut state) = states.acquire(collection, &owner, budget.now(), budget.lease_until()).await? else {
        return Ok(false);
    };
    state.full_pass_requested(budget.now());
    release(states, collection, &mut state, &owner).await?;
    Ok(true)
}
