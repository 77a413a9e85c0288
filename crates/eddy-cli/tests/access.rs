//! Roles and access keys: each function and each client can touch only what it is allowed to,
//! on every surface, and a refusal changes nothing.

mod common;

use common::*;
use serde_json::{Value, json};

const APP: &str = r#"
buckets: [{name: inbox}, {name: outbox}, {name: uploads}, {name: photos}]
tables: [{name: orders, primary_key: id, columns: {id: integer}}]
functions:
  - name: mover
    runtime: python
    handler: mover.handler
    code: ./code
    timeout: 20s
    role:
      - allow: [objects:read]
        resources: [bucket/inbox]
      - allow: [objects:write]
        resources: [bucket/outbox]
  - {name: other, runtime: exec, command: [cat]}
access_keys:
  - name: uploader
    id: AKIAUPLOADER00001
    secret_env: UPLOADER_SECRET
    policy:
      - allow: [objects:write, objects:list]
        resources: [bucket/uploads/incoming/*]
  - name: careful
    id: AKIACAREFUL000001
    secret_file: ./careful.secret
    policy:
      - allow: ["objects:*"]
        resources: [bucket/photos]
      - deny: [objects:delete]
        resources: ["*"]
"#;

/// A handler written for AWS: it uses boto3 with the credentials eddy gave it, and reports
/// what each call did.
const MOVER: &str = r#"
import json, os, urllib.request
import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

def attempt(call):
    try:
        call()
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"]

def handler(event, context):
    s3 = boto3.client("s3")
    out = {"key": os.environ["AWS_ACCESS_KEY_ID"]}
    out["read_inbox"] = attempt(lambda: s3.get_object(Bucket="inbox", Key="in.txt")["Body"].read())
    out["write_outbox"] = attempt(lambda: s3.put_object(Bucket="outbox", Key="out.txt", Body=b"moved"))
    out["read_outbox"] = attempt(lambda: s3.get_object(Bucket="outbox", Key="out.txt"))
    out["write_inbox"] = attempt(lambda: s3.put_object(Bucket="inbox", Key="sneaky.txt", Body=b"x"))
    out["delete_inbox"] = attempt(lambda: s3.delete_object(Bucket="inbox", Key="in.txt"))
    out["invoke_other"] = attempt(lambda: boto3.client("lambda").invoke(FunctionName="other", Payload=b"{}"))
    # The table API, signed as any AWS request is.
    url = os.environ["EDDY_ENDPOINT"] + "/_eddy/v1/tables/orders/rows"
    request = AWSRequest(method="GET", url=url)
    creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    SigV4Auth(creds, "eddy", "us-east-1").add_auth(request)
    try:
        urllib.request.urlopen(urllib.request.Request(url, headers=dict(request.headers)))
        out["read_table"] = "ok"
    except urllib.error.HTTPError as e:
        out["read_table"] = json.loads(e.read())["error"]["code"]
    return out
"#;

fn app() -> Eddy {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("code")).unwrap();
    std::fs::write(dir.path().join("code/mover.py"), MOVER).unwrap();
    std::fs::write(dir.path().join("careful.secret"), "careful-secret\n").unwrap();
    std::fs::write(dir.path().join("app.yaml"), APP).unwrap();
    spawn_with(dir, "app.yaml", &[("UPLOADER_SECRET", "uploader-secret")])
}

#[test]
fn a_function_can_touch_only_what_its_role_allows() {
    let eddy = app();
    boto3(
        &eddy,
        r#"s3.put_object(Bucket="inbox", Key="in.txt", Body=b"hello")"#,
    );
    let out: Value = serde_json::from_str(&cli_ok(&eddy, &["invoke", "mover", "--json"])).unwrap();
    assert!(
        out["key"].as_str().unwrap().starts_with("EDDYFN"),
        "its own key: {out}"
    );
    assert_eq!(
        out,
        json!({
            "key": out["key"],
            "read_inbox": "ok",
            "write_outbox": "ok",
            "read_outbox": "AccessDenied",
            "write_inbox": "AccessDenied",
            "delete_inbox": "AccessDenied",
            "invoke_other": "AccessDeniedException",
            "read_table": "AccessDenied",
        })
    );
    // What was refused changed nothing; what was allowed happened.
    let state = boto3(
        &eddy,
        r#"
out["inbox"] = [o["Key"] for o in s3.list_objects_v2(Bucket="inbox")["Contents"]]
out["outbox"] = s3.get_object(Bucket="outbox", Key="out.txt")["Body"].read().decode()
"#,
    );
    assert_eq!(state, json!({"inbox": ["in.txt"], "outbox": "moved"}));
    assert!(
        eddy.get("/_eddy/v1/invocations?function=other").body["invocations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let metrics = eddy.get("/_eddy/metrics").body;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("eddy_access_denied_total 5"),
        "{metrics}"
    );
    assert!(eddy.log().contains("access denied") && eddy.log().contains("function `mover`"));
}

const UPLOADER: &str = r#"
uploader = client("s3", key="AKIAUPLOADER00001", secret="uploader-secret")
careful = client("s3", key="AKIACAREFUL000001", secret="careful-secret")
"#;

#[test]
fn a_client_key_is_limited_to_its_policy() {
    let eddy = app();
    let out = boto3(
        &eddy,
        &format!(
            r#"{UPLOADER}
s3.put_object(Bucket="photos", Key="cat.jpg", Body=b"meow")
out["put_inside"] = error(uploader.put_object, Bucket="uploads", Key="incoming/a.txt", Body=b"a")
out["put_outside"] = error(uploader.put_object, Bucket="uploads", Key="other/a.txt", Body=b"a")
out["put_other_bucket"] = error(uploader.put_object, Bucket="photos", Key="incoming/a.txt", Body=b"a")
out["read_inside"] = error(uploader.get_object, Bucket="uploads", Key="incoming/a.txt")
out["list_inside"] = [o["Key"] for o in uploader.list_objects_v2(Bucket="uploads", Prefix="incoming/")["Contents"]]
out["list_bucket"] = error(uploader.list_objects_v2, Bucket="uploads")
out["list_photos"] = error(uploader.list_objects_v2, Bucket="photos")
out["versions_inside"] = [v["Key"] for v in uploader.list_object_versions(Bucket="uploads", Prefix="incoming/")["Versions"]]
out["versions_photos"] = error(uploader.list_object_versions, Bucket="photos")
out["buckets"] = [b["Name"] for b in uploader.list_buckets()["Buckets"]]
out["create_bucket"] = error(uploader.create_bucket, Bucket="mine")
out["copy_out"] = error(uploader.copy_object, Bucket="uploads", Key="incoming/copy.jpg", CopySource={{"Bucket": "photos", "Key": "cat.jpg"}})
upload = uploader.create_multipart_upload(Bucket="uploads", Key="incoming/parts.jpg")
out["part_copy_out"] = error(uploader.upload_part_copy, Bucket="uploads", Key="incoming/parts.jpg",
    UploadId=upload["UploadId"], PartNumber=1, CopySource={{"Bucket": "photos", "Key": "cat.jpg"}})
out["part_copy_parts"] = len(uploader.list_parts(Bucket="uploads", Key="incoming/parts.jpg",
                                                 UploadId=upload["UploadId"]).get("Parts", []))
ok_url = uploader.generate_presigned_url("put_object", Params={{"Bucket": "uploads", "Key": "incoming/p.txt"}})
out["presigned_inside"] = fetch(ok_url, "PUT", b"p")[0]
bad_url = uploader.generate_presigned_url("get_object", Params={{"Bucket": "photos", "Key": "cat.jpg"}})
out["presigned_beyond"] = fetch(bad_url)[0]
out["careful_delete"] = error(careful.delete_object, Bucket="photos", Key="cat.jpg")
out["careful_put"] = error(careful.put_object, Bucket="photos", Key="dog.jpg", Body=b"woof")
deleted = careful.delete_objects(Bucket="photos", Delete={{"Objects": [{{"Key": "cat.jpg"}}]}})
out["careful_batch"] = [e["Code"] for e in deleted.get("Errors", [])]
out["photos"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="photos")["Contents"])
out["uploads"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="uploads")["Contents"])
"#
        ),
    );
    assert_eq!(out["put_inside"], json!(null));
    assert_eq!(out["put_outside"], json!([403, "AccessDenied"]));
    assert_eq!(out["put_other_bucket"], json!([403, "AccessDenied"]));
    assert_eq!(
        out["read_inside"],
        json!([403, "AccessDenied"]),
        "write is not read"
    );
    assert_eq!(out["list_inside"], json!(["incoming/a.txt"]));
    assert_eq!(out["list_bucket"], json!([403, "AccessDenied"]));
    assert_eq!(out["list_photos"], json!([403, "AccessDenied"]));
    assert_eq!(out["versions_inside"], json!(["incoming/a.txt"]));
    assert_eq!(
        out["versions_photos"],
        json!([403, "AccessDenied"]),
        "versions are listed under objects:list, like keys"
    );
    assert_eq!(
        out["buckets"],
        json!(["uploads"]),
        "it sees only the bucket it reaches"
    );
    assert_eq!(out["create_bucket"], json!([403, "AccessDenied"]));
    assert_eq!(
        out["copy_out"],
        json!([403, "AccessDenied"]),
        "a copy needs read on its source"
    );
    assert_eq!(
        out["part_copy_out"],
        json!([403, "AccessDenied"]),
        "so does a part copy"
    );
    assert_eq!(out["part_copy_parts"], 0);
    assert_eq!(out["presigned_inside"], 200);
    assert_eq!(
        out["presigned_beyond"], 403,
        "a URL carries its signer's rights and no more"
    );
    assert_eq!(
        out["careful_delete"],
        json!([403, "AccessDenied"]),
        "deny wins over allow"
    );
    assert_eq!(out["careful_put"], json!(null));
    assert_eq!(out["careful_batch"], json!(["AccessDenied"]));
    assert_eq!(out["photos"], json!(["cat.jpg", "dog.jpg"]));
    assert_eq!(out["uploads"], json!(["incoming/a.txt", "incoming/p.txt"]));

    // The key reaches neither the admin API nor invoke.
    let admin = boto3(
        &eddy,
        r#"
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
for method, path in [("GET", "functions"), ("GET", "schedules"), ("GET", "replays"), ("POST", "triggers/t/replay"), ("POST", "triggers/t/backfill")]:
    body = b'{"from": 1}' if method == "POST" else None
    request = AWSRequest(method=method, url=os.environ["EDDY"] + "/_eddy/v1/" + path, data=body)
    SigV4Auth(Credentials("AKIAUPLOADER00001", "uploader-secret"), "eddy", "us-east-1").add_auth(request)
    out[path] = fetch(request.url, headers=dict(request.headers), method=method, data=body)
out["invoke"] = error(client("lambda", key="AKIAUPLOADER00001", secret="uploader-secret").invoke, FunctionName="other", Payload=b"{}")
"#,
    );
    for path in [
        "functions",
        "schedules",
        "replays",
        "triggers/t/replay",
        "triggers/t/backfill",
    ] {
        assert_eq!(admin[path][0], 403, "{path}");
        assert!(admin[path][1].as_str().unwrap().contains("AccessDenied"));
    }
    assert_eq!(admin["invoke"], json!([403, "AccessDeniedException"]));
}

#[test]
fn a_removed_key_stops_working_at_once() {
    let eddy = app();
    let before = boto3(
        &eddy,
        &format!(
            r#"{UPLOADER}
out["put"] = error(uploader.put_object, Bucket="uploads", Key="incoming/1", Body=b"1")
out["url"] = uploader.generate_presigned_url("put_object", Params={{"Bucket": "uploads", "Key": "incoming/2"}})
"#
        ),
    );
    assert_eq!(before["put"], json!(null));
    let without = APP.split("  - name: uploader").next().unwrap().to_string()
        + "  - name: careful"
        + APP.split("  - name: careful").nth(1).unwrap();
    std::fs::write(eddy.dir.path().join("without.yaml"), without).unwrap();
    cli_ok(&eddy, &["deploy", "without.yaml"]);
    let after = boto3(
        &eddy,
        &format!(
            r#"{UPLOADER}
out["put"] = error(uploader.put_object, Bucket="uploads", Key="incoming/3", Body=b"3")
out["presigned"] = fetch("{url}", "PUT", b"2")[0]
"#,
            url = before["url"].as_str().unwrap()
        ),
    );
    assert_eq!(after["put"], json!([403, "InvalidAccessKeyId"]));
    assert_eq!(
        after["presigned"], 403,
        "a URL signed by a removed key stops working"
    );
}
