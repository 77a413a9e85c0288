//! Delivery end to end through the libraries: changes to objects and rows run the matching
//! functions with AWS-shaped events; failures are retried with growing gaps and dead-lettered;
//! timeouts kill the whole process group; per-key order holds under parallel workers; loops
//! stop after 16 hops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use eddy_core::{BucketName, FunctionName, Lineage, ObjectKey, TableName};
use eddy_executor::*;
use eddy_objects::PutOptions;
use eddy_tables::{Key, TableStore};
use eddy_tests::{Eddy, Recorder, app, start_executor, upload, wait_for};
use serde_json::{Value, json};

struct Harness {
    dir: tempfile::TempDir,
    eddy: Eddy,
    executor: Executor,
}

async fn start(manifest: &str, clock: Arc<dyn Clock>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest.replace("$DIR", dir.path().to_str().unwrap());
    let (eddy, executor) = start_executor(dir.path(), app(dir.path(), &manifest), clock).await;
    Harness {
        dir,
        eddy,
        executor,
    }
}

fn name(f: &str) -> FunctionName {
    FunctionName::new(f).unwrap()
}

async fn settled(executor: &Executor, total: u64) -> bool {
    let c = executor.counts().await.unwrap();
    c.total() >= total && c.ready == 0 && c.leased == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_runs_an_exec_function_with_an_s3_event() {
    let h = start(
        "buckets: [{name: photos}]
functions:
  - {name: thumb, runtime: exec, command: [sh, -c, 'cat > \"$OUT/$EDDY_REQUEST_ID.json\"'], environment: {OUT: $DIR}}
triggers:
  - {name: on-upload, function: thumb, source: bucket/photos, events: [object:created], filter: {suffix: [.jpg]}}
",
        Arc::new(SystemClock),
    )
    .await;
    let bucket = BucketName::new("photos").unwrap();
    for key in ["uploads/red flower.jpg", "notes.txt"] {
        h.eddy
            .objects
            .put_object(
                &bucket,
                &ObjectKey::new(key).unwrap(),
                &mut &b"bytes"[..],
                PutOptions::default(),
            )
            .await
            .unwrap();
    }
    wait_for("the delivery", || settled(&h.executor, 1)).await;
    let runs = h
        .executor
        .invocations(Some(&name("thumb")), None)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "only the .jpg matches");
    assert_eq!(runs[0].outcome, "success");
    let written =
        std::fs::read_to_string(h.dir.path().join(format!("{}.json", runs[0].request_id))).unwrap();
    let event: Value = serde_json::from_str(&written).unwrap();
    let record = &event["Records"][0];
    assert_eq!(record["eventName"], "ObjectCreated:Put");
    assert_eq!(record["s3"]["bucket"]["name"], "photos");
    assert_eq!(record["s3"]["object"]["key"], "uploads/red+flower.jpg");
    assert_eq!(record["s3"]["configurationId"], "on-upload");
    assert_eq!(record["s3"]["object"]["size"], 5);
    h.executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_changes_deliver_dynamodb_records_and_changed_filters_hold() {
    let h = start(
        "tables: [{name: orders, primary_key: id, columns: {id: integer, status: text, note: text}}]
functions: [{name: all, runtime: in_process}, {name: shipped, runtime: in_process}]
triggers:
  - {function: all, source: table/orders, events: ['*'], ordering: per_key}
  - {function: shipped, source: table/orders, events: [row:modify], filter: {new.status: [shipped], changed: [status]}}
",
        Arc::new(SystemClock),
    )
    .await;
    let (all, shipped) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    h.executor.register(name("all"), all.clone());
    h.executor.register(name("shipped"), shipped.clone());
    let (tables, orders) = (&h.eddy.tables, TableName::new("orders").unwrap());
    let key = Key::new(&tables.schema(&orders).unwrap(), vec![json!(1)]).unwrap();
    tables
        .insert(
            &orders,
            vec![json!({"id": 1, "status": "paid"})],
            Lineage::root(),
        )
        .await
        .unwrap();
    tables
        .update(
            &orders,
            key.clone(),
            json!({"status": "shipped"}),
            Lineage::root(),
        )
        .await
        .unwrap();
    // Status unchanged: the `changed` trigger must not fire.
    tables
        .update(
            &orders,
            key.clone(),
            json!({"note": "left at the door"}),
            Lineage::root(),
        )
        .await
        .unwrap();
    tables.delete(&orders, key, Lineage::root()).await.unwrap();
    wait_for("the deliveries", || settled(&h.executor, 5)).await;

    let events = all.events();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["Records"][0]["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["INSERT", "MODIFY", "MODIFY", "REMOVE"],
        "per-key order"
    );
    let insert = &events[0]["Records"][0]["dynamodb"];
    assert_eq!(insert["NewImage"]["status"], json!({"S": "paid"}));
    assert!(insert.get("OldImage").is_none());
    let modify = &events[1]["Records"][0]["dynamodb"];
    assert_eq!(
        (
            modify["OldImage"]["status"]["S"].as_str(),
            modify["NewImage"]["status"]["S"].as_str()
        ),
        (Some("paid"), Some("shipped"))
    );
    let remove = &events[3]["Records"][0]["dynamodb"];
    assert!(remove.get("NewImage").is_none());
    assert_eq!(remove["Keys"], json!({"id": {"N": "1"}}));

    let fired = shipped.events();
    assert_eq!(
        fired.len(),
        1,
        "only the change of status fires the changed: trigger"
    );
    // The explanation says why the note-only update did not fire it.
    let journal = h.eddy.journal().await;
    let (_, why) = h
        .executor
        .explain(&journal[2].id.to_string())
        .await
        .unwrap()
        .unwrap();
    let shipped_why = why.iter().find(|w| w.function == "shipped").unwrap();
    assert!(!shipped_why.matched);
    let failed: Vec<_> = shipped_why.clauses.iter().filter(|c| !c.passed).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].detail, "none of them changed");
    h.executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_with_growing_gaps_then_dead_letter_and_redrive() {
    let clock = ManualClock::starting_now();
    let h = start(
        "buckets: [{name: inbox}]
functions: [{name: flaky, runtime: in_process}]
triggers:
  - {name: t, function: flaky, source: bucket/inbox, events: [object:created], retry: {max_attempts: 4, backoff: 2s..1m}}
",
        Arc::new(clock.clone()),
    )
    .await;
    let flaky = Arc::new(Recorder::default());
    *flaky.failing.lock().unwrap() = true;
    h.executor.register(name("flaky"), flaky.clone());
    upload(&h.eddy, "inbox", "a").await;

    // Each failed attempt n is retried after a delay within [d/2, d], d = 2s, 4s, 8s.
    let mut attempt_times = Vec::new();
    for attempt in 1..=4usize {
        wait_for("the next attempt", || async {
            flaky.calls.lock().unwrap().len() >= attempt
        })
        .await;
        wait_for("the attempt to settle", || async {
            h.executor.counts().await.unwrap().leased == 0
        })
        .await;
        attempt_times.push(clock.now_ms());
        if attempt < 4 {
            // Move time forward in small steps until the retry is due and runs.
            while flaky.calls.lock().unwrap().len() == attempt {
                clock.advance(Duration::from_millis(250));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    for (i, gap) in attempt_times.windows(2).map(|w| w[1] - w[0]).enumerate() {
        let d = 2_000i64 << i;
        assert!(
            gap >= d / 2 && gap <= d + 250,
            "gap {i} is {gap} ms; expected within [{}, {d}]",
            d / 2
        );
    }
    let dead = h.executor.dead_letters(Some(&name("flaky"))).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, DeadReason::RetriesExhausted);
    assert_eq!(dead[0].attempts, 4);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("Error: the handler is told to fail")
    );
    let records = h
        .executor
        .invocations(Some(&name("flaky")), None)
        .await
        .unwrap();
    assert_eq!(
        records.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );

    // Fixed, and redriven: delivered.
    *flaky.failing.lock().unwrap() = false;
    assert!(h.executor.redrive(dead[0].delivery_id).await.unwrap());
    wait_for("the redriven delivery", || async {
        h.executor.counts().await.unwrap().done == 1
    })
    .await;
    assert!(h.executor.dead_letters(None).await.unwrap().is_empty());
    h.executor.shutdown().await;
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_handler_and_its_children() {
    let h = start(
        "functions:
  - {name: slow, runtime: exec, timeout: 500ms, command: [sh, -c, 'sleep 30 & echo $! > \"$OUT/child.pid\"; echo $$ > \"$OUT/parent.pid\"; wait'], environment: {OUT: $DIR}}
",
        Arc::new(SystemClock),
    )
    .await;
    let started = std::time::Instant::now();
    let run = h
        .executor
        .invoke(&name("slow"), json!({}), Lineage::root())
        .await
        .unwrap();
    assert!(run.outcome.timed_out);
    assert_eq!(
        run.outcome.result,
        Err(FunctionError::new(
            "Sandbox.Timedout",
            "Task timed out after 0.50 seconds"
        ))
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the invocation ended at its timeout, not the handler's"
    );
    for file in ["parent.pid", "child.pid"] {
        let pid: i32 = std::fs::read_to_string(h.dir.path().join(file))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        wait_for("the process to be gone", || async move { !alive(pid) }).await;
    }
    let records = h
        .executor
        .invocations(Some(&name("slow")), None)
        .await
        .unwrap();
    assert_eq!(records[0].outcome, "timeout");
    h.executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_results_errors_and_context() {
    let h = start(
        "functions:
  - {name: echo, runtime: exec, memory_mb: 256, command: [sh, -c, 'read input; printf \"{\\\"got\\\": %s, \\\"fn\\\": \\\"%s\\\", \\\"mem\\\": %s}\" \"$input\" \"$AWS_LAMBDA_FUNCTION_NAME\" \"$AWS_LAMBDA_FUNCTION_MEMORY_SIZE\"']}
  - {name: fails, runtime: exec, command: [sh, -c, 'echo something broke >&2; exit 3']}
  - {name: missing, runtime: exec, command: [/no/such/program]}
",
        Arc::new(SystemClock),
    )
    .await;
    let ok = h
        .executor
        .invoke(&name("echo"), json!({"n": 1}), Lineage::root())
        .await
        .unwrap();
    assert_eq!(
        ok.outcome.result,
        Ok(json!({"got": {"n": 1}, "fn": "echo", "mem": 256}))
    );
    let failed = h
        .executor
        .invoke(&name("fails"), json!({}), Lineage::root())
        .await
        .unwrap();
    assert_eq!(
        failed.outcome.result,
        Err(FunctionError::new(
            "Runtime.ExitError",
            "the process exited with status 3: something broke"
        ))
    );
    let log = &failed.outcome.logs;
    assert!(
        log.starts_with("START RequestId: ")
            && log.contains(" Version: $LATEST\nsomething broke\nEND RequestId: "),
        "Lambda's lines frame the output: {log}"
    );
    let missing = h
        .executor
        .invoke(&name("missing"), json!({}), Lineage::root())
        .await
        .unwrap();
    assert_eq!(
        missing.outcome.result.unwrap_err().error_type,
        "Runtime.InvalidEntrypoint"
    );
    let err = h
        .executor
        .invoke(&name("nope"), json!({}), Lineage::root())
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::NoSuchFunction(_)), "{err}");
    h.executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_invocations_are_delivered_with_retries() {
    let h = start(
        "functions: [{name: worker, runtime: in_process}]\n",
        Arc::new(SystemClock),
    )
    .await;
    let worker = Arc::new(Recorder::default());
    h.executor.register(name("worker"), worker.clone());
    let event = h
        .executor
        .invoke_async(&name("worker"), json!({"job": 7}), Lineage::root())
        .await
        .unwrap();
    wait_for("the queued invocation", || settled(&h.executor, 1)).await;
    let (payload, context) = worker.calls.lock().unwrap()[0].clone();
    assert_eq!(payload, json!({"job": 7}), "the payload arrives as sent");
    assert_eq!(context.event_id, Some(event.id));
    assert!(
        h.executor
            .invoke_async(&name("nobody"), json!({}), Lineage::root())
            .await
            .is_err()
    );
    h.executor.shutdown().await;
}

/// Records the order in which each key's events were handled; fails some attempts.
struct OrderRecorder {
    calls: Mutex<Vec<(String, u64, bool)>>,
}

#[async_trait]
impl Handler for OrderRecorder {
    async fn handle(&self, event: Value, context: Context) -> Result<Value, FunctionError> {
        let record = &event["Records"][0]["dynamodb"];
        let key = record["Keys"]["id"]["N"].as_str().unwrap().to_string();
        let seq: u64 = record["SequenceNumber"].as_str().unwrap().parse().unwrap();
        // A pseudo-random third of first attempts fail: retries must not reorder a key.
        let fail = (seq * 2_654_435_761).is_multiple_of(3)
            && !self.calls.lock().unwrap().iter().any(|(_, s, _)| *s == seq);
        tokio::time::sleep(Duration::from_millis((seq % 3) * 2)).await;
        self.calls.lock().unwrap().push((key, seq, !fail));
        let _ = context;
        if fail {
            Err(FunctionError::new("Error", "injected"))
        } else {
            Ok(Value::Null)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_holds_under_parallel_workers_and_failures() {
    let h = start(
        "tables: [{name: counters, primary_key: id, columns: {id: integer, n: integer}}]
functions: [{name: ordered, runtime: in_process, concurrency: 8}]
triggers:
  - {function: ordered, source: table/counters, events: ['*'], ordering: per_key, retry: {max_attempts: 5, backoff: 1ms..4ms}}
",
        Arc::new(SystemClock),
    )
    .await;
    let recorder = Arc::new(OrderRecorder {
        calls: Mutex::new(Vec::new()),
    });
    h.executor.register(name("ordered"), recorder.clone());
    let table = TableName::new("counters").unwrap();
    let writers: Vec<_> = (0..8)
        .map(|id| {
            let tables: TableStore = h.eddy.tables.clone();
            let table = table.clone();
            tokio::spawn(async move {
                for n in 0..15 {
                    tables
                        .put(&table, json!({"id": id, "n": n}), Lineage::root())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    wait_for("every delivery", || settled(&h.executor, 120)).await;
    let counts = h.executor.counts().await.unwrap();
    assert_eq!((counts.done, counts.dead), (120, 0));
    let calls = recorder.calls.lock().unwrap().clone();
    let mut by_key: HashMap<&str, Vec<(u64, bool)>> = HashMap::new();
    for (key, seq, ok) in &calls {
        by_key.entry(key).or_default().push((*seq, *ok));
    }
    assert_eq!(by_key.len(), 8);
    for (key, handled) in by_key {
        // Attempts for one key never go back in sequence, and each event is retried until it
        // succeeds before the next one starts.
        for pair in handled.windows(2) {
            let ((a, a_ok), (b, _)) = (pair[0], pair[1]);
            assert!(b > a || (b == a && !a_ok), "key {key}: {handled:?}");
        }
        assert_eq!(
            handled.iter().filter(|(_, ok)| *ok).count(),
            15,
            "key {key}"
        );
    }
    assert!(
        calls.iter().any(|(_, _, ok)| !ok),
        "some attempts failed and were retried"
    );
    h.executor.shutdown().await;
}

/// Writes a row to the table that triggers it: an endless loop without protection.
struct Looper {
    tables: TableStore,
    calls: Mutex<u32>,
}

#[async_trait]
impl Handler for Looper {
    async fn handle(&self, event: Value, context: Context) -> Result<Value, FunctionError> {
        *self.calls.lock().unwrap() += 1;
        let n = event["Records"][0]["dynamodb"]["NewImage"]["n"]["N"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap();
        let table = TableName::new("chain").unwrap();
        self.tables
            .put(&table, json!({"id": 1, "n": n + 1}), context.lineage)
            .await
            .map_err(|e| FunctionError::new("WriteFailed", e.to_string()))?;
        Ok(Value::Null)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_is_stopped_after_sixteen_hops() {
    let h = start(
        "tables: [{name: chain, primary_key: id, columns: {id: integer, n: integer}}]
functions: [{name: looper, runtime: in_process}]
triggers: [{function: looper, source: table/chain, events: ['*']}]
",
        Arc::new(SystemClock),
    )
    .await;
    let looper = Arc::new(Looper {
        tables: h.eddy.tables.clone(),
        calls: Mutex::new(0),
    });
    h.executor.register(name("looper"), looper.clone());
    h.eddy
        .tables
        .put(
            &TableName::new("chain").unwrap(),
            json!({"id": 1, "n": 0}),
            Lineage::root(),
        )
        .await
        .unwrap();
    wait_for("the loop to be cut", || async {
        !h.executor.dead_letters(None).await.unwrap().is_empty()
    })
    .await;
    wait_for("everything to settle", || settled(&h.executor, 18)).await;
    // The client's write is hop 0; handlers wrote hops 1 to 17; the 17th is not delivered.
    assert_eq!(*looper.calls.lock().unwrap(), 17);
    let dead = h.executor.dead_letters(None).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, DeadReason::RecursionLimit);
    let journal = h.eddy.journal().await;
    assert_eq!(journal.len(), 18);
    assert_eq!(journal.last().unwrap().lineage.hops, 17);
    assert_eq!(
        journal[5].lineage.cause_event,
        Some(journal[4].id),
        "lineage links each write to its cause"
    );
    h.executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_and_missing_handlers_are_dead_lettered_with_their_reason() {
    let clock = ManualClock::starting_now();
    let h = start(
        "buckets: [{name: inbox}]
functions: [{name: flaky, runtime: in_process}, {name: unregistered, runtime: in_process}]
triggers:
  - {function: flaky, source: bucket/inbox, events: [object:created], retry: {max_attempts: 10, backoff: 1m..1m, max_event_age: 90s}}
  - {function: unregistered, source: bucket/inbox, events: [object:created]}
",
        Arc::new(clock.clone()),
    )
    .await;
    let flaky = Arc::new(Recorder::default());
    *flaky.failing.lock().unwrap() = true;
    h.executor.register(name("flaky"), flaky.clone());
    upload(&h.eddy, "inbox", "a").await;
    wait_for("both deliveries to be tried", || async {
        let dead = h.executor.dead_letters(None).await.unwrap();
        dead.iter().any(|d| d.function == "unregistered") && !flaky.calls.lock().unwrap().is_empty()
    })
    .await;
    // The retry after the first failure would come 30–60 s later, within the event's 90 s.
    // Then the next would be past them: dead-lettered for its age, not its attempts.
    while h
        .executor
        .dead_letters(Some(&name("flaky")))
        .await
        .unwrap()
        .is_empty()
    {
        clock.advance(Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let dead = h.executor.dead_letters(None).await.unwrap();
    let reason = |f: &str| dead.iter().find(|d| d.function == f).map(|d| d.reason);
    assert_eq!(reason("unregistered"), Some(DeadReason::FunctionMissing));
    assert_eq!(reason("flaky"), Some(DeadReason::EventAgeExceeded));
    assert!(
        flaky.calls.lock().unwrap().len() < 10,
        "stopped by age, not by attempts"
    );
    h.executor.shutdown().await;
}

/// Holds every invocation until released, counting those that entered.
struct Gate(tokio::sync::Semaphore, std::sync::atomic::AtomicUsize);

#[async_trait]
impl Handler for Gate {
    async fn handle(&self, _event: Value, _context: Context) -> Result<Value, FunctionError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _pass = self.0.acquire().await.unwrap();
        Ok(Value::Null)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_invocations_beyond_the_concurrency_are_throttled() {
    let h = start(
        "functions: [{name: gated, runtime: in_process, concurrency: 2}]\n",
        Arc::new(SystemClock),
    )
    .await;
    let gate = Arc::new(Gate(tokio::sync::Semaphore::new(0), Default::default()));
    h.executor.register(name("gated"), gate.clone());
    let executor = Arc::new(h.executor);
    let running: Vec<_> = (0..2)
        .map(|_| {
            let executor = executor.clone();
            tokio::spawn(async move {
                executor
                    .invoke(&name("gated"), json!({}), Lineage::root())
                    .await
            })
        })
        .collect();
    wait_for("both to hold a slot", || async {
        gate.1.load(std::sync::atomic::Ordering::SeqCst) == 2
    })
    .await;
    let third = executor
        .invoke(&name("gated"), json!({}), Lineage::root())
        .await;
    assert!(
        matches!(third, Err(ExecError::Throttled { concurrency: 2, .. })),
        "{third:?}"
    );
    gate.0.add_permits(2);
    for r in running {
        assert!(r.await.unwrap().unwrap().outcome.result.is_ok());
    }
    executor.shutdown().await;
}

/// Counts invocations by node and the most that ran at once, across every executor.
#[derive(Default)]
struct Tally {
    running: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    by_payload: Mutex<HashMap<u64, Vec<&'static str>>>,
}

/// One executor's handler for the shared tally.
struct TallyOn(Arc<Tally>, &'static str);

#[async_trait]
impl Handler for TallyOn {
    async fn handle(&self, event: Value, _context: Context) -> Result<Value, FunctionError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.0.running.fetch_add(1, SeqCst) + 1;
        self.0.most.fetch_max(now, SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let n = event["n"].as_u64().unwrap();
        self.0
            .by_payload
            .lock()
            .unwrap()
            .entry(n)
            .or_default()
            .push(self.1);
        self.0.running.fetch_sub(1, SeqCst);
        Ok(Value::Null)
    }
}

/// Two executors with different node ids over one store — two nodes sharing their state — run
/// each queued invocation once (neither takes the other's leases) and hold the function to one
/// concurrency limit between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_over_one_store_run_each_job_once_within_one_limit() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(
        dir.path(),
        "functions: [{name: shared, runtime: in_process, concurrency: 3}]\n",
    );
    let eddy = Eddy::open(&dir.path().join("data")).await;
    let store: Arc<dyn DeliveryStore> = Arc::new(SqlDeliveries::new(&eddy.bus, "shared"));
    let tally = Arc::new(Tally::default());
    let mut executors = Vec::new();
    for node in ["node-a", "node-b"] {
        let config = ExecutorConfig {
            node: node.into(),
            ..ExecutorConfig::default()
        };
        let executor = Executor::start_with(
            eddy.bus.clone(),
            store.clone(),
            app.clone(),
            Arc::new(SystemClock),
            config,
        )
        .await
        .unwrap();
        executor.register(name("shared"), Arc::new(TallyOn(tally.clone(), node)));
        executors.push(executor);
    }
    const JOBS: u64 = 60;
    for n in 0..JOBS {
        executors[(n % 2) as usize]
            .invoke_async(&name("shared"), json!({"n": n}), Lineage::root())
            .await
            .unwrap();
    }
    wait_for("every job to run", || settled(&executors[0], JOBS)).await;
    let by_payload = tally.by_payload.lock().unwrap().clone();
    assert_eq!(by_payload.len() as u64, JOBS);
    for (n, nodes) in &by_payload {
        assert_eq!(
            nodes.len(),
            1,
            "job {n} ran once, not on every node: {nodes:?}"
        );
    }
    let most = tally.most.load(std::sync::atomic::Ordering::SeqCst);
    assert!(most <= 3, "one limit for both nodes: {most} ran at once");
    let counts = executors[0].counts().await.unwrap();
    assert_eq!((counts.done, counts.dead), (JOBS, 0));
    for executor in executors {
        executor.shutdown().await;
    }
}
