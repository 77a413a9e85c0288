//! The Lambda runtimes end to end: handlers written for AWS Lambda (Node.js in every style,
//! Python, and `awslambdaric` under `provided`) run unchanged under `eddy serve`, in warm
//! workers, with Lambda's limits, errors and log lines.

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Node.js handlers in each style Lambda supports.
const NODE: &[(&str, &str)] = &[
    (
        "node/index.js",
        r#"
let calls = 0;
exports.asyncHandler = async (event, context) => {
  calls += 1;
  console.log('async saw', JSON.stringify(event));
  return {
    style: 'async', event, calls,
    requestId: context.awsRequestId, name: context.functionName, version: context.functionVersion,
    memory: context.memoryLimitInMB, arn: context.invokedFunctionArn,
    group: context.logGroupName, remaining: context.getRemainingTimeInMillis(),
    waits: context.callbackWaitsForEmptyEventLoop,
  };
};
exports.promiseHandler = (event) => new Promise((resolve) => setTimeout(() => resolve({ style: 'promise' }), 5));
exports.callbackHandler = (event, context, callback) => setTimeout(() => callback(null, { style: 'callback' }), 5);
exports.failing = async () => { const e = new Error('the order is invalid'); e.name = 'OrderError'; throw e; };
exports.crash = async () => { process.exit(7); };
exports.spin = async () => { for (;;) {} };
exports.hog = async () => { const kept = []; for (;;) kept.push(new Array(1e6).fill(Math.random())); };
exports.onUpload = async (event) => {
  const record = event.Records[0];
  console.log(`upload ${record.eventName} ${record.s3.bucket.name}/${record.s3.object.key} ${record.s3.object.size}`);
  return null;
};
"#,
    ),
    (
        "node/esm.mjs",
        "export const handler = async (event) => ({ style: 'esm', n: event.n });\n",
    ),
    ("node/broken.js", "exports.handler = async () => {;\n"),
];

const PYTHON: &[(&str, &str)] = &[
    (
        "py/app.py",
        r#"
import time

def handler(event, context):
    print("python saw", event)
    return {"style": "python", "event": event, "name": context.function_name,
            "memory": context.memory_limit_in_mb, "request_id": context.aws_request_id,
            "remaining": context.get_remaining_time_in_millis()}

def on_row(event, context):
    record = event["Records"][0]
    print("row", record["eventName"], record["dynamodb"]["Keys"]["id"]["N"])

def failing(event, context):
    raise KeyError("no such order")

def hog(event, context):
    kept = []
    while True:
        kept.append(bytearray(10 * 1024 * 1024))

def gate(event, context):
    time.sleep(1)
    return "passed"

def slow(event, context):
    time.sleep(event.get("seconds", 0.3))
    return {"done": event.get("n")}
"#,
    ),
    (
        "py/ric.py",
        "def handler(event, context):\n    return {'ric': event, 'name': context.function_name}\n",
    ),
    // Written without the execute permission: `provided` cannot run it.
    ("py/not-executable", "#!/bin/sh\necho never\n"),
];

const MANIFEST: &str = "
buckets: [{name: photos}]
tables: [{name: orders, primary_key: id, columns: {id: integer, status: text}}]
functions:
  - {name: node-async, runtime: nodejs, handler: index.asyncHandler, code: ./node, memory_mb: 256}
  - {name: node-promise, runtime: nodejs, handler: index.promiseHandler, code: ./node}
  - {name: node-callback, runtime: nodejs, handler: index.callbackHandler, code: ./node}
  - {name: node-esm, runtime: nodejs, handler: esm.handler, code: ./node}
  - {name: node-failing, runtime: nodejs, handler: index.failing, code: ./node}
  - {name: node-crash, runtime: nodejs, handler: index.crash, code: ./node}
  - {name: node-spin, runtime: nodejs, handler: index.spin, code: ./node, timeout: 1s}
  - {name: node-hog, runtime: nodejs, handler: index.hog, code: ./node, memory_mb: 128, timeout: 20s}
  - {name: node-broken, runtime: nodejs, handler: broken.handler, code: ./node}
  - {name: node-missing, runtime: nodejs, handler: nothere.handler, code: ./node}
  - {name: node-upload, runtime: nodejs, handler: index.onUpload, code: ./node}
  - {name: py, runtime: python, handler: app.handler, code: ./py}
  - {name: py-row, runtime: python, handler: app.on_row, code: ./py}
  - {name: py-failing, runtime: python, handler: app.failing, code: ./py}
  - {name: py-hog, runtime: python, handler: app.hog, code: ./py, memory_mb: 128, timeout: 20s}
  - {name: py-missing, runtime: python, handler: nothere.handler, code: ./py}
  - {name: py-slow, runtime: python, handler: app.slow, code: ./py, concurrency: 2, timeout: 10s}
  - {name: py-gate, runtime: python, handler: app.gate, code: ./py, concurrency: 1, memory_mb: 512}
  - {name: ric, runtime: provided, command: [python3, -m, awslambdaric, ric.handler], code: ./py}
  - {name: not-executable, runtime: provided, command: [./not-executable], code: ./py}
  - {name: exits-127, runtime: provided, command: [sh, -c, 'echo \"helper: not found\" >&2; exit 127'], code: ./py}
  - {name: exits-125, runtime: provided, command: [sh, -c, 'echo \"cannot go on\" >&2; exit 125'], code: ./py}
triggers:
  - {function: node-upload, source: bucket/photos, events: ['object:created:*']}
  - {function: py-row, source: table/orders, events: [row:insert]}
";

fn app() -> Eddy {
    let dir = tempfile::tempdir().unwrap();
    for (file, text) in NODE.iter().chain(PYTHON) {
        write(dir.path(), file, text);
    }
    std::fs::write(dir.path().join("app.yaml"), MANIFEST).unwrap();
    spawn(dir, "app.yaml")
}

/// `eddy invoke NAME --json`: the result, or the error the command printed.
fn invoke(eddy: &Eddy, name: &str, payload: &str) -> Result<Value, String> {
    let out = cli(eddy, &["invoke", name, "--payload", payload, "--json"]);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn runs(eddy: &Eddy, function: &str) -> Vec<Value> {
    let body = eddy
        .get(&format!("/_eddy/v1/invocations?function={function}"))
        .body;
    body["invocations"].as_array().cloned().unwrap_or_default()
}

/// The log of `function`'s first recorded invocation.
fn first_log(eddy: &Eddy, function: &str) -> String {
    runs(eddy, function)[0]["log"].as_str().unwrap().to_string()
}

/// The fields of a REPORT line, parsed as Lambda's format is (tab-separated `Name: value`).
fn report(log: &str) -> std::collections::BTreeMap<String, String> {
    let line = log
        .lines()
        .find(|l| l.starts_with("REPORT RequestId: "))
        .unwrap_or_else(|| panic!("no REPORT line: {log}"));
    line.split('\t')
        .map(|field| {
            let (name, value) = field
                .split_once(": ")
                .unwrap_or_else(|| panic!("{field:?}"));
            (name.to_string(), value.to_string())
        })
        .collect()
}

#[test]
fn node_handlers_in_every_style() {
    let eddy = app();
    let first = invoke(&eddy, "node-async", r#"{"n": 1}"#).unwrap();
    assert_eq!(first["style"], "async");
    assert_eq!(first["event"], json!({"n": 1}));
    assert_eq!(
        (
            &first["name"],
            &first["version"],
            &first["memory"],
            &first["waits"]
        ),
        (
            &json!("node-async"),
            &json!("$LATEST"),
            &json!("256"),
            &json!(true)
        )
    );
    assert_eq!(
        first["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:node-async"
    );
    assert_eq!(first["group"], "/aws/lambda/node-async");
    let remaining = first["remaining"].as_u64().unwrap();
    assert!(remaining > 0 && remaining <= 3000, "{remaining}");
    let second = invoke(&eddy, "node-async", "{}").unwrap();
    assert_eq!(
        second["calls"], 2,
        "the second invocation reuses the warm worker"
    );

    let logs = runs(&eddy, "node-async");
    let (cold, warm) = (
        logs[0]["log"].as_str().unwrap(),
        logs[1]["log"].as_str().unwrap(),
    );
    let cold_report = report(cold);
    let warm_report = report(warm);
    assert!(cold_report.contains_key("Init Duration"), "{cold}");
    assert!(!warm_report.contains_key("Init Duration"), "{warm}");
    assert_eq!(
        warm_report["REPORT RequestId"],
        logs[1]["request_id"].as_str().unwrap()
    );
    assert_eq!(warm_report["Memory Size"], "256 MB");
    for field in ["Duration", "Init Duration"] {
        let value = &cold_report[field];
        let ms = value.strip_suffix(" ms").unwrap();
        assert!(
            ms.split_once('.').is_some_and(|(_, d)| d.len() == 2),
            "{field}: {value}"
        );
    }
    let billed: u64 = warm_report["Billed Duration"]
        .strip_suffix(" ms")
        .unwrap()
        .parse()
        .unwrap();
    let took: f64 = warm_report["Duration"]
        .strip_suffix(" ms")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        billed,
        (took.ceil() as u64).max(1),
        "billed: rounded up to the millisecond"
    );
    assert!(warm_report["Max Memory Used"].ends_with(" MB"));
    let line = own_output(warm).lines().next().unwrap().to_string();
    let parts: Vec<&str> = line.split('\t').collect();
    assert_eq!(parts[1], logs[1]["request_id"].as_str().unwrap(), "{line}");
    assert_eq!((parts[2], parts[3]), ("INFO", "async saw {}"), "{line}");

    assert_eq!(
        invoke(&eddy, "node-promise", "{}").unwrap(),
        json!({"style": "promise"})
    );
    assert_eq!(
        invoke(&eddy, "node-callback", "{}").unwrap(),
        json!({"style": "callback"})
    );
    assert_eq!(
        invoke(&eddy, "node-esm", r#"{"n": 5}"#).unwrap(),
        json!({"style": "esm", "n": 5})
    );

    let failed = eddy.call(
        "POST",
        "/2015-03-31/functions/node-failing/invocations",
        &[],
        Some("{}"),
    );
    assert_eq!(failed.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(failed.body["errorType"], "OrderError");
    assert_eq!(failed.body["errorMessage"], "the order is invalid");
    assert!(
        failed.body["stackTrace"][0]
            .as_str()
            .unwrap()
            .contains("index.js"),
        "{}",
        failed.body
    );
}

#[test]
fn python_handlers_and_awslambdaric_under_provided() {
    let eddy = app();
    let result = invoke(&eddy, "py", r#"{"n": 2}"#).unwrap();
    assert_eq!(result["style"], "python");
    assert_eq!(result["event"], json!({"n": 2}));
    assert_eq!(
        (&result["name"], &result["memory"]),
        (&json!("py"), &json!("128"))
    );
    assert!(result["remaining"].as_u64().unwrap() > 0);
    let log = first_log(&eddy, "py");
    assert_eq!(own_output(&log), "python saw {'n': 2}\n");

    let failed = eddy.call(
        "POST",
        "/2015-03-31/functions/py-failing/invocations",
        &[],
        Some("{}"),
    );
    assert_eq!(failed.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(
        (&failed.body["errorType"], &failed.body["errorMessage"]),
        (&json!("KeyError"), &json!("'no such order'"))
    );

    let err = invoke(&eddy, "py-missing", "{}").unwrap_err();
    assert!(err.contains("Runtime.ImportModuleError"), "{err}");

    // A client built with AWS's own Runtime API library, unchanged.
    let ric = invoke(&eddy, "ric", r#"{"n": 3}"#).unwrap();
    assert_eq!(ric, json!({"ric": {"n": 3}, "name": "ric"}));
    let again = invoke(&eddy, "ric", r#"{"n": 4}"#).unwrap();
    assert_eq!(again["ric"], json!({"n": 4}));
    let ric_runs = runs(&eddy, "ric");
    assert!(report(ric_runs[0]["log"].as_str().unwrap()).contains_key("Init Duration"));
    assert!(!report(ric_runs[1]["log"].as_str().unwrap()).contains_key("Init Duration"));
}

#[test]
fn triggers_run_node_and_python_handlers() {
    let eddy = app();
    boto3(
        &eddy,
        r#"s3.put_object(Bucket="photos", Key="red flower.jpg", Body=b"0123456789")"#,
    );
    eddy.json(
        "POST",
        "/_eddy/v1/tables/orders/rows",
        json!({"id": 42, "status": "new"}),
    );
    eddy.wait_for("both triggers", |e| {
        !runs(e, "node-upload").is_empty() && !runs(e, "py-row").is_empty()
    });
    let upload = first_log(&eddy, "node-upload");
    assert!(
        upload.contains("\tINFO\tupload ObjectCreated:Put photos/red+flower.jpg 10\n"),
        "{upload}"
    );
    let row = first_log(&eddy, "py-row");
    assert_eq!(own_output(&row), "row INSERT 42\n");
}

/// Each way a function can go wrong has Lambda's outcome, and eddy keeps serving.
#[test]
fn limits_and_failures_have_lambdas_outcomes() {
    let eddy = app();
    let err = invoke(&eddy, "node-spin", "{}").unwrap_err();
    assert!(
        err.contains("Sandbox.Timedout: Task timed out after 1.00 seconds"),
        "{err}"
    );
    let log = first_log(&eddy, "node-spin");
    assert!(
        log.contains(" Task timed out after 1.00 seconds\nEND RequestId: "),
        "{log}"
    );
    assert_eq!(runs(&eddy, "node-spin")[0]["outcome"], "timeout");

    let err = invoke(&eddy, "node-hog", "{}").unwrap_err();
    assert!(err.contains("Runtime.OutOfMemory"), "{err}");
    let err = invoke(&eddy, "py-hog", "{}").unwrap_err();
    // Where a memory cgroup holds the worker the kernel kills it; under RLIMIT_DATA Python's
    // allocation fails first and raises its own error.
    let expected = if eddy.log().contains("memory by cgroup") {
        "Runtime.OutOfMemory"
    } else {
        "MemoryError"
    };
    assert!(err.contains(expected), "{expected}: {err}");

    let err = invoke(&eddy, "node-crash", "{}").unwrap_err();
    assert!(
        err.contains("Runtime.ExitError: the runtime exited with status 7"),
        "{err}"
    );
    let err = invoke(&eddy, "node-broken", "{}").unwrap_err();
    assert!(err.contains("Runtime.UserCodeSyntaxError"), "{err}");
    let err = invoke(&eddy, "node-missing", "{}").unwrap_err();
    assert!(err.contains("Runtime.ImportModuleError"), "{err}");
    // The program is executed after its process was forked and held: why it could not be is
    // in the log.
    let err = invoke(&eddy, "not-executable", "{}").unwrap_err();
    assert!(
        err.contains("Runtime.InvalidEntrypoint: the function's program could not be executed"),
        "{err}"
    );
    let log = first_log(&eddy, "not-executable");
    assert!(
        log.contains("eddy: cannot execute ")
            && log.contains(&format!(
                "/not-executable (errno {})",
                nix::errno::Errno::EACCES as i32
            )),
        "{log}"
    );
    // A program that exits with those statuses itself, before asking for work, is told apart
    // from eddy's own process by what it said last.
    let err = invoke(&eddy, "exits-127", "{}").unwrap_err();
    assert!(
        err.contains("Runtime.ExitError: the runtime exited with status 127"),
        "{err}"
    );
    assert!(first_log(&eddy, "exits-127").contains("helper: not found\n"));
    let err = invoke(&eddy, "exits-125", "{}").unwrap_err();
    assert!(
        err.contains("Runtime.ExitError: the runtime exited with status 125"),
        "{err}"
    );

    // The platform, and the functions that failed, still serve.
    assert_eq!(invoke(&eddy, "node-esm", r#"{"n": 1}"#).unwrap()["n"], 1);
    assert_eq!(eddy.get("/_eddy/health").status, 200);
    let again = invoke(&eddy, "node-crash", "{}").unwrap_err();
    assert!(
        again.contains("status 7"),
        "a crashed worker is replaced: {again}"
    );
}

/// A burst of asynchronous invocations never runs more at once than the function's
/// concurrency, and never needs more workers than that.
#[test]
fn concurrency_caps_a_burst() {
    let eddy = app();
    for n in 0..8 {
        let out = cli(
            &eddy,
            &[
                "invoke",
                "py-slow",
                "--async",
                "--payload",
                &format!(r#"{{"n": {n}, "seconds": 0.3}}"#),
            ],
        );
        assert!(out.status.success());
    }
    eddy.wait_for("all eight", |e| runs(e, "py-slow").len() == 8);
    let records = runs(&eddy, "py-slow");
    let mut spans: Vec<(i64, i64)> = records
        .iter()
        .map(|r| {
            let start = r["start_ms"].as_i64().unwrap();
            (start, start + r["duration_ms"].as_f64().unwrap() as i64)
        })
        .collect();
    spans.sort();
    let most_at_once = spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap();
    assert!(
        most_at_once <= 2,
        "at most 2 at once, saw {most_at_once}: {spans:?}"
    );
    let cold = records
        .iter()
        .filter(|r| report(r["log"].as_str().unwrap()).contains_key("Init Duration"))
        .count();
    assert!(
        (1..=2).contains(&cold),
        "at most two workers started: {cold}\n{}",
        eddy.log()
    );
    assert!(records.iter().all(|r| r["outcome"] == "success"));
}

/// Usage is metered as Lambda bills it: requests, and billed milliseconds times memory.
#[test]
fn usage_is_metered_like_lambda() {
    let eddy = app();
    let payload = "{}";
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["invoke", "py-gate", "--payload", payload])
        .env("EDDY_ENDPOINT", &eddy.base)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The function's process exists once its invocation holds the only slot (it sleeps a
    // second in there).
    eddy.wait_for("the first invocation to hold the only slot", |_| {
        !function_processes("py-gate").is_empty()
    });
    let err = invoke(&eddy, "py-gate", payload).unwrap_err();
    assert!(err.contains("TooManyRequestsException"), "{err}");
    assert!(first.wait().unwrap().success());

    let usage: Value = serde_json::from_str(&cli_ok(
        &eddy,
        &[
            "usage",
            "--json",
            "--free-requests",
            "0",
            "--free-gb-seconds",
            "0",
        ],
    ))
    .unwrap();
    let gate = usage["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "py-gate")
        .unwrap()
        .clone();
    let record = &runs(&eddy, "py-gate")[0];
    let billed = record["billed_ms"].as_u64().unwrap();
    assert!(billed >= 1000, "the handler slept a second: {record}");
    assert_eq!(record["memory_mb"], 512);
    assert_eq!(
        (&gate["invocations"], &gate["throttles"], &gate["errors"]),
        (&json!(1), &json!(1), &json!(0)),
        "counts are whole numbers"
    );
    assert_eq!(gate["billed_ms"], json!(billed));
    let gb_seconds = billed as f64 * 512.0 / 1024.0 / 1000.0;
    assert!(
        (gate["gb_seconds"].as_f64().unwrap() - gb_seconds).abs() < 1e-9,
        "{gate}"
    );
    let total = &usage["total"];
    let expected = 1.0 / 1e6 * 0.20 + gb_seconds * 0.0000166667;
    assert!(
        (total["estimated_cost_usd"].as_f64().unwrap() - expected).abs() < 1e-12,
        "{total}"
    );
    let table = cli_ok(&eddy, &["usage"]);
    assert!(
        table.contains("py-gate") && table.contains("estimated cost: $"),
        "{table}"
    );
    let free = cli_ok(&eddy, &["usage", "--json"]);
    assert_eq!(json_total(&free), 0.0, "within the free tier");
}

fn json_total(text: &str) -> f64 {
    let value: Value = serde_json::from_str(text).unwrap();
    value["total"]["estimated_cost_usd"].as_f64().unwrap()
}

/// A changed handler file is picked up without a restart: the warm workers running the old
/// code are retired. Idle workers stop after `--worker-idle`.
#[test]
fn a_code_change_retires_warm_workers_and_idle_ones_stop() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "code/index.js",
        "exports.handler = async () => 'v1';\n",
    );
    std::fs::write(
        dir.path().join("app.yaml"),
        "functions: [{name: f, runtime: nodejs, handler: index.handler, code: ./code}]\n",
    )
    .unwrap();
    let eddy = spawn_args(dir, "app.yaml", &["--worker-idle", "300ms"]);
    assert_eq!(invoke(&eddy, "f", "{}").unwrap(), "v1");
    assert_eq!(invoke(&eddy, "f", "{}").unwrap(), "v1");
    write(
        eddy.dir.path(),
        "code/index.js",
        "exports.handler = async () => 'v2';\n",
    );
    // (An invocation that starts a worker while the file is half written may fail: the file
    // is written in place, as a test can, not renamed into place, as editors do.)
    eddy.wait_for("the new code", |e| {
        invoke(e, "f", "{}").is_ok_and(|v| v == "v2")
    });
    let records = runs(&eddy, "f");
    let last = records.last().unwrap()["log"].as_str().unwrap();
    assert!(
        report(last).contains_key("Init Duration"),
        "the new code runs in a new worker: {last}"
    );

    // Idle for longer than --worker-idle: the next invocation is a cold start again.
    std::thread::sleep(std::time::Duration::from_millis(800));
    invoke(&eddy, "f", "{}").unwrap();
    let records = runs(&eddy, "f");
    let last = records.last().unwrap()["log"].as_str().unwrap();
    assert!(
        report(last).contains_key("Init Duration"),
        "the idle worker was stopped: {last}"
    );
}

/// The Runtime API's error cases, from a `provided` runtime that probes them: an answer for an
/// id that is not running is 400, a second answer for one id is 403.
#[test]
fn the_runtime_api_refuses_wrong_and_second_answers() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "probe/probe.py",
        r#"
import http.client, json, os
api = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
def call(method, path, body=None):
    api.request(method, "/2018-06-01/runtime" + path, body=body)
    response = api.getresponse()
    return response.status, response, response.read()
while True:
    status, headers, body = call("GET", "/invocation/next")
    request_id = headers.getheader("Lambda-Runtime-Aws-Request-Id")
    deadline = int(headers.getheader("Lambda-Runtime-Deadline-Ms"))
    arn = headers.getheader("Lambda-Runtime-Invoked-Function-Arn")
    wrong, _, _ = call("POST", "/invocation/not-an-id/response", b"{}")
    answer = json.dumps({"event": json.loads(body), "wrong": wrong, "deadline": deadline > 0,
                         "arn": arn, "env": {k: os.environ.get(k) for k in [
                             "_HANDLER", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                             "AWS_LAMBDA_FUNCTION_VERSION", "TZ", "AWS_LAMBDA_MAX_CONCURRENCY"]}})
    first, _, _ = call("POST", "/invocation/%s/response" % request_id, answer.encode())
    second, _, _ = call("POST", "/invocation/%s/response" % request_id, b"{}")
    # One write: the line must not be split between two invocations' logs.
    print("answers %d %d" % (first, second), flush=True)
"#,
    );
    std::fs::write(
        dir.path().join("app.yaml"),
        "functions: [{name: probe, runtime: provided, command: [python3, probe.py], code: ./probe}]\n",
    )
    .unwrap();
    let eddy = spawn(dir, "app.yaml");
    let first = invoke(&eddy, "probe", r#"{"n": 1}"#).unwrap();
    assert_eq!(first["event"], json!({"n": 1}));
    assert_eq!(first["wrong"], 400, "an id that is not running");
    assert_eq!(first["deadline"], true);
    assert_eq!(
        first["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:probe"
    );
    assert_eq!(
        first["env"],
        json!({"_HANDLER": null, "AWS_LAMBDA_FUNCTION_NAME": "probe", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
               "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "TZ": ":UTC", "AWS_LAMBDA_MAX_CONCURRENCY": null})
    );
    // The second answer is refused. Its status is printed after the invocation ended, so the
    // line lands in this invocation's log or, if eddy had taken that already, the next one's
    // (whole: the probe writes it at once, as unbuffered Python would otherwise write each
    // printed value apart).
    invoke(&eddy, "probe", "{}").unwrap();
    let log: String = runs(&eddy, "probe")
        .iter()
        .map(|run| run["log"].as_str().unwrap())
        .collect();
    assert!(log.contains("answers 202 403"), "{log}");
}

/// What a handler prints before it answers is in that invocation's log, every time (the
/// answer can arrive before eddy has read the output).
#[test]
fn each_log_holds_its_own_output() {
    let eddy = app();
    for n in 0..40 {
        invoke(&eddy, "py", &format!(r#"{{"n": {n}}}"#)).unwrap();
    }
    let records = runs(&eddy, "py");
    assert_eq!(records.len(), 40);
    for (n, record) in records.iter().enumerate() {
        let log = own_output(record["log"].as_str().unwrap());
        assert_eq!(log, format!("python saw {{'n': {n}}}\n"), "invocation {n}");
    }
}

/// A function keeps its `warm` workers started and initialised before its first event and
/// however long they then wait; a function with triggers keeps one by default, one without
/// none. An invocation on a warm worker is no cold start.
#[test]
fn warm_workers_are_ready_before_the_first_event() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "code/index.js",
        "exports.handler = async () => 'warm';\n",
    );
    std::fs::write(
        dir.path().join("app.yaml"),
        "buckets: [{name: warming}]
functions:
  - {name: warm-two, runtime: nodejs, handler: index.handler, code: ./code, warm: 2}
  - {name: warm-default, runtime: nodejs, handler: index.handler, code: ./code}
  - {name: warm-none, runtime: nodejs, handler: index.handler, code: ./code}
triggers:
  - {function: warm-default, source: bucket/warming, events: ['object:created:*']}
",
    )
    .unwrap();
    let eddy = spawn_args(dir, "app.yaml", &["--worker-idle", "300ms"]);
    eddy.wait_for("the warm workers", |_| {
        function_processes("warm-two").len() == 2 && function_processes("warm-default").len() == 1
    });
    assert!(function_processes("warm-none").is_empty());
    // Idle well past --worker-idle: the warm ones stay.
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(function_processes("warm-two").len(), 2);
    assert_eq!(function_processes("warm-default").len(), 1);
    assert_eq!(invoke(&eddy, "warm-two", "{}").unwrap(), "warm");
    let log = first_log(&eddy, "warm-two");
    assert!(!report(&log).contains_key("Init Duration"), "{log}");
}

/// An invocation that finds no idle worker starts one, but runs on whichever is ready first:
/// here the busy worker frees long before the new one has loaded its (slow) handler, so the
/// second of two overlapping invocations runs warm, and the new worker waits in the pool.
#[test]
fn a_burst_does_not_wait_behind_a_starting_worker() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("slow-starts");
    write(
        dir.path(),
        "code/index.js",
        "const fs = require('fs');
// Loading takes 6 s once the flag exists: new workers are slow to start from then on.
if (fs.existsSync(process.env.SLOW_FLAG)) { const end = Date.now() + 6000; while (Date.now() < end) {} }
exports.handler = async (event) => { await new Promise(r => setTimeout(r, event.ms)); return 'done'; };
",
    );
    std::fs::write(
        dir.path().join("app.yaml"),
        format!(
            "functions:
  - name: bursty
    runtime: nodejs
    handler: index.handler
    code: ./code
    warm: 0
    environment: {{SLOW_FLAG: {}}}
",
            flag.display()
        ),
    )
    .unwrap();
    let eddy = spawn_args(dir, "app.yaml", &["--function-sandbox", "off"]);
    // One worker, started by a first invocation (loading fast: no flag yet), idle now.
    assert_eq!(invoke(&eddy, "bursty", r#"{"ms": 0}"#).unwrap(), "done");
    std::fs::write(&flag, "").unwrap();
    std::thread::scope(|scope| {
        let long = scope.spawn(|| invoke(&eddy, "bursty", r#"{"ms": 2000}"#));
        // The second arrives while the first is busy on the only worker (for 2 s; a new
        // worker takes 6 s to load).
        std::thread::sleep(std::time::Duration::from_millis(700));
        assert_eq!(invoke(&eddy, "bursty", r#"{"ms": 0}"#).unwrap(), "done");
        assert_eq!(long.join().unwrap().unwrap(), "done");
    });
    let records = runs(&eddy, "bursty");
    let last = records.last().unwrap()["log"].as_str().unwrap();
    assert!(
        !report(last).contains_key("Init Duration"),
        "the second invocation ran on the warm worker once it was free: {last}"
    );
    eddy.wait_for("the worker started for the burst", |_| {
        function_processes("bursty").len() == 2
    });
}

/// A Python handler written for DynamoDB Streams with `ReportBatchItemFailures`: it gets the
/// rows in batches as `Records`, names the record it could not handle the first time, and only
/// that record comes back; `eddy events show` tells both batches the record went in.
#[test]
fn a_python_stream_handler_gets_batches_and_reports_a_failed_record() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "py/stream.py",
        r#"
failed_once = set()

def handler(event, context):
    failures = []
    for record in event["Records"]:
        seq = record["dynamodb"]["SequenceNumber"]
        image = record["dynamodb"]["NewImage"]
        print("record", record["eventName"], image["id"]["N"], image["status"]["S"], seq)
        if image["status"]["S"] == "bad" and seq not in failed_once:
            failed_once.add(seq)
            failures.append({"itemIdentifier": seq})
    return {"batchItemFailures": failures}
"#,
    );
    let manifest = "
tables: [{name: orders, primary_key: id, columns: {id: integer, status: text}}]
functions:
  - {name: stream, runtime: python, handler: stream.handler, code: ./py, concurrency: 1}
triggers:
  - function: stream
    source: table/orders
    events: [row:insert]
    batch: {size: 10, window: 2s, report_failures: true}
    retry: {backoff: 1ms..1ms}
";
    std::fs::write(dir.path().join("app.yaml"), manifest).unwrap();
    let eddy = spawn(dir, "app.yaml");
    let rows: Vec<Value> = (1..=5)
        .map(|id| json!({"id": id, "status": if id == 3 { "bad" } else { "good" }}))
        .collect();
    assert_eq!(
        eddy.json("POST", "/_eddy/v1/tables/orders/rows", json!(rows))
            .status,
        201
    );
    eddy.wait_for("the batch and the failed record's retry", |e| {
        runs(e, "stream").len() == 2
    });
    let runs = runs(&eddy, "stream");
    assert_eq!(runs[0]["batch_size"], 5, "{runs:?}");
    assert_eq!(runs[1]["batch_size"], 1, "{runs:?}");
    let printed = |run: &Value| -> Vec<String> {
        own_output(run["log"].as_str().unwrap())
            .lines()
            .map(|l| l.split(' ').take(4).collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(
        printed(&runs[0]),
        [
            "record INSERT 1 good",
            "record INSERT 2 good",
            "record INSERT 3 bad",
            "record INSERT 4 good",
            "record INSERT 5 good",
        ]
    );
    assert_eq!(printed(&runs[1]), ["record INSERT 3 bad"]);
    let bad_seq = runs[1]["event_sequence"].as_u64().unwrap();
    let shown = cli_ok(&eddy, &["events", "show", &bad_seq.to_string()]);
    assert!(
        shown.contains(", attempt 1 in a batch of 5: success")
            && shown.contains(", attempt 2 in a batch of 1: success")
            && shown.contains("done after 2 attempts"),
        "{shown}"
    );
}

/// Whether `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: u32) -> bool {
    process_stat(pid).is_none_or(|fields| fields[0] == "Z")
}

/// How much of process `pid`'s anonymous memory (its heap, its stacks: no file's pages) it
/// shares with another process, in kB. A forked copy shares its parent's until either writes.
fn anonymous_memory_shared_kb(pid: u32) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut anonymous = false;
    let mut shared = 0;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            // A mapping's first line: an address range, …, and a path for a file's (the
            // kernel's own pages, `[vdso]` and the like, are every process's).
            let path = fields.get(5).copied().unwrap_or("");
            anonymous = path.is_empty()
                || ["[heap]", "[stack", "[anon"]
                    .iter()
                    .any(|p| path.starts_with(p));
        } else if anonymous && matches!(fields.first(), Some(&"Shared_Clean:" | &"Shared_Dirty:")) {
            shared += fields[1].parse::<u64>().unwrap();
        }
    }
    shared
}

/// A new worker's process is forked and joined to its groups ahead of need: from the app's
/// apply, and again after each worker starts, a spare process waits, held before it runs anything of the
/// function, already in its own memory group, and as eddy's init program rather than a copy of
/// eddy; the function's next new worker — its first too — is that process, and another spare
/// takes its place.
/// Killed, eddy leaves no held process behind.
#[test]
fn a_spare_worker_process_waits_ahead_of_the_next_start_and_ends_with_eddy() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "code/app.py",
        "import time\ndef handler(event, context):\n    time.sleep(event['ms'] / 1000)\n    return 'done'\n",
    );
    std::fs::write(
        dir.path().join("app.yaml"),
        "functions:
  - {name: spared, runtime: python, handler: app.handler, code: ./code, warm: 0}
",
    )
    .unwrap();
    let eddy = spawn(dir, "app.yaml");
    // Parked when the app is applied: even the first cold start finds its process joined.
    eddy.wait_for("a spare", |e| held_processes(e).len() == 1);
    let first = held_processes(&eddy)[0];
    assert_eq!(invoke(&eddy, "spared", r#"{"ms": 0}"#).unwrap(), "done");
    assert!(
        !ended(first) && !held_processes(&eddy).contains(&first),
        "the first cold start took the spare"
    );
    eddy.wait_for("a spare after the first worker", |e| {
        let held = held_processes(e);
        held.len() == 1 && held[0] != first
    });
    let spare = held_processes(&eddy)[0];
    let eddy_pid = eddy.child.id();
    // It waits as eddy's init program, not as a copy of eddy: none of its memory is eddy's.
    assert_eq!(
        anonymous_memory_shared_kb(spare),
        0,
        "the spare shares eddy's memory"
    );
    // Its memory group: under cgroup v1's memory hierarchy, or v2's single one (`0::`).
    let groups = std::fs::read_to_string(format!("/proc/{spare}/cgroup")).unwrap();
    let worker_group = format!("/eddy-{eddy_pid}/w");
    let memory_line = |l: &&str| l.contains(":memory:") || l.starts_with("0::");
    if eddy.log().contains("memory by cgroup") {
        assert!(
            groups
                .lines()
                .filter(memory_line)
                .any(|l| l.contains(&worker_group)),
            "the spare is in a worker's memory group already: {groups}"
        );
    } else {
        eprintln!("NOTE: no writable cgroups here (RLIMIT_DATA): the spare's group not checked");
    }
    // Two overlapping invocations: the second needs a new worker, and gets the spare.
    std::thread::scope(|scope| {
        let long = scope.spawn(|| invoke(&eddy, "spared", r#"{"ms": 2000}"#));
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert_eq!(invoke(&eddy, "spared", r#"{"ms": 0}"#).unwrap(), "done");
        assert_eq!(long.join().unwrap().unwrap(), "done");
    });
    assert!(
        !ended(spare) && !held_processes(&eddy).contains(&spare),
        "the spare became the new worker"
    );
    eddy.wait_for("the next spare", |e| {
        let held = held_processes(e);
        held.len() == 1 && held[0] != spare
    });
    let held = held_processes(&eddy)[0];
    eddy.kill();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ended(held) {
        assert!(
            std::time::Instant::now() < deadline,
            "the held process {held} outlived eddy"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
