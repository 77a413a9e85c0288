//! The `eddy` client commands against a running `eddy serve`: objects, rows, invoke, logs,
//! events, dead letters and deploy, each with its human and `--json` output and its errors.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use serde_json::{Value, json};

fn json_of(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn objects_go_both_ways_and_large_ones_in_parts() {
    let eddy = serve("buckets: [{name: photos}]\n");
    let dir = eddy.dir.path();
    std::fs::write(dir.join("small.txt"), "hello").unwrap();
    let big: Vec<u8> = (0..70 * 1024 * 1024u32)
        .map(|i| (i * 7 % 253) as u8)
        .collect();
    std::fs::write(dir.join("big.bin"), &big).unwrap();

    let up = json_of(&cli_ok(
        &eddy,
        &["cp", "small.txt", "s3://photos/docs/", "--json"],
    ));
    assert_eq!(
        up["key"], "docs/small.txt",
        "a key ending in / takes the file's name"
    );
    let up = json_of(&cli_ok(
        &eddy,
        &["--json", "cp", "big.bin", "s3://photos/big.bin"],
    ));
    assert!(
        up["etag"].as_str().unwrap().ends_with("-5"),
        "70 MiB goes up in five 16 MiB parts: {up}"
    );

    assert_eq!(
        cli_ok(&eddy, &["cp", "s3://photos/docs/small.txt", "-"]),
        "hello"
    );
    cli_ok(&eddy, &["cp", "s3://photos/big.bin", "back.bin"]);
    assert!(std::fs::read(dir.join("back.bin")).unwrap() == big);

    let listing = json_of(&cli_ok(&eddy, &["ls", "s3://photos", "--json"]));
    assert_eq!(listing["prefixes"], json!(["docs/"]));
    assert_eq!(listing["objects"][0]["key"], "big.bin");
    let human = cli_ok(&eddy, &["ls", "-r", "s3://photos"]);
    assert!(
        human.contains("docs/small.txt") && human.contains("73400320"),
        "{human}"
    );
    let buckets = json_of(&cli_ok(&eddy, &["ls", "--json"]));
    assert_eq!(buckets["buckets"][0]["name"], "photos");

    let copied = json_of(&cli_ok(
        &eddy,
        &[
            "cp",
            "s3://photos/docs/small.txt",
            "s3://photos/copies/",
            "--json",
        ],
    ));
    assert_eq!(copied["key"], "copies/small.txt");
    assert_eq!(
        cli_ok(&eddy, &["cp", "s3://photos/copies/small.txt", "-"]),
        "hello"
    );
    cli_ok(&eddy, &["rm", "s3://photos/copies/small.txt"]);
    cli_ok(&eddy, &["rm", "s3://photos/docs/small.txt"]);
    let listing = json_of(&cli_ok(&eddy, &["ls", "-r", "s3://photos", "--json"]));
    assert_eq!(listing["objects"].as_array().unwrap().len(), 1);

    let err = cli_err(&eddy, &["cp", "small.txt", "s3://nowhere/x"]);
    assert!(err.contains("NoSuchBucket"), "{err}");
    let err = cli_err(&eddy, &["cp", "s3://photos/missing", "out"]);
    assert!(err.contains("NoSuchKey"), "{err}");
    assert!(
        !dir.join("out").exists(),
        "a failed download writes no file"
    );
    let err = cli_err(&eddy, &["cp", "s3://photos/missing", "s3://photos/x"]);
    assert!(err.contains("NoSuchKey"), "{err}");
    let err = cli_err(&eddy, &["cp", "a", "b"]);
    assert!(
        err.contains("one side of eddy cp must be s3://BUCKET/KEY"),
        "{err}"
    );
    let err = cli_err(
        &eddy,
        &[
            "ls",
            "--access-key-id",
            "eddy-dev",
            "--secret-access-key",
            "wrong",
        ],
    );
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    let err = cli_err(&eddy, &["ls", "--endpoint", "http://127.0.0.1:1"]);
    assert!(
        err.contains("cannot reach eddy at http://127.0.0.1:1"),
        "{err}"
    );
}

const APP: &str = "tables: [{name: orders, primary_key: id, columns: {id: integer, status: text}}]
functions:
  - {name: echo, runtime: exec, command: [sh, -c, 'echo \"echo ran\" >&2; cat']}
  - {name: fail, runtime: exec, command: [sh, -c, 'echo \"it broke\" >&2; exit 3']}
  - {name: audit, runtime: exec, command: [sh, -c, 'echo \"audit saw a row\" >&2']}
triggers:
  - {function: audit, source: table/orders, events: [row:insert]}
  - {function: fail, source: table/orders, events: [row:remove], retry: {max_attempts: 1}}
";

#[test]
fn rows_and_invocations_from_the_command_line() {
    let eddy = serve(APP);
    let row = json_of(&cli_ok(
        &eddy,
        &[
            "table",
            "put",
            "orders",
            r#"{"id": 7, "status": "paid"}"#,
            "--json",
        ],
    ));
    assert_eq!(row, json!({"id": 7, "status": "paid"}));
    std::fs::write(
        eddy.dir.path().join("row.json"),
        r#"{"id": 8, "status": "new"}"#,
    )
    .unwrap();
    cli_ok(&eddy, &["table", "put", "orders", "@row.json"]);
    assert_eq!(
        json_of(&cli_ok(&eddy, &["table", "get", "orders", "7", "--json"]))["status"],
        "paid"
    );
    let scanned = json_of(&cli_ok(
        &eddy,
        &["table", "scan", "orders", "--where", "status=new", "--json"],
    ));
    assert_eq!(scanned["rows"], json!([{"id": 8, "status": "new"}]));
    let err = cli_err(&eddy, &["table", "put", "orders", "{not json"]);
    assert!(err.contains("the row is not valid JSON"), "{err}");
    let err = cli_err(&eddy, &["table", "put", "orders", r#"{"id": "x"}"#]);
    assert!(err.contains("WrongType"), "{err}");
    let err = cli_err(&eddy, &["table", "get", "orders", "99"]);
    assert!(err.contains("NoSuchRow"), "{err}");

    let result = json_of(&cli_ok(
        &eddy,
        &["invoke", "echo", "--payload", r#"{"n": 1}"#, "--json"],
    ));
    assert_eq!(result, json!({"n": 1}));
    let out = cli(&eddy, &["invoke", "echo", "--log"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("echo ran"));
    let err = cli_err(&eddy, &["invoke", "fail"]);
    assert!(
        err.contains("it broke") && err.contains("the function failed"),
        "{err}"
    );
    let err = cli_err(&eddy, &["invoke", "nobody"]);
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    let queued = json_of(&cli_ok(&eddy, &["invoke", "echo", "--async", "--json"]));
    assert_eq!(queued["accepted"], true);

    eddy.wait_for("the row trigger", |e| {
        e.get("/_eddy/v1/invocations?function=audit").body["invocations"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
    });
    let logs = cli_ok(&eddy, &["logs", "audit"]);
    assert_eq!(logs.matches("audit saw a row").count(), 2, "{logs}");
    let records: Vec<Value> = cli_ok(&eddy, &["logs", "audit", "--json"])
        .lines()
        .map(json_of)
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["outcome"], "success");

    cli_ok(&eddy, &["table", "delete", "orders", "7"]);
    eddy.wait_for("the failing delivery to be dead-lettered", |e| {
        e.get("/_eddy/v1/dead-letters").body["dead_letters"]
            .as_array()
            .is_some_and(|d| d.len() == 1)
    });
    let dead = json_of(&cli_ok(&eddy, &["dlq", "list", "--json"]));
    let id = dead["dead_letters"][0]["id"].to_string();
    assert!(cli_ok(&eddy, &["dlq", "list"]).contains("RetriesExhausted"));
    let redriven = json_of(&cli_ok(&eddy, &["dlq", "redrive", &id, "--json"]));
    assert_eq!(redriven["redriven"], 1);
    let err = cli_err(&eddy, &["dlq", "redrive"]);
    assert!(err.contains("name one dead letter"), "{err}");
}

/// Starts a long-running client command and returns its stdout lines as they come.
fn follow(eddy: &Eddy, args: &[&str]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .env("EDDY_ENDPOINT", &eddy.base)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (child, receiver)
}

fn next_line(lines: &std::sync::mpsc::Receiver<String>) -> Value {
    let line = lines
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("a line within 20 s");
    json_of(&line)
}

#[test]
fn events_and_logs_can_be_followed_and_explained() {
    let eddy = serve(APP);
    let (mut events, event_lines) = follow(&eddy, &["events", "tail", "--follow", "--json"]);
    let (mut logs, log_lines) = follow(&eddy, &["logs", "audit", "--follow", "--json"]);
    eddy.json(
        "POST",
        "/_eddy/v1/tables/orders/rows",
        json!({"id": 1, "status": "new"}),
    );
    let event = next_line(&event_lines);
    assert_eq!(event["kind"], "INSERT");
    let run = next_line(&log_lines);
    assert!(
        run["log"].as_str().unwrap().contains("audit saw a row"),
        "{run}"
    );
    eddy.json(
        "POST",
        "/_eddy/v1/tables/orders/rows",
        json!({"id": 2, "status": "new"}),
    );
    assert_eq!(next_line(&event_lines)["key"], "[2]");
    let _ = (events.kill(), logs.kill(), events.wait(), logs.wait());

    let id = event["id"].as_str().unwrap();
    let explained = cli_ok(&eddy, &["events", "show", id]);
    assert!(
        explained.contains("trigger audit-on-orders: matched")
            && explained.contains("trigger fail-on-orders: did not match"),
        "{explained}"
    );
    // The sequence number `events tail` prints names the event as well.
    let sequence = event["sequence"].to_string();
    assert_eq!(cli_ok(&eddy, &["events", "show", &sequence]), explained);
    let err = cli_err(&eddy, &["events", "show", "not-an-id"]);
    assert!(err.contains("NoSuchEvent"), "{err}");
    let err = cli_err(&eddy, &["events", "show", "999999"]);
    assert!(err.contains("NoSuchEvent"), "{err}");
    let tail = cli_ok(&eddy, &["events", "tail", "--last", "1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
}

#[test]
fn deploy_applies_valid_manifests_and_reports_invalid_ones() {
    let eddy = serve(APP);
    let dir = eddy.dir.path();
    std::fs::write(
        dir.join("more.yaml"),
        "functions: [{name: fresh, runtime: exec, command: [cat]}]\n",
    )
    .unwrap();
    let out = cli_ok(&eddy, &["deploy", "app.yaml", "more.yaml"]);
    assert!(out.contains("deployed: 4 functions, 2 triggers"), "{out}");
    assert_eq!(
        json_of(&cli_ok(
            &eddy,
            &["invoke", "fresh", "--payload", "[1]", "--json"]
        )),
        json!([1])
    );
    std::fs::write(
        dir.join("bad.yaml"),
        "functions: [{name: broken, runtime: exec}]\n",
    )
    .unwrap();
    let err = cli_err(&eddy, &["deploy", "app.yaml", "bad.yaml"]);
    assert!(
        err.contains("InvalidManifest")
            && err.contains("function `broken` is missing `command`, which the exec runtime needs"),
        "{err}"
    );
    assert_eq!(
        json_of(&cli_ok(&eddy, &["invoke", "fresh", "--json"])),
        json!({}),
        "the deployed app still runs"
    );

    // The deployed app is stored: after a restart with the same manifest files, it runs.
    let eddy = eddy.restart("app.yaml");
    assert_eq!(
        json_of(&cli_ok(&eddy, &["invoke", "fresh", "--json"])),
        json!({}),
        "the deploy survived the restart"
    );
    // A comment changes nothing eddy runs: the deploy still stands.
    let dir = eddy.dir.path();
    std::fs::write(dir.join("app.yaml"), format!("{APP}\n# a comment\n")).unwrap();
    let eddy = eddy.restart("app.yaml");
    cli_ok(&eddy, &["invoke", "fresh"]);
    // Manifest files whose app changed since they last put one in service win over the deploy.
    let dir = eddy.dir.path();
    let edited = APP.replace("'echo \"echo ran\" >&2; cat'", "cat");
    assert_ne!(edited, APP);
    std::fs::write(dir.join("app.yaml"), edited).unwrap();
    let eddy = eddy.restart("app.yaml");
    let err = cli_err(&eddy, &["invoke", "fresh"]);
    assert!(
        err.contains("Function not found") && err.contains("fresh"),
        "{err}"
    );
}

fn audit_successes(eddy: &Eddy) -> usize {
    eddy.get("/_eddy/v1/invocations?function=audit").body["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "success")
        .count()
}

#[test]
fn a_trigger_replays_its_events_from_the_command_line() {
    let eddy = serve(APP);
    for id in [1, 2] {
        eddy.json(
            "POST",
            "/_eddy/v1/tables/orders/rows",
            json!({"id": id, "status": "new"}),
        );
    }
    eddy.wait_for("the originals", |e| audit_successes(e) == 2);
    let made = cli_ok(
        &eddy,
        &[
            "events",
            "replay",
            "--trigger",
            "audit-on-orders",
            "--from",
            "1",
        ],
    );
    assert!(
        made.starts_with("replay 1 to audit-on-orders: events 1..2, "),
        "{made}"
    );
    eddy.wait_for("the replay", |e| audit_successes(e) == 4);
    let explained = cli_ok(&eddy, &["events", "show", "1"]);
    assert!(
        explained.contains("by audit-on-orders: done after 1 attempts")
            && explained.contains("by audit-on-orders (replay 1): done after 1 attempts"),
        "{explained}"
    );
    let by_time = json_of(&cli_ok(
        &eddy,
        &[
            "--json",
            "events",
            "replay",
            "--trigger",
            "audit-on-orders",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "1",
        ],
    ));
    assert_eq!(
        (&by_time["replay"], &by_time["from"], &by_time["to"]),
        (&json!(2), &json!(1), &json!(1))
    );
    eddy.wait_for("the second replay", |e| audit_successes(e) == 5);
    let listed = cli_ok(&eddy, &["events", "replays"]);
    assert_eq!(
        listed,
        "replay 2 to audit-on-orders: events 1..1, 1 deliveries made\n\
         replay 1 to audit-on-orders: events 1..2, 2 deliveries made\n",
        "newest first, each finished"
    );

    // Refused, each with what would be accepted, and nothing made.
    let err = cli_err(
        &eddy,
        &["events", "replay", "--trigger", "nope", "--from", "1"],
    );
    assert!(err.contains("NoSuchTrigger"), "{err}");
    let err = cli_err(
        &eddy,
        &[
            "events",
            "replay",
            "--trigger",
            "audit-on-orders",
            "--from",
            "tomorrow",
        ],
    );
    assert!(
        err.contains("InvalidReplay") && err.contains("a time like 2026-12-01T00:00:00Z"),
        "{err}"
    );
    let path = "/_eddy/v1/triggers/audit-on-orders/replay";
    for body in [
        json!({"from": true}),
        json!({"from": 1, "until": 2}),
        json!({"to": 1}),
        json!({"from": -1}),
    ] {
        let refused = eddy.json("POST", path, body.clone());
        assert_eq!(refused.status, 400, "{body}: {}", refused.body);
        assert_eq!(refused.body["error"]["code"], "InvalidReplay", "{body}");
    }
    let backwards = eddy.json("POST", path, json!({"from": 2, "to": 1}));
    assert_eq!(backwards.status, 400);
    assert_eq!(
        backwards.body["error"]["message"],
        "cannot replay: the range starts at 2, after its end 1"
    );
    let unsigned = eddy.call(
        "POST",
        path,
        &[("authorization", "")],
        Some(r#"{"from": 1}"#),
    );
    assert_eq!(unsigned.status, 401);
    let events = eddy.get("/_eddy/v1/events/1").body;
    assert_eq!(
        events["deliveries"].as_array().unwrap().len(),
        3,
        "the refused replays made no delivery: {events}"
    );
}

#[test]
fn a_failed_upload_reaches_its_functions_failure_destination() {
    let eddy = serve(
        "buckets: [{name: inbox}]
functions:
  - {name: work, runtime: exec, command: [sh, -c, 'echo broken >&2; exit 3'], destinations: {on_failure: function/sink}}
  - {name: sink, runtime: exec, command: [sh, -c, 'cat >&2']}
triggers:
  - {function: work, source: bucket/inbox, events: [object:created], retry: {max_attempts: 1}}
",
    );
    assert_eq!(
        eddy.call("PUT", "/inbox/a.txt", &[], Some("hello")).status,
        200
    );
    let sink = || eddy.get("/_eddy/v1/invocations?function=sink").body["invocations"].clone();
    eddy.wait_for("the destination to run", |_| {
        sink().as_array().is_some_and(|runs| !runs.is_empty())
    });
    // The sink logged the record it was given (between Lambda's START and END lines).
    let log = sink()[0]["log"].as_str().unwrap().to_string();
    let record: Value = log
        .lines()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no record in {log}"));
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(
        record["requestPayload"]["Records"][0]["s3"]["object"]["key"],
        "a.txt"
    );
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["responsePayload"]["errorType"], "Runtime.ExitError");
    // The upload's event names the event that carried the record.
    let shown = cli_ok(&eddy, &["events", "show", "1"]);
    assert!(
        shown.contains("dead after 1 attempts: RetriesExhausted")
            && shown.contains("its destination record went as event 2"),
        "{shown}"
    );
}

#[test]
fn a_success_record_is_an_object_read_back_through_the_s3_api() {
    let eddy = serve(
        "buckets: [{name: inbox}, {name: outcomes}]
functions:
  - name: work
    runtime: exec
    command: [sh, -c, 'echo \"{\\\"size\\\": 5}\"']
    role: [{allow: [objects:write], resources: [bucket/outcomes/aws/lambda/*]}]
    destinations: {on_success: bucket/outcomes}
triggers:
  - {function: work, source: bucket/inbox, events: [object:created]}
",
    );
    assert_eq!(
        eddy.call("PUT", "/inbox/a.txt", &[], Some("hello")).status,
        200
    );
    let listed = || {
        eddy.call(
            "GET",
            "/outcomes?list-type=2&prefix=aws/lambda/async/work/",
            &[],
            None,
        )
        .body
        .as_str()
        .unwrap_or_default()
        .to_string()
    };
    eddy.wait_for("the record's object", |_| listed().contains("<Key>"));
    let listing = listed();
    let key = listing
        .split("<Key>")
        .nth(1)
        .and_then(|rest| rest.split("</Key>").next())
        .unwrap()
        .to_string();
    let got = eddy.call("GET", &format!("/outcomes/{key}"), &[], None);
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("application/json"));
    let record = got.body;
    assert_eq!(record["requestContext"]["condition"], "Success");
    assert_eq!(record["responsePayload"], json!({"size": 5}));
    assert!(key.ends_with(record["requestContext"]["requestId"].as_str().unwrap()));
    // The upload's event names the object's creation, which `events show` explains in turn.
    let shown = cli_ok(&eddy, &["events", "show", "1"]);
    assert!(
        shown.contains("its destination record went as event 2"),
        "{shown}"
    );
    let record_event = cli_ok(&eddy, &["events", "show", "2"]);
    assert!(record_event.contains(&key), "{record_event}");
}

const BACKFILLED: &str = "buckets: [{name: photos}]
tables: [{name: orders, primary_key: id, columns: {id: integer}}]
functions:
  - {name: audit, runtime: exec, command: [sh, -c, 'cat >&2']}
  - {name: other, runtime: exec, command: [sh, -c, 'cat >&2']}
";

/// The events `function` was given, as its logs show them (`cat >&2`).
fn events_given(eddy: &Eddy, function: &str) -> Vec<Value> {
    let runs = eddy
        .get(&format!("/_eddy/v1/invocations?function={function}"))
        .body;
    runs["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| {
            let log = r["log"].as_str()?;
            log.lines().find_map(|line| serde_json::from_str(line).ok())
        })
        .collect()
}

/// The keys of the journal's events after `after`, in journal order.
fn journaled_keys(eddy: &Eddy, after: u64) -> Vec<String> {
    let page = eddy
        .get(&format!("/_eddy/v1/events?after={after}&limit=10"))
        .body;
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_trigger_added_later_is_backfilled_with_what_exists() {
    let eddy = serve(BACKFILLED);
    for key in ["b.jpg", "a.jpg", "c.jpg"] {
        assert_eq!(
            eddy.call("PUT", &format!("/photos/{key}"), &[], Some(key))
                .status,
            200
        );
    }
    for id in [2, 1] {
        eddy.json("POST", "/_eddy/v1/tables/orders/rows", json!({ "id": id }));
    }
    // Triggers added after the data: they see nothing of it until backfilled.
    std::fs::write(
        eddy.dir.path().join("triggers.yaml"),
        "triggers:
  - {name: on-photos, function: audit, source: bucket/photos, events: [object:created]}
  - {name: other-photos, function: other, source: bucket/photos, events: [object:created]}
  - {name: on-orders, function: audit, source: table/orders, events: [row:insert], ordering: per_key}
",
    )
    .unwrap();
    cli_ok(&eddy, &["deploy", "app.yaml", "triggers.yaml"]);
    let made = cli_ok(&eddy, &["triggers", "backfill", "on-photos"]);
    assert!(
        made.starts_with("backfill 1 to on-photos: events 6..8"),
        "{made}"
    );
    eddy.wait_for("the photos' backfill", |e| {
        events_given(e, "audit").len() == 3
    });
    let mut keys: Vec<String> = events_given(&eddy, "audit")
        .iter()
        .map(|e| {
            assert_eq!(e["eddyBackfill"], true, "{e}");
            assert_eq!(e["Records"][0]["eventName"], "ObjectCreated:Put");
            e["Records"][0]["s3"]["object"]["key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    keys.sort();
    assert_eq!(keys, ["a.jpg", "b.jpg", "c.jpg"]);
    assert_eq!(
        journaled_keys(&eddy, 5),
        ["a.jpg", "b.jpg", "c.jpg"],
        "journaled in key order"
    );

    cli_ok(&eddy, &["triggers", "backfill", "on-orders"]);
    eddy.wait_for("the orders' backfill", |e| {
        events_given(e, "audit").len() == 5
    });
    let mut rows: Vec<String> = events_given(&eddy, "audit")
        .into_iter()
        .filter(|e| e["Records"][0]["eventSource"] == "aws:dynamodb")
        .map(|e| {
            assert_eq!(e["Records"][0]["eventName"], "INSERT");
            e["Records"][0]["dynamodb"]["NewImage"]["id"]["N"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    rows.sort();
    assert_eq!(rows, ["1", "2"]);
    assert_eq!(
        journaled_keys(&eddy, 8),
        ["[1]", "[2]"],
        "journaled in key order"
    );
    let listed = cli_ok(&eddy, &["events", "replays"]);
    assert!(
        listed.starts_with("backfill 2 to on-orders: events 9..10, 2 deliveries made"),
        "{listed}"
    );
    // A live upload reaches both triggers; the backfills reached only theirs.
    assert_eq!(
        eddy.call("PUT", "/photos/d.jpg", &[], Some("d")).status,
        200
    );
    eddy.wait_for("the live upload", |e| events_given(e, "other").len() == 1);
    assert_eq!(
        events_given(&eddy, "other")[0]["Records"][0]["s3"]["object"]["key"],
        "d.jpg"
    );

    let err = cli_err(&eddy, &["triggers", "backfill", "nope"]);
    assert!(err.contains("NoSuchTrigger"), "{err}");
    let unsigned = eddy.call(
        "POST",
        "/_eddy/v1/triggers/on-photos/backfill",
        &[("authorization", "")],
        None,
    );
    assert_eq!(unsigned.status, 401);
}

#[test]
fn a_trigger_declared_with_backfill_is_backfilled_once() {
    let eddy = serve(BACKFILLED);
    for key in ["x.jpg", "y.jpg"] {
        assert_eq!(
            eddy.call("PUT", &format!("/photos/{key}"), &[], Some(key))
                .status,
            200
        );
    }
    std::fs::write(
        eddy.dir.path().join("triggers.yaml"),
        "triggers:
  - {name: on-photos, function: audit, source: bucket/photos, events: [object:created], backfill: true}
",
    )
    .unwrap();
    cli_ok(&eddy, &["deploy", "app.yaml", "triggers.yaml"]);
    eddy.wait_for("the declared backfill", |e| {
        events_given(e, "audit").len() == 2
    });
    assert!(
        events_given(&eddy, "audit")
            .iter()
            .all(|e| e["eddyBackfill"] == true)
    );
    // Put in service again after a restart (SIGKILL): not backfilled twice.
    let eddy = eddy.restart("app.yaml");
    eddy.wait_for("the declared backfill to be looked at", |e| {
        e.log().contains("the declared backfill was made already")
    });
    assert_eq!(
        eddy.call("PUT", "/photos/z.jpg", &[], Some("z")).status,
        200
    );
    eddy.wait_for("the live upload", |e| events_given(e, "audit").len() == 3);
    let listed = cli_ok(&eddy, &["events", "replays"]);
    assert_eq!(listed.lines().count(), 1, "one backfill: {listed}");
}

#[test]
fn validate_refuses_a_time_it_cannot_read() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["validate", "--runs-after", "tomorrow", "app.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`tomorrow` is not a time like 2027-01-01T00:00:00Z"),
        "{err}"
    );
}

#[test]
fn a_batch_cut_short_by_sigkill_runs_again_after_restart() {
    let manifest = "
tables: [{name: t, primary_key: id, columns: {id: integer}}]
functions:
  - {name: slow, runtime: exec, command: [sh, -c, 'sleep 0.5; cat >&2'], timeout: 3s}
triggers:
  - {function: slow, source: table/t, events: [row:insert], batch: {size: 5}}
";
    let eddy = serve(manifest);
    let rows: Vec<Value> = (0..20).map(|id| json!({ "id": id })).collect();
    assert_eq!(
        eddy.json("POST", "/_eddy/v1/tables/t/rows", json!(rows))
            .status,
        201
    );
    eddy.wait_for("a batch to run", |e| deliveries_in(e, "leased") > 0);
    // Killed while a batch runs (its handler sleeps): nothing of it is recorded.
    let eddy = spawn(eddy.kill(), "app.yaml");
    eddy.wait_for("every record to be done", |e| {
        deliveries_in(e, "done") == 20
    });
    let mut seen: Vec<i64> = events_given(&eddy, "slow")
        .iter()
        .flat_map(|batch| {
            batch["Records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r["dynamodb"]["Keys"]["id"]["N"]
                        .as_str()
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .collect::<Vec<i64>>()
        })
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen,
        (0..20).collect::<Vec<i64>>(),
        "every record ran to the end"
    );
    assert_eq!(deliveries_in(&eddy, "dead"), 0);
}
