//! Delivery survives crashes: a child process uploads objects while its executor runs an
//! `exec` function for each (the function appends the event id to a file); the test kills it
//! with SIGKILL mid-flight, three times, then restarts once more and lets everything settle.
//! Every matched delivery is then done or dead-lettered, every done delivery's event reached
//! the function at least once, and duplicates are counted.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use eddy_executor::{Executor, SystemClock};
use eddy_subscriptions::MatchIndex;
use eddy_tests::{Eddy, app, kill_child_while_writing, start_executor, upload, wait_for};

const CHILD_DIR: &str = "EDDY_DELIVERY_CRASH_DIR";
const ROUNDS: u64 = 3;

fn manifest(dir: &Path) -> eddy_subscriptions::App {
    let text = format!(
        "buckets: [{{name: inbox}}]
functions:
  - {{name: log, runtime: exec, concurrency: 8, command: [sh, -c, 'echo \"$EDDY_EVENT_ID\" >> \"$OUT/delivered.log\"'], environment: {{OUT: {}}}}}
triggers:
  - {{function: log, source: bucket/inbox, events: [object:created], retry: {{backoff: 10ms..100ms}}}}
",
        dir.display()
    );
    app(dir, &text)
}

async fn start(dir: &Path) -> (Eddy, Executor) {
    start_executor(dir, manifest(dir), Arc::new(SystemClock)).await
}

#[test]
fn every_matched_delivery_completes_or_is_dead_lettered_across_crashes() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        return run_child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged = 0;
    for round in 0..ROUNDS {
        let lines = kill_child_while_writing(
            "every_matched_delivery_completes_or_is_dead_lettered_across_crashes",
            &[(CHILD_DIR, dir.path().as_os_str())],
            round,
        );
        acknowledged += lines.iter().filter(|l| l.starts_with("ACK")).count();
    }
    assert!(
        acknowledged > 20,
        "the children made too little progress to test anything"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (eddy, executor) = start(dir.path()).await;
        let last = eddy.bus.last_seq();
        wait_for("every delivery to settle", || async {
            let c = executor.counts().await.unwrap();
            executor.dispatched_through().await.unwrap() == last && c.ready == 0 && c.leased == 0
        })
        .await;
        let journal = eddy.journal().await;
        let index = MatchIndex::new(&manifest(dir.path()));
        let matched: usize = journal.iter().map(|e| index.matching(e).len()).sum();
        let counts = executor.counts().await.unwrap();
        assert_eq!((counts.done + counts.dead) as usize, matched, "delivered + dead-lettered == matched: {counts:?}");
        assert!(matched >= acknowledged, "every acknowledged upload matched");

        let log = std::fs::read_to_string(dir.path().join("delivered.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let delivered: HashSet<&str> = lines.iter().copied().collect();
        let done: Vec<_> = executor.invocations(None, None).await.unwrap().into_iter().filter(|r| r.outcome == "success").collect();
        for record in &done {
            let event = journal.iter().find(|e| Some(e.seq) == record.event_seq).unwrap();
            assert!(delivered.contains(event.id.to_string().as_str()), "event {} was settled as done but never reached the function", event.seq);
        }
        println!(
            "{} matched, {} done, {} dead-lettered; {} runs reached the function, {} of them duplicates",
            matched,
            counts.done,
            counts.dead,
            lines.len(),
            lines.len() - delivered.len()
        );
        executor.shutdown().await;
    });
}

/// The child: uploads objects as fast as it can while its executor delivers them.
fn run_child(dir: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (eddy, _executor) = start(dir).await;
        println!("READY");
        for i in 0.. {
            let key = format!("{}-{i}", std::process::id());
            upload(&eddy, "inbox", &key).await;
            println!("ACK {key}");
            // Leave the executor room to run deliveries while uploads continue.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
}
