//! Destinations through the libraries: an asynchronous invocation's outcome — an object
//! trigger's delivery, an `Event` invoke — reaches the function's `on_success` or
//! `on_failure` function as Lambda's invocation record, and a table trigger's delivery given up
//! on reaches the trigger's `on_failure` function as the stream's failure record; each once,
//! with the dead letter still there.

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
