//! What making a batch's event costs: 100 DynamoDB-Streams records, as a handler in another
//! process reads them — built as `serde_json::Value`s and serialised (the baseline: how every
//! batch was made before), against written straight as text from their events
//! (`DynamoDbRecord`, what eddy does now) — and as the values an in-process handler is given.
//!
//! Run with `cargo bench -p eddy-tests --bench events`. Each figure is the median of `RUNS`
//! runs of `BATCHES` batches, the forms alternating.

use std::hint::black_box;
use std::time::Instant;

use eddy_core::{Event, EventId, EventKind, Lineage, Source, TableName};
use eddy_events::{DynamoDbRecord, dynamodb_record, envelope};
use eddy_tests::bench::{machine, median};
use serde_json::{Value, json};

const RUNS: usize = 7;
const BATCHES: usize = 2_000;
const RECORDS: u64 = 100;
const LABEL: &str = "2026-11-25T10:00:00.000";

/// Row changes like the batches bench's (`{"id": N, "v": N}`), with a string and a nested map.
fn events() -> Vec<Event> {
    (0..RECORDS)
        .map(|i| Event {
            seq: 1_000 + i,
            id: EventId::generate(),
            source: Source::Table(TableName::new("orders").unwrap()),
            kind: EventKind::RowModify,
            key: i.to_string(),
            time_ms: 1_796_000_000_000 + i as i64,
            payload: json!({
                "keys": {"id": i},
                "new": {"id": i, "v": i, "status": "shipped", "meta": {"tags": ["a", "b"]}},
                "old": {"id": i, "v": i - i.min(1), "status": "paid", "meta": {"tags": []}},
            }),
            lineage: Lineage::root(),
        })
        .collect()
}

/// Microseconds per batch of `make` over `BATCHES` batches.
fn per_batch(mut make: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..BATCHES {
        make();
    }
    started.elapsed().as_secs_f64() * 1e6 / BATCHES as f64
}

fn main() {
    println!("{}", machine());
    let events = events();
    let as_values = || -> Vec<Value> {
        events
            .iter()
            .map(|e| dynamodb_record(e, LABEL).unwrap())
            .collect()
    };
    let (mut baseline, mut text, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        baseline.push(per_batch(|| {
            let records = as_values();
            black_box(serde_json::to_vec(&envelope(records)).unwrap());
        }));
        text.push(per_batch(|| {
            let mut json = br#"{"Records":["#.to_vec();
            for (i, e) in events.iter().enumerate() {
                if i > 0 {
                    json.push(b',');
                }
                serde_json::to_writer(&mut json, &DynamoDbRecord::new(e, LABEL).unwrap()).unwrap();
            }
            json.extend_from_slice(b"]}");
            black_box(json);
        }));
        values.push(per_batch(|| {
            black_box(as_values());
        }));
    }
    let (baseline, text, values) = (median(baseline), median(text), median(values));
    println!(
        "| a batch of {RECORDS} DynamoDB-Streams records | µs per batch | against the baseline |"
    );
    println!("| --- | --- | --- |");
    println!("| as values, then serialised (baseline) | {baseline:.1} | 1.00× |");
    println!(
        "| written straight as text (for a handler in another process) | {text:.1} | {:.2}× faster |",
        baseline / text
    );
    println!(
        "| as values (for an in-process handler) | {values:.1} | {:.2}× faster |",
        baseline / values
    );
}
