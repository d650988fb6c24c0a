//! The Protime collections that support webhooks, and the route that names them.

use std::fmt;
use std::str::FromStr;

macro_rules! collections {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// A Protime collection with webhook support. The wire name is kebab-case.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Collection {
            $($variant),+
        }

        impl Collection {
            /// Every collection Protime can send webhook events for.
            pub const ALL: &'static [Collection] = &[$(Collection::$variant),+];

            /// The collection's name as Protime and our routes spell it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Collection::$variant => $name),+
                }
            }
        }

        impl FromStr for Collection {
            type Err = UnknownCollection;

            fn from_str(name: &str) -> Result<Self, Self::Err> {
                match name {
                    $($name => Ok(Collection::$variant),)+
                    _ => Err(UnknownCollection(name.chars().take(64).collect())),
                }
            }
        }
    };
}

collections! {
    Absences => "absences",
    AbsenceDefinitions => "absence-definitions",
    AbsenceGroups => "absence-groups",
    AccessClockings => "access-clockings",
    ActivityDurations => "activity-durations",
    Assignments => "assignments",
    BreakDefinitions => "break-definitions",
    Breaks => "breaks",
    CalculatedTotals => "calculated-totals",
    Clockings => "clockings",
    Contracts => "contracts",
    Counters => "counters",
    CounterDefinitions => "counter-definitions",
    CounterGroups => "counter-groups",
    PaidPresences => "paid-presences",
    People => "people",
    ShiftDefinitions => "shift-definitions",
    WorkInterruptions => "work-interruptions",
}

impl Collection {
    /// Whether the collection's records carry a `date` (`YYYY-MM-DD`): its default sync
    /// filter and its `byDate` index keys are by date; the others are reference data.
    pub fn is_dated(self) -> bool {
        use Collection::*;
        match self {
            Absences | AccessClockings | ActivityDurations | Assignments | Breaks | CalculatedTotals | Clockings
            | Counters | PaidPresences | WorkInterruptions => true,
            AbsenceDefinitions | AbsenceGroups | BreakDefinitions | Contracts | CounterDefinitions | CounterGroups
            | People | ShiftDefinitions => false,
        }
    }

    /// Whether the collection's records carry a `person.id` (every dated collection, and
    /// contracts): the `byPerson` index lists them.
    pub fn has_person(self) -> bool {
        self.is_dated() || self == Collection::Contracts
    }
}

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the webhook collections (kept to 64 characters for messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown collection {0:?}")]
pub struct UnknownCollection(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_eighteen_collections_and_names_round_trip() {
        assert_eq!(Collection::ALL.len(), 18);
        for c in Collection::ALL {
            assert_eq!(c.as_str().parse::<Collection>(), Ok(*c));
            assert_eq!(c.to_string(), c.as_str());
        }
    }

    #[test]
    fn unknown_and_differently_cased_names_are_rejected() {
        assert!("Clockings".parse::<Collection>().is_err());
        assert!("clocking".parse::<Collection>().is_err());
        assert!("".parse::<Collection>().is_err());
        let long = "x".repeat(500);
        let err = long.parse::<Collection>().unwrap_err();
        assert_eq!(err.0.len(), 64);
    }
}
