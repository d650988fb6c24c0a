//! The receiver's hot path without I/O: verify the signature, parse the body, build the
//! DynamoDB items. Run with `cargo bench -p protime-webhooks --bench hot_path`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use protime_webhooks::records::event::parse_body;
use protime_webhooks::records::item::{record_item, Source};
use protime_webhooks::signing::signature::{authorization_header, parse_authorization, verify, SigningKey};
use protime_webhooks::Collection;
use std::hint::black_box;

/// A clocking event padded with a note field to about `size` bytes.
fn event(id: usize, size: usize) -> String {
    let base = format!(
        r#"{{"changeVersion":"{id}","id":{id},"person":{{"id":123,"externalReferences":{{"@badge-number":"6767676"}}}},"date":"2026-11-23","timeOfDayInMinutes":480,"kind":"InOut","terminal":{{"id":4}},"note":""}}"#
    );
    let padding = size.saturating_sub(base.len());
    base.replace(r#""note":"""#, &format!(r#""note":"{}""#, "x".repeat(padding)))
}

fn hot_path(key: &SigningKey, header: &str, body: &[u8]) -> usize {
    let signature = parse_authorization(Some(header.as_bytes())).expect("header");
    verify(key, body, &signature).expect("signature");
    let events = parse_body(body).expect("events");
    events.iter().map(|e| record_item(Collection::Clockings, e, Source::Webhook, "2026-11-23T12:00:00Z").len()).sum()
}

fn bench(c: &mut Criterion) {
    let key = SigningKey::new("0123456789abcdef0123456789abcdef");
    let mut bodies: Vec<(String, String)> =
        [300, 2 * 1024, 64 * 1024].iter().map(|&size| (format!("{size} B event"), event(1, size))).collect();
    let batch: Vec<String> = (0..100).map(|i| event(i, 300)).collect();
    bodies.push(("100-event array".into(), format!("[{}]", batch.join(","))));

    let mut group = c.benchmark_group("verify_parse_build");
    for (name, body) in &bodies {
        let header = authorization_header(&key, body.as_bytes());
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| hot_path(black_box(&key), black_box(&header), black_box(body.as_bytes())))
        });
    }
    group.finish();

    // Each stage alone, for a typical event: where the time goes.
    let body = event(1, 300);
    let header = authorization_header(&key, body.as_bytes());
    let signature = parse_authorization(Some(header.as_bytes())).unwrap();
    let events = parse_body(body.as_bytes()).unwrap();
    let mut stages = c.benchmark_group("stages_300B");
    stages.bench_function("parse_header_and_verify", |b| {
        b.iter(|| {
            let sig = parse_authorization(Some(black_box(header.as_bytes()))).unwrap();
            verify(black_box(&key), black_box(body.as_bytes()), &sig).unwrap()
        })
    });
    stages
        .bench_function("verify_only", |b| b.iter(|| verify(black_box(&key), black_box(body.as_bytes()), &signature)));
    stages.bench_function("parse_body", |b| b.iter(|| parse_body(black_box(body.as_bytes())).unwrap()));
    stages.bench_function("build_item", |b| {
        b.iter(|| record_item(Collection::Clockings, black_box(&events[0]), Source::Webhook, "2026-11-23T12:00:00Z"))
    });
    stages.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
