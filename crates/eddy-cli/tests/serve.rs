//! `eddy serve` end to end: the real binary on a free port, driven by an HTTP client and by
//! the AWS CLI (`aws lambda …`, installed by `.ci/run`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const ORDERS: &str = "tables:
  - {name: orders, primary_key: id, columns: {id: integer, status: text, total: real}}
  - {name: lines, primary_key: [order_id, sku], columns: {order_id: integer, sku: text, n: integer}}
";

#[test]
fn the_table_api_reads_and_writes_rows() {
    let eddy = serve(ORDERS);
    let health = eddy.get("/_eddy/health").body;
    assert_eq!(health["status"], "ok");
    assert!(health["sandbox"]["mode"].is_string(), "{health}");
    let created = eddy.json(
        "POST",
        "/_eddy/v1/tables/orders/rows",
        json!([{"id": 1, "status": "paid", "total": 10}, {"id": 2, "status": "new"}]),
    );
    assert_eq!(created.status, 201);
    assert_eq!(
        created.body["rows"][0],
        json!({"id": 1, "status": "paid", "total": 10.0})
    );
    assert_eq!(
        eddy.get("/_eddy/v1/tables/orders/rows/1").body["status"],
        "paid"
    );
    let patched = eddy.json(
        "PATCH",
        "/_eddy/v1/tables/orders/rows/1",
        json!({"status": "shipped"}),
    );
    assert_eq!(
        (patched.status, patched.body["status"].as_str()),
        (200, Some("shipped"))
    );
    let put = eddy.json(
        "PUT",
        "/_eddy/v1/tables/orders/rows/3",
        json!({"status": "new"}),
    );
    assert_eq!(
        put.body,
        json!({"id": 3, "status": "new", "total": null}),
        "the key comes from the path"
    );
    let page = eddy.get("/_eddy/v1/tables/orders/rows?status=new&limit=1");
    assert_eq!(page.body["rows"].as_array().unwrap().len(), 1);
    let next = page.body["next"].as_str().unwrap().to_string();
    let rest = eddy.get(&format!(
        "/_eddy/v1/tables/orders/rows?status=new&limit=1&after={}",
        encode(&next)
    ));
    assert_eq!(rest.body["rows"][0]["id"], 3);
    assert_eq!(
        eddy.call("DELETE", "/_eddy/v1/tables/orders/rows/2", &[], None)
            .status,
        204
    );
    assert_eq!(eddy.get("/_eddy/v1/tables/orders/rows/2").status, 404);

    // Composite keys: one path segment per key column; an encoded slash stays in its value.
    eddy.json(
        "POST",
        "/_eddy/v1/tables/lines/rows",
        json!({"order_id": 1, "sku": "a/b", "n": 2}),
    );
    assert_eq!(eddy.get("/_eddy/v1/tables/lines/rows/1/a%2Fb").body["n"], 2);

    // The journal holds one event per change.
    let events = eddy.get("/_eddy/v1/events").body;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["INSERT", "INSERT", "MODIFY", "INSERT", "REMOVE", "INSERT"]
    );
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn bad_table_requests_get_clear_errors_and_change_nothing() {
    let eddy = serve(ORDERS);
    let cases: Vec<(Answer, u16, &str)> = vec![
        (
            eddy.call(
                "POST",
                "/_eddy/v1/tables/orders/rows",
                &[],
                Some("{not json"),
            ),
            400,
            "",
        ),
        (
            eddy.json("POST", "/_eddy/v1/tables/orders/rows", json!({"id": "x"})),
            400,
            "WrongType",
        ),
        (
            eddy.json(
                "POST",
                "/_eddy/v1/tables/orders/rows",
                json!({"id": 5, "colour": "red"}),
            ),
            400,
            "UnknownColumn",
        ),
        (
            eddy.json("POST", "/_eddy/v1/tables/missing/rows", json!({"id": 5})),
            404,
            "NoSuchTable",
        ),
        (
            eddy.json("POST", "/_eddy/v1/tables/Bad%20Name/rows", json!({"id": 5})),
            400,
            "InvalidName",
        ),
        (
            eddy.get("/_eddy/v1/tables/orders/rows/abc"),
            400,
            "WrongType",
        ),
        (eddy.get("/_eddy/v1/tables/lines/rows/1"), 400, "KeyShape"),
        (
            eddy.json(
                "PATCH",
                "/_eddy/v1/tables/orders/rows/9",
                json!({"status": "x"}),
            ),
            404,
            "NoSuchRow",
        ),
        (
            eddy.json("PUT", "/_eddy/v1/tables/orders/rows/9", json!({"id": 8})),
            400,
            "KeyChange",
        ),
        (
            eddy.get("/_eddy/v1/tables/orders/rows?limit=lots"),
            400,
            "InvalidQuery",
        ),
        (
            eddy.get("/_eddy/v1/tables/orders/rows?colour=red"),
            400,
            "UnknownColumn",
        ),
    ];
    for (i, (answer, status, code)) in cases.iter().enumerate() {
        assert_eq!(answer.status, *status, "case {i}: {:?}", answer.body);
        if !code.is_empty() {
            assert_eq!(
                answer.body["error"]["code"], *code,
                "case {i}: {:?}",
                answer.body
            );
            assert!(!answer.body["error"]["message"].as_str().unwrap().is_empty());
        }
    }
    assert_eq!(
        oversized(&eddy, "/_eddy/v1/tables/orders/rows", 7 << 20),
        413
    );
    eddy.json("POST", "/_eddy/v1/tables/orders/rows", json!({"id": 1}));
    let duplicate = eddy.json("POST", "/_eddy/v1/tables/orders/rows", json!({"id": 1}));
    assert_eq!(
        (duplicate.status, duplicate.body["error"]["code"].as_str()),
        (409, Some("KeyExists"))
    );
    assert_eq!(
        eddy.get("/_eddy/v1/events").body["events"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "only the one good insert changed anything"
    );
}

/// Announces a body of `length` bytes and returns the status the server answers before any of
/// it is sent: a limit is enforced without reading (or buffering) the body.
fn oversized(eddy: &Eddy, path: &str, length: usize) -> u16 {
    use std::io::{Read, Write};
    let address = eddy.base.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(tcp, "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

const FUNCTIONS: &str =
    "tables: [{name: orders, primary_key: id, columns: {id: integer, status: text}}]
functions:
  - {name: echo, runtime: exec, command: [sh, -c, 'cat; echo \"echo ran\" >&2']}
  - {name: broken, runtime: exec, command: [sh, -c, 'echo \"bad input\" >&2; exit 1']}
  - {name: audit, runtime: exec, command: [sh, -c, 'cat >&2; echo >&2; echo audited >&2']}
triggers:
  - {function: audit, source: table/orders, events: [row:insert]}
";

#[test]
fn the_lambda_api_invokes_functions() {
    let eddy = serve(FUNCTIONS);
    let path = |f: &str| format!("/2015-03-31/functions/{f}/invocations");
    let ok = eddy.call(
        "POST",
        &path("echo"),
        &[("x-amz-log-type", "Tail")],
        Some(r#"{"n": 1}"#),
    );
    assert_eq!((ok.status, &ok.body), (200, &json!({"n": 1})));
    let log = ok.header("x-amz-log-result").unwrap();
    assert_eq!(own_output(&decode_base64(log)), "echo ran\n");
    let failed = eddy.call("POST", &path("broken"), &[], Some("{}"));
    assert_eq!(
        (failed.status, failed.header("x-amz-function-error")),
        (200, Some("Unhandled"))
    );
    assert_eq!(failed.body["errorType"], "Runtime.ExitError");
    assert_eq!(
        eddy.call(
            "POST",
            &path("echo"),
            &[("x-amz-invocation-type", "DryRun")],
            Some("{}")
        )
        .status,
        204
    );
    let queued = eddy.call(
        "POST",
        &path("echo"),
        &[("x-amz-invocation-type", "Event")],
        Some(r#"{"later": true}"#),
    );
    assert_eq!(queued.status, 202);
    eddy.wait_for("the queued invocation", |e| {
        e.get("/_eddy/v1/invocations?function=echo").body["invocations"]
            .as_array()
            .unwrap()
            .len()
            == 2
    });

    let missing = eddy.call("POST", &path("nope"), &[], Some("{}"));
    assert_eq!(
        (missing.status, missing.header("x-amzn-ErrorType")),
        (404, Some("ResourceNotFoundException"))
    );
    let not_json = eddy.call("POST", &path("echo"), &[], Some("{oops"));
    assert_eq!(
        (not_json.status, not_json.header("x-amzn-ErrorType")),
        (400, Some("InvalidRequestContentException"))
    );
    // An asynchronous payload over 1 MB (but under the 6 MB request limit) is refused as Lambda does.
    let big = format!("\"{}\"", "x".repeat(2 << 20));
    let too_big = eddy.call(
        "POST",
        &path("echo"),
        &[("x-amz-invocation-type", "Event")],
        Some(&big),
    );
    assert_eq!(
        (too_big.status, too_big.header("x-amzn-ErrorType")),
        (413, Some("RequestTooLargeException"))
    );
    assert_eq!(oversized(&eddy, &path("echo"), 7 << 20), 413);
    // Signed, and sent in chunks without a length: refused as too large, not as slow.
    let mut signed = http::Request::builder()
        .method("POST")
        .uri(path("echo"))
        .header("host", address(&eddy))
        .body(format!("\"{}\"", "x".repeat(7 << 20)))
        .unwrap();
    sign_request(&mut signed);
    let mut request = format!(
        "POST {} HTTP/1.1\r\ntransfer-encoding: chunked\r\n",
        path("echo")
    );
    for (name, value) in signed.headers() {
        request.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    request.push_str("\r\n");
    for piece in signed.body().as_bytes().chunks(1 << 20) {
        request.push_str(&format!(
            "{:x}\r\n{}\r\n",
            piece.len(),
            std::str::from_utf8(piece).unwrap()
        ));
    }
    request.push_str("0\r\n\r\n");
    let (status, answer) = raw(&eddy, request.as_bytes());
    assert_eq!(status, 413, "{}", &answer[..answer.len().min(300)]);
    let listed = eddy.get("/2015-03-31/functions/").body;
    assert_eq!(listed["Functions"].as_array().unwrap().len(), 3);
}

fn decode_base64(text: &str) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        bits = (bits << 6) | alphabet.iter().position(|a| *a == c).unwrap() as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn a_row_change_runs_its_function_and_the_run_is_visible_through_the_admin_api() {
    let eddy = serve(FUNCTIONS);
    eddy.json(
        "POST",
        "/_eddy/v1/tables/orders/rows",
        json!({"id": 7, "status": "paid"}),
    );
    eddy.wait_for("the triggered run", |e| {
        !e.get("/_eddy/v1/invocations?function=audit").body["invocations"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    let run = eddy.get("/_eddy/v1/invocations?function=audit").body["invocations"][0].clone();
    assert_eq!(run["outcome"], "success");
    // The function logs the event it got, then a line of its own.
    let output = own_output(run["log"].as_str().unwrap());
    let (written, said) = output.split_once('\n').unwrap();
    assert_eq!(said, "audited\n");
    let event: Value = serde_json::from_str(written).unwrap();
    assert_eq!(
        event["Records"][0]["dynamodb"]["NewImage"]["status"],
        json!({"S": "paid"})
    );
    // The stream is named by the table's creation time, as DynamoDB names it.
    let arn = event["Records"][0]["eventSourceARN"].as_str().unwrap();
    let label = arn.rsplit("/stream/").next().unwrap();
    assert!(
        arn.starts_with("arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/20"),
        "{arn}"
    );
    assert!(
        label.len() == 23 && label.as_bytes()[10] == b'T' && !label.ends_with('Z'),
        "{label}"
    );
    let id = eddy.get("/_eddy/v1/events").body["events"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let explained = eddy.get(&format!("/_eddy/v1/events/{id}")).body;
    assert_eq!(explained["triggers"][0]["matched"], true);
    assert_eq!(explained["invocations"][0]["request_id"], run["request_id"]);
    assert_eq!(
        eddy.get("/_eddy/v1/triggers").body["triggers"][0]["function"],
        "audit"
    );

    let metrics = eddy.get("/_eddy/metrics").body;
    let text = metrics.as_str().unwrap();
    for line in [
        "eddy_deliveries{state=\"done\"} 1",
        "eddy_deliveries{state=\"ready\"} 0",
        "eddy_invocations_total{function=\"audit\",outcome=\"success\"} 1",
        "eddy_oldest_pending_delivery_age_seconds 0",
        "eddy_journal_last_sequence 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing from:\n{text}"
        );
    }
}

/// `aws lambda invoke --log-type Tail`: the CLI's reply and the function's result.
fn aws_lambda_invoke(eddy: &Eddy, function: &str, payload: &str) -> (Value, Value) {
    let out_file = eddy.dir.path().join(format!("{function}.out.json"));
    let run = aws(
        eddy,
        &[
            "lambda",
            "invoke",
            "--function-name",
            function,
            "--payload",
            payload,
            "--log-type",
            "Tail",
            out_file.to_str().unwrap(),
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let reply = serde_json::from_slice(&run.stdout).unwrap();
    let result = serde_json::from_slice(&std::fs::read(out_file).unwrap()).unwrap();
    (reply, result)
}

#[test]
fn the_aws_cli_invokes_and_lists_functions() {
    let eddy = serve(FUNCTIONS);
    let (reply, result) = aws_lambda_invoke(&eddy, "echo", r#"{"hello": "world"}"#);
    assert_eq!(reply["StatusCode"], 200);
    assert_eq!(
        own_output(&decode_base64(reply["LogResult"].as_str().unwrap())),
        "echo ran\n"
    );
    assert_eq!(result, json!({"hello": "world"}));
    let out_file = eddy.dir.path().join("out.json");

    let failed = aws(
        &eddy,
        &[
            "lambda",
            "invoke",
            "--function-name",
            "broken",
            out_file.to_str().unwrap(),
        ],
    );
    let reply: Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(reply["FunctionError"], "Unhandled");

    let missing = aws(
        &eddy,
        &[
            "lambda",
            "invoke",
            "--function-name",
            "nope",
            out_file.to_str().unwrap(),
        ],
    );
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("ResourceNotFoundException"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    let listed = aws(&eddy, &["lambda", "list-functions"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let names: Vec<String> = serde_json::from_slice::<Value>(&listed.stdout).unwrap()["Functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["FunctionName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["echo", "broken", "audit"]);
}

#[test]
fn serve_stops_cleanly_on_sigterm_and_keeps_what_it_acknowledged() {
    let mut eddy = serve(&format!(
        "{ORDERS}functions:
  - {{name: slow, runtime: exec, command: [sh, -c, 'sleep 1; echo finished >&2']}}
triggers:
  - {{function: slow, source: table/orders, events: [row:insert]}}
"
    ));
    eddy.json(
        "POST",
        "/_eddy/v1/tables/orders/rows",
        json!({"id": 1, "status": "kept"}),
    );
    eddy.wait_for("the function to start", |_| {
        !function_processes("slow").is_empty()
    });
    let pid = eddy.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = eddy.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        eddy.log().contains("stopping"),
        "the shutdown is logged: {}",
        eddy.log()
    );
    // Served again on the same data: the row is there, and the running invocation finished
    // before eddy stopped, so it is recorded once and not run again.
    let dir = std::mem::replace(&mut eddy.dir, tempfile::tempdir().unwrap());
    let again = spawn(dir, "app.yaml");
    assert_eq!(
        again.get("/_eddy/v1/tables/orders/rows/1").body["status"],
        "kept"
    );
    let runs = again.get("/_eddy/v1/invocations?function=slow").body;
    let runs = runs["invocations"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["outcome"], "success");
    assert!(runs[0]["log"].as_str().unwrap().contains("finished"));
}

/// The README's quickstart tour works as it says: the same clients, the same commands.
#[test]
fn the_quickstart_runs() {
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/quickstart/app.yaml")
        .canonicalize()
        .unwrap();
    let eddy = spawn(tempfile::tempdir().unwrap(), quickstart.to_str().unwrap());

    // An upload runs describe-upload (Node.js), which writes its description to `derived`.
    std::fs::write(eddy.dir.path().join("cat.jpg"), "not really a cat").unwrap();
    let cat = eddy.dir.path().join("cat.jpg");
    let up = aws(
        &eddy,
        &["s3", "cp", cat.to_str().unwrap(), "s3://photos/cat.jpg"],
    );
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    eddy.wait_for("the upload to be handled", |e| {
        cli_ok(e, &["logs", "describe-upload"]).contains("new photo: cat.jpg (16 bytes)")
    });
    let described = aws(&eddy, &["s3", "cp", "s3://derived/cat.jpg.json", "-"]);
    let described: Value = serde_json::from_slice(&described.stdout).unwrap();
    assert_eq!(
        (&described["key"], &described["size"]),
        (&json!("cat.jpg"), &json!(16))
    );

    // Row changes run on-order, with the change as a plain event.
    let bearer = format!("Bearer {}", eddy_node::DEV_SECRET_ACCESS_KEY);
    let row = r#"{"id": 1, "customer": "ada", "total": 12.5, "status": "paid"}"#;
    let auth = [("authorization", bearer.as_str())];
    assert_eq!(
        eddy.call("POST", "/_eddy/v1/tables/orders/rows", &auth, Some(row))
            .status,
        201
    );
    let patch = r#"{"status": "shipped"}"#;
    assert_eq!(
        eddy.call(
            "PATCH",
            "/_eddy/v1/tables/orders/rows/1",
            &auth,
            Some(patch)
        )
        .status,
        200
    );
    eddy.wait_for("both order events to be handled", |e| {
        cli_ok(e, &["logs", "on-order"])
            .matches("order event: {")
            .count()
            == 2
    });
    eddy.wait_for("the status change to be handled (Python)", |e| {
        cli_ok(e, &["logs", "order-status"]).contains("order 1: paid -> shipped")
    });
    assert!(cli_ok(&eddy, &["logs", "on-order"]).contains("\"type\":\"MODIFY\""));

    // greet answers the AWS CLI.
    let (_, greeting) = aws_lambda_invoke(&eddy, "greet", r#"{"name": "ada"}"#);
    assert_eq!(greeting, json!({"greeting": "hello, ada"}));
}

#[test]
fn serve_refuses_bad_manifests_and_public_addresses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "functions: [{name: f}]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["serve", "bad.yaml", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("function `f` is missing the required field `runtime`")
            && stderr.contains("nothing was started"),
        "{stderr}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a loopback address, so the development credentials are refused"),
        "{stderr}"
    );
}

/// Without valid credentials nothing but the health check answers, and nothing changes.
#[test]
fn every_surface_but_health_needs_credentials() {
    let eddy = serve(FUNCTIONS);
    assert_eq!(eddy.call_unsigned("GET", "/_eddy/health").status, 200);
    let unsigned = eddy.call(
        "POST",
        "/_eddy/v1/tables/orders/rows",
        &[("authorization", "")],
        Some(r#"{"id": 1, "status": "sneaky"}"#),
    );
    assert_eq!(unsigned.status, 401);
    assert_eq!(unsigned.body["error"]["code"], "MissingAuthentication");
    let wrong_token = eddy.call(
        "GET",
        "/_eddy/v1/functions",
        &[("authorization", "Bearer not-the-secret")],
        None,
    );
    assert_eq!(wrong_token.status, 403);
    assert_eq!(wrong_token.body["error"]["code"], "SignatureDoesNotMatch");
    let bearer = format!("Bearer {}", eddy_node::DEV_SECRET_ACCESS_KEY);
    let token = eddy.call(
        "GET",
        "/_eddy/v1/functions",
        &[("authorization", &bearer)],
        None,
    );
    assert_eq!(
        token.status, 200,
        "the secret works as a bearer token on /_eddy/"
    );
    let metrics = eddy.call_unsigned("GET", "/_eddy/metrics");
    assert_eq!(metrics.status, 401);

    let invoke = eddy.call(
        "POST",
        "/2015-03-31/functions/echo/invocations",
        &[("authorization", "")],
        Some("{}"),
    );
    assert_eq!(invoke.status, 401);
    assert_eq!(
        invoke.header("x-amzn-ErrorType"),
        Some("MissingAuthenticationTokenException")
    );
    let bearer_invoke = eddy.call(
        "POST",
        "/2015-03-31/functions/echo/invocations",
        &[("authorization", &bearer)],
        Some("{}"),
    );
    assert_eq!(
        bearer_invoke.status, 400,
        "the Lambda API takes signatures only"
    );
    let out = Command::new("aws")
        .args(["lambda", "invoke", "--function-name", "echo", "/dev/null"])
        .args(["--endpoint-url", &eddy.base, "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", eddy_node::DEV_ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("InvalidSignatureException"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        eddy.get("/_eddy/v1/tables/orders/rows").body["rows"],
        json!([]),
        "no refused request wrote a row"
    );
    assert_eq!(
        eddy.get("/_eddy/v1/invocations?function=echo").body["invocations"],
        json!([]),
        "no refused request ran a function"
    );
}

/// Numbers whose shortest decimal text takes all 17 digits, or sits at the ends of the range:
/// read with a fast, inexact float parser, each would come back one unit in the last place off.
const EXACT_NUMBERS: [f64; 6] = [
    1.1362275116276523e-8,
    1.862392953319225e-60,
    0.30000000000000004,
    123456789.12345679,
    1.7976931348623157e308,
    5e-324,
];

#[test]
fn numbers_are_kept_and_delivered_exactly_as_they_were_written() {
    let eddy = serve(
        "tables: [{name: readings, primary_key: id, columns: {id: integer, value: real, doc: json}}]
functions:
  - {name: log, runtime: exec, command: [sh, -c, 'cat >&2']}
triggers:
  - {function: log, source: table/readings, events: [row:insert]}
",
    );
    for (id, number) in EXACT_NUMBERS.into_iter().enumerate() {
        let row = json!({"id": id, "value": number, "doc": {"nested": [number]}});
        let created = eddy.json("POST", "/_eddy/v1/tables/readings/rows", row.clone());
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(created.body["rows"][0], row, "as written");
        let read = eddy.get(&format!("/_eddy/v1/tables/readings/rows/{id}"));
        assert_eq!(read.body, row, "as read back");
    }
    eddy.wait_for("every row's run", |e| {
        e.get("/_eddy/v1/invocations?function=log").body["invocations"]
            .as_array()
            .unwrap()
            .len()
            == EXACT_NUMBERS.len()
    });
    // DynamoDB carries a number as its decimal text: the text written, digit for digit.
    let runs = eddy.get("/_eddy/v1/invocations?function=log").body;
    let mut delivered: Vec<(u64, String)> = runs["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            let event: Value =
                serde_json::from_str(&own_output(run["log"].as_str().unwrap())).unwrap();
            let image = &event["Records"][0]["dynamodb"]["NewImage"];
            let id = image["id"]["N"].as_str().unwrap().parse().unwrap();
            (id, image["value"]["N"].as_str().unwrap().to_string())
        })
        .collect();
    delivered.sort();
    let written: Vec<(u64, String)> = EXACT_NUMBERS
        .iter()
        .enumerate()
        .map(|(id, n)| (id as u64, json!(n).to_string()))
        .collect();
    assert_eq!(delivered, written);
}
