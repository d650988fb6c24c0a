//! Why following a collection's pages stopped early ([`Stop`]), and how its part of the run
//! ends then ([`Halt`]).

use super::report::Outcome;
use super::state::SyncStateError;
use crate::protime::ProtimeError;
use crate::records::StoreError;

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
