//! Unit tests of `state`.

use super::*;

#[test]
fn a_failing_list_backs_off_from_an_hour_doubling_to_a_day_and_keeps_its_start() {
    let t = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().to_utc();
    let mut failing: Option<Failing> = None;
    let mut waits = Vec::new();
    for n in 0..7 {
        let now = t + chrono::Duration::hours(n * 30);
        let next = Failing::after(failing.as_ref(), format!("attempt {n}"), now);
        assert!(!Failing::may_retry(Some(&next), now) && Failing::may_retry(Some(&next), next.retry_at));
        waits.push((next.retry_at - now).num_hours());
        assert_eq!((next.since, next.attempts), (t, n as u32 + 1));
        failing = Some(next);
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 24, 24]);
    assert!(Failing::may_retry(None, t), "nothing failing: go");
}
use chrono::TimeZone;

#[test]
fn state_round_trips_through_an_item_and_a_lease_only_item_reads() {
    let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let state = SyncState {
        mode: Some(SyncMode::Delta),
        phase: Some(Phase::Incremental),
        cursor: Some("/delta/clockings?deltaToken=abc".into()),
        kept: Some(super::super::kept::KeptPage {
            object: None,
            body: Some(r#"{"value":[]}"#.into()),
            bytes: 12,
            kept_at: t,
        }),
        cursor_at: Some(t),
        filter: Some("date ge '2025-01-01'".into()),
        filter_template: Some("date ge '{from}'".into()),
        from: NaiveDate::from_ymd_opt(2025, 1, 1),
        to: NaiveDate::from_ymd_opt(2025, 12, 31),
        history: Some(History {
            from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            until: NaiveDate::from_ymd_opt(2024, 6, 1).unwrap(),
            range_to: NaiveDate::from_ymd_opt(2024, 12, 31),
            cursor: Some("/clockings?skipToken=3".into()),
            pages: 7,
            failing: Some(Failing::after(None, "Protime answered 400".into(), t)),
        }),
        requested_from: None,
        pages: 4,
        records: RecordCounts { stored: 3, deleted: 1, ..Default::default() },
        started_at: Some(t),
        initial_completed_at: Some(t),
        last_synced_at: Some(t),
        last_error: None,
        last_error_at: None,
        error_runs: 0,
        delta_expired_at: None,
        pass: Some(FullPass::new(t, false, true)),
        reconcile: Some(Reconcile {
            pass: FullPass::new(t, false, false),
            filter: Some("date ge '2025-01-01'".into()),
            cursor: Some("/clockings?page=2".into()),
            pages: 2,
            failing: None,
        }),
        full_pass_requested_at: Some(t),
        verified_at: Some(t),
        drift: Some(Drift { missing: 1, behind: 2, swept: 3, ..Drift::default() }),
        sweep_held: Some(HeldSweep {
            at: t,
            would_sweep: 250,
            limit: 100,
            unreadable_ids: 0,
            sample_ids: vec!["7".into()],
        }),
        lease_owner: Some("run-1".into()),
        lease_until: Some(t.timestamp_millis()),
    };
    let item = sync_item(Collection::Clockings, &state).unwrap();
    assert_eq!(item[attr::PK], AttributeValue::S("sync#clockings".into()));
    assert_eq!(item["phase"], AttributeValue::S("incremental".into()));
    assert_eq!(item["leaseUntil"], AttributeValue::N(t.timestamp_millis().to_string()));
    assert_eq!(state_from_item(item).unwrap(), state);
    let lease_only = HashMap::from([
        (attr::PK.to_owned(), AttributeValue::S("sync#clockings".into())),
        (attr::COLLECTION.to_owned(), AttributeValue::S("clockings".into())),
        ("leaseOwner".to_owned(), AttributeValue::S("run-1".into())),
        ("leaseUntil".to_owned(), AttributeValue::N("1".into())),
    ]);
    let read = state_from_item(lease_only).unwrap();
    assert_eq!((read.phase, read.lease_until), (None, Some(1)));
}

/// The sync-state item's attributes are what docs/consuming.md lists for it: every field of
/// [`SyncState`], as serde names it (camelCase), is named in its "Subscription and sync state".
#[test]
fn every_sync_state_attribute_is_documented_for_consumers() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(root.join("src/sync/state.rs")).unwrap();
    let start = source.find("pub struct SyncState {").unwrap();
    let end = start + source[start..].find("\n}").unwrap();
    let fields: Vec<String> = source[start..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub ")?.split_once(':').map(|(name, _)| name.to_owned()))
        .map(|snake| {
            let mut parts = snake.split('_');
            let first = parts.next().unwrap_or_default().to_owned();
            parts.fold(first, |mut camel, part| {
                let mut chars = part.chars();
                camel.extend(chars.next().map(|c| c.to_ascii_uppercase()));
                camel.push_str(chars.as_str());
                camel
            })
        })
        .collect();
    assert!(fields.len() > 20 && fields.contains(&"fullPassRequestedAt".to_owned()), "{fields:?}");
    let docs = std::fs::read_to_string(root.join("../docs/consuming.md")).unwrap();
    let section = docs.split("## Subscription and sync state").nth(1).unwrap().split("\n## ").next().unwrap();
    let missing: Vec<&String> = fields.iter().filter(|f| !section.contains(&format!("`{f}`"))).collect();
    assert!(missing.is_empty(), "docs/consuming.md does not describe the sync state's {missing:?}");
}
