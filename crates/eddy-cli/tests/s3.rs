//! The S3 API end to end: `eddy serve` driven by boto3 and the AWS CLI, as users drive S3.
//! Every failure is checked for its status and S3 code, and for having changed nothing.

mod common;

use common::*;
use serde_json::json;

const BUCKETS: &str = "buckets: [{name: photos}]\n";

#[test]
fn objects_round_trip_through_boto3() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
s3.create_bucket(Bucket="docs")
out["buckets"] = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
body = b"0123456789" * 100
put = s3.put_object(Bucket="docs", Key="notes/a b.txt", Body=body, ContentType="text/plain",
                    Metadata={"author": "ada"})
out["etag"] = put["ETag"]
out["md5"] = '"' + hashlib.md5(body).hexdigest() + '"'
head = s3.head_object(Bucket="docs", Key="notes/a b.txt")
out["head"] = [head["ContentLength"], head["ContentType"], head["Metadata"]]
got = s3.get_object(Bucket="docs", Key="notes/a b.txt")
out["same"] = got["Body"].read() == body
part = s3.get_object(Bucket="docs", Key="notes/a b.txt", Range="bytes=2-5")
out["range"] = [part["ResponseMetadata"]["HTTPStatusCode"], part["ContentRange"], part["Body"].read().decode()]
out["suffix"] = s3.get_object(Bucket="docs", Key="notes/a b.txt", Range="bytes=-3")["Body"].read().decode()
out["bad_range"] = error(s3.get_object, Bucket="docs", Key="notes/a b.txt", Range="bytes=5000-")
out["if_none_match"] = error(s3.get_object, Bucket="docs", Key="notes/a b.txt", IfNoneMatch=put["ETag"])
out["if_match_other"] = error(s3.get_object, Bucket="docs", Key="notes/a b.txt", IfMatch='"0000"')
out["if_match_same"] = error(s3.get_object, Bucket="docs", Key="notes/a b.txt", IfMatch=put["ETag"])
import datetime
later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
earlier = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
out["modified_since_later"] = error(s3.get_object, Bucket="docs", Key="notes/a b.txt", IfModifiedSince=later)
out["modified_since_earlier"] = error(s3.get_object, Bucket="docs", Key="notes/a b.txt", IfModifiedSince=earlier)
out["unmodified_since_earlier"] = error(s3.head_object, Bucket="docs", Key="notes/a b.txt", IfUnmodifiedSince=earlier)
s3.copy_object(Bucket="photos", Key="copied.txt", CopySource={"Bucket": "docs", "Key": "notes/a b.txt"},
               MetadataDirective="REPLACE", Metadata={"author": "grace"}, ContentType="text/markdown")
copied = s3.head_object(Bucket="photos", Key="copied.txt")
out["copied"] = [copied["ETag"], copied["ContentType"], copied["Metadata"]]
out["self_copy"] = error(s3.copy_object, Bucket="docs", Key="notes/a b.txt", CopySource="docs/notes/a b.txt")
for k in ["notes/b.txt", "notes/deep/c.txt", "zebra.txt", "../escape.txt", "odd/a+b%20c&d<e>.txt"]:
    s3.put_object(Bucket="docs", Key=k, Body=k.encode())
out["escape"] = s3.get_object(Bucket="docs", Key="../escape.txt")["Body"].read().decode()
out["odd"] = [o["Key"] for o in s3.list_objects_v2(Bucket="docs", Prefix="odd/")["Contents"]]
out["odd_v1"] = [o["Key"] for o in s3.list_objects(Bucket="docs", Prefix="odd/")["Contents"]]
out["odd_raw"] = [o["Key"] for o in s3.list_objects_v2(Bucket="docs", Prefix="odd/", EncodingType="url")["Contents"]]
out["odd_get"] = s3.get_object(Bucket="docs", Key="odd/a+b%20c&d<e>.txt")["Body"].read().decode()
s3.delete_object(Bucket="docs", Key="odd/a+b%20c&d<e>.txt")
page = s3.list_objects_v2(Bucket="docs", Prefix="notes/", Delimiter="/")
out["v2"] = [[o["Key"] for o in page["Contents"]], [p["Prefix"] for p in page["CommonPrefixes"]]]
keys, token = [], None
while True:
    args = {"Bucket": "docs", "MaxKeys": 2}
    if token: args["ContinuationToken"] = token
    page = s3.list_objects_v2(**args)
    keys += [o["Key"] for o in page["Contents"]]
    if not page["IsTruncated"]: break
    token = page["NextContinuationToken"]
out["paged_v2"] = keys
keys, marker = [], ""
while True:
    page = s3.list_objects(Bucket="docs", MaxKeys=1, Delimiter="/", Marker=marker)
    keys += [o["Key"] for o in page.get("Contents", [])] + [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    if not page["IsTruncated"]: break
    marker = page["NextMarker"]
out["paged_v1"] = keys
out["start_after"] = [o["Key"] for o in s3.list_objects_v2(Bucket="docs", StartAfter="notes/deep/c.txt")["Contents"]]
deleted = s3.delete_objects(Bucket="docs", Delete={"Objects": [{"Key": "zebra.txt"}, {"Key": "never-was"}]})
out["deleted"] = sorted(d["Key"] for d in deleted["Deleted"])
s3.delete_object(Bucket="docs", Key="notes/b.txt")
out["after_delete"] = [o["Key"] for o in s3.list_objects_v2(Bucket="docs")["Contents"]]
out["not_empty"] = error(s3.delete_bucket, Bucket="docs")
s3.create_bucket(Bucket="scratch")
out["head_bucket"] = s3.head_bucket(Bucket="scratch")["ResponseMetadata"]["HTTPStatusCode"]
out["location"] = s3.get_bucket_location(Bucket="scratch").get("LocationConstraint")
s3.delete_bucket(Bucket="scratch")
out["head_deleted"] = error(s3.head_bucket, Bucket="scratch")
"#,
    );
    assert_eq!(out["buckets"], json!(["docs", "photos"]));
    assert_eq!(out["etag"], out["md5"], "a single PUT's ETag is its MD5");
    assert_eq!(out["head"], json!([1000, "text/plain", {"author": "ada"}]));
    assert_eq!(out["same"], true);
    assert_eq!(out["range"], json!([206, "bytes 2-5/1000", "2345"]));
    assert_eq!(out["suffix"], "789");
    assert_eq!(out["bad_range"], json!([416, "InvalidRange"]));
    assert_eq!(out["if_none_match"], json!([304, "304"]));
    assert_eq!(out["if_match_other"], json!([412, "PreconditionFailed"]));
    assert_eq!(out["if_match_same"], json!(null));
    assert_eq!(out["modified_since_later"], json!([304, "304"]));
    assert_eq!(out["modified_since_earlier"], json!(null));
    assert_eq!(out["unmodified_since_earlier"], json!([412, "412"]));
    assert_eq!(
        out["copied"],
        json!([out["etag"], "text/markdown", {"author": "grace"}])
    );
    assert_eq!(out["self_copy"], json!([400, "InvalidRequest"]));
    assert_eq!(out["escape"], "../escape.txt", "keys are names, not paths");
    let odd = "odd/a+b%20c&d<e>.txt";
    assert_eq!(
        out["odd"],
        json!([odd]),
        "botocore asks for URL-encoded keys and decodes them"
    );
    assert_eq!(out["odd_v1"], json!([odd]));
    assert_eq!(out["odd_raw"], json!(["odd/a%2Bb%2520c%26d%3Ce%3E.txt"]));
    assert_eq!(out["odd_get"], odd);
    assert_eq!(
        out["v2"],
        json!([["notes/a b.txt", "notes/b.txt"], ["notes/deep/"]])
    );
    assert_eq!(
        out["paged_v2"],
        json!([
            "../escape.txt",
            "notes/a b.txt",
            "notes/b.txt",
            "notes/deep/c.txt",
            "zebra.txt"
        ])
    );
    assert_eq!(
        out["paged_v1"],
        json!(["../", "notes/", "zebra.txt"]),
        "each common prefix once across v1 pages"
    );
    assert_eq!(out["start_after"], json!(["zebra.txt"]));
    assert_eq!(out["deleted"], json!(["never-was", "zebra.txt"]));
    assert_eq!(
        out["after_delete"],
        json!(["../escape.txt", "notes/a b.txt", "notes/deep/c.txt"])
    );
    assert_eq!(out["not_empty"], json!([409, "BucketNotEmpty"]));
    assert_eq!(out["head_bucket"], 200);
    assert_eq!(
        out["location"],
        json!(null),
        "us-east-1 is reported as no constraint"
    );
    assert_eq!(out["head_deleted"], json!([404, "404"]));
}

#[test]
fn multipart_uploads_through_boto3_and_the_aws_cli() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
MiB = 1024 * 1024
first, last = os.urandom(5 * MiB), os.urandom(1234)
up = s3.create_multipart_upload(Bucket="photos", Key="big.bin", ContentType="application/x-big",
                                Metadata={"kind": "test"})["UploadId"]
e1 = s3.upload_part(Bucket="photos", Key="big.bin", UploadId=up, PartNumber=1, Body=first)["ETag"]
e2 = s3.upload_part(Bucket="photos", Key="big.bin", UploadId=up, PartNumber=2, Body=last)["ETag"]
out["parts"] = [[p["PartNumber"], p["Size"]] for p in s3.list_parts(Bucket="photos", Key="big.bin", UploadId=up)["Parts"]]
out["uploads"] = [u["Key"] for u in s3.list_multipart_uploads(Bucket="photos")["Uploads"]]
out["wrong_etag"] = error(s3.complete_multipart_upload, Bucket="photos", Key="big.bin", UploadId=up,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": '"ffff"'}]})
out["out_of_order"] = error(s3.complete_multipart_upload, Bucket="photos", Key="big.bin", UploadId=up,
    MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
out["absent_before"] = error(s3.head_object, Bucket="photos", Key="big.bin")
done = s3.complete_multipart_upload(Bucket="photos", Key="big.bin", UploadId=up,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
digests = hashlib.md5(hashlib.md5(first).digest() + hashlib.md5(last).digest()).hexdigest()
out["etag"] = [done["ETag"], '"' + digests + '-2"']
got = s3.get_object(Bucket="photos", Key="big.bin")
out["same"] = got["Body"].read() == first + last
out["meta"] = [got["ContentType"], got["Metadata"]]
out["completed_twice"] = error(s3.complete_multipart_upload, Bucket="photos", Key="big.bin", UploadId=up,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
small = s3.create_multipart_upload(Bucket="photos", Key="small.bin")["UploadId"]
s1 = s3.upload_part(Bucket="photos", Key="small.bin", UploadId=small, PartNumber=1, Body=b"tiny")["ETag"]
s2 = s3.upload_part(Bucket="photos", Key="small.bin", UploadId=small, PartNumber=2, Body=b"tiny")["ETag"]
out["too_small"] = error(s3.complete_multipart_upload, Bucket="photos", Key="small.bin", UploadId=small,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": s1}, {"PartNumber": 2, "ETag": s2}]})
s3.abort_multipart_upload(Bucket="photos", Key="small.bin", UploadId=small)
out["aborted"] = error(s3.list_parts, Bucket="photos", Key="small.bin", UploadId=small)
out["bad_part_number"] = error(s3.upload_part, Bucket="photos", Key="x", UploadId=up, PartNumber=10001, Body=b"x")
out["keys"] = [o["Key"] for o in s3.list_objects_v2(Bucket="photos")["Contents"]]
"#,
    );
    assert_eq!(out["parts"], json!([[1, 5 * 1024 * 1024], [2, 1234]]));
    assert_eq!(out["uploads"], json!(["big.bin"]));
    assert_eq!(out["wrong_etag"], json!([400, "InvalidPart"]));
    assert_eq!(out["out_of_order"], json!([400, "InvalidPartOrder"]));
    assert_eq!(out["absent_before"], json!([404, "404"]));
    assert_eq!(out["etag"][0], out["etag"][1], "S3's multipart ETag");
    assert_eq!(out["same"], true);
    assert_eq!(out["meta"], json!(["application/x-big", {"kind": "test"}]));
    assert_eq!(out["completed_twice"], json!([404, "NoSuchUpload"]));
    assert_eq!(out["too_small"], json!([400, "EntityTooSmall"]));
    assert_eq!(out["aborted"], json!([404, "NoSuchUpload"]));
    assert_eq!(out["bad_part_number"], json!([400, "InvalidArgument"]));
    assert_eq!(out["keys"], json!(["big.bin"]));

    // The AWS CLI switches to multipart above 8 MiB.
    let file = eddy.dir.path().join("cli.bin");
    let bytes: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let up = aws(
        &eddy,
        &[
            "s3",
            "cp",
            "--only-show-errors",
            file.to_str().unwrap(),
            "s3://photos/cli.bin",
        ],
    );
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let back = eddy.dir.path().join("back.bin");
    let down = aws(
        &eddy,
        &[
            "s3",
            "cp",
            "--only-show-errors",
            "s3://photos/cli.bin",
            back.to_str().unwrap(),
        ],
    );
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(std::fs::read(&back).unwrap() == bytes);
    let head = aws(
        &eddy,
        &[
            "s3api",
            "head-object",
            "--bucket",
            "photos",
            "--key",
            "cli.bin",
        ],
    );
    let head: serde_json::Value = serde_json::from_slice(&head.stdout).unwrap();
    assert!(
        head["ETag"].as_str().unwrap().ends_with("-3\""),
        "uploaded in three 8 MiB parts: {head}"
    );
}

#[test]
fn presigned_urls_and_signatures() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
s3.put_object(Bucket="photos", Key="cat.jpg", Body=b"meow")
get = s3.generate_presigned_url("get_object", Params={"Bucket": "photos", "Key": "cat.jpg"}, ExpiresIn=60)
out["get"] = fetch(get)
put = s3.generate_presigned_url("put_object", Params={"Bucket": "photos", "Key": "dog.jpg"}, ExpiresIn=60)
out["put"] = fetch(put, "PUT", b"woof")[0]
out["put_result"] = s3.get_object(Bucket="photos", Key="dog.jpg")["Body"].read().decode()
out["tampered"] = fetch(get.replace("cat.jpg", "cau.jpg"))[0]
v2 = boto3.client("s3", endpoint_url=os.environ["EDDY"], region_name="us-east-1",
    aws_access_key_id=os.environ["KEY"], aws_secret_access_key=os.environ["SECRET"],
    config=Config(s3={"addressing_style": "path"}, signature_version="s3"))
out["v2"] = fetch(v2.generate_presigned_url("get_object", Params={"Bucket": "photos", "Key": "cat.jpg"}, ExpiresIn=60))
out["v2_too_long"] = fetch(v2.generate_presigned_url("get_object", Params={"Bucket": "photos", "Key": "cat.jpg"}, ExpiresIn=8 * 24 * 3600))[0]
out["too_long"] = fetch(s3.generate_presigned_url("get_object", Params={"Bucket": "photos", "Key": "cat.jpg"}, ExpiresIn=8 * 24 * 3600))
short = s3.generate_presigned_url("get_object", Params={"Bucket": "photos", "Key": "cat.jpg"}, ExpiresIn=1)
time.sleep(2.1)
out["expired"] = fetch(short)
forged = client("s3", secret="not-the-secret")
out["wrong_secret"] = error(forged.put_object, Bucket="photos", Key="forged", Body=b"x")
out["wrong_secret_presigned"] = fetch(forged.generate_presigned_url("get_object", Params={"Bucket": "photos", "Key": "cat.jpg"}))[0]
out["unknown_key"] = error(client("s3", key="AKIDUNKNOWN").list_buckets)
out["anonymous"] = fetch(os.environ["EDDY"] + "/photos/cat.jpg")[0]
out["anonymous_put"] = fetch(os.environ["EDDY"] + "/photos/anon", "PUT", b"x")[0]
out["keys"] = [o["Key"] for o in s3.list_objects_v2(Bucket="photos")["Contents"]]
"#,
    );
    assert_eq!(out["get"], json!([200, "meow"]));
    assert_eq!(out["put"], 200);
    assert_eq!(out["put_result"], "woof");
    assert_eq!(out["tampered"], 403);
    assert_eq!(
        out["v2"],
        json!([200, "meow"]),
        "Signature V2 URLs work too"
    );
    assert_eq!(out["v2_too_long"], 400);
    assert_eq!(out["too_long"][0], 400);
    assert!(
        out["too_long"][1]
            .as_str()
            .unwrap()
            .contains("AuthorizationQueryParametersError"),
        "{}",
        out["too_long"]
    );
    assert_eq!(out["expired"][0], 403);
    assert!(out["expired"][1].as_str().unwrap().contains("AccessDenied"));
    assert_eq!(out["wrong_secret"], json!([403, "SignatureDoesNotMatch"]));
    assert_eq!(out["wrong_secret_presigned"], 403);
    assert_eq!(out["unknown_key"], json!([403, "InvalidAccessKeyId"]));
    assert_eq!(out["anonymous"], 403);
    assert_eq!(out["anonymous_put"], 403);
    assert_eq!(
        out["keys"],
        json!(["cat.jpg", "dog.jpg"]),
        "nothing else was written"
    );
}

#[test]
fn bad_s3_requests_get_s3_errors_and_change_nothing() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
import http.client

def raw(method, path, body=b"", headers={}, send_body=True):
    """A signed request built by hand, for what SDKs would never send."""
    url = os.environ["EDDY"] + path
    headers = dict(headers)
    if body:
        headers["Content-Length"] = str(len(body))
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    S3SigV4Auth(Credentials(os.environ["KEY"], os.environ["SECRET"]), "s3", "us-east-1").add_auth(request)
    host = os.environ["EDDY"].split("//")[1]
    conn = http.client.HTTPConnection(host, timeout=10)
    conn.putrequest(method, path, skip_accept_encoding=True, skip_host=True)
    conn.putheader("Host", host)
    for name, value in request.headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    if send_body and body:
        conn.send(body)
    response = conn.getresponse()
    return [response.status, response.read().decode()]

out["bad_md5"] = error(s3.put_object, Bucket="photos", Key="a", Body=b"hello",
                       ContentMD5=base64.b64encode(hashlib.md5(b"other").digest()).decode())
out["not_md5"] = error(s3.put_object, Bucket="photos", Key="a", Body=b"hello", ContentMD5="bm90IG1kNQ==")
out["no_bucket"] = error(s3.put_object, Bucket="nowhere", Key="a", Body=b"x")
out["no_bucket_list"] = error(s3.list_objects_v2, Bucket="nowhere")
out["no_key"] = error(s3.get_object, Bucket="photos", Key="missing")
out["bad_bucket_name"] = error(s3.create_bucket, Bucket="Bad_Name")
out["reserved_bucket"] = error(s3.create_bucket, Bucket="2015-03-31")
out["exists"] = error(s3.create_bucket, Bucket="photos")
out["long_key"] = error(s3.put_object, Bucket="photos", Key="k" * 2000, Body=b"x")
out["big_metadata"] = error(s3.put_object, Bucket="photos", Key="a", Body=b"x", Metadata={"m": "v" * 3000})
out["bad_token"] = error(s3.list_objects_v2, Bucket="photos", ContinuationToken="zz")
out["malformed_delete"] = raw("POST", "/photos?delete", b"<Delete><Object><Key>a</Key>", {"Content-MD5": base64.b64encode(hashlib.md5(b"<Delete><Object><Key>a</Key>").digest()).decode()})
out["too_big"] = raw("PUT", "/photos/huge", b"", {"Content-Length": str(6 * 1024**3), "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, send_body=False)
out["nul_key"] = raw("PUT", "/photos/nul%00key", b"x")
out["keys"] = [o["Key"] for o in s3.list_objects_v2(Bucket="photos").get("Contents", [])]
out["buckets"] = [b["Name"] for b in s3.list_buckets()["Buckets"]]
"#,
    );
    assert_eq!(out["bad_md5"], json!([400, "BadDigest"]));
    assert_eq!(out["not_md5"], json!([400, "InvalidDigest"]));
    assert_eq!(out["no_bucket"], json!([404, "NoSuchBucket"]));
    assert_eq!(out["no_bucket_list"], json!([404, "NoSuchBucket"]));
    assert_eq!(out["no_key"], json!([404, "NoSuchKey"]));
    assert_eq!(out["bad_bucket_name"][0], 400);
    assert_eq!(out["reserved_bucket"][0], 400);
    assert_eq!(out["exists"], json!([409, "BucketAlreadyOwnedByYou"]));
    assert_eq!(out["long_key"], json!([400, "KeyTooLongError"]));
    assert_eq!(out["big_metadata"], json!([400, "MetadataTooLarge"]));
    assert_eq!(out["bad_token"], json!([400, "InvalidArgument"]));
    assert_eq!(
        out["malformed_delete"][0], 400,
        "{}",
        out["malformed_delete"]
    );
    assert!(
        out["malformed_delete"][1]
            .as_str()
            .unwrap()
            .contains("MalformedXML"),
        "{}",
        out["malformed_delete"]
    );
    assert_eq!(out["too_big"][0], 400);
    assert!(
        out["too_big"][1]
            .as_str()
            .unwrap()
            .contains("EntityTooLarge"),
        "{}",
        out["too_big"]
    );
    assert_eq!(out["nul_key"][0], 400, "{}", out["nul_key"]);
    assert_eq!(out["keys"], json!([]), "no failed request wrote anything");
    assert_eq!(out["buckets"], json!(["photos"]));
}

#[test]
fn virtual_hosted_style_names_the_bucket_in_the_host() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
import http.client
s3.put_object(Bucket="photos", Key="v.txt", Body=b"virtual")
port = os.environ["EDDY"].rsplit(":", 1)[1]
request = AWSRequest(method="GET", url=f"http://photos.localhost:{port}/v.txt")
S3SigV4Auth(Credentials(os.environ["KEY"], os.environ["SECRET"]), "s3", "us-east-1").add_auth(request)
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
conn.putrequest("GET", "/v.txt", skip_accept_encoding=True, skip_host=True)
for name, value in request.headers.items():
    conn.putheader(name, value)
conn.putheader("Host", f"photos.localhost:{port}")
conn.endheaders()
response = conn.getresponse()
out["virtual"] = [response.status, response.read().decode()]
"#,
    );
    assert_eq!(out["virtual"], json!([200, "virtual"]));
}

/// The whole loop: a real S3 client uploads, the triggered function runs, and its log can be
/// read through the admin API.
#[test]
fn an_upload_runs_its_function_and_the_log_is_visible() {
    let eddy = serve(
        "buckets: [{name: photos}]
functions:
  - {name: on-upload, runtime: exec, command: [sh, -c, 'cat >&2; echo >&2; echo \"saw an upload\" >&2']}
triggers:
  - {function: on-upload, source: bucket/photos, events: ['object:created:*'], filter: {suffix: [.jpg]}}
",
    );
    boto3(
        &eddy,
        r#"
s3.put_object(Bucket="photos", Key="holiday/red flower.jpg", Body=b"jpeg bytes")
s3.put_object(Bucket="photos", Key="notes.txt", Body=b"not a photo")
"#,
    );
    eddy.wait_for("the upload's function to run", |e| {
        e.get("/_eddy/v1/invocations?function=on-upload").body["invocations"]
            .as_array()
            .is_some_and(|runs| !runs.is_empty())
    });
    let runs = eddy.get("/_eddy/v1/invocations?function=on-upload").body;
    let runs = runs["invocations"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        1,
        "the .txt upload matched no trigger: {runs:?}"
    );
    let log = runs[0]["log"].as_str().unwrap();
    assert!(
        log.starts_with("START RequestId: ") && log.contains("saw an upload"),
        "{log}"
    );
    let event = log.lines().find(|l| l.starts_with('{')).unwrap();
    let event: serde_json::Value = serde_json::from_str(event).unwrap();
    let record = &event["Records"][0];
    assert_eq!(record["eventName"], "ObjectCreated:Put", "{event}");
    assert_eq!(record["s3"]["object"]["key"], "holiday/red+flower.jpg");
    assert_eq!(record["s3"]["object"]["size"], 10);
}

/// An empty upload, then uploads, reads and a multipart upload on the same keep-alive
/// connection, with boto3 and with the AWS CLI, each with one attempt and a short read timeout:
/// a request the connection leaves unanswered fails the test instead of being retried.
#[test]
fn an_empty_upload_leaves_the_connection_usable() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["EDDY"], region_name="us-east-1",
    aws_access_key_id=os.environ["KEY"], aws_secret_access_key=os.environ["SECRET"],
    config=Config(s3={"addressing_style": "path"}, read_timeout=5, connect_timeout=5,
                  retries={"total_max_attempts": 1}, max_pool_connections=1))
done = []
for round in range(3):
    s3.put_object(Bucket="photos", Key=f"empty-{round}", Body=b"")
    s3.put_object(Bucket="photos", Key=f"full-{round}", Body=b"x" * 1000)
    s3.put_object(Bucket="photos", Key=f"empty-again-{round}", Body=b"")
    done.append(s3.get_object(Bucket="photos", Key=f"full-{round}")["Body"].read() == b"x" * 1000)
s3.put_object(Bucket="photos", Key="empty-before-parts", Body=b"")
upload = s3.create_multipart_upload(Bucket="photos", Key="parts")
etag = s3.upload_part(Bucket="photos", Key="parts", UploadId=upload["UploadId"], PartNumber=1,
                      Body=b"p" * 10)["ETag"]
s3.complete_multipart_upload(Bucket="photos", Key="parts", UploadId=upload["UploadId"],
                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
out["done"] = done
out["parts"] = s3.get_object(Bucket="photos", Key="parts")["Body"].read().decode()
"#,
    );
    assert_eq!(out["done"], json!([true, true, true]));
    assert_eq!(out["parts"], "pppppppppp");

    // `aws s3 sync` of a folder holding an empty file among others.
    let folder = eddy.dir.path().join("sync");
    std::fs::create_dir(&folder).unwrap();
    for (name, body) in [
        ("a", "a"),
        ("empty", ""),
        ("b", "b"),
        ("c", "c"),
        ("d", "d"),
    ] {
        std::fs::write(folder.join(name), body).unwrap();
    }
    let synced = std::process::Command::new("aws")
        .args(["s3", "sync", folder.to_str().unwrap(), "s3://photos/sync/"])
        .args(["--endpoint-url", &eddy.base, "--region", "us-east-1"])
        .args(["--cli-read-timeout", "5"])
        .env("AWS_ACCESS_KEY_ID", eddy_node::DEV_ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", eddy_node::DEV_SECRET_ACCESS_KEY)
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    let listed = aws(&eddy, &["s3", "ls", "s3://photos/sync/"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 5);
}

/// The head of a PUT of `path` with `headers`, signed for a body whose hash is `payload` (one
/// of the streaming or unsigned forms), for requests sent by hand.
fn signed_put_head(eddy: &Eddy, path: &str, headers: &[(&str, &str)], payload: &str) -> String {
    let mut request = http::Request::builder()
        .method("PUT")
        .uri(path)
        .header("host", address(eddy));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(()).unwrap();
    let signed = eddy_sigv4::Request {
        method: "PUT",
        path,
        query: "",
        headers: request.headers(),
        payload_sha256: payload,
    };
    let credentials = eddy_sigv4::Credentials {
        access_key_id: eddy_node::DEV_ACCESS_KEY_ID.into(),
        secret_access_key: eddy_node::DEV_SECRET_ACCESS_KEY.into(),
    };
    let now = std::time::SystemTime::now();
    for (name, value) in eddy_sigv4::sign(&credentials, "us-east-1", "s3", &signed, now) {
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let mut head = format!("PUT {path} HTTP/1.1\r\nconnection: close\r\n");
    for (name, value) in request.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    head.push_str("\r\n");
    head
}

/// A PUT whose body is aws-chunked with its checksum in a trailer, as SDKs send over TLS
/// (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`): the request's headers signed, the body not.
fn put_with_trailer(eddy: &Eddy, key: &str, body: &str, trailer: &str) -> (u16, String) {
    let name = trailer.split_once(':').unwrap().0;
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n{trailer}\r\n\r\n", body.len());
    let (decoded, length) = (body.len().to_string(), chunked.len().to_string());
    let head = signed_put_head(
        eddy,
        &format!("/photos/{key}"),
        &[
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", &decoded),
            ("x-amz-trailer", name),
            ("content-length", &length),
        ],
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    );
    raw(eddy, format!("{head}{chunked}").as_bytes())
}

/// Checksums the client sends are checked against the bytes, for every algorithm AWS offers,
/// in headers and in aws-chunked trailers; a wrong one stores nothing.
#[test]
fn checksums_are_checked_in_headers_and_trailers() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
zeros = lambda n: base64.b64encode(bytes(n)).decode()
# "hello" under each algorithm (CRC32C and CRC64NVME given by value: botocore needs awscrt).
right = {"ChecksumCRC32": "NhCmhg==", "ChecksumCRC32C": "mnG7TA==",
         "ChecksumCRC64NVME": "M3eFcAZSQlc=", "ChecksumSHA1": "qvTGHdzF6KLavt4PO0gs2a6pQ00=",
         "ChecksumSHA256": "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="}
wrong = {"ChecksumCRC32": zeros(4), "ChecksumCRC32C": zeros(4), "ChecksumCRC64NVME": zeros(8),
         "ChecksumSHA1": zeros(20), "ChecksumSHA256": zeros(32)}
out["right"] = {p: error(s3.put_object, Bucket="photos", Key="right-" + p, Body=b"hello", **{p: v})
                for p, v in right.items()}
out["wrong"] = {p: error(s3.put_object, Bucket="photos", Key="wrong", Body=b"hello", **{p: v})
                for p, v in wrong.items()}
out["computed"] = [error(s3.put_object, Bucket="photos", Key="sdk-" + a, Body=b"hello" * 999,
                         ChecksumAlgorithm=a) for a in ["CRC32", "SHA1", "SHA256"]]
out["malformed"] = error(s3.put_object, Bucket="photos", Key="wrong", Body=b"hello",
                         ChecksumSHA256="not-a-digest")
upload = s3.create_multipart_upload(Bucket="photos", Key="parts")
out["wrong_part"] = error(s3.upload_part, Bucket="photos", Key="parts", UploadId=upload["UploadId"],
                          PartNumber=1, Body=b"hello", ChecksumSHA1=zeros(20))
out["parts"] = len(s3.list_parts(Bucket="photos", Key="parts", UploadId=upload["UploadId"]).get("Parts", []))
out["wrong_stored"] = error(s3.head_object, Bucket="photos", Key="wrong")
"#,
    );
    for algorithm in ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"] {
        let param = format!("Checksum{algorithm}");
        assert_eq!(out["right"][&param], json!(null), "{param}: {out}");
        assert_eq!(out["wrong"][&param], json!([400, "BadDigest"]), "{param}");
    }
    assert_eq!(out["computed"], json!([null, null, null]));
    assert_eq!(out["malformed"], json!([400, "InvalidRequest"]));
    assert_eq!(out["wrong_part"], json!([400, "BadDigest"]));
    assert_eq!(out["parts"], 0, "a part with a wrong checksum is not kept");
    assert_eq!(out["wrong_stored"], json!([404, "404"]));

    let (status, _) = put_with_trailer(&eddy, "trailed", "hello", "x-amz-checksum-crc32:NhCmhg==");
    assert_eq!(status, 200);
    assert_eq!(eddy.get("/photos/trailed").body, json!("hello"));
    let (status, answer) = put_with_trailer(
        &eddy,
        "bad-trailer",
        "hello",
        "x-amz-checksum-crc32:AAAAAA==",
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("BadDigest"), "{answer}");
    assert_eq!(eddy.get("/photos/bad-trailer").status, 404);
}

/// Conditional requests: `If-None-Match: *` creates only, `If-Match: ETAG` replaces only that
/// version, on PutObject and CompleteMultipartUpload (of racing creators exactly one wins);
/// 304 and 412 answers name the version; CopyObject's `x-amz-copy-source-if-*` in AWS's order.
#[test]
fn conditional_requests_hold_even_when_writers_race() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
import datetime
from concurrent.futures import ThreadPoolExecutor
first = s3.put_object(Bucket="photos", Key="once", Body=b"first", IfNoneMatch="*")
out["again"] = error(s3.put_object, Bucket="photos", Key="once", Body=b"second", IfNoneMatch="*")
out["kept"] = s3.get_object(Bucket="photos", Key="once")["Body"].read().decode()
out["stale"] = error(s3.put_object, Bucket="photos", Key="once", Body=b"x", IfMatch='"00000000000000000000000000000000"')
replaced = s3.put_object(Bucket="photos", Key="once", Body=b"third", IfMatch=first["ETag"])
out["replaced"] = s3.get_object(Bucket="photos", Key="once")["Body"].read().decode()
out["old_etag"] = error(s3.put_object, Bucket="photos", Key="once", Body=b"x", IfMatch=first["ETag"])
out["missing"] = error(s3.put_object, Bucket="photos", Key="nothing", Body=b"x", IfMatch=first["ETag"])

upload = s3.create_multipart_upload(Bucket="photos", Key="once")
etag = s3.upload_part(Bucket="photos", Key="once", UploadId=upload["UploadId"], PartNumber=1, Body=b"p")["ETag"]
parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
out["complete_exists"] = error(s3.complete_multipart_upload, Bucket="photos", Key="once",
                               UploadId=upload["UploadId"], MultipartUpload=parts, IfNoneMatch="*")
out["upload_kept"] = len(s3.list_parts(Bucket="photos", Key="once", UploadId=upload["UploadId"])["Parts"])
s3.complete_multipart_upload(Bucket="photos", Key="once", UploadId=upload["UploadId"],
                             MultipartUpload=parts, IfMatch=replaced["ETag"])
out["completed"] = s3.get_object(Bucket="photos", Key="once")["Body"].read().decode()

def answer_headers(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        h = e.response["ResponseMetadata"]["HTTPHeaders"]
        return [e.response["ResponseMetadata"]["HTTPStatusCode"], h.get("etag"), "last-modified" in h]
now = s3.head_object(Bucket="photos", Key="once")
out["not_modified"] = answer_headers(s3.get_object, Bucket="photos", Key="once", IfNoneMatch=now["ETag"])
out["failed_match"] = answer_headers(s3.get_object, Bucket="photos", Key="once", IfMatch='"0"')
out["etag_now"] = now["ETag"]
s3.put_object(Bucket="photos", Key="untyped", Body=b"?")
out["untyped"] = [s3.head_object(Bucket="photos", Key="untyped")["ContentType"],
                  s3.get_object(Bucket="photos", Key="untyped")["ContentType"]]

src = {"Bucket": "photos", "Key": "once"}
copy = lambda **kw: error(s3.copy_object, Bucket="photos", Key="copied", CopySource=src, **kw)
later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
earlier = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
out["copies"] = [
    copy(CopySourceIfMatch=now["ETag"]), copy(CopySourceIfMatch='"0"'),
    copy(CopySourceIfNoneMatch='"0"'), copy(CopySourceIfNoneMatch=now["ETag"]),
    copy(CopySourceIfModifiedSince=earlier), copy(CopySourceIfModifiedSince=later),
    copy(CopySourceIfUnmodifiedSince=later), copy(CopySourceIfUnmodifiedSince=earlier),
    # A matching If-Match wins over a failing If-Unmodified-Since, as AWS documents.
    copy(CopySourceIfMatch=now["ETag"], CopySourceIfUnmodifiedSince=earlier),
]

def create(i):
    c = client("s3")
    return error(c.put_object, Bucket="photos", Key="raced", Body=str(i).encode(), IfNoneMatch="*")
with ThreadPoolExecutor(8) as pool:
    out["race"] = sorted(str(r) for r in pool.map(create, range(8)))
"#,
    );
    assert_eq!(out["again"], json!([412, "PreconditionFailed"]));
    assert_eq!(out["kept"], "first");
    assert_eq!(out["stale"], json!([412, "PreconditionFailed"]));
    assert_eq!(out["replaced"], "third");
    assert_eq!(out["old_etag"], json!([412, "PreconditionFailed"]));
    assert_eq!(out["missing"], json!([404, "NoSuchKey"]));
    assert_eq!(out["complete_exists"], json!([412, "PreconditionFailed"]));
    assert_eq!(
        out["upload_kept"], 1,
        "a refused completion keeps the upload"
    );
    assert_eq!(out["completed"], "p");
    let etag = out["etag_now"].clone();
    assert_eq!(out["not_modified"], json!([304, etag, true]));
    assert_eq!(out["failed_match"], json!([412, etag, true]));
    let failed = json!([412, "PreconditionFailed"]);
    let copied = json!(null);
    assert_eq!(
        out["copies"],
        json!([
            copied, failed, copied, failed, copied, failed, copied, failed, copied
        ])
    );
    assert_eq!(
        out["untyped"],
        json!(["binary/octet-stream", "binary/octet-stream"])
    );
    let race: Vec<&str> = out["race"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(race.iter().filter(|r| **r == "None").count(), 1, "{race:?}");
    // A loser that looked before the winner committed conflicts (409); one that looked after
    // finds its precondition failed (412). Which is which is timing.
    assert_eq!(
        race.iter()
            .filter(|r| **r == "[412, 'PreconditionFailed']"
                || **r == "[409, 'ConditionalRequestConflict']")
            .count(),
        7,
        "{race:?}"
    );
    // One creation, one event.
    let events = eddy.get("/_eddy/v1/events?limit=1000").body;
    let raced = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["key"] == "raced")
        .count();
    assert_eq!(raced, 1);
}

/// ListObjectsV2 names each key's owner only with `fetch-owner=true`; v1 always does.
#[test]
fn listings_name_the_owner_only_when_asked() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
s3.put_object(Bucket="photos", Key="a", Body=b"a")
out["v2"] = "Owner" in s3.list_objects_v2(Bucket="photos")["Contents"][0]
out["v2_fetch"] = s3.list_objects_v2(Bucket="photos", FetchOwner=True)["Contents"][0].get("Owner")
out["v1"] = s3.list_objects(Bucket="photos")["Contents"][0].get("Owner")
"#,
    );
    assert_eq!(out["v2"], false);
    assert_eq!(out["v2_fetch"]["ID"], out["v1"]["ID"]);
    assert!(out["v1"]["ID"].is_string(), "{out}");
}

/// Cache-Control, Content-Disposition, Content-Encoding, Content-Language and Expires are kept
/// with an object and served with it — through PutObject, multipart uploads and copies (kept
/// by COPY, replaced by REPLACE) — and `aws-chunked` is never kept as an encoding.
#[test]
fn standard_headers_are_kept_and_served() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
import datetime
expires = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
headers = dict(CacheControl="max-age=60", ContentDisposition='attachment; filename="a.txt"',
               ContentEncoding="gzip", ContentLanguage="en-GB", Expires=expires)
def seen(key):
    got = s3.get_object(Bucket="photos", Key=key)
    head = s3.head_object(Bucket="photos", Key=key)
    pick = lambda r: [r.get("CacheControl"), r.get("ContentDisposition"), r.get("ContentEncoding"),
                      r.get("ContentLanguage"), str(r.get("Expires"))]
    return [pick(got), pick(head)]
s3.put_object(Bucket="photos", Key="put", Body=b"x", **headers)
out["put"] = seen("put")
upload = s3.create_multipart_upload(Bucket="photos", Key="parts", **headers)
etag = s3.upload_part(Bucket="photos", Key="parts", UploadId=upload["UploadId"], PartNumber=1, Body=b"p")["ETag"]
s3.complete_multipart_upload(Bucket="photos", Key="parts", UploadId=upload["UploadId"],
                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
out["parts"] = seen("parts")
s3.copy_object(Bucket="photos", Key="copied", CopySource={"Bucket": "photos", "Key": "put"})
out["copied"] = seen("copied")
s3.copy_object(Bucket="photos", Key="replaced", CopySource={"Bucket": "photos", "Key": "put"},
               MetadataDirective="REPLACE", CacheControl="no-store")
out["replaced"] = seen("replaced")
s3.put_object(Bucket="photos", Key="plain", Body=b"x")
out["plain"] = seen("plain")
"#,
    );
    let all = json!([
        "max-age=60",
        "attachment; filename=\"a.txt\"",
        "gzip",
        "en-GB",
        "2030-01-02 03:04:05+00:00"
    ]);
    for key in ["put", "parts", "copied"] {
        assert_eq!(out[key], json!([all, all]), "{key}");
    }
    let replaced = json!(["no-store", null, null, null, "None"]);
    assert_eq!(out["replaced"], json!([replaced, replaced]));
    let none = json!([null, null, null, null, "None"]);
    assert_eq!(out["plain"], json!([none, none]));

    // An aws-chunked upload (the encoding of the transfer, not of the object) keeps none.
    let (status, _) = put_with_trailer(&eddy, "chunked", "hello", "x-amz-checksum-crc32:NhCmhg==");
    assert_eq!(status, 200);
    let served = eddy.call("HEAD", "/photos/chunked", &[], None);
    assert_eq!(served.header("content-encoding"), None);
}

/// Every answer names its request (`x-amz-request-id`, and `<RequestId>` in an error, the
/// same id); an empty `Content-MD5` is refused, as AWS refuses it.
#[test]
fn answers_name_their_request_and_an_empty_digest_is_refused() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
put = s3.put_object(Bucket="photos", Key="a", Body=b"a")
again = s3.put_object(Bucket="photos", Key="a", Body=b"a")
ids = [r["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id") for r in (put, again)]
out["distinct"] = len(set(ids)) == 2 and all(ids)
try:
    s3.get_object(Bucket="photos", Key="missing")
except ClientError as e:
    meta = e.response["ResponseMetadata"]
    out["error"] = [meta.get("RequestId"), meta["HTTPHeaders"].get("x-amz-request-id")]
def empty_md5(request, **kwargs):
    request.headers["Content-MD5"] = ""
s3.meta.events.register("before-sign.s3.PutObject", empty_md5)
out["empty_md5"] = error(s3.put_object, Bucket="photos", Key="b", Body=b"b")
s3.meta.events.unregister("before-sign.s3.PutObject", empty_md5)
out["b_stored"] = error(s3.head_object, Bucket="photos", Key="b")
"#,
    );
    assert_eq!(out["distinct"], true);
    let ids = out["error"].as_array().unwrap();
    assert!(ids[0].is_string() && ids[0] == ids[1], "{out}");
    assert_eq!(out["empty_md5"], json!([400, "InvalidDigest"]));
    assert_eq!(out["b_stored"], json!([404, "404"]));
}

/// ListParts and ListMultipartUploads page as S3's do: boto3's paginators walk every page.
#[test]
fn parts_and_uploads_are_listed_in_pages() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
upload = s3.create_multipart_upload(Bucket="photos", Key="many")["UploadId"]
for n in range(1, 8):
    s3.upload_part(Bucket="photos", Key="many", UploadId=upload, PartNumber=n, Body=b"x")
first = s3.list_parts(Bucket="photos", Key="many", UploadId=upload, MaxParts=3)
out["first"] = [[p["PartNumber"] for p in first["Parts"]], first["IsTruncated"], first["NextPartNumberMarker"]]
pages = s3.get_paginator("list_parts").paginate(Bucket="photos", Key="many", UploadId=upload,
                                                PaginationConfig={"PageSize": 3})
out["parts"] = [[p["PartNumber"] for p in page["Parts"]] for page in pages]
for key in ["a", "b", "b", "c", "d"]:
    s3.create_multipart_upload(Bucket="photos", Key=key)
pages = s3.get_paginator("list_multipart_uploads").paginate(Bucket="photos",
                                                            PaginationConfig={"PageSize": 2})
out["uploads"] = [[u["Key"] for u in page.get("Uploads", [])] for page in pages]
out["negative"] = error(s3.list_parts, Bucket="photos", Key="many", UploadId=upload, MaxParts=-1)
"#,
    );
    assert_eq!(out["first"], json!([[1, 2, 3], true, 3]));
    assert_eq!(out["parts"], json!([[1, 2, 3], [4, 5, 6], [7]]));
    assert_eq!(
        out["uploads"],
        json!([["a", "b"], ["b", "c"], ["d", "many"]])
    );
    assert_eq!(out["negative"], json!([400, "InvalidArgument"]));
}

/// A conditional PUT whose condition held when it began but not when it commits — another
/// writer came in while its body was on the way — is a conflict (409
/// ConditionalRequestConflict), as S3 answers it, and stores nothing.
#[test]
fn a_conditional_write_overtaken_by_another_is_a_conflict() {
    use std::io::{Read, Write};
    let eddy = serve(BUCKETS);
    let path = "/photos/contested";
    let head = signed_put_head(
        &eddy,
        path,
        &[
            ("if-none-match", "*"),
            ("expect", "100-continue"),
            ("content-length", "5"),
        ],
        "UNSIGNED-PAYLOAD",
    );
    let mut tcp = std::net::TcpStream::connect(address(&eddy)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    tcp.write_all(head.as_bytes()).unwrap();
    // eddy asks for the body once it has checked the condition (the key is free)…
    let mut continued = [0u8; 25];
    tcp.read_exact(&mut continued).unwrap();
    assert_eq!(&continued, b"HTTP/1.1 100 Continue\r\n\r\n");
    // …another writer takes the key meanwhile…
    let other = eddy.call("PUT", path, &[], Some("other"));
    assert_eq!(other.status, 200);
    // …and the body that arrives afterwards commits nothing.
    tcp.write_all(b"first").unwrap();
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 409 "), "{answer}");
    assert!(
        answer.contains("<Code>ConditionalRequestConflict</Code>"),
        "{answer}"
    );
    assert_eq!(eddy.get(path).body, json!("other"));
}

/// Every object is stored with a checksum — the one the client sent, or CRC64NVME — and
/// answered with it when asked (`x-amz-checksum-mode: ENABLED`); parts keep theirs, and a
/// completed upload has the composite or full-object checksum it asked for.
#[test]
fn checksums_are_stored_and_returned() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
import zlib
hello256 = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
s3.put_object(Bucket="photos", Key="summed", Body=b"hello", ChecksumSHA256=hello256)
head = s3.head_object(Bucket="photos", Key="summed", ChecksumMode="ENABLED")
out["head"] = [head.get("ChecksumSHA256"), head.get("ChecksumType")]
got = s3.get_object(Bucket="photos", Key="summed", ChecksumMode="ENABLED")
out["get"] = [got.get("ChecksumSHA256"), got["Body"].read().decode()]
out["unasked"] = "ChecksumSHA256" in s3.head_object(Bucket="photos", Key="summed")
out["ranged"] = "ChecksumSHA256" in s3.get_object(Bucket="photos", Key="summed", Range="bytes=0-1",
                                                   ChecksumMode="ENABLED")
# A client that sends none (this one only when required): S3's CRC64NVME.
plain = client("s3")
plain.meta.config.request_checksum_calculation = "when_required"
put = plain.put_object(Bucket="photos", Key="plain", Body=b"hello")
out["default"] = [put.get("ChecksumCRC64NVME"),
                  s3.head_object(Bucket="photos", Key="plain", ChecksumMode="ENABLED").get("ChecksumCRC64NVME")]
# boto3 sends CRC32 by default, and checks what GetObject answers against the body.
s3.put_object(Bucket="photos", Key="sdk", Body=b"x" * 100000)
out["sdk"] = [s3.head_object(Bucket="photos", Key="sdk", ChecksumMode="ENABLED").get("ChecksumCRC32"),
              base64.b64encode(zlib.crc32(b"x" * 100000).to_bytes(4, "big")).decode(),
              len(s3.get_object(Bucket="photos", Key="sdk")["Body"].read())]

MiB = 1024 * 1024
one, two = b"a" * (5 * MiB), b"b" * 1000
def upload(key, **create):
    u = s3.create_multipart_upload(Bucket="photos", Key=key, **create)
    algorithm = create.get("ChecksumAlgorithm")
    extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    parts = []
    for n, body in [(1, one), (2, two)]:
        p = s3.upload_part(Bucket="photos", Key=key, UploadId=u["UploadId"], PartNumber=n, Body=body, **extra)
        parts.append({"PartNumber": n, "ETag": p["ETag"],
                      **{k: v for k, v in p.items() if k.startswith("Checksum")}})
    return u, parts
u, parts = upload("composite", ChecksumAlgorithm="SHA256")
out["created"] = [u.get("ChecksumAlgorithm"), u.get("ChecksumType")]
listed = s3.list_parts(Bucket="photos", Key="composite", UploadId=u["UploadId"])["Parts"]
out["listed"] = [p.get("ChecksumSHA256") == q.get("ChecksumSHA256") != None for p, q in zip(listed, parts)]
wrong = [dict(parts[0], ChecksumSHA256=parts[1]["ChecksumSHA256"]), parts[1]]
out["wrong_part_sum"] = error(s3.complete_multipart_upload, Bucket="photos", Key="composite",
                              UploadId=u["UploadId"], MultipartUpload={"Parts": wrong})
done = s3.complete_multipart_upload(Bucket="photos", Key="composite", UploadId=u["UploadId"],
                                    MultipartUpload={"Parts": parts})
inner = b"".join(base64.b64decode(p["ChecksumSHA256"]) for p in parts)
expected = base64.b64encode(hashlib.sha256(inner).digest()).decode() + "-2"
head = s3.head_object(Bucket="photos", Key="composite", ChecksumMode="ENABLED")
out["composite"] = [done.get("ChecksumSHA256") == expected, done.get("ChecksumType"),
                    head.get("ChecksumSHA256") == expected, head.get("ChecksumType")]

u, parts = upload("full", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
s3.complete_multipart_upload(Bucket="photos", Key="full", UploadId=u["UploadId"],
                             MultipartUpload={"Parts": parts})
head = s3.head_object(Bucket="photos", Key="full", ChecksumMode="ENABLED")
out["full"] = [head.get("ChecksumCRC32") == base64.b64encode(zlib.crc32(one + two).to_bytes(4, "big")).decode(),
               head.get("ChecksumType"),
               len(s3.get_object(Bucket="photos", Key="full")["Body"].read())]

u = s3.create_multipart_upload(Bucket="photos", Key="mixed", ChecksumAlgorithm="CRC32")
out["other_algorithm"] = error(s3.upload_part, Bucket="photos", Key="mixed", UploadId=u["UploadId"],
                               PartNumber=1, Body=b"x", ChecksumAlgorithm="SHA1")
out["sha_full"] = error(s3.create_multipart_upload, Bucket="photos", Key="x",
                        ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT")
out["crc64_composite"] = error(s3.create_multipart_upload, Bucket="photos", Key="x",
                               ChecksumAlgorithm="CRC64NVME", ChecksumType="COMPOSITE")
"#,
    );
    let hello256 = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=";
    assert_eq!(out["head"], json!([hello256, "FULL_OBJECT"]), "{out}");
    assert_eq!(out["get"], json!([hello256, "hello"]));
    assert_eq!(out["unasked"], false, "only when asked");
    assert_eq!(
        out["ranged"], false,
        "a range is not what the checksum covers"
    );
    // CRC64NVME of "hello", computed independently (see eddy-objects' checksum tests).
    assert_eq!(out["default"], json!(["M3eFcAZSQlc=", "M3eFcAZSQlc="]));
    assert_eq!(out["sdk"][0], out["sdk"][1]);
    assert_eq!(out["sdk"][2], 100000);
    assert_eq!(out["created"], json!(["SHA256", "COMPOSITE"]));
    assert_eq!(out["listed"], json!([true, true]));
    assert_eq!(out["wrong_part_sum"], json!([400, "InvalidPart"]));
    assert_eq!(
        out["composite"],
        json!([true, "COMPOSITE", true, "COMPOSITE"])
    );
    assert_eq!(
        out["full"],
        json!([true, "FULL_OBJECT", 5 * 1024 * 1024 + 1000])
    );
    assert_eq!(out["other_algorithm"], json!([400, "InvalidRequest"]));
    assert_eq!(out["sha_full"], json!([400, "InvalidRequest"]));
    assert_eq!(out["crc64_composite"], json!([400, "InvalidRequest"]));
}

/// A multipart object is read part by part (`partNumber`, with `x-amz-mp-parts-count`), and
/// parts are copied from objects, whole or by range (UploadPartCopy); out-of-range numbers
/// and ranges are refused with S3's codes and change nothing.
#[test]
fn parts_are_read_by_number_and_copied_from_objects() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
MiB = 1024 * 1024
one, two = b"a" * (5 * MiB), b"bcd"
u = s3.create_multipart_upload(Bucket="photos", Key="mp")
etags = [s3.upload_part(Bucket="photos", Key="mp", UploadId=u["UploadId"], PartNumber=n, Body=b)["ETag"]
         for n, b in [(1, one), (2, two)]]
listed = {"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]}
done = s3.complete_multipart_upload(Bucket="photos", Key="mp", UploadId=u["UploadId"], MultipartUpload=listed)
# Completing again (a retry whose answer was lost) answers the same object, and makes nothing.
again = s3.complete_multipart_upload(Bucket="photos", Key="mp", UploadId=u["UploadId"], MultipartUpload=listed)
out["again"] = again["ETag"] == done["ETag"]
u_mp = u["UploadId"]
second = s3.get_object(Bucket="photos", Key="mp", PartNumber=2)
out["second"] = [second["Body"].read().decode(), second.get("PartsCount"), second.get("ContentRange")]
first = s3.head_object(Bucket="photos", Key="mp", PartNumber=1)
out["first"] = [first["ContentLength"], first.get("PartsCount")]
out["whole"] = "PartsCount" in s3.head_object(Bucket="photos", Key="mp")
out["third"] = error(s3.get_object, Bucket="photos", Key="mp", PartNumber=3)
out["both"] = error(s3.get_object, Bucket="photos", Key="mp", PartNumber=1, Range="bytes=0-1")
s3.put_object(Bucket="photos", Key="single", Body=b"small")
single = s3.get_object(Bucket="photos", Key="single", PartNumber=1)
out["single"] = [single["Body"].read().decode(), single.get("PartsCount")]

source = bytes(range(256)) * (24 * 1024)   # 6 MiB
s3.put_object(Bucket="photos", Key="source", Body=source)
src = {"Bucket": "photos", "Key": "source"}
u = s3.create_multipart_upload(Bucket="photos", Key="copied")
copy = lambda **kw: s3.upload_part_copy(Bucket="photos", Key="copied", UploadId=u["UploadId"],
                                        CopySource=src, **kw)["CopyPartResult"]
whole = copy(PartNumber=1)
ranged = copy(PartNumber=2, CopySourceRange="bytes=10-19")
bad = lambda **kw: error(s3.upload_part_copy, Bucket="photos", Key="copied", UploadId=u["UploadId"], **kw)
out["refused"] = [
    bad(CopySource=src, PartNumber=3, CopySourceRange="bytes=0-%d" % len(source)),
    bad(CopySource=src, PartNumber=3, CopySourceRange="bytes=5-"),
    bad(CopySource=src, PartNumber=10001),
    bad(CopySource=src, PartNumber=3, CopySourceIfMatch='"0"'),
    bad(CopySource={"Bucket": "photos", "Key": "nothing"}, PartNumber=3),
    error(s3.upload_part_copy, Bucket="photos", Key="copied", UploadId="nope", CopySource=src, PartNumber=3),
]
out["parts"] = [p["PartNumber"] for p in
                s3.list_parts(Bucket="photos", Key="copied", UploadId=u["UploadId"])["Parts"]]
s3.complete_multipart_upload(Bucket="photos", Key="copied", UploadId=u["UploadId"],
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": whole["ETag"]},
                               {"PartNumber": 2, "ETag": ranged["ETag"]}]})
out["copied"] = s3.get_object(Bucket="photos", Key="copied")["Body"].read() == source + source[10:20]
out["etag"] = whole["ETag"] == s3.head_object(Bucket="photos", Key="source")["ETag"]
s3.put_object(Bucket="photos", Key="mp", Body=b"replaced")
out["again_replaced"] = error(s3.complete_multipart_upload, Bucket="photos", Key="mp",
                              UploadId=u_mp, MultipartUpload=listed)
"#,
    );
    let size = 5 * 1024 * 1024;
    assert_eq!(
        out["second"],
        json!(["bcd", 2, format!("bytes {size}-{}/{}", size + 2, size + 3)]),
        "{out}"
    );
    assert_eq!(out["first"], json!([size, 2]));
    assert_eq!(out["whole"], false, "the count comes with a part");
    assert_eq!(out["third"], json!([400, "InvalidPart"]));
    assert_eq!(out["both"], json!([400, "InvalidRequest"]));
    assert_eq!(out["single"], json!(["small", null]));
    assert_eq!(
        out["refused"],
        json!([
            [416, "InvalidRange"],
            [400, "InvalidArgument"],
            [400, "InvalidArgument"],
            [412, "PreconditionFailed"],
            [404, "NoSuchKey"],
            [404, "NoSuchUpload"]
        ])
    );
    assert_eq!(out["parts"], json!([1, 2]), "refused copies add no part");
    assert_eq!(out["copied"], true);
    assert_eq!(
        out["etag"], true,
        "a whole copy's part has the source's bytes"
    );
}

/// An upload sent with `Transfer-Encoding: chunked` and no `Content-Length` (a stream of
/// unknown size) is taken, signed or unsigned payload, aws-chunked or not; one too long to
/// hold is refused with what to send instead, and a badly signed one before its body is read.
#[test]
fn uploads_without_a_length_are_taken() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
def chunked(request, **kwargs):
    request.headers.add_header("Transfer-Encoding", "chunked")
    del request.headers["Content-Length"]
streaming = client("s3")
streaming.meta.events.register_first("before-sign.s3.PutObject", chunked)
r = streaming.put_object(Bucket="photos", Key="streamed", Body=b"bar")
out["signed"] = [r["ResponseMetadata"]["HTTPStatusCode"],
                 s3.get_object(Bucket="photos", Key="streamed")["Body"].read().decode()]
out["too_long"] = error(streaming.put_object, Bucket="photos", Key="long", Body=b"x" * (16 * 1024 * 1024 + 1))
forged = client("s3", secret="not-the-secret")
forged.meta.events.register_first("before-sign.s3.PutObject", chunked)
out["forged"] = error(forged.put_object, Bucket="photos", Key="forged", Body=b"bar")
out["stored"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="photos").get("Contents", []))
"#,
    );
    assert_eq!(out["signed"], json!([200, "bar"]), "{out}");
    assert_eq!(out["too_long"], json!([411, "MissingContentLength"]));
    assert_eq!(out["forged"], json!([403, "AccessDenied"]));
    assert_eq!(out["stored"], json!(["streamed"]));

    // By hand: an unsigned payload in HTTP chunks, and an aws-chunked body with a trailer in
    // HTTP chunks (as SDKs stream a body of unknown size with a trailing checksum).
    let http_chunks = |body: &str| {
        let mut framed = String::new();
        for piece in body.as_bytes().chunks(3) {
            framed.push_str(&format!(
                "{:x}\r\n{}\r\n",
                piece.len(),
                std::str::from_utf8(piece).unwrap()
            ));
        }
        framed + "0\r\n\r\n"
    };
    let head = signed_put_head(
        &eddy,
        "/photos/unsigned",
        &[("transfer-encoding", "chunked")],
        "UNSIGNED-PAYLOAD",
    );
    let (status, answer) = raw(
        &eddy,
        format!("{head}{}", http_chunks("streamed body")).as_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(eddy.get("/photos/unsigned").body, json!("streamed body"));
    let aws_chunked = "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
    let head = signed_put_head(
        &eddy,
        "/photos/trailed",
        &[
            ("transfer-encoding", "chunked"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "5"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ],
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    );
    let (status, answer) = raw(
        &eddy,
        format!("{head}{}", http_chunks(aws_chunked)).as_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(eddy.get("/photos/trailed").body, json!("hello"));
}

/// eddy keeps one version of each object, as an unversioned S3 bucket does: ListObjectVersions
/// lists each object as its only version, `null`, and requests may name that version and no
/// other (what tools that clean buckets version by version rely on).
#[test]
fn objects_have_the_one_version_an_unversioned_bucket_has() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
for k in ["a", "b/1", "b/2", "c"]:
    s3.put_object(Bucket="photos", Key=k, Body=k.encode())
listed = s3.list_object_versions(Bucket="photos", Delimiter="/", MaxKeys=2)
out["first"] = [[v["Key"], v["VersionId"], v["IsLatest"]] for v in listed["Versions"]] + \
               [p["Prefix"] for p in listed.get("CommonPrefixes", [])]
out["truncated"] = [listed["IsTruncated"], listed.get("NextKeyMarker"), listed.get("NextVersionIdMarker")]
rest = s3.list_object_versions(Bucket="photos", Delimiter="/", KeyMarker=listed["NextKeyMarker"],
                               VersionIdMarker=listed["NextVersionIdMarker"])
out["rest"] = [v["Key"] for v in rest["Versions"]]
out["get_null"] = s3.get_object(Bucket="photos", Key="a", VersionId="null")["Body"].read().decode()
out["get_other"] = error(s3.get_object, Bucket="photos", Key="a", VersionId="3HL4kqtJlcpXroDTDmJ")
out["delete_other"] = error(s3.delete_object, Bucket="photos", Key="a", VersionId="3HL4kqtJlcpXroDTDmJ")
deleted = s3.delete_objects(Bucket="photos", Delete={"Objects": [
    {"Key": "a", "VersionId": "null"}, {"Key": "c", "VersionId": "other"}]})
out["batch"] = [[d["Key"], d.get("VersionId")] for d in deleted.get("Deleted", [])] + \
               [[e["Key"], e["Code"]] for e in deleted.get("Errors", [])]
out["left"] = [o["Key"] for o in s3.list_objects_v2(Bucket="photos")["Contents"]]
"#,
    );
    assert_eq!(out["first"], json!([["a", "null", true], "b/"]), "{out}");
    assert_eq!(out["truncated"], json!([true, "b/", "null"]));
    assert_eq!(out["rest"], json!(["c"]));
    assert_eq!(out["get_null"], "a");
    assert_eq!(out["get_other"], json!([400, "InvalidArgument"]));
    assert_eq!(out["delete_other"], json!([400, "InvalidArgument"]));
    assert_eq!(
        out["batch"],
        json!([["a", "null"], ["c", "InvalidArgument"]])
    );
    assert_eq!(out["left"], json!(["b/1", "b/2", "c"]));
}

/// Parameters sent empty are taken as S3 takes them: an empty delimiter groups nothing and is
/// not echoed, an empty continuation token starts at the beginning, v1 always echoes its
/// marker; `If-Match: *` replaces only an object that exists.
#[test]
fn empty_parameters_and_wildcard_matches_are_read_as_s3_reads_them() {
    let eddy = serve(BUCKETS);
    let out = boto3(
        &eddy,
        r#"
for k in ["a/1", "a/2", "b"]:
    s3.put_object(Bucket="photos", Key=k, Body=b"x")
v1 = s3.list_objects(Bucket="photos", Delimiter="")
out["v1_empty_delimiter"] = ["Delimiter" in v1, [o["Key"] for o in v1["Contents"]], v1.get("Marker")]
out["v1_marker"] = s3.list_objects(Bucket="photos", Marker="a/1").get("Marker")
v2 = s3.list_objects_v2(Bucket="photos", ContinuationToken="", Delimiter="/")
out["v2_empty_token"] = [v2.get("ContinuationToken"), [o["Key"] for o in v2["Contents"]],
                         [p["Prefix"] for p in v2["CommonPrefixes"]]]
out["if_match_any"] = [error(s3.put_object, Bucket="photos", Key="b", Body=b"y", IfMatch="*"),
                       error(s3.put_object, Bucket="photos", Key="none", Body=b"y", IfMatch="*")]
out["b"] = s3.get_object(Bucket="photos", Key="b")["Body"].read().decode()
for name in ["pages-1", "pages-2", "pages-3"]:
    s3.create_bucket(Bucket=name)
first = s3.list_buckets(MaxBuckets=2, Prefix="pages-")
rest = s3.list_buckets(MaxBuckets=2, Prefix="pages-", ContinuationToken=first["ContinuationToken"])
out["bucket_pages"] = [[b["Name"] for b in first["Buckets"]], [b["Name"] for b in rest["Buckets"]],
                       "ContinuationToken" in rest]
"#,
    );
    assert_eq!(
        out["v1_empty_delimiter"],
        json!([false, ["a/1", "a/2", "b"], ""]),
        "{out}"
    );
    assert_eq!(out["v1_marker"], "a/1");
    assert_eq!(out["v2_empty_token"], json!(["", ["b"], ["a/"]]));
    assert_eq!(
        out["if_match_any"],
        json!([null, [412, "PreconditionFailed"]])
    );
    assert_eq!(out["b"], "y");
    assert_eq!(
        out["bucket_pages"],
        json!([["pages-1", "pages-2"], ["pages-3"], false])
    );
}
