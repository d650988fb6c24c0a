//! The renewal plan: a pure function from "now, what we want, what Protime reports, what we
//! stored" to one action per wanted subscription, plus the stray webhooks to report.
//!
//! Webhooks are matched by destination URL and collection, never by id (Protime may change the
//! id on renewal). We hold a webhook's key only if our stored state names that webhook and no
//! renewal was left half-done; anything else is renewed so that a fresh key is stored.

use crate::collection::Collection;
use crate::protime::{Webhook, WebhookStatus};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A subscription we want: one per configured collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub collection: Collection,
    pub destination_url: String,
    pub external_references: String,
}

impl Desired {
    /// `<base>/webhooks/<collection>` for each collection.
    pub fn all(base: &str, collections: &[Collection], external_references: &str) -> Vec<Desired> {
        collections
            .iter()
            .map(|&collection| Desired {
                collection,
                destination_url: destination_url(base, collection),
                external_references: external_references.trim().to_owned(),
            })
            .collect()
    }
}

pub fn destination_url(base: &str, collection: Collection) -> String {
    format!("{}/webhooks/{}", base.trim_end_matches('/'), collection.as_str())
}

/// What the renewer stored about a subscription (in the table, under `subscription#<collection>`;
/// the attribute names are these fields' names in camelCase, times in RFC 3339 UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<WebhookStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_references: Option<String>,
    /// Set before a POST and cleared once the new key is stored: if still set, a run was
    /// interrupted after Protime may have issued a key we never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewing_since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_renewed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resync_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_enabled_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the receiver last acknowledged an event of this collection (it notes it at most once
    /// a minute per instance); the renewer keeps it as it found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RenewReason {
    /// `validUntil` is within the renewal window.
    Expiring,
    /// We cannot be sure we hold its current key (no state, another id, an interrupted renewal).
    KeyUnconfirmed,
    /// Neither Enabled nor Disabled (e.g. Uninitialized).
    NotEnabled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Healthy and not due.
    Keep { webhook: Webhook },
    /// No webhook for this destination and collection.
    Create,
    /// POST again: re-enables/renews and issues a new key.
    Renew { webhook: Webhook, reason: RenewReason },
    /// Disabled: re-sync the gap since `gap_start`, then renew.
    Recover { webhook: Webhook, gap_start: DateTime<Utc> },
    /// External references changed: delete and create (re-syncing first if it was Disabled).
    Recreate { webhook: Webhook, gap_start: Option<DateTime<Utc>> },
}

/// The kind of an [`Action`], as reported, logged and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionKind {
    Keep,
    Create,
    Renew,
    Recover,
    Recreate,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Keep => "keep",
            ActionKind::Create => "create",
            ActionKind::Renew => "renew",
            ActionKind::Recover => "recover",
            ActionKind::Recreate => "recreate",
        }
    }
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Keep { .. } => ActionKind::Keep,
            Action::Create => ActionKind::Create,
            Action::Renew { .. } => ActionKind::Renew,
            Action::Recover { .. } => ActionKind::Recover,
            Action::Recreate { .. } => ActionKind::Recreate,
        }
    }

    /// The reported webhook the action is about (none for a create).
    pub fn webhook(&self) -> Option<&Webhook> {
        match self {
            Action::Keep { webhook }
            | Action::Renew { webhook, .. }
            | Action::Recover { webhook, .. }
            | Action::Recreate { webhook, .. } => Some(webhook),
            Action::Create => None,
        }
    }

    /// Why a renewal is due, where the action is one.
    pub fn reason(&self) -> Option<RenewReason> {
        match self {
            Action::Renew { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub desired: Desired,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub decisions: Vec<Decision>,
    /// Webhooks pointing at our destination base that no wanted subscription uses.
    pub strays: Vec<Webhook>,
    /// Disabled webhooks at a wanted subscription's own destination and collection, beside the
    /// Enabled one that replaced it: ours, and deleted whatever `DELETE_STRAY_WEBHOOKS` says.
    pub leftovers: Vec<Webhook>,
}

/// The inputs of a plan.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub now: DateTime<Utc>,
    pub desired: &'a [Desired],
    pub reported: &'a [Webhook],
    pub stored: &'a HashMap<Collection, SubscriptionState>,
    /// Renew when `validUntil` is this close.
    pub renew_before: Duration,
    /// Our destination base URL, to recognise strays.
    pub destination_base: &'a str,
    /// How far back a recovery re-syncs when nothing tells when delivery stopped.
    pub default_gap: Duration,
}

pub fn plan(input: PlanInput<'_>) -> Plan {
    let mut used = vec![false; input.reported.len()];
    let decisions = input
        .desired
        .iter()
        .map(|desired| {
            let matched = best_match(desired, input.reported, &used);
            if let Some(i) = matched {
                used[i] = true;
            }
            let webhook = matched.map(|i| &input.reported[i]);
            let action = decide(&input, desired, webhook, input.stored.get(&desired.collection));
            Decision { desired: desired.clone(), action }
        })
        .collect();
    let ours = format!("{}/webhooks/", input.destination_base.trim_end_matches('/'));
    let replaced_by_enabled = |w: &Webhook| {
        w.status == WebhookStatus::Disabled
            && input.desired.iter().any(|d| {
                same_subscription(d, w)
                    && input.reported.iter().zip(&used).any(|(other, used)| {
                        *used && other.status == WebhookStatus::Enabled && same_subscription(d, other)
                    })
            })
    };
    let (leftovers, strays) = input
        .reported
        .iter()
        .zip(&used)
        .filter(|(w, used)| !**used && w.destination_url.starts_with(&ours))
        .map(|(w, _)| w.clone())
        .partition(|w| replaced_by_enabled(w));
    Plan { decisions, strays, leftovers }
}

/// Whether a webhook is for this subscription: its destination and collection, never its id.
fn same_subscription(desired: &Desired, webhook: &Webhook) -> bool {
    webhook.collection_name == desired.collection.as_str()
        && webhook.destination_url.trim_end_matches('/') == desired.destination_url
}

/// Among webhooks for the same destination and collection, prefer Enabled, then the latest.
fn best_match(desired: &Desired, reported: &[Webhook], used: &[bool]) -> Option<usize> {
    reported
        .iter()
        .enumerate()
        .filter(|(i, w)| !used[*i] && same_subscription(desired, w))
        .max_by_key(|(_, w)| (w.status == WebhookStatus::Enabled, w.valid_until))
        .map(|(i, _)| i)
}

fn decide(
    input: &PlanInput<'_>,
    desired: &Desired,
    webhook: Option<&Webhook>,
    stored: Option<&SubscriptionState>,
) -> Action {
    let Some(webhook) = webhook else {
        return Action::Create;
    };
    let disabled = webhook.status == WebhookStatus::Disabled;
    let gap_start =
        || stored.and_then(|s| s.last_seen_enabled_at.or(s.last_renewed_at)).unwrap_or(input.now - input.default_gap);
    let references_changed = stored
        .and_then(|s| s.external_references.as_deref())
        .is_some_and(|stored_refs| stored_refs.trim() != desired.external_references);
    if references_changed {
        return Action::Recreate { webhook: webhook.clone(), gap_start: disabled.then(gap_start) };
    }
    match webhook.status {
        WebhookStatus::Disabled => Action::Recover { webhook: webhook.clone(), gap_start: gap_start() },
        WebhookStatus::Enabled => {
            let key_confirmed = stored
                .is_some_and(|s| s.renewing_since.is_none() && s.webhook_id.as_deref() == Some(webhook.id.as_str()));
            if !key_confirmed {
                Action::Renew { webhook: webhook.clone(), reason: RenewReason::KeyUnconfirmed }
            } else if webhook.valid_until - input.now <= input.renew_before {
                Action::Renew { webhook: webhook.clone(), reason: RenewReason::Expiring }
            } else {
                Action::Keep { webhook: webhook.clone() }
            }
        }
        WebhookStatus::Uninitialized | WebhookStatus::Other(_) => {
            Action::Renew { webhook: webhook.clone(), reason: RenewReason::NotEnabled }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const BASE: &str = "https://api.example.com";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn hours(h: i64) -> Duration {
        Duration::hours(h)
    }

    fn webhook(id: &str, collection: Collection, status: WebhookStatus, valid_for: Duration) -> Webhook {
        Webhook {
            id: id.into(),
            valid_until: now() + valid_for,
            status,
            destination_url: destination_url(BASE, collection),
            collection_name: collection.as_str().into(),
        }
    }

    fn state(id: &str) -> SubscriptionState {
        SubscriptionState {
            webhook_id: Some(id.into()),
            external_references: Some(String::new()),
            last_seen_enabled_at: Some(now() - hours(1)),
            last_renewed_at: Some(now() - hours(100)),
            ..Default::default()
        }
    }

    fn run(desired: &[Desired], reported: &[Webhook], stored: &[(Collection, SubscriptionState)]) -> Plan {
        let stored: HashMap<_, _> = stored.iter().cloned().collect();
        plan(PlanInput {
            now: now(),
            desired,
            reported,
            stored: &stored,
            renew_before: hours(48),
            destination_base: BASE,
            default_gap: Duration::days(7),
        })
    }

    /// An action with its webhook's id in place of the whole webhook, to compare in one line.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Expect {
        Keep { webhook_id: String },
        Create,
        Renew { webhook_id: String, reason: RenewReason },
        Recover { webhook_id: String, gap_start: DateTime<Utc> },
        Recreate { webhook_id: String, gap_start: Option<DateTime<Utc>> },
    }

    fn actions(plan: &Plan) -> Vec<Expect> {
        plan.decisions
            .iter()
            .map(|d| match &d.action {
                Action::Keep { webhook } => Expect::Keep { webhook_id: webhook.id.clone() },
                Action::Create => Expect::Create,
                Action::Renew { webhook, reason } => Expect::Renew { webhook_id: webhook.id.clone(), reason: *reason },
                Action::Recover { webhook, gap_start } => {
                    Expect::Recover { webhook_id: webhook.id.clone(), gap_start: *gap_start }
                }
                Action::Recreate { webhook, gap_start } => {
                    Expect::Recreate { webhook_id: webhook.id.clone(), gap_start: *gap_start }
                }
            })
            .collect()
    }

    const C: Collection = Collection::Clockings;

    fn one(references: &str) -> Vec<Desired> {
        Desired::all(BASE, &[C], references)
    }

    #[test]
    fn destinations_are_built_from_the_base() {
        assert_eq!(destination_url("https://x/", Collection::PaidPresences), "https://x/webhooks/paid-presences");
        assert_eq!(Desired::all(BASE, Collection::ALL, "").len(), 18);
    }

    #[test]
    fn a_missing_webhook_is_created() {
        assert_eq!(actions(&run(&one(""), &[], &[])), [Expect::Create]);
        // Even if we remember one: Protime no longer has it.
        assert_eq!(actions(&run(&one(""), &[], &[(C, state("w1"))])), [Expect::Create]);
    }

    #[test]
    fn a_healthy_webhook_is_kept() {
        let w = webhook("w1", C, WebhookStatus::Enabled, hours(49));
        let plan = run(&one(""), std::slice::from_ref(&w), &[(C, state("w1"))]);
        assert_eq!(actions(&plan), [Expect::Keep { webhook_id: "w1".into() }]);
    }

    #[test]
    fn an_action_carries_the_whole_reported_webhook_and_its_reason() {
        let w = webhook("w1", C, WebhookStatus::Enabled, hours(1));
        let plan = run(&one(""), std::slice::from_ref(&w), &[(C, state("w1"))]);
        assert_eq!(plan.decisions[0].action, Action::Renew { webhook: w, reason: RenewReason::Expiring });
        assert_eq!(plan.decisions[0].action.kind(), ActionKind::Renew);
        assert_eq!(plan.decisions[0].action.reason(), Some(RenewReason::Expiring));
    }

    #[test]
    fn a_webhook_near_valid_until_is_renewed() {
        for left in [hours(48), hours(1), hours(-1)] {
            let w = webhook("w1", C, WebhookStatus::Enabled, left);
            assert_eq!(
                actions(&run(&one(""), &[w], &[(C, state("w1"))])),
                [Expect::Renew { webhook_id: "w1".into(), reason: RenewReason::Expiring }],
                "{left}"
            );
        }
    }

    #[test]
    fn a_webhook_whose_key_we_may_not_hold_is_renewed() {
        let w = webhook("w1", C, WebhookStatus::Enabled, hours(500));
        let unconfirmed = Expect::Renew { webhook_id: "w1".into(), reason: RenewReason::KeyUnconfirmed };
        // No state at all (first run against an existing webhook).
        let expected = std::slice::from_ref(&unconfirmed);
        assert_eq!(actions(&run(&one(""), std::slice::from_ref(&w), &[])), expected);
        // State about another webhook id.
        assert_eq!(actions(&run(&one(""), std::slice::from_ref(&w), &[(C, state("w0"))])), expected);
        // A renewal that was interrupted between the POST and storing the key.
        let interrupted = SubscriptionState { renewing_since: Some(now() - hours(1)), ..state("w1") };
        assert_eq!(actions(&run(&one(""), &[w], &[(C, interrupted)])), [unconfirmed]);
    }

    #[test]
    fn a_disabled_webhook_is_recovered_from_when_it_was_last_seen_enabled() {
        let w = webhook("w1", C, WebhookStatus::Disabled, hours(-5));
        let plan = run(&one(""), &[w], &[(C, state("w1"))]);
        assert_eq!(actions(&plan), [Expect::Recover { webhook_id: "w1".into(), gap_start: now() - hours(1) }]);
    }

    #[test]
    fn a_recovery_without_history_re_syncs_the_default_gap() {
        let w = webhook("w1", C, WebhookStatus::Disabled, hours(-5));
        let plan = run(&one(""), std::slice::from_ref(&w), &[]);
        assert_eq!(actions(&plan), [Expect::Recover { webhook_id: "w1".into(), gap_start: now() - Duration::days(7) }]);
        let renewed_only = SubscriptionState { last_seen_enabled_at: None, ..state("w1") };
        let plan = run(&one(""), &[w], &[(C, renewed_only)]);
        assert_eq!(actions(&plan), [Expect::Recover { webhook_id: "w1".into(), gap_start: now() - hours(100) }]);
    }

    #[test]
    fn uninitialized_or_unknown_statuses_are_renewed() {
        for status in [WebhookStatus::Uninitialized, WebhookStatus::Other("Paused".into())] {
            let w = webhook("w1", C, status, hours(500));
            assert_eq!(
                actions(&run(&one(""), &[w], &[(C, state("w1"))])),
                [Expect::Renew { webhook_id: "w1".into(), reason: RenewReason::NotEnabled }]
            );
        }
    }

    #[test]
    fn changed_external_references_recreate_the_webhook() {
        let enabled = webhook("w1", C, WebhookStatus::Enabled, hours(500));
        let plan = run(&one("(people,@badge-number)"), &[enabled], &[(C, state("w1"))]);
        assert_eq!(actions(&plan), [Expect::Recreate { webhook_id: "w1".into(), gap_start: None }]);
        let disabled = webhook("w1", C, WebhookStatus::Disabled, hours(-1));
        let plan = run(&one("(people,@badge-number)"), &[disabled], &[(C, state("w1"))]);
        assert_eq!(actions(&plan), [Expect::Recreate { webhook_id: "w1".into(), gap_start: Some(now() - hours(1)) }]);
        // Same references, differently padded: no change.
        let enabled = webhook("w1", C, WebhookStatus::Enabled, hours(500));
        let refs = SubscriptionState { external_references: Some(" (people,@badge-number) ".into()), ..state("w1") };
        let plan = run(&one("(people,@badge-number)"), &[enabled], &[(C, refs)]);
        assert_eq!(actions(&plan), [Expect::Keep { webhook_id: "w1".into() }]);
    }

    #[test]
    fn webhooks_are_matched_by_destination_and_collection_not_by_id() {
        let mut elsewhere = webhook("w1", C, WebhookStatus::Enabled, hours(500));
        elsewhere.destination_url = "https://other.example.com/webhooks/clockings".into();
        let other_collection = webhook("w2", Collection::Breaks, WebhookStatus::Enabled, hours(500));
        let plan = run(&one(""), &[elsewhere, other_collection.clone()], &[(C, state("w1"))]);
        assert_eq!(actions(&plan), [Expect::Create]);
        // The breaks webhook points at our base but is not wanted: a stray. The other is not ours.
        assert_eq!(plan.strays, [other_collection]);
    }

    #[test]
    fn of_duplicate_webhooks_the_enabled_one_is_used_and_a_disabled_leftover_is_ours_to_delete() {
        let disabled = webhook("old", C, WebhookStatus::Disabled, hours(-100));
        let enabled = webhook("new", C, WebhookStatus::Enabled, hours(500));
        let plan = run(&one(""), &[disabled.clone(), enabled.clone()], &[(C, state("new"))]);
        assert_eq!(actions(&plan), [Expect::Keep { webhook_id: "new".into() }]);
        assert_eq!((plan.leftovers.as_slice(), plan.strays.as_slice()), (std::slice::from_ref(&disabled), &[][..]));
        // A second Enabled one is not a leftover: which is in use cannot be told, so it is a stray.
        let twin = webhook("twin", C, WebhookStatus::Enabled, hours(400));
        let plan = run(&one(""), &[twin.clone(), enabled], &[(C, state("new"))]);
        assert_eq!((plan.leftovers.as_slice(), plan.strays.as_slice()), (&[][..], std::slice::from_ref(&twin)));
    }

    #[test]
    fn every_wanted_collection_gets_exactly_one_decision() {
        let desired = Desired::all(BASE, Collection::ALL, "");
        let reported: Vec<Webhook> = Collection::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 0)
            .map(|(i, &c)| {
                let status = if i % 3 == 1 { WebhookStatus::Enabled } else { WebhookStatus::Disabled };
                webhook(&format!("w{i}"), c, status, hours(500))
            })
            .collect();
        let stored: Vec<_> = Collection::ALL.iter().enumerate().map(|(i, &c)| (c, state(&format!("w{i}")))).collect();
        let plan = run(&desired, &reported, &stored);
        assert_eq!(plan.decisions.len(), 18);
        assert!(plan.strays.is_empty());
        let count = |kind: ActionKind| plan.decisions.iter().filter(|d| d.action.kind() == kind).count();
        assert_eq!((count(ActionKind::Create), count(ActionKind::Keep), count(ActionKind::Recover)), (6, 6, 6));
    }
}
