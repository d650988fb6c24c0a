//! What an acknowledged request did: each event's [`ItemOutcome`] (written or quarantined) and
//! the request's [`Received`], from which the answer, the log lines and the metrics are made.

use crate::collection::Collection;
use crate::records::event::{ChangeType, Event};
use crate::records::PutOutcome;
use crate::signing::keys::AcceptedKey;

/// What became of one event of an acknowledged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Decided by the conditional write: stored, duplicate or stale.
    Written(PutOutcome),
    /// It can never be stored as it is: kept byte for byte in the quarantine under `key`.
    Quarantined { key: String, reason: &'static str },
}

impl EventOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventOutcome::Written(put) => put.as_str(),
            EventOutcome::Quarantined { .. } => "quarantined",
        }
    }
}

/// The outcome of one event, as answered and logged. An event that could not be read has no
/// id, version or type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemOutcome {
    pub id: Option<String>,
    pub change_version: Option<String>,
    pub change_type: Option<ChangeType>,
    pub outcome: EventOutcome,
}

impl ItemOutcome {
    pub(super) fn of(event: &Event, outcome: EventOutcome) -> Self {
        ItemOutcome {
            id: Some(event.id.as_str().to_owned()),
            change_version: Some(event.change_version.clone()),
            change_type: Some(event.change_type),
            outcome,
        }
    }

    pub(super) fn unread(outcome: EventOutcome) -> Self {
        ItemOutcome { id: None, change_version: None, change_type: None, outcome }
    }

    pub(super) fn is(&self, put: PutOutcome) -> bool {
        self.outcome == EventOutcome::Written(put)
    }
}

/// What an acknowledged request did.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub collection: Collection,
    pub accepted: AcceptedKey,
    pub outcomes: Vec<ItemOutcome>,
    /// The whole body was one unstorable event or unusable, and was quarantined (answered 202).
    pub whole_body_quarantined: bool,
    /// Time spent in the conditional writes.
    pub store_ms: f64,
}
