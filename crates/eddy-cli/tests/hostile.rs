//! Requests as an attacker sends them, against the real binary: a page on another site (DNS
//! rebinding, cross-site forms and scripts), unsigned and slow bodies, retired signatures,
//! lifetimes and headers written to slip past a check, listings around a deny. Each is refused
//! or made harmless, and changes nothing.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const APP: &str = "
buckets: [{name: photos}, {name: docs}]
tables: [{name: orders, primary_key: id, columns: {id: integer, note: text}}]
functions:
  - {name: seen, runtime: exec, command: [sh, -c, 'cat >&2']}
  - name: relay
    runtime: python
    handler: relay.handler
    code: ./code
    role: [{allow: [tables:write], resources: [table/orders]}]
triggers:
  - {function: seen, source: table/orders, events: ['row:*']}
access_keys:
  - name: lister
    id: AKIALISTER0000001
    secret_env: LISTER_SECRET
    policy:
      - allow: ['objects:*']
        resources: [bucket/docs]
      - deny: [objects:list]
        resources: [bucket/docs/private/*]
";

/// A handler that writes a row with a hop count of its choosing, through the table API, signed
/// with its own credentials.
const RELAY: &str = r#"
import json, os, urllib.request
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

def handler(event, context):
    url = os.environ["EDDY_ENDPOINT"] + "/_eddy/v1/tables/orders/rows"
    body = json.dumps({"id": event["id"], "note": "relayed"})
    headers = {"content-type": "application/json", "x-eddy-hops": str(event["hops"])}
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    SigV4Auth(creds, "eddy", "us-east-1").add_auth(request)
    with urllib.request.urlopen(urllib.request.Request(url, data=body.encode(), headers=dict(request.headers), method="POST")) as r:
        return r.status
"#;

const LISTER_SECRET: &str = "a-secret-for-the-lister-key";

fn app_with(args: &[&str]) -> Eddy {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("code")).unwrap();
    std::fs::write(dir.path().join("code/relay.py"), RELAY).unwrap();
    std::fs::write(dir.path().join("app.yaml"), APP).unwrap();
    start(
        dir,
        "app.yaml",
        Options {
            env: &[("LISTER_SECRET", LISTER_SECRET)],
            args,
            ..Options::default()
        },
    )
}

fn app() -> Eddy {
    app_with(&[])
}

fn function_names(eddy: &Eddy) -> Vec<String> {
    eddy.get("/_eddy/v1/functions").body["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["FunctionName"].as_str().unwrap().to_string())
        .collect()
}

const EVIL_DEPLOY: &str = r#"{"manifests": [{"path": "/tmp/evil.yaml", "text": "functions: [{name: pwned, runtime: exec, command: [sh, -c, 'id']}]"}]}"#;

/// DNS rebinding: a page on attacker.example, whose name now resolves to 127.0.0.1, sends its
/// own name as the host. With the development token (anyone can read it) it would deploy and
/// run a command; it is refused before any handler runs.
#[test]
fn a_foreign_host_is_refused_before_anything_runs() {
    let eddy = app_with(&["--host", "eddy.internal"]);
    let deploy = |host: &str| {
        raw(
            &eddy,
            format!(
                "POST /_eddy/v1/deploy HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer eddy-dev-secret\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{EVIL_DEPLOY}",
                EVIL_DEPLOY.len()
            )
            .as_bytes(),
        )
    };
    let (status, text) = deploy("attacker.example:7171");
    assert_eq!(status, 421, "{text}");
    assert!(
        text.contains("UnknownHost") && text.contains("--host"),
        "{text}"
    );
    let (status, _) = deploy("localhost.attacker.example");
    assert_eq!(status, 421);
    assert!(!function_names(&eddy).contains(&"pwned".to_string()));
    // The S3 API too (a rebinding page reading a bucket through the development pair).
    let (status, _) = raw(
        &eddy,
        b"GET /photos HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 421);
    // Names eddy serves: its address, localhost and what --host named (with buckets under it).
    for host in [
        address(&eddy),
        "localhost".into(),
        "eddy.internal".into(),
        "photos.eddy.internal".into(),
    ] {
        let (status, text) = raw(
            &eddy,
            format!("GET /_eddy/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(status, 200, "{host}: {text}");
    }
    let (status, _) = raw(&eddy, b"GET /_eddy/health HTTP/1.0\r\n\r\n");
    assert_eq!(status, 421, "a request naming no host is refused");
}

/// A script on another origin cannot call eddy's own APIs, whatever credentials it holds.
#[test]
fn other_origins_cannot_drive_eddys_own_apis() {
    let eddy = app();
    let call = |path: &str, origin: &str, body: &str| {
        raw(
            &eddy,
            format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nOrigin: {origin}\r\nAuthorization: Bearer eddy-dev-secret\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                address(&eddy),
                body.len()
            )
            .as_bytes(),
        )
    };
    let (status, text) = call("/_eddy/v1/deploy", "http://evil.example", EVIL_DEPLOY);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("CrossOriginRefused"), "{text}");
    let (status, _) = call("/2015-03-31/functions/seen/invocations", "null", "{}");
    assert_eq!(status, 403);
    let (status, _) = call(
        "/_eddy/v1/tables/orders/rows",
        "http://localhost:3000",
        r#"{"id": 1}"#,
    );
    assert_eq!(status, 403, "another port is another origin");
    assert!(!function_names(&eddy).contains(&"pwned".to_string()));
    assert_eq!(eddy.get("/_eddy/v1/tables/orders/rows/1").status, 404);
    // A page of eddy's own origin may.
    let (status, text) = call(
        "/_eddy/v1/tables/orders/rows",
        &format!("http://{}", address(&eddy)),
        r#"{"id": 2}"#,
    );
    assert_eq!(status, 201, "{text}");
}

/// Forms posted from browsers: signed policies are enforced, the file streams, and another
/// origin gets in only through the bucket's CORS rules (and its preflights are answered from
/// them).
#[test]
fn browser_forms_and_cors_follow_the_buckets_rules() {
    let eddy = app();
    let out = boto3(
        &eddy,
        r#"
import uuid
def form(fields, file=b"hello from a browser", filename="hi.txt", origin=None, method="POST", extra_headers={}):
    boundary = "----eddy" + uuid.uuid4().hex
    body = b""
    for name, value in fields.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    body += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\nContent-Type: text/plain\r\n\r\n'.encode()
    body += file + f'\r\n--{boundary}--\r\n'.encode()
    headers = {"content-type": f"multipart/form-data; boundary={boundary}", **extra_headers}
    if origin:
        headers["origin"] = origin
    request = urllib.request.Request(os.environ["EDDY"] + "/photos", data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request) as r:
            return [r.status, r.read().decode(), {k.lower(): v for k, v in r.headers.items()}]
    except urllib.error.HTTPError as e:
        return [e.code, e.read().decode(), {k.lower(): v for k, v in e.headers.items()}]

def code(answer):
    return answer[0], (answer[1].split("<Code>")[1].split("</Code>")[0] if "<Code>" in answer[1] else "")

def exists(key):
    return error(s3.head_object, Bucket="photos", Key=key) is None

post = s3.generate_presigned_post("photos", "uploads/${filename}",
    Conditions=[["starts-with", "$key", "uploads/"], ["content-length-range", 1, 1000]], ExpiresIn=600)
fields = post["fields"]
out["plain"] = code(form(fields))
out["stored"] = s3.get_object(Bucket="photos", Key="uploads/hi.txt")["Body"].read().decode()
out["content_type"] = s3.head_object(Bucket="photos", Key="uploads/hi.txt")["ContentType"]
out["evil_origin"] = code(form(fields, filename="evil.txt", origin="http://evil.example"))
out["evil_stored"] = exists("uploads/evil.txt")
out["too_big"] = code(form(fields, file=b"x" * 2000, filename="big.txt"))
out["big_stored"] = exists("uploads/big.txt")
out["outside_prefix"] = code(form({**fields, "key": "elsewhere/x.txt"}))
out["tampered"] = code(form({**fields, "policy": fields["policy"][:-4] + "AAA="}))
out["unsigned"] = code(form({"key": "uploads/anon.txt"}, filename="anon.txt"))
out["sigv2"] = code(form({"key": "uploads/v2.txt", "AWSAccessKeyId": "eddy-dev", "policy": fields["policy"], "signature": "x"}))
expired = s3.generate_presigned_post("photos", "uploads/late.txt", ExpiresIn=-10)
out["expired"] = code(form(expired["fields"], filename="late.txt"))
created = s3.generate_presigned_post("photos", "uploads/made.txt", Fields={"success_action_status": "201"},
    Conditions=[{"success_action_status": "201"}])
answer = form(created["fields"], filename="made.txt")
out["created"] = [answer[0], "<Key>uploads/made.txt</Key>" in answer[1]]
served = {"Cache-Control": "max-age=60", "Content-Disposition": "attachment", "Content-Language": "fr"}
headed = s3.generate_presigned_post("photos", "uploads/headed.txt", Fields=served,
    Conditions=[{k: v} for k, v in served.items()])
out["headed"] = code(form(headed["fields"], filename="headed.txt"))[0]
h = s3.head_object(Bucket="photos", Key="uploads/headed.txt")
out["headed_served"] = [h.get("CacheControl"), h.get("ContentDisposition"), h.get("ContentLanguage")]

s3.put_bucket_cors(Bucket="photos", CORSConfiguration={"CORSRules": [
    {"AllowedOrigins": ["http://app.example"], "AllowedMethods": ["POST", "PUT"], "AllowedHeaders": ["*"], "MaxAgeSeconds": 60}]})
out["cors_rules"] = s3.get_bucket_cors(Bucket="photos")["CORSRules"][0]["AllowedOrigins"]
allowed = form(fields, filename="app.txt", origin="http://app.example")
out["app_origin"] = [allowed[0], allowed[2].get("access-control-allow-origin")]
out["still_evil"] = code(form(fields, filename="evil2.txt", origin="http://evil.example"))
def preflight(origin, method):
    request = urllib.request.Request(os.environ["EDDY"] + "/photos/uploads/x", method="OPTIONS",
        headers={"origin": origin, "access-control-request-method": method, "access-control-request-headers": "content-type"})
    try:
        with urllib.request.urlopen(request) as r:
            return [r.status, r.headers.get("Access-Control-Allow-Methods")]
    except urllib.error.HTTPError as e:
        return [e.code, None]
out["preflight_app_put"] = preflight("http://app.example", "PUT")
out["preflight_app_delete"] = preflight("http://app.example", "DELETE")
out["preflight_evil"] = preflight("http://evil.example", "PUT")
out["bad_cors"] = error(s3.put_bucket_cors, Bucket="photos", CORSConfiguration={"CORSRules": [
    {"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]})
s3.delete_bucket_cors(Bucket="photos")
out["after_delete"] = code(form(fields, filename="app2.txt", origin="http://app.example"))
out["no_config"] = error(s3.get_bucket_cors, Bucket="photos")
"#,
    );
    assert_eq!(out["plain"], json!([204, ""]), "{out:#}");
    assert_eq!(out["stored"], "hello from a browser");
    assert_eq!(out["content_type"], "text/plain");
    assert_eq!(out["evil_origin"], json!([403, "AccessForbidden"]));
    assert_eq!(out["evil_stored"], false);
    assert_eq!(out["too_big"], json!([400, "EntityTooLarge"]));
    assert_eq!(out["big_stored"], false);
    assert_eq!(out["outside_prefix"], json!([403, "AccessDenied"]));
    assert_eq!(out["tampered"], json!([403, "SignatureDoesNotMatch"]));
    assert_eq!(out["unsigned"], json!([403, "AccessDenied"]));
    assert_eq!(out["sigv2"], json!([400, "InvalidRequest"]));
    assert_eq!(out["expired"], json!([403, "AccessDenied"]));
    assert_eq!(out["created"], json!([201, true]));
    assert_eq!(out["headed"], 204);
    assert_eq!(
        out["headed_served"],
        json!(["max-age=60", "attachment", "fr"]),
        "a form's standard headers are kept and served"
    );
    assert_eq!(out["cors_rules"], json!(["http://app.example"]));
    assert_eq!(out["app_origin"], json!([204, "http://app.example"]));
    assert_eq!(out["still_evil"], json!([403, "AccessForbidden"]));
    assert_eq!(out["preflight_app_put"], json!([200, "POST, PUT"]));
    assert_eq!(out["preflight_app_delete"][0], 403);
    assert_eq!(out["preflight_evil"][0], 403);
    assert_eq!(out["bad_cors"], json!([400, "InvalidRequest"]));
    assert_eq!(out["after_delete"], json!([403, "AccessForbidden"]));
    assert_eq!(out["no_config"], json!([404, "NoSuchCORSConfiguration"]));
}

/// The peak resident memory of a process, after resetting it.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

fn peak_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// An unsigned 200 MiB form upload is refused after its first fields: eddy never reads, let
/// alone holds, the file (it grew by 389 MiB for 400 MiB before).
#[test]
fn an_unsigned_form_is_refused_before_its_file_is_read() {
    use std::io::Read;
    let eddy = app();
    let pid = eddy.child.id();
    let before = peak_kb(pid);
    reset_peak(pid);
    let size: usize = 200 << 20;
    let head = "--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nbig.bin\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n";
    let tail = "\r\n--b--\r\n";
    let mut tcp = std::net::TcpStream::connect(address(&eddy)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        tcp,
        "POST /photos HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n{head}",
        address(&eddy),
        head.len() + size + tail.len()
    )
    .unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0;
    for _ in 0..200 {
        if tcp.write_all(&chunk).is_err() {
            break; // eddy answered and closed the connection: the rest was never wanted
        }
        sent += chunk.len();
    }
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("AccessDenied"), "{answer}");
    let grew_kb = peak_kb(pid).saturating_sub(before);
    eprintln!(
        "sent {} MiB before the refusal; eddy's peak grew by {grew_kb} KiB",
        sent >> 20
    );
    assert!(
        grew_kb < 32 * 1024,
        "eddy held the body: its peak grew by {grew_kb} KiB"
    );
    assert_eq!(eddy.get("/_eddy/health").status, 200);
    let listed = cli_ok(&eddy, &["ls", "s3://photos"]);
    assert!(!listed.contains("big.bin"), "{listed}");
}

/// Signature Version 2 in a header covers no body and no clock: a captured request would be
/// good for ever, with any body. It is refused outright.
#[test]
fn signature_version_2_headers_are_refused() {
    let eddy = app();
    let (status, text) = raw(
        &eddy,
        format!(
            "PUT /photos/planted.txt HTTP/1.1\r\nHost: {}\r\nDate: Mon, 01 Jan 2001 00:00:00 GMT\r\nAuthorization: AWS eddy-dev:bWFkZS11cCBzaWduYXR1cmU=\r\nContent-Length: 7\r\nConnection: close\r\n\r\nplanted",
            address(&eddy)
        )
        .as_bytes(),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("AWS4-HMAC-SHA256"), "{text}");
    let listed = cli_ok(&eddy, &["ls", "s3://photos"]);
    assert!(!listed.contains("planted"), "{listed}");
}

/// A deny on a prefix holds in every listing: asking for no prefix, a shorter one, or a
/// delimiter does not reveal a key under it.
#[test]
fn a_deny_on_a_prefix_holds_in_every_listing() {
    let eddy = app();
    for key in [
        "public/a.txt",
        "private/b.txt",
        "private/deep/c.txt",
        "pr.txt",
    ] {
        std::fs::write(eddy.dir.path().join("f"), key).unwrap();
        cli_ok(&eddy, &["cp", "f", &format!("s3://docs/{key}")]);
    }
    let out = boto3(
        &eddy,
        &format!(
            r#"
lister = client("s3", key="AKIALISTER0000001", secret="{LISTER_SECRET}")
def keys(**kw):
    page = lister.list_objects_v2(Bucket="docs", **kw)
    return [o["Key"] for o in page.get("Contents", [])] + [p["Prefix"] for p in page.get("CommonPrefixes", [])]
out["all"] = keys()
out["short"] = keys(Prefix="p")
out["delimited"] = keys(Delimiter="/")
out["v1"] = [o["Key"] for o in lister.list_objects(Bucket="docs").get("Contents", [])]
out["private"] = error(lister.list_objects_v2, Bucket="docs", Prefix="private/")
out["read"] = lister.get_object(Bucket="docs", Key="private/b.txt")["Body"].read().decode()
"#
        ),
    );
    assert_eq!(out["all"], json!(["pr.txt", "public/a.txt"]), "{out:#}");
    assert_eq!(out["short"], json!(["pr.txt", "public/a.txt"]));
    assert_eq!(out["delimited"], json!(["pr.txt", "public/"]));
    assert_eq!(out["v1"], json!(["pr.txt", "public/a.txt"]));
    assert_eq!(out["private"], json!([403, "AccessDenied"]));
    // The deny is on listing only: reading by name is what the policy allows.
    assert_eq!(out["read"], "private/b.txt");
}

fn events_of(eddy: &Eddy) -> Vec<Value> {
    eddy.get("/_eddy/v1/events?after=0").body["events"]
        .as_array()
        .unwrap()
        .clone()
}

/// A client cannot make its writes look like a loop (and have their triggers dead-lettered) by
/// sending `X-Eddy-Hops`; a function, with its own credentials, does pass its lineage on.
#[test]
fn hop_headers_count_only_from_functions() {
    let eddy = app();
    let written = eddy.call(
        "POST",
        "/_eddy/v1/tables/orders/rows",
        &[
            ("x-eddy-hops", "99"),
            ("x-eddy-cause-event", "0192f0a0-0000-7000-8000-000000000000"),
        ],
        Some(r#"{"id": 1, "note": "from a client"}"#),
    );
    assert_eq!(written.status, 201, "{:?}", written.body);
    eddy.wait_for("the client's row to be delivered", |e| {
        !e.get("/_eddy/v1/invocations?function=seen").body["invocations"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    let first = &events_of(&eddy)[0];
    assert_eq!(first["lineage"]["hops"], 0, "{first}");
    assert!(first["lineage"]["cause_event"].is_null());
    // A function says its write is 40 hops deep: believed, and the loop guard stops it.
    let ran = cli_ok(
        &eddy,
        &["invoke", "relay", "--payload", r#"{"id": 2, "hops": 40}"#],
    );
    assert_eq!(ran.trim(), "201");
    eddy.wait_for("the relayed row's dead letter", |e| {
        !e.get("/_eddy/v1/dead-letters").body["dead_letters"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    let dead = eddy.get("/_eddy/v1/dead-letters").body["dead_letters"][0].clone();
    assert_eq!(dead["reason"], "RecursionLimit", "{dead}");
    let relayed = events_of(&eddy)
        .into_iter()
        .find(|e| e["key"] == "[2]")
        .unwrap();
    assert_eq!(relayed["lineage"]["hops"], 40);
}

/// A presigned URL may live seven days at most, however its lifetime parameter is written.
#[test]
fn presigned_lifetimes_are_capped_however_encoded() {
    let eddy = app();
    std::fs::write(eddy.dir.path().join("f"), "shared").unwrap();
    cli_ok(&eddy, &["cp", "f", "s3://photos/shared.txt"]);
    let out = boto3(
        &eddy,
        r#"
def url(seconds):
    return s3.generate_presigned_url("get_object", Params={"Bucket": "photos", "Key": "shared.txt"}, ExpiresIn=seconds)
def code(answer):
    return [answer[0], answer[1].split("<Code>")[1].split("</Code>")[0] if "<Code>" in answer[1] else answer[1]]
out["hour"] = code(fetch(url(3600)))
out["long"] = code(fetch(url(999999)))
out["encoded"] = code(fetch(url(999999).replace("X-Amz-Expires=", "X%2DAmz%2DExpires=")))
"#,
    );
    assert_eq!(out["hour"], json!([200, "shared"]));
    assert_eq!(
        out["long"],
        json!([400, "AuthorizationQueryParametersError"])
    );
    assert_eq!(
        out["encoded"],
        json!([400, "AuthorizationQueryParametersError"])
    );
}

/// Nothing unauthenticated costs memory or time: a request without credentials is answered
/// before its body is read, and a body that stops arriving is cut off.
#[test]
fn slow_and_unauthenticated_bodies_cost_nothing() {
    let eddy = app_with(&["--body-idle-timeout", "1s"]);
    let host = address(&eddy);
    // Announces a megabyte and sends none of it: the refusal comes at once.
    let started = Instant::now();
    let (status, text) = raw(
        &eddy,
        format!("POST /_eddy/v1/tables/orders/rows HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n").as_bytes(),
    );
    assert_eq!(status, 401, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Signed by a known key, but the body stalls: cut off after the idle timeout.
    let body = r#"{"id": 5, "note": "never finished"}"#;
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("{}/_eddy/v1/tables/orders/rows", eddy.base))
        .header("host", &host)
        .header("content-type", "application/json")
        .body(body.to_string())
        .unwrap();
    sign_request(&mut request);
    let mut head = format!(
        "POST /_eddy/v1/tables/orders/rows HTTP/1.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in request.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    head.push_str("\r\n");
    head.push_str(&body[..5]);
    let started = Instant::now();
    let (status, text) = raw(&eddy, head.as_bytes());
    assert_eq!(status, 408, "{text}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(eddy.get("/_eddy/v1/tables/orders/rows/5").status, 404);
}

/// A flood of unauthenticated requests with enormous key ids gets short answers and a few log
/// lines, not a log that grows with every request.
#[test]
fn refusals_are_logged_at_a_bounded_rate() {
    let eddy = app();
    let long_key = "K".repeat(16 * 1024);
    let host = address(&eddy);
    let mut longest = 0;
    for _ in 0..300 {
        let (status, text) = raw(
            &eddy,
            format!(
                "GET /_eddy/v1/functions HTTP/1.1\r\nHost: {host}\r\nX-Amz-Date: 20261130T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 Credential={long_key}/20261130/us-east-1/eddy/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert!((400..500).contains(&status), "{text}");
        longest = longest.max(text.len());
    }
    assert!(
        longest < 2048,
        "an answer echoed the key id: {longest} bytes"
    );
    let log = eddy.log();
    let lines = log.matches("request refused").count();
    assert!(lines <= 25, "{lines} lines for 300 refusals");
    assert!(
        !log.contains(&"K".repeat(1024)),
        "the log holds the whole key id"
    );
}
