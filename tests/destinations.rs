//! Destinations through the libraries: an asynchronous invocation's outcome — an object
//! trigger's delivery, an `Event` invoke — reaches the function's `on_success` or
//! `on_failure` as Lambda's invocation record, and a table trigger's delivery given up on
//! reaches the trigger's `on_failure` as the stream's failure record; each once, with the dead
//! letter still there. A destination is a function, or a bucket (an object per record) or a
//! table (a row per record), whose writes are changes like any other.

use std::sync::Arc;

use eddy_core::{FunctionName, Lineage, TableName};
use eddy_executor::*;
use eddy_tests::{Recorder, app, start_executor, upload, wait_for};
use serde_json::{Value, json};

const APP: &str = "
buckets: [{name: inbox}]
tables: [{name: orders, primary_key: id, columns: {id: integer}}]
functions:
  - name: work
    runtime: in_process
    destinations: {on_success: function/succeeded, on_failure: function/failed}
  - {name: stream, runtime: in_process}
  - {name: succeeded, runtime: in_process}
  - {name: failed, runtime: in_process}
triggers:
  - {name: on-upload, function: work, source: bucket/inbox, events: [object:created], retry: {max_attempts: 2, backoff: 1ms..1ms}}
  - {name: on-order, function: stream, source: table/orders, events: [row:insert], retry: {max_attempts: 1}, on_failure: function/failed}
";

fn function(name: &str) -> FunctionName {
    FunctionName::new(name).unwrap()
}

struct Handlers {
    work: Arc<Recorder>,
    stream: Arc<Recorder>,
    succeeded: Arc<Recorder>,
    failed: Arc<Recorder>,
}

fn register(executor: &Executor) -> Handlers {
    let [work, stream, succeeded, failed] = [(); 4].map(|_| Arc::new(Recorder::default()));
    for (name, handler) in [
        ("work", &work),
        ("stream", &stream),
        ("succeeded", &succeeded),
        ("failed", &failed),
    ] {
        executor.register(function(name), handler.clone());
    }
    Handlers {
        work,
        stream,
        succeeded,
        failed,
    }
}

/// Everything settled: `total` deliveries, none waiting or running.
async fn settled(executor: &Executor, total: u64) -> bool {
    let c = executor.counts().await.unwrap();
    c.total() == total && c.ready == 0 && c.leased == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_reach_their_destinations_as_lambda_records() {
    let dir = tempfile::tempdir().unwrap();
    let (eddy, executor) =
        start_executor(dir.path(), app(dir.path(), APP), Arc::new(SystemClock)).await;
    let h = register(&executor);

    // A success: the record carries the request and the result.
    upload(&eddy, "inbox", "ok.txt").await;
    wait_for("the success record", || async { h.succeeded.count() == 1 }).await;
    let record = &h.succeeded.events()[0];
    let request: &Value = &h.work.events()[0];
    assert_eq!(record["version"], "1.0");
    assert_eq!(record["requestContext"]["condition"], "Success");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(
        record["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:work:$LATEST"
    );
    assert_eq!(&record["requestPayload"], request);
    assert_eq!(
        record["responseContext"],
        json!({"statusCode": 200, "executedVersion": "$LATEST"})
    );
    assert_eq!(record["responsePayload"], json!({"ok": true}));
    let invocations = executor
        .invocations(Some(&function("work")), None)
        .await
        .unwrap();
    assert_eq!(
        record["requestContext"]["requestId"], invocations[0].request_id,
        "the request id is the invocation's"
    );

    // A failure, after both attempts: the record, and the dead letter as well.
    *h.work.failing.lock().unwrap() = true;
    upload(&eddy, "inbox", "bad.txt").await;
    wait_for("the failure record", || async { h.failed.count() == 1 }).await;
    let record = &h.failed.events()[0];
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(
        record["responsePayload"],
        json!({"errorMessage": "the handler is told to fail", "errorType": "Error"})
    );
    assert_eq!(
        record["requestPayload"]["Records"][0]["s3"]["object"]["key"],
        "bad.txt"
    );
    assert_eq!(
        executor
            .dead_letters(Some(&function("work")))
            .await
            .unwrap()
            .len(),
        1
    );

    // An `Event` invoke has the function's destinations too.
    executor
        .invoke_async(&function("work"), json!({"n": 1}), Lineage::root())
        .await
        .unwrap();
    wait_for("the invoke's failure record", || async {
        h.failed.count() == 2
    })
    .await;
    assert_eq!(h.failed.events()[1]["requestPayload"], json!({"n": 1}));

    // A table trigger's failure: the stream's record names the row's event, not its data.
    *h.stream.failing.lock().unwrap() = true;
    let orders = TableName::new("orders").unwrap();
    eddy.tables
        .insert(&orders, vec![json!({"id": 7})], Lineage::root())
        .await
        .unwrap();
    wait_for("the stream's failure record", || async {
        h.failed.count() == 3
    })
    .await;
    let record = &h.failed.events()[2];
    let seq = executor
        .dead_letters(Some(&function("stream")))
        .await
        .unwrap()[0]
        .event_seq;
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(
        record["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:stream"
    );
    let batch = &record["DDBStreamBatchInfo"];
    assert_eq!(batch["startSequenceNumber"], format!("{seq:021}"));
    assert_eq!(batch["endSequenceNumber"], format!("{seq:021}"));
    assert_eq!(batch["batchSize"], 1);
    assert!(
        batch["streamArn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/"),
        "{batch}"
    );
    assert!(record.get("requestPayload").is_none());

    // Every record went once: 2 uploads (3 attempts), 1 invoke (2), 1 row (1), 4 records.
    // 2 + 1 + 1 deliveries of work and stream, 4 of the destinations.
    wait_for("everything to settle", || settled(&executor, 8)).await;
    assert_eq!((h.succeeded.count(), h.failed.count()), (1, 3));
    executor.shutdown().await;
}

const STORES: &str = "
buckets: [{name: inbox}, {name: failures}]
tables:
  - {name: orders, primary_key: id, columns: {id: integer}}
  - {name: outcomes, primary_key: name, columns: {name: text, record: json, note: text}}
functions:
  - name: work
    runtime: in_process
    role: [{allow: [objects:write, tables:write], resources: [bucket/failures, table/outcomes]}]
    destinations: {on_success: table/outcomes, on_failure: bucket/failures}
  - name: stream
    runtime: in_process
    role: [{allow: [objects:write], resources: [bucket/failures]}]
  - {name: archive, runtime: in_process}
triggers:
  - {name: on-upload, function: work, source: bucket/inbox, events: [object:created], retry: {max_attempts: 1}}
  - {name: on-order, function: stream, source: table/orders, events: [row:insert], retry: {max_attempts: 1}, on_failure: bucket/failures}
  - {name: on-record, function: archive, source: bucket/failures, events: [object:created]}
";

/// The records in the failures bucket, by key, in key order.
async fn failure_objects(
    eddy: &eddy_tests::Eddy,
) -> Vec<(String, eddy_objects::ObjectMeta, Value)> {
    let bucket = eddy_core::BucketName::new("failures").unwrap();
    let params = eddy_objects::ListParams {
        max_keys: 100,
        ..Default::default()
    };
    let page = eddy.objects.list_objects(&bucket, &params).await.unwrap();
    let mut found = Vec::new();
    for listed in page.objects {
        let meta = eddy
            .objects
            .head_object(&bucket, &listed.key)
            .await
            .unwrap();
        let bytes = eddy.objects.stored_bytes(&meta).await.unwrap();
        let record = serde_json::from_slice(&bytes).unwrap();
        found.push((listed.key.to_string(), meta, record));
    }
    found
}

/// `aws/lambda/SCOPE/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-REQUEST`, as Lambda names the objects
/// of an S3 destination.
fn assert_named(name: &str, scope: &str, request_id: &str) {
    let rest = name
        .strip_prefix(&format!("aws/lambda/{scope}/"))
        .unwrap_or_else(|| panic!("{name} is under aws/lambda/{scope}/"));
    let (date, file) = rest.split_at(11);
    let (y, m, d) = (&date[0..4], &date[5..7], &date[8..10]);
    assert!(
        file.starts_with(&format!("{y}-{m}-{d}T")) && file.ends_with(&format!("-{request_id}")),
        "{name}"
    );
    assert_eq!(
        file.len(),
        "YYYY-MM-DDTHH.MM.SS-".len() + request_id.len(),
        "{name}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_become_objects_and_rows_that_trigger_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let (eddy, executor) =
        start_executor(dir.path(), app(dir.path(), STORES), Arc::new(SystemClock)).await;
    let [work, stream, archive] = [(); 3].map(|_| Arc::new(Recorder::default()));
    for (name, handler) in [("work", &work), ("stream", &stream), ("archive", &archive)] {
        executor.register(function(name), handler.clone());
    }
    let outcomes = TableName::new("outcomes").unwrap();

    // A success goes to the table: a row named as the record's object would be.
    upload(&eddy, "inbox", "ok.txt").await;
    wait_for("the success row", || async {
        let page = eddy
            .tables
            .list(&outcomes, &Default::default())
            .await
            .unwrap();
        !page.rows.is_empty()
    })
    .await;
    let rows = eddy
        .tables
        .list(&outcomes, &Default::default())
        .await
        .unwrap()
        .rows;
    let request_id = executor
        .invocations(Some(&function("work")), None)
        .await
        .unwrap()[0]
        .request_id
        .clone();
    let row = &rows[0];
    assert_named(row["name"].as_str().unwrap(), "async/work", &request_id);
    assert_eq!(row["note"], Value::Null);
    let record = &row["record"];
    assert_eq!(record["requestContext"]["condition"], "Success");
    assert_eq!(record["requestContext"]["requestId"], request_id.as_str());
    assert_eq!(record["responsePayload"], json!({"ok": true}));
    assert_eq!(record["requestPayload"], work.events()[0]);

    // A failure goes to the bucket: an object of JSON, whose creation runs the bucket's
    // trigger like any upload's.
    *work.failing.lock().unwrap() = true;
    upload(&eddy, "inbox", "bad.txt").await;
    wait_for("the failure object's trigger", || async {
        archive.count() == 1
    })
    .await;
    let objects = failure_objects(&eddy).await;
    let [(key, meta, record)] = &objects[..] else {
        panic!("one object: {objects:?}")
    };
    let failed_request = record["requestContext"]["requestId"].as_str().unwrap();
    assert_named(key, "async/work", failed_request);
    assert_eq!(meta.content_type.as_deref(), Some("application/json"));
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(
        record["requestPayload"]["Records"][0]["s3"]["object"]["key"],
        "bad.txt"
    );
    assert_eq!(
        archive.events()[0]["Records"][0]["s3"]["object"]["key"],
        key.as_str()
    );
    // The failed delivery names the event that carried its record: the object's creation.
    let dead = executor
        .dead_letters(Some(&function("work")))
        .await
        .unwrap();
    let deliveries = executor.deliveries_of(dead[0].event_seq).await.unwrap();
    assert_eq!(deliveries[0].destination_seq, Some(meta.sequencer));

    // A stream's failure goes to the bucket with the records it gave up on, as Lambda's S3
    // destination keeps the invocation's payload.
    *stream.failing.lock().unwrap() = true;
    eddy.tables
        .insert(
            &TableName::new("orders").unwrap(),
            vec![json!({"id": 7})],
            Lineage::root(),
        )
        .await
        .unwrap();
    wait_for("the stream's failure object", || async {
        archive.count() == 2
    })
    .await;
    let objects = failure_objects(&eddy).await;
    let (key, _, record) = objects
        .iter()
        .find(|(key, _, _)| key.starts_with("aws/lambda/on-order/"))
        .expect("the stream's record");
    let stream_request = record["requestContext"]["requestId"].as_str().unwrap();
    assert_named(key, "on-order/shardId-00000000000000000000", stream_request);
    assert_eq!(record["DDBStreamBatchInfo"]["batchSize"], 1);
    assert_eq!(record["payload"], stream.events()[0]);
    assert_eq!(
        record["payload"]["Records"][0]["dynamodb"]["Keys"]["id"],
        json!({"N": "7"})
    );

    // A bucket removed since: the record cannot be written, and says so; the delivery is
    // dead-lettered all the same and nothing is stuck.
    let failures = eddy_core::BucketName::new("failures").unwrap();
    for (key, _, _) in failure_objects(&eddy).await {
        let key = eddy_core::ObjectKey::new(&key).unwrap();
        eddy.objects
            .delete_object(&failures, &key, Lineage::root())
            .await
            .unwrap();
    }
    eddy.objects.delete_bucket(&failures).await.unwrap();
    upload(&eddy, "inbox", "worse.txt").await;
    wait_for("the second dead letter", || async {
        executor
            .dead_letters(Some(&function("work")))
            .await
            .unwrap()
            .len()
            == 2
    })
    .await;
    wait_for("everything to settle", || async {
        let c = executor.counts().await.unwrap();
        c.ready == 0 && c.leased == 0
    })
    .await;
    let dead = executor
        .dead_letters(Some(&function("work")))
        .await
        .unwrap();
    let deliveries = executor.deliveries_of(dead[1].event_seq).await.unwrap();
    assert_eq!(deliveries[0].destination_seq, None);
    executor.shutdown().await;
}

/// A function whose failures go to the bucket its own trigger watches: each record fires it
/// again, one hop further, until the hop limit dead-letters the event before it runs — which
/// writes no record, so the loop ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_feeds_its_own_trigger_stops_at_the_hop_limit() {
    const LOOP: &str = "
buckets: [{name: loop}]
functions:
  - name: fails
    runtime: in_process
    role: [{allow: [objects:write], resources: [bucket/loop]}]
    destinations: {on_failure: bucket/loop}
triggers:
  - {function: fails, source: bucket/loop, events: [object:created], retry: {max_attempts: 1}}
";
    let dir = tempfile::tempdir().unwrap();
    let config = ExecutorConfig {
        max_hops: 3,
        ..ExecutorConfig::default()
    };
    let (eddy, executor) = eddy_tests::start_executor_with(
        dir.path(),
        app(dir.path(), LOOP),
        Arc::new(SystemClock),
        config,
    )
    .await;
    let fails = Arc::new(Recorder::default());
    *fails.failing.lock().unwrap() = true;
    executor.register(function("fails"), fails.clone());
    upload(&eddy, "loop", "first.txt").await;
    // The upload (hop 0) and the records of hops 1, 2 and 3 each run and fail; the record of
    // hop 4 is dead-lettered unrun.
    wait_for("the hop limit", || async {
        let dead = executor.dead_letters(None).await.unwrap();
        dead.iter().any(|d| d.reason == DeadReason::RecursionLimit)
    })
    .await;
    wait_for("everything to settle", || settled(&executor, 5)).await;
    let dead = executor.dead_letters(None).await.unwrap();
    let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == "RetriesExhausted").count(),
        4,
        "{reasons:?}"
    );
    assert_eq!(fails.count(), 4, "the hop limit ran nothing");
    let bucket = eddy_core::BucketName::new("loop").unwrap();
    let params = eddy_objects::ListParams {
        max_keys: 100,
        ..Default::default()
    };
    let listed = eddy.objects.list_objects(&bucket, &params).await.unwrap();
    assert_eq!(listed.objects.len(), 5, "the upload and four records");
    executor.shutdown().await;
}
