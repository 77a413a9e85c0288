//! The journal: every committed event gets the next sequence number — in commit order, without
//! gaps, a write's events together — and nothing of a write that failed remains.

use std::collections::HashMap;

use eddy_bus::{Bus, BusError};
use eddy_core::{BucketName, EventKind, Lineage, NewEvent, Source};
use serde_json::json;

use super::Stores;

fn event(writer: usize, n: usize, part: usize) -> NewEvent {
    NewEvent {
        source: Source::Bucket(BucketName::new("journal").unwrap()),
        kind: EventKind::ObjectCreatedPut,
        key: format!("w{writer}/n{n}"),
        payload: json!({"writer": writer, "n": n, "part": part}),
        lineage: Lineage::root(),
    }
}

/// Appends `parts` events in one write; fails the write after appending when `fail`.
async fn write(bus: &Bus, writer: usize, n: usize, parts: usize, fail: bool) -> bool {
    bus.write((writer, n, parts, fail), |tx, (writer, n, parts, fail)| {
        Box::pin(async move {
            for part in 0..*parts {
                tx.append(event(*writer, *n, part)).await?;
            }
            if *fail {
                return Err(BusError::Decode("told to fail".into()));
            }
            Ok(())
        })
    })
    .await
    .is_ok()
}

async fn all_events(bus: &Bus) -> Vec<eddy_core::Event> {
    let mut events = Vec::new();
    loop {
        let after = events.last().map_or(0, |e: &eddy_core::Event| e.seq);
        let page = bus.read_after(after, 500).await.unwrap();
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

/// Checks the journal holds exactly `expected` events, numbered 1, 2, 3, … with each write's
/// events together and in the order they were appended.
fn check_sequence(events: &[eddy_core::Event], expected: usize) {
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=expected as u64).collect::<Vec<_>>(), "gap-free");
    let mut runs: HashMap<String, Vec<u64>> = HashMap::new();
    for e in events {
        runs.entry(e.key.clone()).or_default().push(e.seq);
        let part = e.payload["part"].as_u64().unwrap();
        assert_eq!(
            runs[&e.key].len() as u64,
            part + 1,
            "a write's events are in append order"
        );
    }
    for (key, seqs) in runs {
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "the events of write {key} are together: {seqs:?}"
        );
    }
}

pub async fn concurrent_writes_are_ordered_and_gap_free(stores: Stores) {
    let bus = stores.bus;
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let bus = bus.clone();
        tasks.push(tokio::spawn(async move {
            let mut appended = 0;
            for n in 0..25 {
                let parts = 1 + (writer + n) % 3;
                assert!(write(&bus, writer, n, parts, false).await);
                appended += parts;
            }
            appended
        }));
    }
    let mut expected = 0;
    for task in tasks {
        expected += task.await.unwrap();
    }
    let events = all_events(&bus).await;
    check_sequence(&events, expected);
    assert_eq!(bus.last_seq(), expected as u64);
}

pub async fn failed_writes_leave_no_events_and_no_gaps(stores: Stores) {
    let bus = stores.bus;
    let mut tasks = Vec::new();
    for writer in 0..6 {
        let bus = bus.clone();
        tasks.push(tokio::spawn(async move {
            let mut appended = 0;
            for n in 0..30 {
                let fail = (writer * 7 + n) % 4 == 0;
                let ok = write(&bus, writer, n, 2, fail).await;
                assert_eq!(ok, !fail);
                if ok {
                    appended += 2;
                }
            }
            appended
        }));
    }
    let mut expected = 0;
    for task in tasks {
        expected += task.await.unwrap();
    }
    check_sequence(&all_events(&bus).await, expected);
}

pub async fn cursors_and_followers(stores: Stores) {
    let bus = stores.bus;
    assert_eq!(bus.cursor("reader").await.unwrap(), None);
    let mut follower = bus.follow(0);
    let waiting = tokio::spawn(async move { follower.next().await.unwrap() });
    write(&bus, 0, 0, 3, false).await;
    let seen = waiting.await.unwrap();
    assert_eq!(
        seen.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3],
        "a follower wakes for a commit"
    );
    bus.save_cursor("reader", 2).await.unwrap();
    assert_eq!(bus.cursor("reader").await.unwrap(), Some(2));
    bus.save_cursor("reader", 3).await.unwrap();
    assert_eq!(bus.cursor("reader").await.unwrap(), Some(3));
    let resumed = bus.read_after(2, 10).await.unwrap();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].seq, 3);
}

/// A cursor noted rather than saved (a reader that only read) costs no transaction of its
/// own: it is saved with the next write, or alone once none comes, or at once for a clean stop;
/// and a noted position never takes a saved cursor back.
pub async fn a_noted_cursor_goes_with_the_next_write_and_never_back(stores: Stores) {
    let bus = stores.bus;
    bus.save_cursor("reader", 5).await.unwrap();
    let steps = [
        (7, 7, "saved with the write that came next"),
        (6, 7, "never lowered"),
    ];
    for (n, (noted, saved, why)) in steps.into_iter().enumerate() {
        bus.note_cursor("reader", noted);
        write(&bus, 0, n, 1, false).await;
        assert_eq!(bus.cursor("reader").await.unwrap(), Some(saved), "{why}");
    }
    // With no write to go with, it is saved on its own.
    bus.note_cursor("reader", 9);
    eddy_tests::wait_for("the noted cursor, saved without a write", || async {
        bus.cursor("reader").await.unwrap() == Some(9)
    })
    .await;
    // A clean stop saves what is noted at once.
    bus.note_cursor("reader", 10);
    bus.save_noted_cursors().await.unwrap();
    assert_eq!(bus.cursor("reader").await.unwrap(), Some(10));
    // A cursor saved further in a write is not taken back by one noted before.
    bus.note_cursor("reader", 11);
    bus.save_cursor("reader", 12).await.unwrap();
    write(&bus, 0, steps.len(), 1, false).await;
    assert_eq!(bus.cursor("reader").await.unwrap(), Some(12));
}

/// Finding the first event at or after each of many times (the activity chart's minute
/// bounds) agrees with reading the whole journal, before, between, at and after its events.
pub async fn events_are_found_by_time_as_a_scan_finds_them(stores: Stores) {
    let bus = stores.bus;
    assert_eq!(
        bus.first_seqs_at_or_after(&[0, 1]).await.unwrap(),
        [None, None]
    );
    for n in 0..12 {
        // Writes of different sizes, some a few milliseconds apart, so that some times have
        // several events and some none.
        write(&bus, 0, n, n % 4 + 1, false).await;
        if n % 3 == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
    }
    let events = all_events(&bus).await;
    let (first, last) = (events[0].time_ms, events.last().unwrap().time_ms);
    let times: Vec<i64> = (first - 2..=last + 2).collect();
    let scanned: Vec<Option<u64>> = times
        .iter()
        .map(|t| events.iter().find(|e| e.time_ms >= *t).map(|e| e.seq))
        .collect();
    assert_eq!(bus.first_seqs_at_or_after(&times).await.unwrap(), scanned);
    for (t, expected) in times.iter().zip(&scanned) {
        assert_eq!(
            bus.first_seq_at_or_after(*t).await.unwrap(),
            *expected,
            "{t}"
        );
    }
}
