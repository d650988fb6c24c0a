//! Re-sync: fetch a collection through Protime's list endpoint and write every record through
//! the same conditional store as the receiver, so re-sync and webhooks converge whatever order
//! they arrive in.

use crate::collection::Collection;
use crate::protime::LinksFollowed;
use crate::protime::{ProtimeError, RecordPages};
use crate::records::quarantine::Quarantine;
use crate::records::{RecordStore, Source, StoreError, StoredHeads};
use crate::sync::apply::{apply_records, RecordCounts};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::collections::HashMap;

/// Protime caps date-range filters (e.g. paid-presences) at one year.
const MAX_WINDOW_DAYS: i64 = 365;
/// Pages followed at most for one filter: a guard against a link that never ends.
const MAX_PAGES: usize = 100_000;

/// The default filter of collections whose records carry a `date`.
pub const DATE_FILTER: &str = "date ge '{from}' and date le '{to}'";

/// How a collection is fetched for re-sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResyncFilter {
    /// The whole collection, unfiltered (reference data: people, definitions, …).
    All,
    /// A filter template with `{from}` and `{to}` (YYYY-MM-DD), fetched in windows of at most a year.
    DateWindow(String),
}

impl ResyncFilter {
    /// The built-in choice: collections of dated records use [`DATE_FILTER`].
    pub fn default_for(collection: Collection) -> Self {
        use Collection::*;
        match collection {
            Absences | AccessClockings | ActivityDurations | Assignments | Breaks | CalculatedTotals | Clockings
            | Counters | PaidPresences | WorkInterruptions => ResyncFilter::DateWindow(DATE_FILTER.into()),
            AbsenceDefinitions | AbsenceGroups | BreakDefinitions | Contracts | CounterDefinitions | CounterGroups
            | People | ShiftDefinitions => ResyncFilter::All,
        }
    }

    /// `all`/`none`/empty → unfiltered; anything else is a template.
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "" | "all" | "none" => ResyncFilter::All,
            template => ResyncFilter::DateWindow(template.to_owned()),
        }
    }
}

/// Re-sync settings: how far around the gap to fetch, and per-collection filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncSettings {
    /// Fetch records dated this long before the gap started (changes reach back in time).
    pub lookback: Duration,
    /// …and this long after now (planned absences, future shifts).
    pub lookahead: Duration,
    pub overrides: HashMap<Collection, ResyncFilter>,
}

impl Default for ResyncSettings {
    fn default() -> Self {
        ResyncSettings { lookback: Duration::days(31), lookahead: Duration::days(92), overrides: HashMap::new() }
    }
}

impl ResyncSettings {
    fn filter(&self, collection: Collection) -> ResyncFilter {
        self.overrides.get(&collection).cloned().unwrap_or_else(|| ResyncFilter::default_for(collection))
    }

    /// The filters to fetch for a gap that started at `gap_start`: one per window of at most a
    /// year, or a single unfiltered fetch.
    pub fn filters(&self, collection: Collection, gap_start: DateTime<Utc>, now: DateTime<Utc>) -> Vec<Option<String>> {
        match self.filter(collection) {
            ResyncFilter::All => vec![None],
            ResyncFilter::DateWindow(template) => {
                let first = (gap_start - self.lookback).date_naive();
                let last = (now + self.lookahead).date_naive();
                date_windows(first, last)
                    .into_iter()
                    .map(|(from, to)| {
                        Some(
                            template
                                .replace("{from}", &from.format("%Y-%m-%d").to_string())
                                .replace("{to}", &to.format("%Y-%m-%d").to_string()),
                        )
                    })
                    .collect()
            }
        }
    }
}

/// Splits `first..=last` into consecutive windows of at most [`MAX_WINDOW_DAYS`] days.
fn date_windows(first: NaiveDate, last: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    let mut windows = Vec::new();
    let mut from = first;
    while from <= last {
        let to = (from + Duration::days(MAX_WINDOW_DAYS - 1)).min(last);
        windows.push((from, to));
        from = to + Duration::days(1);
    }
    windows
}

/// What a re-sync did (the same counts as a sync's pages).
pub type ResyncCounts = RecordCounts;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResyncError {
    #[error("fetching {collection} failed: {source}")]
    Fetch { collection: Collection, source: ProtimeError },
    #[error("writing {collection} failed: {source}")]
    Store { collection: Collection, source: StoreError },
    #[error("{collection}: more than {MAX_PAGES} pages; giving up")]
    TooManyPages { collection: Collection },
}

/// Fetches every page for each filter, with the subscription's external references (so the
/// records carry them as webhook events do), and writes the records that are new or newer.
pub async fn resync<P: RecordPages, R: RecordStore + StoredHeads, Q: Quarantine>(
    client: &P,
    store: &R,
    quarantine: Option<&Q>,
    collection: Collection,
    filters: &[Option<String>],
    external_references: &str,
    counts: &mut ResyncCounts,
) -> Result<(), ResyncError> {
    for filter in filters {
        let mut link = Some(client.list_url(collection, filter.as_deref(), false, external_references));
        let mut pages = 0;
        let mut followed = LinksFollowed::default();
        // An empty page is not the end: only a missing nextLink is.
        while let Some(current) = link.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(ResyncError::TooManyPages { collection });
            }
            followed.first_time(&current).map_err(|source| ResyncError::Fetch { collection, source })?;
            let page = client.fetch_page(&current).await.map_err(|source| ResyncError::Fetch { collection, source })?;
            let envelope = page.envelope().map_err(|source| ResyncError::Fetch { collection, source })?;
            *counts += apply_records(store, quarantine, collection, &envelope.records, Source::Resync, true)
                .await
                .map_err(|source| ResyncError::Store { collection, source })?;
            link = envelope.next_link;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn windows_never_exceed_a_year_and_cover_the_range_exactly() {
        assert_eq!(date_windows(day(2026, 1, 1), day(2026, 1, 1)), [(day(2026, 1, 1), day(2026, 1, 1))]);
        let windows = date_windows(day(2024, 1, 1), day(2026, 6, 30));
        assert_eq!(windows.first().unwrap().0, day(2024, 1, 1));
        assert_eq!(windows.last().unwrap().1, day(2026, 6, 30));
        for pair in windows.windows(2) {
            assert_eq!(pair[0].1 + Duration::days(1), pair[1].0);
        }
        assert!(windows.iter().all(|(f, t)| (*t - *f).num_days() < MAX_WINDOW_DAYS));
        assert!(date_windows(day(2026, 2, 1), day(2026, 1, 1)).is_empty());
    }

    #[test]
    fn dated_collections_get_a_window_around_the_gap() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let settings = ResyncSettings::default();
        let filters = settings.filters(Collection::PaidPresences, now - Duration::days(2), now);
        assert_eq!(filters, [Some("date ge '2026-01-27' and date le '2026-06-01'".to_owned())]);
        assert_eq!(settings.filters(Collection::People, now, now), [None]);
    }

    #[test]
    fn filters_can_be_overridden_per_collection() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let settings = ResyncSettings {
            overrides: HashMap::from([
                (Collection::People, ResyncFilter::parse("hireDate le '{to}'")),
                (Collection::Clockings, ResyncFilter::parse("all")),
            ]),
            lookback: Duration::days(0),
            lookahead: Duration::days(0),
        };
        assert_eq!(settings.filters(Collection::People, now, now), [Some("hireDate le '2026-03-01'".to_owned())]);
        assert_eq!(settings.filters(Collection::Clockings, now, now), [None]);
    }
}
