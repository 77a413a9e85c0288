//! `eddy cp`, `eddy ls`, `eddy rm`: objects through the S3 API, as `aws s3` does it. Uploads
//! above [`MULTIPART_THRESHOLD`] go in parts; large transfers show a progress bar on a terminal.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::client::{Client, Payload, encode, encode_key, read_text, xml_blocks, xml_text};

/// Uploads larger than this go in parts.
const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// The size of each part but the last.
const PART_SIZE: u64 = 16 * 1024 * 1024;
/// Transfers at least this large show a progress bar (on a terminal).
const PROGRESS_THRESHOLD: u64 = 8 * 1024 * 1024;

/// `s3://bucket/key` split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub key: String,
}

impl S3Url {
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then(|| Self {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    fn path(&self) -> String {
        format!("/{}/{}", encode(&self.bucket), encode_key(&self.key))
    }
}

fn s3_url(text: &str) -> anyhow::Result<S3Url> {
    S3Url::parse(text)
        .with_context(|| format!("{text:?} is not an object address; write s3://BUCKET/KEY"))
}

/// `eddy cp SRC DST`: one side is `s3://bucket/key`, the other a local path (`-` for stdout
/// when downloading).
pub fn cp(client: &Client, source: &str, target: &str) -> anyhow::Result<Value> {
    match (S3Url::parse(source), S3Url::parse(target)) {
        (None, Some(mut to)) => {
            let from = Path::new(source);
            if to.key.is_empty() || to.key.ends_with('/') {
                let name = from
                    .file_name()
                    .with_context(|| format!("{source:?} names no file"))?;
                to.key.push_str(&name.to_string_lossy());
            }
            upload(client, from, &to)
        }
        (Some(from), None) => {
            if from.key.is_empty() {
                bail!("{source:?} names a bucket; name an object: s3://BUCKET/KEY");
            }
            download(client, &from, target)
        }
        (Some(from), Some(mut to)) => {
            if from.key.is_empty() {
                bail!("{source:?} names a bucket; name an object: s3://BUCKET/KEY");
            }
            if to.key.is_empty() || to.key.ends_with('/') {
                to.key
                    .push_str(from.key.rsplit('/').next().unwrap_or(&from.key));
            }
            copy(client, &from, &to)
        }
        (None, None) => bail!("one side of eddy cp must be s3://BUCKET/KEY"),
    }
}

fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    if len < PROGRESS_THRESHOLD {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .expect("a valid progress template"),
    );
    bar.set_message(what.to_string());
    bar
}

fn upload(client: &Client, from: &Path, to: &S3Url) -> anyhow::Result<Value> {
    let mut file = File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let len = file.metadata()?.len();
    let bar = progress(len, &format!("upload {}", from.display()));
    let etag = if len > MULTIPART_THRESHOLD {
        upload_parts(client, &mut file, to, &bar)?
    } else {
        let md5 = eddy_objects::md5_of(&mut file)?;
        file.seek(SeekFrom::Start(0))?;
        let mut reader = bar.wrap_read(file);
        let response = client.s3(
            "PUT",
            &to.path(),
            "",
            &[],
            Payload::Stream {
                reader: &mut reader,
                len,
                md5,
            },
        )?;
        etag_of(&response)
    };
    bar.finish_and_clear();
    Ok(
        json!({"uploaded": from.display().to_string(), "bucket": to.bucket, "key": to.key, "size": len, "etag": etag}),
    )
}

fn etag_of(response: &crate::client::Response) -> String {
    response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_matches('"')
        .to_string()
}

/// A multipart upload; aborted if any part fails, so no parts are left behind.
fn upload_parts(
    client: &Client,
    file: &mut File,
    to: &S3Url,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<String> {
    let created = client.s3("POST", &to.path(), "uploads=", &[], Payload::Empty)?;
    let (_, body) = read_text(created)?;
    let upload_id = xml_text(&body, "UploadId").context("the server gave no UploadId")?;
    let upload = format!("uploadId={}", encode(&upload_id));
    let result = (|| {
        let mut parts = String::new();
        let mut buffer = Vec::with_capacity(PART_SIZE as usize);
        for number in 1.. {
            buffer.clear();
            (&mut *file).take(PART_SIZE).read_to_end(&mut buffer)?;
            if buffer.is_empty() {
                break;
            }
            let query = format!("partNumber={number}&{upload}");
            let response = client.s3("PUT", &to.path(), &query, &[], Payload::Bytes(&buffer))?;
            let etag = etag_of(&response);
            parts.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>\"{etag}\"</ETag></Part>"
            ));
            bar.inc(buffer.len() as u64);
        }
        let document = format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>");
        let done = client.s3(
            "POST",
            &to.path(),
            &upload,
            &[],
            Payload::Bytes(document.as_bytes()),
        )?;
        let (_, body) = read_text(done)?;
        // A failure after the 200 status line is reported in the body, as S3 does.
        if let Some(code) = xml_text(&body, "Code") {
            bail!("{code}: {}", xml_text(&body, "Message").unwrap_or_default());
        }
        Ok(xml_text(&body, "ETag")
            .unwrap_or_default()
            .trim_matches('"')
            .to_string())
    })();
    if result.is_err() {
        let _ = client.send("DELETE", &to.path(), &upload, &[], Payload::Empty);
    }
    result
}

/// Copies an object within eddy (CopyObject: the bytes are shared, not sent).
fn copy(client: &Client, from: &S3Url, to: &S3Url) -> anyhow::Result<Value> {
    let source = format!("{}/{}", from.bucket, encode_key(&from.key));
    let response = client.s3(
        "PUT",
        &to.path(),
        "",
        &[("x-amz-copy-source", source)],
        Payload::Empty,
    )?;
    let (_, body) = read_text(response)?;
    if let Some(code) = xml_text(&body, "Code") {
        bail!("{code}: {}", xml_text(&body, "Message").unwrap_or_default());
    }
    let etag = xml_text(&body, "ETag").unwrap_or_default();
    Ok(
        json!({"copied": format!("s3://{}/{}", from.bucket, from.key), "bucket": to.bucket, "key": to.key, "etag": etag.trim_matches('"')}),
    )
}

/// Streams an object to `target` (a file, a folder, or `-` for stdout). A file appears only
/// once complete: the bytes go to a temporary file beside it, renamed into place at the end.
fn download(client: &Client, from: &S3Url, target: &str) -> anyhow::Result<Value> {
    let response = client.s3("GET", &from.path(), "", &[], Payload::Empty)?;
    let len = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let mut body = response.into_body().into_reader();
    if target == "-" {
        std::io::copy(&mut body, &mut std::io::stdout().lock())?;
        return Ok(Value::Null);
    }
    let mut path = PathBuf::from(target);
    if path.is_dir() {
        let name = from.key.rsplit('/').next().unwrap_or(&from.key);
        path.push(name);
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut staged = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let bar = progress(len, &format!("download {}", path.display()));
    let copied = std::io::copy(&mut bar.wrap_read(&mut body), staged.as_file_mut())?;
    bar.finish_and_clear();
    if copied != len {
        bail!(
            "the download ended after {copied} of {len} bytes; {} was not written",
            path.display()
        );
    }
    staged.as_file_mut().flush()?;
    staged
        .persist(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(
        json!({"downloaded": path.display().to_string(), "bucket": from.bucket, "key": from.key, "size": copied}),
    )
}

/// `eddy ls [s3://bucket[/prefix]] [--recursive]`: buckets, or a bucket's objects (one level,
/// like `aws s3 ls`, unless recursive).
pub fn ls(client: &Client, target: Option<&str>, recursive: bool) -> anyhow::Result<Value> {
    let Some(target) = target else {
        let response = client.s3("GET", "/", "", &[], Payload::Empty)?;
        let (_, body) = read_text(response)?;
        let buckets: Vec<Value> = xml_blocks(&body, "Bucket")
            .iter()
            .map(|b| json!({"name": xml_text(b, "Name"), "created": xml_text(b, "CreationDate")}))
            .collect();
        return Ok(json!({ "buckets": buckets }));
    };
    let url = s3_url(target)?;
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut query = vec![
            "list-type=2".to_string(),
            format!("prefix={}", encode(&url.key)),
        ];
        if !recursive {
            query.push("delimiter=%2F".into());
        }
        if let Some(t) = &token {
            query.push(format!("continuation-token={}", encode(t)));
        }
        query.sort();
        let path = format!("/{}", encode(&url.bucket));
        let response = client.s3("GET", &path, &query.join("&"), &[], Payload::Empty)?;
        let (_, body) = read_text(response)?;
        for object in xml_blocks(&body, "Contents") {
            let size: u64 = xml_text(object, "Size")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            objects.push(json!({
                "key": xml_text(object, "Key"),
                "size": size,
                "last_modified": xml_text(object, "LastModified"),
                "etag": xml_text(object, "ETag").map(|e| e.trim_matches('"').to_string()),
            }));
        }
        for prefix in xml_blocks(&body, "CommonPrefixes") {
            prefixes.push(json!(xml_text(prefix, "Prefix")));
        }
        token = xml_text(&body, "NextContinuationToken");
        if xml_text(&body, "IsTruncated").as_deref() != Some("true") || token.is_none() {
            break;
        }
    }
    Ok(json!({ "bucket": url.bucket, "prefixes": prefixes, "objects": objects }))
}

/// `eddy rm s3://bucket/key`.
pub fn rm(client: &Client, target: &str) -> anyhow::Result<Value> {
    let url = s3_url(target)?;
    if url.key.is_empty() {
        bail!("{target:?} names a bucket; name an object: s3://BUCKET/KEY");
    }
    client.s3("DELETE", &url.path(), "", &[], Payload::Empty)?;
    Ok(json!({"deleted": {"bucket": url.bucket, "key": url.key}}))
}

/// The human form of `cp`.
pub fn print_copied(answer: &Value) {
    let text = |field: &str| answer[field].as_str().unwrap_or("").to_string();
    match answer["copied"].as_str() {
        Some(from) => println!("copied {from} to s3://{}/{}", text("bucket"), text("key")),
        None => {
            let file = answer["uploaded"]
                .as_str()
                .or(answer["downloaded"].as_str());
            println!("copied {} ({} bytes)", file.unwrap_or(""), answer["size"]);
        }
    }
}

/// The human form of `ls`: like `aws s3 ls`.
pub fn print_listing(listing: &Value) {
    if let Some(buckets) = listing["buckets"].as_array() {
        for b in buckets {
            println!(
                "{}  {}",
                b["created"].as_str().unwrap_or(""),
                b["name"].as_str().unwrap_or("")
            );
        }
        return;
    }
    for p in listing["prefixes"].as_array().into_iter().flatten() {
        println!("{:>30} PRE {}", "", p.as_str().unwrap_or(""));
    }
    for o in listing["objects"].as_array().into_iter().flatten() {
        println!(
            "{:<24} {:>12} {}",
            o["last_modified"].as_str().unwrap_or(""),
            o["size"],
            o["key"].as_str().unwrap_or("")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(
            S3Url::parse("s3://photos/a/b c.jpg"),
            Some(S3Url {
                bucket: "photos".into(),
                key: "a/b c.jpg".into()
            })
        );
        assert_eq!(
            S3Url::parse("s3://photos"),
            Some(S3Url {
                bucket: "photos".into(),
                key: "".into()
            })
        );
        assert_eq!(S3Url::parse("s3://"), None);
        assert_eq!(S3Url::parse("photos/a"), None);
        assert_eq!(
            S3Url::parse("s3://photos/a b").unwrap().path(),
            "/photos/a%20b"
        );
    }
}
