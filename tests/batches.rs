//! Batched table triggers through the libraries, as a DynamoDB Streams event source mapping
//! behaves: records go many to an invocation, as `Records`, when the batch is full or its
//! window has passed; a handler's `batchItemFailures` have only the records it named (and those
//! after them in their key's order) tried again; a failing batch with `bisect_on_error` is
//! split down to the record that fails alone, which goes to `on_failure` while the rest
//! succeed; parallel batches keep each key's records in order; `events show`'s data names
//! every batch an event went in; and a batch's records settle in one commit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy_bus::sql::Sql;
use eddy_core::{FunctionName, Lineage, TableName};
use eddy_executor::*;
use eddy_tests::{Eddy, Recorder, app, start_executor, wait_for};
use serde_json::{Value, json};
use tokio::sync::oneshot;

const APP: &str = "
tables:
  - {name: orders, primary_key: id, columns: {id: integer, n: integer}}
functions:
  - {name: stream, runtime: in_process, concurrency: 10}
  - {name: failed, runtime: in_process}
triggers:
  - name: on-order
    function: stream
    source: table/orders
    events: ['row:*']
    retry: {max_attempts: 2, backoff: 1ms..1ms}
    on_failure: function/failed
    batch: BATCH
";

fn function(name: &str) -> FunctionName {
    FunctionName::new(name).unwrap()
}

fn orders() -> TableName {
    TableName::new("orders").unwrap()
}

/// A stream handler: records each batch's (id, sequence number) pairs; fails a batch holding
/// the poison id; reports the records of `report` (by id, once each) as failed; and waits,
/// while `rendezvous` asks, for that many batches to run at once.
#[derive(Default)]
struct Stream {
    batches: Mutex<Vec<Vec<(i64, u64)>>>,
    poison: Mutex<Option<i64>>,
    report: Mutex<Vec<i64>>,
    rendezvous: usize,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    /// Holds the first batch until it is sent (or dropped).
    hold: Mutex<Option<oneshot::Receiver<()>>>,
}

fn record_id(record: &Value) -> i64 {
    let image = match record["dynamodb"].get("NewImage") {
        Some(image) => image,
        None => &record["dynamodb"]["Keys"],
    };
    image["id"]["N"].as_str().unwrap().parse().unwrap()
}

#[async_trait::async_trait]
impl Handler for Stream {
    async fn handle(&self, event: Value, _: Context) -> Result<Value, FunctionError> {
        let records = event["Records"].as_array().expect("a Records list");
        let batch: Vec<(i64, u64)> = records
            .iter()
            .map(|r| {
                let seq = r["dynamodb"]["SequenceNumber"].as_str().unwrap();
                (record_id(r), seq.parse().unwrap())
            })
            .collect();
        self.batches.lock().unwrap().push(batch.clone());
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        let hold = self.hold.lock().unwrap().take();
        if let Some(hold) = hold {
            let _ = hold.await;
        }
        if self.rendezvous > 1 {
            let meet = async {
                while self.most_at_once.load(Ordering::SeqCst) < self.rendezvous {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), meet).await;
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        let poison = *self.poison.lock().unwrap();
        if batch.iter().any(|(id, _)| Some(*id) == poison) {
            return Err(FunctionError::new(
                "Poison",
                "the batch holds the poison record",
            ));
        }
        let mut report = self.report.lock().unwrap();
        let failures: Vec<Value> = batch
            .iter()
            .filter(|(id, _)| report.contains(id))
            .map(|(_, seq)| json!({"itemIdentifier": format!("{seq:021}")}))
            .collect();
        report.retain(|id| !batch.iter().any(|(b, _)| b == id));
        Ok(json!({"batchItemFailures": failures}))
    }
}

impl Stream {
    fn batches(&self) -> Vec<Vec<(i64, u64)>> {
        self.batches.lock().unwrap().clone()
    }

    /// Asserts that keys 1–10 each ran their two records once each, in order (the tests of
    /// batches leased ahead write each key twice).
    fn assert_each_key_twice_in_order(&self) {
        let mut seen: HashMap<i64, Vec<u64>> = HashMap::new();
        for (id, seq) in self.batches().into_iter().flatten() {
            seen.entry(id).or_default().push(seq);
        }
        for id in 1..=10 {
            let seqs = &seen[&id];
            assert!(
                seqs.len() == 2 && seqs[0] < seqs[1],
                "key {id}: each record once, in order: {seqs:?}"
            );
        }
    }

    fn ids(&self) -> Vec<Vec<i64>> {
        let batches = self.batches();
        batches
            .iter()
            .map(|b| b.iter().map(|(id, _)| *id).collect())
            .collect()
    }
}

struct Node {
    eddy: Eddy,
    executor: Executor,
    stream: Arc<Stream>,
    failed: Arc<Recorder>,
}

async fn start(dir: &std::path::Path, batch: &str, stream: Stream, clock: Arc<dyn Clock>) -> Node {
    start_app(dir, &APP.replace("BATCH", batch), stream, clock).await
}

async fn start_app(
    dir: &std::path::Path,
    manifest: &str,
    stream: Stream,
    clock: Arc<dyn Clock>,
) -> Node {
    let (eddy, executor) = start_executor(dir, app(dir, manifest), clock).await;
    let stream = Arc::new(stream);
    let failed = Arc::new(Recorder::default());
    executor.register(function("stream"), stream.clone());
    executor.register(function("failed"), failed.clone());
    Node {
        eddy,
        executor,
        stream,
        failed,
    }
}

impl Node {
    /// Inserts rows with these ids, in one transaction; returns their sequence numbers.
    async fn insert(&self, ids: impl IntoIterator<Item = i64>) -> Vec<u64> {
        let rows = ids
            .into_iter()
            .map(|id| json!({"id": id, "n": 0}))
            .collect();
        let changes = self
            .eddy
            .tables
            .insert(&orders(), rows, Lineage::root())
            .await
            .unwrap();
        changes.iter().map(|c| c.seq.unwrap()).collect()
    }

    /// Sets row `id`'s `n`; returns the change's sequence number.
    async fn put(&self, id: i64, n: i64) -> u64 {
        let row = json!({"id": id, "n": n});
        let put = self.eddy.tables.put(&orders(), row, Lineage::root()).await;
        put.unwrap().seq.unwrap()
    }

    /// Makes SQLite refuse every invocation record — and so every settlement — until
    /// [`Node::allow_settlements`].
    async fn refuse_settlements(&self) {
        self.run_script(
            "CREATE TABLE test_refuse (refuse INTEGER NOT NULL);
             INSERT INTO test_refuse VALUES (1);
             CREATE TRIGGER test_refuse BEFORE INSERT ON _eddy_invocations
             WHEN (SELECT refuse FROM test_refuse) = 1
             BEGIN SELECT RAISE(ABORT, 'settlements are refused for a while'); END;",
        )
        .await;
    }

    async fn allow_settlements(&self) {
        self.run_script("UPDATE test_refuse SET refuse = 0;").await;
    }

    async fn run_script(&self, script: &'static str) {
        self.eddy
            .bus
            .write(script, |tx, script| {
                Box::pin(async move { Ok::<_, ExecError>(tx.run_script(script).await?) })
            })
            .await
            .unwrap();
    }

    /// Waits until `total` deliveries exist and none waits or runs.
    async fn settled(&self, total: u64) {
        wait_for("every delivery to settle", || async {
            let c = self.executor.counts().await.unwrap();
            c.total() == total && c.ready == 0 && c.leased == 0
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_go_in_batches_when_full_or_when_the_window_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let start_ms = clock.now_ms();
    let node = start(
        dir.path(),
        "{size: 4, window: 3s}",
        Stream::default(),
        Arc::new(clock.clone()),
    )
    .await;

    // Three records: short of the size, they wait for the window.
    let first = node.insert([1, 2, 3]).await;
    wait_for("three deliveries", || async {
        node.executor.counts().await.unwrap().ready == 3
    })
    .await;
    clock.sleeping_until(start_ms + 3_000).await;
    assert!(node.stream.batches().is_empty(), "held for the window");
    clock.advance(Duration::from_secs(3));
    node.settled(3).await;
    let expected: Vec<(i64, u64)> = [1, 2, 3].into_iter().zip(first).collect();
    assert_eq!(node.stream.batches(), [expected]);

    // Nine more at once: two full batches go without waiting; the ninth waits its window.
    let now = clock.now_ms();
    node.insert(4..=12).await;
    wait_for("two full batches", || async {
        node.stream.batches().len() == 3
    })
    .await;
    clock.sleeping_until(now + 3_000).await;
    assert_eq!(
        node.stream.ids()[1..],
        [vec![4, 5, 6, 7], vec![8, 9, 10, 11]]
    );
    clock.advance(Duration::from_secs(3));
    node.settled(12).await;
    assert_eq!(node.stream.ids()[3], [12]);
    let invocations = node
        .executor
        .invocations(Some(&function("stream")), None)
        .await
        .unwrap();
    assert_eq!(
        invocations.iter().map(|r| r.batch_size).collect::<Vec<_>>(),
        [Some(3), Some(4), Some(4), Some(1)]
    );
    node.executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_failures_retry_the_record_and_what_follows_it_in_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let stream = Stream {
        report: Mutex::new(vec![1]),
        ..Stream::default()
    };
    let node = start(
        dir.path(),
        "{size: 4, window: 10s, report_failures: true}",
        stream,
        Arc::new(SystemClock),
    )
    .await;
    // Row 1 inserted, row 2 inserted, row 1 changed, row 3 inserted: one batch of four.
    let inserted = node.insert([1, 2]).await;
    let changed = node.put(1, 5).await;
    let third = node.insert([3]).await[0];
    node.settled(4).await;
    let batches = node.stream.batches();
    assert_eq!(
        batches[0],
        [(1, inserted[0]), (2, inserted[1]), (1, changed), (3, third)]
    );
    // The handler named row 1's insert: it and row 1's later change go again; 2 and 3 are done.
    assert_eq!(batches[1..], [vec![(1, inserted[0]), (1, changed)]]);
    assert!(node.executor.dead_letters(None).await.unwrap().is_empty());
    node.executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bisection_finds_the_poison_record_which_alone_goes_to_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let stream = Stream {
        poison: Mutex::new(Some(5)),
        ..Stream::default()
    };
    let node = start(
        dir.path(),
        "{size: 8, window: 10s, bisect_on_error: true}",
        stream,
        Arc::new(SystemClock),
    )
    .await;
    let seqs = node.insert(1..=8).await;
    // Eight records, and the on-failure destination's invocation.
    node.settled(9).await;
    assert_eq!(node.failed.count(), 1);
    // Halves go in event order, one at a time: the whole batch, its halves, the failing
    // half's first half; then, in an order timing decides (the last half may have been leased
    // ahead of the poison record's half), the poison record alone, twice (a bisection is not an
    // attempt: alone, it gets both of its own), its neighbour, and the last half.
    let ids = node.stream.ids();
    assert_eq!(
        ids[..4],
        [
            vec![1, 2, 3, 4, 5, 6, 7, 8],
            vec![1, 2, 3, 4],
            vec![5, 6, 7, 8],
            vec![5, 6],
        ]
    );
    let mut rest = ids[4..].to_vec();
    rest.sort();
    assert_eq!(rest, [vec![5], vec![5], vec![6], vec![7, 8]]);
    assert_eq!(node.stream.most_at_once.load(Ordering::SeqCst), 1);
    let dead = node.executor.dead_letters(None).await.unwrap();
    assert_eq!(
        dead.iter()
            .map(|d| (d.event_seq, d.attempts, d.reason))
            .collect::<Vec<_>>(),
        [(seqs[4], 2, DeadReason::RetriesExhausted)]
    );
    let record = &node.failed.events()[0];
    let info = &record["DDBStreamBatchInfo"];
    let poison_seq = format!("{:021}", seqs[4]);
    assert_eq!(info["startSequenceNumber"], poison_seq);
    assert_eq!(info["endSequenceNumber"], poison_seq);
    assert_eq!(info["batchSize"], 1);
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 2);

    // Its delivery names the journal event that carried the on-failure record.
    let deliveries = node.executor.deliveries_of(seqs[4]).await.unwrap();
    let carried = deliveries[0].destination_seq.expect("a destination event");
    let journaled = node.eddy.bus.event_at(carried).await.unwrap().unwrap();
    assert_eq!(journaled.source.to_string(), "function/failed");
    assert_eq!(&journaled.payload, record);

    // The poison record's story: every batch it went in, largest first.
    let of_poison = node
        .executor
        .invocations(None, Some(seqs[4]))
        .await
        .unwrap();
    assert_eq!(
        of_poison.iter().map(|r| r.batch_size).collect::<Vec<_>>(),
        [Some(8), Some(4), Some(2), Some(1), Some(1)]
    );
    node.executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_batches_keep_each_keys_records_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let stream = Stream {
        rendezvous: 3,
        ..Stream::default()
    };
    let node = start(
        dir.path(),
        "{size: 5, parallel: 3}",
        stream,
        Arc::new(SystemClock),
    )
    .await;
    // Twelve keys, each written five times, the keys interleaved.
    let mut written: Vec<(i64, u64)> = Vec::new();
    for round in 0..5 {
        for id in 1..=12 {
            written.push((id, node.put(id, round).await));
        }
    }
    node.settled(60).await;
    let mut seen: HashMap<i64, Vec<u64>> = HashMap::new();
    for batch in node.stream.batches() {
        for (id, seq) in batch {
            seen.entry(id).or_default().push(seq);
        }
    }
    for id in 1..=12 {
        let mut expected: Vec<u64> = written
            .iter()
            .filter(|(k, _)| *k == id)
            .map(|(_, s)| *s)
            .collect();
        expected.sort_unstable();
        assert_eq!(seen[&id], expected, "key {id}: each record once, in order");
    }
    let most = node.stream.most_at_once.load(Ordering::SeqCst);
    assert_eq!(most, 3, "three batches ran at once, never more");
    node.executor.shutdown().await;
}

/// The app of the tests of a batch leased ahead: batches of 5, one at a time.
fn one_at_a_time() -> String {
    APP.replace("BATCH", "{size: 5}")
}

/// Starts `manifest` (a trigger that runs one batch of 5 at a time) with its first batch held;
/// writes ids 1–10 and then each again. Returns the node, once two batches are leased (the held
/// one, ids 1–5, and the next, leased ahead: ids 6–10, since 1–5 have a record leased) and ten
/// records wait; and what lets the held batch go.
async fn one_batch_running_and_one_leased_ahead(
    dir: &std::path::Path,
    manifest: &str,
    clock: Arc<dyn Clock>,
) -> (Node, oneshot::Sender<()>) {
    let (release, hold) = oneshot::channel();
    let stream = Stream {
        hold: Mutex::new(Some(hold)),
        ..Stream::default()
    };
    let node = start_app(dir, manifest, stream, clock).await;
    node.insert(1..=10).await;
    for id in 1..=10 {
        node.put(id, 1).await;
    }
    wait_for("one batch running and one leased ahead", || async {
        let c = node.executor.counts().await.unwrap();
        (c.leased, c.ready) == (10, 10) && !node.stream.batches().is_empty()
    })
    .await;
    assert_eq!(node.stream.ids(), [vec![1, 2, 3, 4, 5]], "only one runs");
    (node, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_batch_at_a_time_has_the_next_leased_ahead_and_never_two_running() {
    let dir = tempfile::tempdir().unwrap();
    let (node, release) =
        one_batch_running_and_one_leased_ahead(dir.path(), &one_at_a_time(), Arc::new(SystemClock))
            .await;
    release.send(()).unwrap();
    node.settled(20).await;
    assert_eq!(
        node.stream.ids()[1],
        [6, 7, 8, 9, 10],
        "the batch leased ahead"
    );
    node.stream.assert_each_key_twice_in_order();
    let most = node.stream.most_at_once.load(Ordering::SeqCst);
    assert_eq!(most, 1, "never two batches at once");
    node.executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_leased_ahead_goes_back_unrun_when_the_executor_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (node, release) =
        one_batch_running_and_one_leased_ahead(dir.path(), &one_at_a_time(), Arc::new(SystemClock))
            .await;
    {
        let mut stopping = std::pin::pin!(node.executor.shutdown());
        // Polled once, the executor has stopped taking work and waits for the running batch.
        tokio::select! {
            biased;
            _ = &mut stopping => panic!("the running batch is held"),
            _ = std::future::ready(()) => {}
        }
        // The running batch finishes, and is recorded; the one leased ahead does not start.
        release.send(()).unwrap();
        stopping.await;
    }
    assert_eq!(node.stream.ids(), [vec![1, 2, 3, 4, 5]]);
    let c = node.executor.counts().await.unwrap();
    assert_eq!(
        (c.done, c.leased, c.ready),
        (5, 0, 15),
        "given back, not left leased"
    );
    let Node { eddy, executor, .. } = node;
    drop((executor, eddy));

    // Started again, each waiting record runs once, the batch given back first.
    let node = start(
        dir.path(),
        "{size: 5}",
        Stream::default(),
        Arc::new(SystemClock),
    )
    .await;
    node.settled(20).await;
    let ids: Vec<i64> = node.stream.ids().into_iter().flatten().collect();
    assert_eq!(ids.len(), 15);
    assert_eq!(ids[..5], [6, 7, 8, 9, 10]);
    node.executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlements_that_fail_are_tried_again_and_each_keys_records_stay_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_app(
        dir.path(),
        &one_at_a_time(),
        Stream::default(),
        Arc::new(SystemClock),
    )
    .await;
    node.refuse_settlements().await;
    node.insert(1..=10).await;
    for id in 1..=10 {
        node.put(id, 1).await;
    }
    // The batch leased ahead runs while the first one's settlement fails, and the one after
    // it is not leased until a settlement commits.
    wait_for("two batches run, neither settled", || async {
        node.stream.batches().len() >= 2
    })
    .await;
    let c = node.executor.counts().await.unwrap();
    assert_eq!((c.done, c.leased), (0, 10), "nothing settles yet");
    node.allow_settlements().await;
    node.settled(20).await;
    node.stream.assert_each_key_twice_in_order();
    assert_eq!(node.executor.counts().await.unwrap().done, 20);
    node.executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_leased_ahead_gives_up_on_records_that_grew_too_old_waiting_its_turn() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let manifest = one_at_a_time().replace(
        "backoff: 1ms..1ms}",
        "backoff: 1ms..1ms, max_event_age: 2s}",
    );
    let (node, release) =
        one_batch_running_and_one_leased_ahead(dir.path(), &manifest, Arc::new(clock.clone()))
            .await;
    // The batch leased ahead was made ready at once; its records (and the ten waiting) pass
    // their age while the running one holds the turn.
    clock.advance(Duration::from_secs(3));
    release.send(()).unwrap();
    wait_for("every record done or given up on", || async {
        let c = node.executor.counts().await.unwrap();
        (c.dead, c.ready, c.leased) == (15, 0, 0)
    })
    .await;
    assert_eq!(
        node.stream.ids(),
        [vec![1, 2, 3, 4, 5]],
        "none that grew too old was delivered"
    );
    // Each batch given up on unrun reached on_failure, the one leased ahead first.
    wait_for("their failure records", || async {
        let sizes = node
            .failed
            .events()
            .iter()
            .map(|r| r["DDBStreamBatchInfo"]["batchSize"].as_u64().unwrap())
            .sum::<u64>();
        sizes == 15
    })
    .await;
    let records = node.failed.events();
    for record in &records {
        assert_eq!(
            record["requestContext"]["condition"], "RecordAgeExceeded",
            "{record}"
        );
    }
    assert_eq!(records[0]["DDBStreamBatchInfo"]["batchSize"], 5);
    node.executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_triggers_batch_s3_records_and_a_batch_reaches_its_functions_destination() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = "
buckets: [{name: inbox}]
functions:
  - {name: thumbs, runtime: in_process, destinations: {on_success: function/done}}
  - {name: done, runtime: in_process}
triggers:
  - {function: thumbs, source: bucket/inbox, events: ['object:created'], batch: {size: 3, window: 60s}}
";
    let (eddy, executor) =
        start_executor(dir.path(), app(dir.path(), manifest), Arc::new(SystemClock)).await;
    let [thumbs, done] = [(); 2].map(|_| Arc::new(Recorder::default()));
    executor.register(function("thumbs"), thumbs.clone());
    executor.register(function("done"), done.clone());
    for key in ["a.jpg", "b.jpg", "c.jpg"] {
        eddy_tests::upload(&eddy, "inbox", key).await;
    }
    // Three records fill the batch long before its window.
    wait_for("the batch's success record", || async { done.count() == 1 }).await;
    assert_eq!(thumbs.count(), 1);
    let keys = |event: &Value| -> Vec<String> {
        event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["s3"]["object"]["key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(keys(&thumbs.events()[0]), ["a.jpg", "b.jpg", "c.jpg"]);
    let record = &done.events()[0];
    assert_eq!(record["requestContext"]["condition"], "Success");
    assert_eq!(keys(&record["requestPayload"]), ["a.jpg", "b.jpg", "c.jpg"]);
    executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_that_starts_batching_takes_its_waiting_records_along() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let manifest = |batch: &str| {
        format!(
            "
tables: [{{name: orders, primary_key: id, columns: {{id: integer, n: integer}}}}]
functions: [{{name: stream, runtime: in_process}}]
triggers:
  - {{name: on-order, function: stream, source: table/orders, events: ['row:*'], retry: {{backoff: 1h..1h}}{batch}}}
"
        )
    };
    let (eddy, executor) = start_executor(
        dir.path(),
        app(dir.path(), &manifest("")),
        Arc::new(clock.clone()),
    )
    .await;
    let stream = Arc::new(Recorder::default());
    *stream.failing.lock().unwrap() = true;
    executor.register(function("stream"), stream.clone());
    // One event per invocation, each failing: three records wait for their retry.
    let rows = (1..=3).map(|id| json!({"id": id, "n": 0})).collect();
    eddy.tables
        .insert(&orders(), rows, Lineage::root())
        .await
        .unwrap();
    wait_for("three failed attempts", || async {
        executor.counts().await.unwrap().ready == 3
    })
    .await;
    *stream.failing.lock().unwrap() = false;

    // The trigger now batches: its waiting records are marked, and go as one batch.
    executor.set_app(
        app(dir.path(), &manifest(", batch: {size: 10}")),
        HashMap::new(),
        HashMap::new(),
    );
    wait_for("the waiting records to be marked batched", || async {
        use eddy_bus::sql::SqlExt;
        let marked: i64 = eddy
            .bus
            .readers()
            .scalar(
                "SELECT count(*) FROM _eddy_deliveries WHERE batched = 1 AND state = 'ready'",
                eddy_bus::args![],
            )
            .await
            .unwrap();
        marked == 3
    })
    .await;
    clock.advance(Duration::from_secs(3600));
    wait_for("the batch", || async {
        executor.counts().await.unwrap().done == 3
    })
    .await;
    let sizes: Vec<usize> = stream
        .events()
        .iter()
        .map(|e| e["Records"].as_array().unwrap().len())
        .collect();
    assert_eq!(
        sizes,
        [1, 1, 1, 3],
        "three single failures, then one batch of three"
    );
    executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batchs_records_settle_in_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(
        dir.path(),
        "{size: 200}",
        Stream::default(),
        Arc::new(ManualClock::starting_now()),
    )
    .await;
    let recorded = node.executor.recorded();
    node.insert(1..=200).await;
    node.settled(200).await;
    assert_eq!(node.stream.batches().len(), 1);
    // The count moves just after a commit: once shut down, the settler has counted them all.
    node.executor.shutdown().await;
    // Its 200 settlements and its invocation record: one transaction, not one per record
    // the settler happened to find queued.
    assert_eq!(*recorded.borrow(), 1);
}
