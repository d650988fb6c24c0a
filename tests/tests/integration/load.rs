//! Concurrency: 8 senders deliver 5,000 events over 500 records, with duplicates and shuffled
//! versions, through the real receiver into moto. Nothing may be lost or regress, and the
//! outcome counts must add up exactly. Counts are bounded; nothing here asserts a time.

use harness::{s, signed, ReceiverFixture};
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::HashMap;
use std::sync::Arc;

const KEY: &str = "load-key";
const RECORDS: u32 = 500;
const EVENTS_PER_RECORD: usize = 10;
const SENDERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicated_shuffled_events_converge_on_the_highest_version() {
    let fixture = Arc::new(ReceiverFixture::new(KEY).await);
    let mut rng = rand::rng();

    // Each record gets 10 events with versions drawn from 1..=12 (so duplicates occur), and
    // its highest drawn version is what must be stored in the end.
    let mut events = Vec::new();
    let mut highest: HashMap<u32, u32> = HashMap::new();
    for id in 1..=RECORDS {
        for _ in 0..EVENTS_PER_RECORD {
            let version = rng.random_range(1..=12u32);
            events.push((id, version));
            let top = highest.entry(id).or_default();
            *top = (*top).max(version);
        }
    }
    events.shuffle(&mut rng);
    assert_eq!(events.len(), 5_000);

    let senders: Vec<_> = (0..SENDERS)
        .map(|n| {
            let mine: Vec<(u32, u32)> = events.iter().skip(n).step_by(SENDERS).copied().collect();
            let fixture = fixture.clone();
            tokio::spawn(async move {
                let mut outcomes: HashMap<String, usize> = HashMap::new();
                for (id, version) in mine {
                    let body = format!(r#"{{"id":{id},"changeVersion":"{version}","sender":{n}}}"#);
                    let (status, answer) = fixture.send(signed("clockings", &body, KEY)).await;
                    assert_eq!(status, 200, "{answer}");
                    let outcome = answer["results"][0]["outcome"].as_str().unwrap().to_owned();
                    *outcomes.entry(outcome).or_default() += 1;
                }
                outcomes
            })
        })
        .collect();
    let mut totals: HashMap<String, usize> = HashMap::new();
    for sender in senders {
        for (outcome, n) in sender.await.expect("sender") {
            *totals.entry(outcome).or_default() += n;
        }
    }

    let items = fixture.items().await;
    assert_eq!(items.len(), RECORDS as usize, "every record is stored, none twice");
    let mut regressions = 0;
    for item in &items {
        let id: u32 = item["id"].as_n().unwrap().parse().unwrap();
        if s(item, "changeVersion") != highest[&id].to_string() {
            regressions += 1;
        }
    }
    assert_eq!(regressions, 0, "every record holds its highest version");

    let (stored, duplicate, stale) = (totals["stored"], totals.get("duplicate").copied().unwrap_or(0), totals["stale"]);
    assert_eq!(stored + duplicate + stale, 5_000, "{totals:?}");
    assert!(totals.keys().all(|k| ["stored", "duplicate", "stale"].contains(&k.as_str())), "{totals:?}");
    // Each record was stored at least once; a write only succeeds with a new maximum, so a
    // record with 10 events cannot have been stored more than 10 times.
    assert!((RECORDS as usize..=5_000).contains(&stored), "{totals:?}");
    assert!(duplicate > 0 && stale > 0, "the mix must exercise both skips: {totals:?}");
}
