//! The `webhook` runtime against a real HTTP receiver: signed POSTs, 2xx success, 429/5xx
//! retried no sooner than `Retry-After`, other 4xx refused without retries.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::{Value, json};

/// What the receiver was sent: path, headers, body, and when.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    at: std::time::Instant,
}

/// A tiny HTTP receiver: `/ok` answers 200 with JSON, `/busy` answers 503 with `Retry-After: 1`
/// the first time and 200 after, `/reject` answers 404.
fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::<Received>::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut headers = HashMap::new();
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                let (name, value) = header.split_once(':').unwrap();
                headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
            }
            let length: usize = headers["content-length"].parse().unwrap();
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let earlier = log
                .lock()
                .unwrap()
                .iter()
                .filter(|r: &&Received| r.path == path)
                .count();
            log.lock().unwrap().push(Received {
                path: path.clone(),
                headers,
                body,
                at: std::time::Instant::now(),
            });
            let answer = match (path.as_str(), earlier) {
                ("/ok", _) | ("/busy", 1..) => {
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}"
                }
                ("/busy", 0) => {
                    "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 4\r\n\r\nbusy"
                }
                _ => "HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnope",
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (base, seen)
}

#[test]
fn webhooks_are_signed_retried_and_refused_as_their_answers_say() {
    let (base, seen) = receiver();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        format!(
            "tables: [{{name: orders, primary_key: id, columns: {{id: integer}}}}]
functions:
  - {{name: ok, runtime: webhook, url: '{base}/ok', secret_env: HOOK_SECRET, private_hosts: [127.0.0.1]}}
  - {{name: busy, runtime: webhook, url: '{base}/busy', private_hosts: [127.0.0.1]}}
  - {{name: reject, runtime: webhook, url: '{base}/reject', private_hosts: [127.0.0.1]}}
triggers:
  - {{function: busy, source: table/orders, events: [row:insert], retry: {{max_attempts: 3, backoff: 10ms..20ms}}}}
  - {{function: reject, source: table/orders, events: [row:insert], retry: {{max_attempts: 3, backoff: 10ms..20ms}}}}
"
        ),
    )
    .unwrap();
    let eddy = spawn_with(dir, "app.yaml", &[("HOOK_SECRET", "s3cret")]);

    let result: Value = serde_json::from_str(&cli_ok(
        &eddy,
        &["invoke", "ok", "--payload", r#"{"n": 1}"#, "--json"],
    ))
    .unwrap();
    assert_eq!(result, json!({"ok": true}));
    let sent = seen.lock().unwrap()[0].clone();
    assert_eq!(sent.body, br#"{"n":1}"#);
    let signature = &sent.headers["x-eddy-signature"];
    let t: u64 = signature
        .strip_prefix("t=")
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        signature,
        &eddy_runtimes::webhook_signature(b"s3cret", t, &sent.body),
        "HMAC-SHA256 over the time and the body"
    );
    assert_eq!(sent.headers["x-eddy-function"], "ok");

    eddy.json("POST", "/_eddy/v1/tables/orders/rows", json!({"id": 1}));
    eddy.wait_for("the busy hook to be delivered on its second attempt", |e| {
        e.get("/_eddy/v1/invocations?function=busy").body["invocations"]
            .as_array()
            .is_some_and(|r| r.iter().any(|i| i["outcome"] == "success"))
    });
    let busy: Vec<Received> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == "/busy")
        .cloned()
        .collect();
    assert_eq!(busy.len(), 2);
    let gap = busy[1].at - busy[0].at;
    assert!(
        gap >= std::time::Duration::from_millis(950),
        "Retry-After: 1 was honoured: {gap:?}"
    );

    eddy.wait_for("the rejected hook to be dead-lettered", |e| {
        e.get("/_eddy/v1/dead-letters?function=reject").body["dead_letters"]
            .as_array()
            .is_some_and(|d| d.len() == 1)
    });
    let dead = &eddy.get("/_eddy/v1/dead-letters?function=reject").body["dead_letters"][0];
    assert_eq!(
        (&dead["reason"], &dead["attempts"]),
        (&json!("Refused"), &json!(1)),
        "{dead}"
    );
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("Webhook.Http404"),
        "{dead}"
    );
    assert_eq!(
        seen.lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == "/reject")
            .count(),
        1
    );
}

#[test]
fn webhooks_to_private_addresses_are_refused_without_an_allowance() {
    let (base, seen) = receiver();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        format!(
            "functions:
  - {{name: unallowed, runtime: webhook, url: '{base}/ok'}}
  - {{name: metadata, runtime: webhook, url: 'http://169.254.169.254/latest/meta-data/'}}
"
        ),
    )
    .unwrap();
    let eddy = spawn(dir, "app.yaml");
    for name in ["unallowed", "metadata"] {
        let err = cli_err(&eddy, &["invoke", name]);
        assert!(
            err.contains("Webhook.ForbiddenAddress") && err.contains("private_hosts"),
            "{err}"
        );
    }
    assert!(seen.lock().unwrap().is_empty(), "nothing was sent");
}
