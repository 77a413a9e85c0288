//! Just enough of an S3 client for blobs: put-if-absent (`If-None-Match: *`), multipart
//! uploads for large files, ranged gets streamed back, existence checks, listing and deletes,
//! every request signed with Signature Version 4 (`UNSIGNED-PAYLOAD`: bodies stream, their
//! integrity is the blob's SHA-256, checked by its name). Path-style addressing over HTTP.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncRead;

use crate::ObjectError;

type Body = BoxBody<Bytes, std::io::Error>;

/// Where blobs go: an S3 endpoint, a bucket, and the keys to sign with.
#[derive(Clone, Debug)]
pub struct S3Location {
    /// `http://HOST:PORT` (no path).
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Prepended to every key (empty, or ending in `/`).
    pub prefix: String,
    pub credentials: eddy_sigv4::Credentials,
}

/// What an S3 request answered that was not what was asked for.
#[derive(Debug, thiserror::Error)]
pub enum S3Failure {
    #[error("the blob store at {endpoint} cannot be reached: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("the blob store answered {status} {code}: {message}")]
    Refused {
        status: StatusCode,
        code: String,
        message: String,
    },
}

impl From<S3Failure> for ObjectError {
    fn from(e: S3Failure) -> Self {
        ObjectError::BlobStore(e.to_string())
    }
}

pub(crate) struct S3Client {
    http: Client<HttpConnector, Body>,
    location: S3Location,
    host: String,
}

/// A listed object: its key (without the prefix) and when it was last written.
pub(crate) struct Listed {
    pub key: String,
    pub modified: SystemTime,
}

impl S3Client {
    pub(crate) fn new(location: S3Location) -> Result<Self, ObjectError> {
        let uri: http::Uri = location.endpoint.parse().map_err(|e| {
            ObjectError::BlobStore(format!(
                "{:?} is not an endpoint URL ({e}); write http://HOST:PORT",
                location.endpoint
            ))
        })?;
        if uri.scheme_str() != Some("http") {
            return Err(ObjectError::BlobStore(format!(
                "the blob store endpoint {:?} must be http:// (eddy speaks S3 over plain HTTP: put a TLS proxy in front of a store that only speaks HTTPS)",
                location.endpoint
            )));
        }
        let host = uri
            .authority()
            .map(|a| a.to_string())
            .ok_or_else(|| ObjectError::BlobStore("the endpoint has no host".into()))?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            http,
            location,
            host,
        })
    }

    pub(crate) fn location(&self) -> &S3Location {
        &self.location
    }

    /// The path of `key` (under the prefix) in the bucket, encoded as it travels.
    fn path(&self, key: Option<&str>) -> String {
        match key {
            Some(key) => format!(
                "/{}/{}",
                self.location.bucket,
                eddy_sigv4::uri_encode_path(&format!("{}{key}", self.location.prefix))
            ),
            None => format!("/{}", self.location.bucket),
        }
    }

    async fn send(
        &self,
        method: Method,
        key: Option<&str>,
        query: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<http::Response<hyper::body::Incoming>, S3Failure> {
        let path = self.path(key);
        let mut header_map = HeaderMap::new();
        header_map.insert("host", self.host.parse().expect("a host is a header value"));
        for (name, value) in headers {
            header_map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                value.parse().expect("an ASCII header value"),
            );
        }
        let signed = eddy_sigv4::sign(
            &self.location.credentials,
            &self.location.region,
            "s3",
            &eddy_sigv4::Request {
                method: method.as_str(),
                path: &path,
                query,
                headers: &header_map,
                payload_sha256: "UNSIGNED-PAYLOAD",
            },
            SystemTime::now(),
        );
        let uri = if query.is_empty() {
            format!("{}{path}", self.location.endpoint)
        } else {
            format!("{}{path}?{query}", self.location.endpoint)
        };
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in header_map.iter() {
            request = request.header(name, value);
        }
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let request = request.body(body).expect("a well-formed request");
        self.http
            .request(request)
            .await
            .map_err(|e| S3Failure::Unreachable {
                endpoint: self.location.endpoint.clone(),
                reason: e.to_string(),
            })
    }

    /// The response if its status is `expected` (or any 2xx when `None`), else the store's
    /// error.
    async fn expect(
        response: http::Response<hyper::body::Incoming>,
    ) -> Result<http::Response<hyper::body::Incoming>, S3Failure> {
        if response.status().is_success() {
            return Ok(response);
        }
        Err(refusal(response).await)
    }

    /// Whether the bucket exists and the keys may use it.
    pub(crate) async fn check_bucket(&self) -> Result<(), S3Failure> {
        let response = self.send(Method::HEAD, None, "", &[], empty()).await?;
        match response.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(S3Failure::Refused {
                status: StatusCode::NOT_FOUND,
                code: "NoSuchBucket".into(),
                message: format!(
                    "bucket {:?} does not exist; create it first",
                    self.location.bucket
                ),
            }),
            StatusCode::FORBIDDEN => Err(S3Failure::Refused {
                status: StatusCode::FORBIDDEN,
                code: "AccessDenied".into(),
                message: format!(
                    "the keys (access key {:?}) may not use bucket {:?}: check the access key, its secret and the region",
                    self.location.credentials.access_key_id, self.location.bucket
                ),
            }),
            _ => Err(refusal(response).await),
        }
    }

    /// Puts `bytes` at `key` unless something is there already; says whether it was put.
    pub(crate) async fn put_if_absent_bytes(
        &self,
        key: &str,
        bytes: Bytes,
    ) -> Result<bool, S3Failure> {
        let length = bytes.len().to_string();
        let body = Full::new(bytes).map_err(|never| match never {}).boxed();
        self.put_if_absent(key, body, length).await
    }

    /// Puts the file at `path` (`len` bytes) at `key` unless something is there already,
    /// streaming it; says whether it was put.
    pub(crate) async fn put_if_absent_file(
        &self,
        key: &str,
        path: &std::path::Path,
        len: u64,
    ) -> Result<bool, ObjectError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| ObjectError::io(path, e))?;
        Ok(self
            .put_if_absent(key, stream_body(file), len.to_string())
            .await?)
    }

    async fn put_if_absent(
        &self,
        key: &str,
        body: Body,
        length: String,
    ) -> Result<bool, S3Failure> {
        let headers = [
            ("if-none-match", "*".to_string()),
            ("content-length", length),
        ];
        let response = self
            .send(Method::PUT, Some(key), "", &headers, body)
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::PRECONDITION_FAILED => Ok(false),
            _ => Err(refusal(response).await),
        }
    }

    /// Uploads the file at `path` in parts of `part_size` bytes and completes the upload at
    /// `key` unless something is there already; says whether it was put.
    pub(crate) async fn put_file_in_parts(
        &self,
        key: &str,
        path: &std::path::Path,
        len: u64,
        part_size: u64,
    ) -> Result<bool, ObjectError> {
        let created = self
            .send(Method::POST, Some(key), "uploads=", &[], empty())
            .await?;
        let text = text_of(Self::expect(created).await?).await?;
        let upload_id = tag(&text, "UploadId")
            .ok_or_else(|| ObjectError::BlobStore(format!("no UploadId in {text:?}")))?;
        let result = self
            .upload_parts(key, &upload_id, path, len, part_size)
            .await;
        let completed = match result {
            Ok(parts) => self.complete(key, &upload_id, &parts).await,
            Err(e) => Err(e),
        };
        if completed.is_err() {
            let query = format!("uploadId={}", eddy_sigv4::uri_encode(&upload_id));
            let _ = self
                .send(Method::DELETE, Some(key), &query, &[], empty())
                .await;
        }
        completed
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        path: &std::path::Path,
        len: u64,
        part_size: u64,
    ) -> Result<Vec<String>, ObjectError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut etags = Vec::new();
        let mut offset = 0;
        let mut number = 1;
        while offset < len {
            let size = part_size.min(len - offset);
            let mut file = tokio::fs::File::open(path)
                .await
                .map_err(|e| ObjectError::io(path, e))?;
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| ObjectError::io(path, e))?;
            let query = format!(
                "partNumber={number}&uploadId={}",
                eddy_sigv4::uri_encode(upload_id)
            );
            let headers = [("content-length", size.to_string())];
            let response = self
                .send(
                    Method::PUT,
                    Some(key),
                    &query,
                    &headers,
                    stream_body(file.take(size)),
                )
                .await?;
            let response = Self::expect(response).await?;
            let etag = response
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| ObjectError::BlobStore("a part's answer has no ETag".into()))?
                .to_string();
            etags.push(etag);
            offset += size;
            number += 1;
        }
        Ok(etags)
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<bool, ObjectError> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, etag) in etags.iter().enumerate() {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                escape(etag)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let query = format!("uploadId={}", eddy_sigv4::uri_encode(upload_id));
        let headers = [
            ("if-none-match", "*".to_string()),
            ("content-length", xml.len().to_string()),
        ];
        let body = Full::new(Bytes::from(xml))
            .map_err(|never| match never {})
            .boxed();
        let response = self
            .send(Method::POST, Some(key), &query, &headers, body)
            .await?;
        match response.status() {
            StatusCode::PRECONDITION_FAILED => Ok(false),
            s if s.is_success() => {
                // S3 reports some failures of a completion in a 200's body.
                let text = text_of(response).await?;
                match tag(&text, "Code") {
                    Some(code) if code == "PreconditionFailed" => Ok(false),
                    Some(code) => Err(ObjectError::BlobStore(format!(
                        "completing a multipart upload failed: {code}"
                    ))),
                    None => Ok(true),
                }
            }
            _ => Err(refusal(response).await.into()),
        }
    }

    /// Whether `key` exists.
    pub(crate) async fn exists(&self, key: &str) -> Result<bool, S3Failure> {
        let response = self.send(Method::HEAD, Some(key), "", &[], empty()).await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(refusal(response).await),
        }
    }

    /// `len` bytes of `key` from byte `start`, streamed.
    pub(crate) async fn get(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<crate::BlobReader, ObjectError> {
        if len == 0 {
            // A range cannot be empty; there is nothing to fetch. (The key may still be gone:
            // look, so a reader of nothing learns that as any reader would.)
            if !self.exists(key).await? {
                return Err(ObjectError::io(
                    std::path::Path::new(key),
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ));
            }
            return Ok(Box::new(tokio::io::empty()));
        }
        let range = format!("bytes={start}-{}", start + len - 1);
        let response = self
            .send(Method::GET, Some(key), "", &[("range", range)], empty())
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(ObjectError::io(
                std::path::Path::new(key),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let response = Self::expect(response).await?;
        let stream = http_body_util::BodyStream::new(response.into_body()).map(|frame| {
            frame
                .map(|frame| frame.into_data().unwrap_or_default())
                .map_err(std::io::Error::other)
        });
        let reader = tokio_util::io::StreamReader::new(stream);
        Ok(Box::new(tokio::io::AsyncReadExt::take(reader, len)))
    }

    /// Every key under `under` (below the prefix), with when each was last written.
    pub(crate) async fn list(&self, under: &str) -> Result<Vec<Listed>, ObjectError> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        let prefix = format!("{}{under}", self.location.prefix);
        loop {
            let mut query = String::new();
            if let Some(token) = &token {
                query.push_str(&format!(
                    "continuation-token={}&",
                    eddy_sigv4::uri_encode(token)
                ));
            }
            query.push_str(&format!(
                "list-type=2&prefix={}",
                eddy_sigv4::uri_encode(&prefix)
            ));
            let response = self.send(Method::GET, None, &query, &[], empty()).await?;
            let text = text_of(Self::expect(response).await?).await?;
            for contents in blocks(&text, "Contents") {
                let (Some(key), Some(modified)) =
                    (tag(contents, "Key"), tag(contents, "LastModified"))
                else {
                    continue;
                };
                let Some(key) = key.strip_prefix(&self.location.prefix) else {
                    continue;
                };
                found.push(Listed {
                    key: key.to_string(),
                    modified: parse_time(&modified).unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
            token = tag(&text, "NextContinuationToken");
            if tag(&text, "IsTruncated").as_deref() != Some("true") || token.is_none() {
                return Ok(found);
            }
        }
    }

    /// Deletes `key`; says whether the store answered that it did.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), S3Failure> {
        let response = self
            .send(Method::DELETE, Some(key), "", &[], empty())
            .await?;
        match response.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(refusal(response).await),
        }
    }
}

fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A body that streams `reader` in 256 KiB chunks.
fn stream_body(reader: impl AsyncRead + Send + Sync + 'static) -> Body {
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 << 10).map_ok(Frame::data);
    BodyExt::boxed(StreamBody::new(stream))
}

async fn text_of(response: http::Response<hyper::body::Incoming>) -> Result<String, S3Failure> {
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| S3Failure::Unreachable {
            endpoint: String::new(),
            reason: e.to_string(),
        })?
        .to_bytes();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The store's error for an unexpected answer: its code and message when it sent S3 XML.
async fn refusal(response: http::Response<hyper::body::Incoming>) -> S3Failure {
    let status = response.status();
    let text = text_of(response).await.unwrap_or_default();
    S3Failure::Refused {
        status,
        code: tag(&text, "Code").unwrap_or_else(|| "-".into()),
        message: tag(&text, "Message").unwrap_or_else(|| text.chars().take(200).collect()),
    }
}

/// The text of the first `<name>…</name>` in `xml`, unescaped.
fn tag(xml: &str, name: &str) -> Option<String> {
    blocks(xml, name).next().map(unescape)
}

/// The insides of every `<name>…</name>` in `xml`.
fn blocks<'a>(xml: &'a str, name: &str) -> impl Iterator<Item = &'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let end = start + rest[start..].find(&close)?;
        let inside = &rest[start..end];
        rest = &rest[end + close.len()..];
        Some(inside)
    })
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An S3 `LastModified` (`2026-11-30T12:34:56.000Z`).
fn parse_time(text: &str) -> Option<SystemTime> {
    let ms = eddy_core::time::parse_iso8601(text)?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_are_read_from_s3_xml() {
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated>\
            <Contents><Key>p/blobs/ab/cd/abcd</Key><LastModified>2026-11-30T12:00:00.000Z</LastModified></Contents>\
            <Contents><Key>p/a&amp;b</Key><LastModified>2026-11-30T12:00:01.500Z</LastModified></Contents>\
            <NextContinuationToken>t=1</NextContinuationToken></ListBucketResult>";
        let keys: Vec<String> = blocks(xml, "Contents")
            .filter_map(|c| tag(c, "Key"))
            .collect();
        assert_eq!(keys, ["p/blobs/ab/cd/abcd", "p/a&b"]);
        assert_eq!(tag(xml, "NextContinuationToken").as_deref(), Some("t=1"));
        let t = parse_time("2026-11-30T12:00:01.500Z").unwrap();
        let ms = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        assert_eq!(ms % 1000, 500);
    }
}
