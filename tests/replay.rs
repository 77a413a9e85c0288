//! Replays through the libraries: a range of the journal, by sequence number or by time, is
//! delivered again to one trigger — the events it matches, no others, each key's in order —
//! marked with the replay's id in the handler's event and among the event's deliveries; a
//! replay to a trigger that does not exist, or of a range that runs backwards, is refused and
//! makes nothing.

use std::sync::Arc;

use eddy_core::{FunctionName, Lineage, TableName};
use eddy_executor::*;
use eddy_tests::{Recorder, app, start_executor, start_executor_with, wait_for};
use serde_json::json;

const APP: &str = "
tables:
  - {name: orders, primary_key: id, columns: {id: integer, status: text}}
  - {name: notes, primary_key: id, columns: {id: integer}}
functions: [{name: audit, runtime: in_process}, {name: other, runtime: in_process}]
triggers:
  - {name: audit-orders, function: audit, source: table/orders, events: ['*'], ordering: per_key}
  - {name: other-orders, function: other, source: table/orders, events: [row:insert]}
";

async fn settled(executor: &Executor, total: u64) -> bool {
    let c = executor.counts().await.unwrap();
    c.total() == total && c.done == total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_delivers_its_range_again_to_its_trigger_only() {
    let dir = tempfile::tempdir().unwrap();
    let (eddy, executor) =
        start_executor(dir.path(), app(dir.path(), APP), Arc::new(SystemClock)).await;
    let (audit, other) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    executor.register(FunctionName::new("audit").unwrap(), audit.clone());
    executor.register(FunctionName::new("other").unwrap(), other.clone());
    let orders = TableName::new("orders").unwrap();
    // Events 1–3: orders 1 and 2 inserted, order 1 paid; 4: a note (no trigger); 5: order 3.
    let insert = |table: &'static str, row| {
        let table = TableName::new(table).unwrap();
        let tables = eddy.tables.clone();
        async move { tables.insert(&table, vec![row], Lineage::root()).await }
    };
    insert("orders", json!({"id": 1, "status": "new"}))
        .await
        .unwrap();
    insert("orders", json!({"id": 2, "status": "new"}))
        .await
        .unwrap();
    let key = eddy_tables::Key::new(&eddy.tables.schema(&orders).unwrap(), vec![json!(1)]).unwrap();
    eddy.tables
        .update(&orders, key, json!({"status": "paid"}), Lineage::root())
        .await
        .unwrap();
    insert("notes", json!({"id": 1})).await.unwrap();
    // Event 5 in a millisecond of its own, so that a replay from its time starts at it: a
    // commit takes well under a millisecond, and a time names every event committed in it.
    let fourth = eddy.bus.event_at(4).await.unwrap().unwrap();
    while eddy_bus::now_ms() <= fourth.time_ms {
        tokio::time::sleep(std::time::Duration::from_micros(100)).await;
    }
    insert("orders", json!({"id": 3, "status": "new"}))
        .await
        .unwrap();
    // 4 deliveries to audit, 3 to other.
    wait_for("the original deliveries", || settled(&executor, 7)).await;
    let before_other = other.count();

    let replay = executor
        .replay(
            "audit-orders",
            JournalPoint::Seq(1),
            Some(JournalPoint::Seq(4)),
        )
        .await
        .unwrap();
    assert_eq!((replay.from_seq, replay.to_seq), (1, 4));
    wait_for("the replay", || settled(&executor, 10)).await;
    let shown = &executor.replays().await.unwrap()[0];
    assert_eq!(
        (shown.id, shown.next_seq, shown.events),
        (replay.id, 5, 3),
        "events 1–3 match audit-orders; 4 is a note"
    );
    assert!(shown.finished_ms.is_some());
    assert_eq!(other.count(), before_other, "another trigger gets nothing");
    let replayed: Vec<_> = audit.events()[4..].to_vec();
    let seen: Vec<(String, String, i64)> = replayed
        .iter()
        .map(|e| {
            let record = &e["Records"][0];
            (
                record["dynamodb"]["Keys"]["id"]["N"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                record["eventName"].as_str().unwrap().to_string(),
                e["eddyReplay"].as_i64().unwrap(),
            )
        })
        .collect();
    let order_1: Vec<&str> = seen
        .iter()
        .filter(|(id, _, _)| id == "1")
        .map(|(_, name, _)| name.as_str())
        .collect();
    assert_eq!(order_1, ["INSERT", "MODIFY"], "a key's events in order");
    assert!(seen.iter().all(|(_, _, r)| *r == replay.id));
    assert!(
        audit.events()[..4]
            .iter()
            .all(|e| e.get("eddyReplay").is_none()),
        "originals are not marked"
    );
    let of_first = executor.deliveries_of(1).await.unwrap();
    assert_eq!(
        of_first
            .iter()
            .map(|d| (d.trigger.as_str(), d.replay, d.state.as_str()))
            .collect::<Vec<_>>(),
        [
            ("audit-orders", 0, "done"),
            ("other-orders", 0, "done"),
            ("audit-orders", replay.id, "done")
        ]
    );

    // By time: from the moment of event 5 to now, only it.
    let fifth = eddy.bus.event_at(5).await.unwrap().unwrap();
    let by_time = executor
        .replay("audit-orders", JournalPoint::Time(fifth.time_ms), None)
        .await
        .unwrap();
    assert!(by_time.id > replay.id);
    assert_eq!((by_time.from_seq, by_time.to_seq), (5, 5));
    wait_for("the second replay", || settled(&executor, 11)).await;

    // Refused, and nothing made.
    let refused = executor
        .replay("nope", JournalPoint::Seq(1), None)
        .await
        .unwrap_err();
    assert!(matches!(refused, ExecError::NoSuchTrigger(_)), "{refused}");
    let backwards = executor
        .replay(
            "audit-orders",
            JournalPoint::Seq(4),
            Some(JournalPoint::Seq(2)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        backwards.to_string(),
        "cannot replay: the range starts at 4, after its end 2"
    );
    assert_eq!(executor.counts().await.unwrap().total(), 11);
    executor.shutdown().await;
}

/// A replay's deliveries are made as its function has room: an event that arrives while a
/// large replay runs is delivered long before the replay is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_replay_lets_live_events_through() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = "
tables: [{name: orders, primary_key: id, columns: {id: integer}}]
functions: [{name: slow, runtime: in_process, concurrency: 2}]
triggers: [{name: all, function: slow, source: table/orders, events: [row:insert]}]
";
    let (eddy, executor) =
        start_executor(dir.path(), app(dir.path(), manifest), Arc::new(SystemClock)).await;
    let slow = Arc::new(Recorder::default());
    executor.register(FunctionName::new("slow").unwrap(), slow.clone());
    let orders = TableName::new("orders").unwrap();
    let rows: Vec<_> = (0..200).map(|id| json!({ "id": id })).collect();
    eddy.tables
        .insert(&orders, rows, Lineage::root())
        .await
        .unwrap();
    wait_for("the originals", || settled(&executor, 200)).await;

    let replay = executor
        .replay("all", JournalPoint::Seq(1), None)
        .await
        .unwrap();
    wait_for("the replay to start", || async { slow.count() > 200 }).await;
    eddy.tables
        .insert(&orders, vec![json!({"id": 1000})], Lineage::root())
        .await
        .unwrap();
    let live = eddy.bus.last_seq();
    wait_for("the live event", || async {
        executor
            .deliveries_of(live)
            .await
            .unwrap()
            .iter()
            .any(|d| d.state == "done")
    })
    .await;
    let progress = executor.replays().await.unwrap()[0].clone();
    assert_eq!(progress.id, replay.id);
    assert!(
        progress.finished_ms.is_none() && progress.events < 200,
        "the live event did not wait for the replay: {progress:?}"
    );
    wait_for("the whole replay", || settled(&executor, 401)).await;
    assert_eq!(executor.replays().await.unwrap()[0].events, 200);
    executor.shutdown().await;
}

/// With a retention, the journal removes old events — but none a delivery still needs, nor
/// any after it — and a replay that asks for removed events is told what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_keeps_what_its_retention_and_its_deliveries_need() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = "
journal: {retain: 1h}
tables:
  - {name: orders, primary_key: id, columns: {id: integer}}
  - {name: jobs, primary_key: id, columns: {id: integer}}
functions: [{name: ok, runtime: in_process}, {name: stuck, runtime: in_process}]
triggers:
  - {name: on-orders, function: ok, source: table/orders, events: [row:insert]}
  - {name: on-jobs, function: stuck, source: table/jobs, events: [row:insert], retry: {max_attempts: 3, backoff: 5h..5h}}
";
    let clock = ManualClock::starting_now();
    // One event per step: a compaction's backlog goes over several transactions.
    let config = ExecutorConfig {
        compaction_step: 1,
        ..ExecutorConfig::default()
    };
    let (eddy, executor) = start_executor_with(
        dir.path(),
        app(dir.path(), manifest),
        Arc::new(clock.clone()),
        config,
    )
    .await;
    let (ok, stuck) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    *stuck.failing.lock().unwrap() = true;
    executor.register(FunctionName::new("ok").unwrap(), ok.clone());
    executor.register(FunctionName::new("stuck").unwrap(), stuck.clone());
    let insert = |table: &'static str, id: i64| {
        let table = TableName::new(table).unwrap();
        let tables = eddy.tables.clone();
        async move {
            tables
                .insert(&table, vec![json!({ "id": id })], Lineage::root())
                .await
                .unwrap()
        }
    };
    // Events 1–3 delivered; 4 fails and waits five hours for its retry; 5 delivered.
    for id in 1..=3 {
        insert("orders", id).await;
    }
    insert("jobs", 1).await;
    insert("orders", 4).await;
    wait_for("the deliveries", || async {
        let c = executor.counts().await.unwrap();
        c.done == 4 && c.ready == 1
    })
    .await;

    let ok_name = FunctionName::new("ok").unwrap();
    let answered = executor.invocations(Some(&ok_name), None).await.unwrap();
    assert_eq!(answered.len(), 4);
    assert!(answered.iter().all(|r| r.response.is_some()));
    let usage = || async {
        (
            executor.invocation_totals().await.unwrap(),
            executor.invocation_days().await.unwrap(),
        )
    };
    let whole = usage().await;

    // Two hours on: every event is past the hour's retention; 4 is still needed.
    clock.advance(std::time::Duration::from_secs(2 * 3600));
    wait_for("the compaction", || async {
        eddy.bus.event_at(3).await.unwrap().is_none()
    })
    .await;
    for seq in [1, 2] {
        assert!(eddy.bus.event_at(seq).await.unwrap().is_none());
    }
    for seq in [4, 5] {
        assert!(
            eddy.bus.event_at(seq).await.unwrap().is_some(),
            "{seq} is kept"
        );
    }
    let counts = executor.counts().await.unwrap();
    assert_eq!(
        (counts.done, counts.ready),
        (1, 1),
        "the done deliveries of removed events went with them"
    );
    // Invocations older than the retention keep their records but not their answers and logs
    // (event 5's among them: what counts is when an invocation started).
    wait_for("the logs' removal", || async {
        let records = executor.invocations(Some(&ok_name), None).await.unwrap();
        records.len() == 4
            && records
                .iter()
                .all(|r| r.response.is_none() && r.output.is_empty())
    })
    .await;
    assert_eq!(usage().await, whole);
    let refused = executor
        .replay("on-orders", JournalPoint::Seq(2), None)
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "cannot replay: events up to 3 were removed by the journal's retention (the journal \
         keeps 3600s); the oldest kept is 4"
    );
    executor
        .replay("on-orders", JournalPoint::Seq(4), None)
        .await
        .unwrap();

    // Once nothing needs them, every event goes but the newest: sequence numbers go on from it.
    *stuck.failing.lock().unwrap() = false;
    clock.advance(std::time::Duration::from_secs(5 * 3600));
    wait_for("everything to settle", || async {
        let c = executor.counts().await.unwrap();
        c.ready == 0 && c.leased == 0
    })
    .await;
    clock.advance(std::time::Duration::from_secs(60));
    wait_for("the second compaction", || async {
        eddy.bus.event_at(4).await.unwrap().is_none()
    })
    .await;
    assert!(
        eddy.bus.event_at(5).await.unwrap().is_some(),
        "the newest stays"
    );
    let counts = executor.counts().await.unwrap();
    // Dead: the jobs row's delivery (its event removed) and the replay's of event 5, both
    // older than their trigger's maximum event age by now.
    assert_eq!(
        (counts.done, counts.dead),
        (1, 2),
        "the newest event's done delivery stays, and so do dead letters, a removed event's too"
    );
    let replayed = executor.dead_letters(Some(&ok_name)).await.unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!(
        (replayed[0].event_seq, replayed[0].reason),
        (5, eddy_executor::DeadReason::EventAgeExceeded)
    );
    insert("orders", 5).await;
    assert_eq!(eddy.bus.last_seq(), 6);

    // The jobs row's delivery ended dead (too old by its retry); its event is gone now, so a
    // redrive dead-letters it again, saying why, instead of leasing it for ever.
    let stuck_name = FunctionName::new("stuck").unwrap();
    let dead = executor.dead_letters(Some(&stuck_name)).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(executor.redrive(dead[0].delivery_id).await.unwrap());
    wait_for("the redriven delivery to end", || async {
        let dead = executor.dead_letters(Some(&stuck_name)).await.unwrap();
        dead.len() == 1
            && dead[0].last_error.as_deref()
                == Some("event 4 was removed by the journal's retention")
    })
    .await;

    // A day on, the records of what is past the retention are summed into daily usage and go
    // (event 5's too, now that it is removed), but for those a kept delivery is explained by:
    // the dead letter's attempt. Usage is whole.
    let whole = usage().await;
    clock.advance(std::time::Duration::from_secs(24 * 3600 + 120));
    let left = || async {
        let mut left: Vec<_> = executor
            .invocations(None, None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.function, r.event_seq))
            .collect();
        left.sort();
        left
    };
    wait_for("the records' summing", || async {
        left().await == [("stuck".to_string(), Some(4))]
    })
    .await;
    assert_eq!(usage().await, whole, "usage is whole");
    executor.shutdown().await;
}
