//! The memory of the sweep's id set for one collection (not a test): inserts N ids into
//! `SeenIds` — Protime-like dense integers, then the same number spread at random over the u32
//! range (the worst case for the bitmap) — and prints the saved size, the process's peak RSS
//! (`VmHWM`, reset before each round) and the time to insert and to look every id up.
//!
//! Usage: cargo run --release -p integration-tests --example seen_ids [N...]   (default 10000000)

use protime_webhooks::sync::sweep::SeenIds;
use std::time::Instant;

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok()).unwrap_or(0)
}

fn round(label: &str, ids: impl Iterator<Item = u64> + Clone) {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kb("VmRSS:");
    let started = Instant::now();
    let mut seen = SeenIds::default();
    let mut text = String::new();
    for id in ids.clone() {
        text.clear();
        std::fmt::Write::write_fmt(&mut text, format_args!("{id}")).unwrap();
        seen.insert(&text);
    }
    let inserted = started.elapsed();
    let started = Instant::now();
    let found = ids.filter(|id| seen.contains(&id.to_string())).count() as u64;
    let looked_up = started.elapsed();
    assert_eq!(found, seen.len());
    println!(
        "{label}: {} ids, saved {:.1} MB, peak RSS +{:.1} MB, insert {:.2} s, look up {:.2} s",
        seen.len(),
        seen.saved_bytes() as f64 / 1e6,
        status_kb("VmHWM:").saturating_sub(before) as f64 / 1e3,
        inserted.as_secs_f64(),
        looked_up.as_secs_f64(),
    );
}

fn main() {
    let counts: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    for n in if counts.is_empty() { vec![10_000_000] } else { counts } {
        round("dense", 1_000_000..1_000_000 + n);
        // A fixed-step walk over the u32 range: as spread as random ids, reproducible.
        let step = (u32::MAX as u64 / n).max(1);
        round("spread", (0..n).map(move |i| i * step + (i * 2_654_435_761 % step.max(2))));
    }
}
