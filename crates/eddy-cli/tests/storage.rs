//! eddy on a disk that fills up, then gets room again — a 24 MiB tmpfs under the data
//! directory. Writes that add data are refused with a clear, retryable error while reads and
//! deletes go on and health says why; writes resume by themselves when space returns; and
//! nothing acknowledged is lost across a SIGKILL.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use md5::Digest;
use serde_json::{Value, json};

/// A tmpfs of `size` mounted at a path, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (the suite runs as root, as CI does)"
        );
        Self(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

const APP: &str = "buckets: [{name: photos}]
tables: [{name: notes, primary_key: id, columns: {id: integer, text: text}}]
";

/// Uploads 1 MiB objects until eddy refuses one; returns the acknowledged keys with their
/// MD5s and the refusals (status, code, message) of the first refused and the next three.
const FILL: &str = r#"
import hashlib, os
acked, refused = {}, []
for i in range(60):
    body = os.urandom(1 << 20)
    try:
        s3.put_object(Bucket="photos", Key=f"k{i:02}", Body=body)
        acked[f"k{i:02}"] = hashlib.md5(body).hexdigest()
    except ClientError as e:
        r = e.response
        refused.append([r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]])
        if len(refused) == 4:
            break
out["acked"], out["refused"] = acked, refused
"#;

/// The MD5 of every object, by key.
const CONTENTS: &str = r#"
import hashlib
found = {}
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="photos"):
    for o in page.get("Contents", []):
        body = s3.get_object(Bucket="photos", Key=o["Key"])["Body"].read()
        found[o["Key"]] = hashlib.md5(body).hexdigest()
out["found"] = found
"#;

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_deletes_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("data"), "24m");
    // Room the operator can give back: a file of theirs on the same disk.
    let theirs = disk.0.join("operators-file");
    std::fs::write(&theirs, vec![7u8; 6 << 20]).unwrap();
    std::fs::write(dir.path().join("app.yaml"), APP).unwrap();
    let eddy = spawn(dir, "app.yaml");

    let filled = boto3(&eddy, FILL);
    let acked = filled["acked"].as_object().unwrap().clone();
    let refused = filled["refused"].as_array().unwrap();
    assert!(acked.len() >= 5, "some uploads fit: {filled}");
    assert_eq!(refused.len(), 4, "the disk filled: {filled}");
    for refusal in refused {
        assert_eq!(refusal[0], 503, "{refusal}");
        assert_eq!(refusal[1], "ServiceUnavailable", "{refusal}");
        let message = refusal[2].as_str().unwrap();
        assert!(
            message.contains("storage is full") && message.contains("until space returns"),
            "the message names the cause: {message}"
        );
    }

    let health = eddy.get("/_eddy/health");
    assert_eq!(health.status, 200, "{:?}", health.body);
    assert_eq!(health.body["status"], "degraded");
    assert!(health.body["reasons"][0].as_str().unwrap().contains("full"));

    let row = eddy.json("POST", "/_eddy/v1/tables/notes/rows", json!({"id": 1}));
    assert_eq!(row.status, 507, "{:?}", row.body);
    assert_eq!(row.body["error"]["code"], "StorageFull");

    // Reads and deletes go on.
    let keys: Vec<String> = acked.keys().cloned().collect();
    let (first, second) = (&keys[0], &keys[1]);
    let read_and_delete = format!(
        r#"
out["read"] = hashlib.md5(s3.get_object(Bucket="photos", Key="{first}")["Body"].read()).hexdigest()
s3.delete_object(Bucket="photos", Key="{second}")
out["gone"] = error(s3.head_object, Bucket="photos", Key="{second}")
"#
    );
    let done = boto3(&eddy, &read_and_delete);
    assert_eq!(done["read"], acked[first.as_str()], "{done}");
    assert_eq!(done["gone"], json!([404, "404"]), "{done}");

    // Space returns: writes resume without a restart.
    std::fs::remove_file(&theirs).unwrap();
    eddy.wait_for("writes to resume", |e| {
        e.get("/_eddy/health").body["status"] == "ok"
    });
    boto3(
        &eddy,
        r#"s3.put_object(Bucket="photos", Key="after", Body=b"room again")"#,
    );
    assert_eq!(eddy.get("/_eddy/health").body["status"], "ok");
    let row = eddy.json("POST", "/_eddy/v1/tables/notes/rows", json!({"id": 1}));
    assert_eq!(row.status, 201, "{:?}", row.body);

    // Nothing acknowledged was lost, even to a SIGKILL, and the database is sound.
    let eddy = eddy.restart("app.yaml");
    let mut expected: serde_json::Map<String, Value> = acked;
    expected.remove(second);
    let after = md5::Md5::digest(b"room again");
    expected.insert("after".into(), json!(hex::encode(after)));
    assert_eq!(boto3(&eddy, CONTENTS)["found"], Value::Object(expected));
    let integrity = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])",
        ])
        .arg(disk.0.join("eddy.db"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&integrity.stdout).trim(), "ok");
    drop(eddy);
}

/// Sets the soft limit on the size of files `pid` may write (RLIMIT_FSIZE), the hard limit
/// staying unlimited so the limit can be lifted again.
fn limit_file_size(pid: u32, soft: &str) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={soft}:unlimited"))
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success());
}

/// A write past a file size limit fails with EFBIG: an I/O error like a failing disk's. The
/// writes it hits fail with a retryable error naming it, the database is opened again (nothing
/// in memory is trusted), health says why, and writes commit again once the fault passes.
#[test]
fn an_io_error_fails_only_its_writes_and_the_database_is_reopened() {
    let eddy = serve(APP);
    let insert = |eddy: &Eddy, id: u32| {
        let text = "x".repeat(3000);
        eddy.json(
            "POST",
            "/_eddy/v1/tables/notes/rows",
            json!({"id": id, "text": text}),
        )
    };
    for id in 1..=3 {
        assert_eq!(insert(&eddy, id).status, 201);
    }
    let wal = std::fs::metadata(eddy.dir.path().join("data/eddy.db-wal"))
        .unwrap()
        .len();
    limit_file_size(eddy.child.id(), &(wal + 100).to_string());
    let failed = insert(&eddy, 4);
    assert_eq!(failed.status, 503, "{:?}", failed.body);
    assert_eq!(failed.body["error"]["code"], "StorageFault");
    let message = failed.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("I/O error") && message.contains("retry"),
        "{message}"
    );
    let health = eddy.get("/_eddy/health").body;
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["reasons"][0]
            .as_str()
            .unwrap()
            .contains("opened again")
    );

    limit_file_size(eddy.child.id(), "unlimited");
    assert_eq!(insert(&eddy, 5).status, 201);
    assert_eq!(eddy.get("/_eddy/health").body["status"], "ok");
    assert!(
        eddy.log()
            .contains("the database was reopened after an I/O error")
    );

    let eddy = eddy.restart("app.yaml");
    let rows = eddy.get("/_eddy/v1/tables/notes/rows").body;
    let ids: Vec<&Value> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(ids, [&json!(1), &json!(2), &json!(3), &json!(5)], "{rows}");
}
